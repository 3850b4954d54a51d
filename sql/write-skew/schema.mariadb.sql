-- write-skew (MariaDB 10.11): a rota of :days days x :shifts shifts, :doctors doctors per shift.
-- Changes: generate_series -> SEQUENCE engine (two independent seq tables for the cross join);
-- boolean is TINYINT(1) in MariaDB (true/false literals and `WHERE on_call` work unchanged);
-- column-level REFERENCES written table-level (both forms create the FK on 10.11, checked).
CREATE TABLE shifts (
    id        int PRIMARY KEY,
    day       int NOT NULL,
    slot      int NOT NULL,
    handovers int NOT NULL DEFAULT 0,
    UNIQUE (day, slot)
) ENGINE = InnoDB;
CREATE TABLE rota (
    shift_id int NOT NULL,
    doctor   int NOT NULL,
    on_call  boolean NOT NULL,
    PRIMARY KEY (shift_id, doctor),
    FOREIGN KEY (shift_id) REFERENCES shifts (id)
) ENGINE = InnoDB;
INSERT INTO shifts (id, day, slot)
SELECT (d.seq - 1) * :shifts + s.seq, d.seq, s.seq
FROM seq_1_to_4294967295 AS d JOIN seq_1_to_4294967295 AS s
WHERE d.seq <= :days AND s.seq <= :shifts;
INSERT INTO rota (shift_id, doctor, on_call)
SELECT s.id, (s.slot - 1) * :doctors + k.seq, true
FROM shifts s JOIN seq_1_to_4294967295 AS k WHERE k.seq <= :doctors;
