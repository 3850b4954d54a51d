-- ticketmaster: one concert with :seats seats; buyers insert one ticket each.
CREATE TABLE concerts (
    id        int PRIMARY KEY,
    capacity  int NOT NULL,
    available int NOT NULL,
    version   bigint NOT NULL DEFAULT 0
);
CREATE TABLE tickets (
    id         bigserial PRIMARY KEY,
    concert_id int NOT NULL REFERENCES concerts(id),
    buyer      int NOT NULL
);
INSERT INTO concerts (id, capacity, available)
SELECT g, :seats, :seats FROM generate_series(1, :concerts) AS g;
