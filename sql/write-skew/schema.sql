-- write-skew: a rota of :days days x :shifts shifts; every shift is staffed by :doctors doctors,
-- all on call at the start. Doctor d always works slot (d - 1) / :doctors + 1 of each day.
CREATE TABLE shifts (
    id        int PRIMARY KEY,
    day       int NOT NULL,
    slot      int NOT NULL,
    -- written by materialize-conflict: the row two requests for the same shift collide on
    handovers int NOT NULL DEFAULT 0,
    UNIQUE (day, slot)
);
CREATE TABLE rota (
    shift_id int NOT NULL REFERENCES shifts(id),
    doctor   int NOT NULL,
    on_call  boolean NOT NULL,
    PRIMARY KEY (shift_id, doctor)
);
INSERT INTO shifts (id, day, slot)
SELECT (d - 1) * :shifts + s, d, s
FROM generate_series(1, :days) AS d, generate_series(1, :shifts) AS s;
INSERT INTO rota (shift_id, doctor, on_call)
SELECT s.id, (s.slot - 1) * :doctors + k, true
FROM shifts s, generate_series(1, :doctors) AS k;
