-- rw-register (MariaDB): as schema.sql; generate_series -> the SEQUENCE engine.
CREATE TABLE regs (
    k int PRIMARY KEY,
    v bigint
) ENGINE = InnoDB;
CREATE TABLE written (
    k int NOT NULL,
    v bigint NOT NULL
) ENGINE = InnoDB;
INSERT INTO regs (k) SELECT seq FROM seq_1_to_4294967295 WHERE seq <= :keys;
