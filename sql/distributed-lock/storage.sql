-- The storage node: one shared record, and a log of every write it accepted.
CREATE TABLE record (
    id    int PRIMARY KEY,
    value int NOT NULL,
    -- The highest fencing token of an accepted write (the fencing strategy checks it).
    fence bigint NOT NULL DEFAULT 0
);
INSERT INTO record (id, value) VALUES (1, 0);

CREATE TABLE writes (
    seq    serial PRIMARY KEY,
    fence  bigint NOT NULL,
    value  int NOT NULL,
    writer int NOT NULL
);
