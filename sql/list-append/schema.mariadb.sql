-- list-append (MariaDB): as schema.sql; generate_series -> the SEQUENCE engine.
CREATE TABLE lists (
    k int PRIMARY KEY,
    v text
) ENGINE = InnoDB;
CREATE TABLE appended (
    k int NOT NULL,
    v bigint NOT NULL
) ENGINE = InnoDB;
INSERT INTO lists (k) SELECT seq FROM seq_1_to_4294967295 WHERE seq <= :keys;
