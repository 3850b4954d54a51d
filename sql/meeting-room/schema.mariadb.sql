-- meeting-room (MariaDB 10.11): MariaDB has no range types and no exclusion constraints.
-- A booking holds a room from starts_at (inclusive) to ends_at (exclusive), two DATETIME
-- columns; two bookings overlap when each starts before the other ends.
-- In place of the exclusion constraint, the exclusion strategy books a grid of 30-minute slots:
-- room_slots has one row per room and slot taken, and its primary key (room, slot) refuses a
-- second booking of any slot (1062). That works because every booking here starts and ends on
-- the half hour; it is the usual MySQL/MariaDB substitute, not a general one.
-- bigserial -> bigint AUTO_INCREMENT; generate_series -> the SEQUENCE engine.
CREATE TABLE rooms (
    id   int PRIMARY KEY,
    name varchar(64) NOT NULL
) ENGINE = InnoDB;
CREATE TABLE bookings (
    id        bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room      int NOT NULL,
    starts_at datetime NOT NULL,
    ends_at   datetime NOT NULL,
    booker    int NOT NULL,
    INDEX bookings_room_start (room, starts_at),
    FOREIGN KEY (room) REFERENCES rooms (id)
) ENGINE = InnoDB;
CREATE TABLE room_slots (
    room   int NOT NULL,
    slot   int NOT NULL,
    booker int NOT NULL,
    PRIMARY KEY (room, slot),
    FOREIGN KEY (room) REFERENCES rooms (id)
) ENGINE = InnoDB;
INSERT INTO rooms (id, name)
SELECT seq, CONCAT('room ', seq) FROM seq_1_to_4294967295 WHERE seq <= :rooms;
