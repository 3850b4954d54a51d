-- seat-hold (MariaDB 10.11): as schema.sql. Changes: text -> varchar; timestamptz ->
-- DATETIME(6) (the server's SYSDATE(6) and NOW(6), microseconds); bigserial -> bigint
-- AUTO_INCREMENT; generate_series -> the SEQUENCE engine.
CREATE TABLE shows (
    id       int PRIMARY KEY,
    capacity int NOT NULL,
    price    int NOT NULL
) ENGINE = InnoDB;
CREATE TABLE seats (
    id         int PRIMARY KEY,
    status     varchar(16) NOT NULL DEFAULT 'available',
    holder     int,
    hold_id    int,
    hold_until datetime(6),
    sold_at    datetime(6),
    -- The sweeper looks for expired holds: held seats by expiry. Without it, its UPDATE scans
    -- the primary key and, at REPEATABLE READ, keeps a lock on every seat it read until it ends.
    INDEX seats_held (status, hold_until)
) ENGINE = InnoDB;
CREATE TABLE holds (
    id         int PRIMARY KEY,
    seat_id    int NOT NULL,
    holder     int NOT NULL,
    hold_until datetime(6) NOT NULL
) ENGINE = InnoDB;
CREATE TABLE sales (
    id      bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    seat_id int NOT NULL,
    hold_id int,
    buyer   int NOT NULL,
    sold_at datetime(6) NOT NULL
) ENGINE = InnoDB;
INSERT INTO shows (id, capacity, price) VALUES (1, :seats, 40);
INSERT INTO seats (id) SELECT seq FROM seq_1_to_4294967295 WHERE seq <= :seats;
