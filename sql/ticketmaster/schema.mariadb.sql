-- ticketmaster (MariaDB 10.11): one concert with :seats seats; buyers insert one ticket each.
-- Changes from schema.sql: bigserial -> bigint AUTO_INCREMENT; generate_series -> the SEQUENCE
-- engine (seq_1_to_N is a virtual table; a WHERE bound keeps it an index range scan);
-- (column-level REFERENCES would also work: MariaDB 10.5+ InnoDB creates the foreign key, checked
-- on 10.11.19; the table-level form is used for clarity).
CREATE TABLE concerts (
    id        int PRIMARY KEY,
    capacity  int NOT NULL,
    available int NOT NULL,
    version   bigint NOT NULL DEFAULT 0
) ENGINE = InnoDB;
CREATE TABLE tickets (
    id         bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    concert_id int NOT NULL,
    buyer      int NOT NULL,
    FOREIGN KEY (concert_id) REFERENCES concerts (id)
) ENGINE = InnoDB;
INSERT INTO concerts (id, capacity, available)
SELECT seq, :seats, :seats FROM seq_1_to_4294967295 WHERE seq <= :concerts;
