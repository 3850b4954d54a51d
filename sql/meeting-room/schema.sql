-- meeting-room: :rooms rooms; a booking holds a room for a tstzrange.
-- `bookings` has no constraint (naive, lock-room, serializable); `bookings_excl` is the same
-- table with an exclusion constraint, which only the exclusion strategy writes (on the shared
-- table it would rescue the other strategies too). `room WITH =` in a GiST index needs the
-- btree_gist extension (contrib; a superuser, or a trusted-extension owner, may create it).
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE rooms (
    id   int PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE bookings (
    id     bigserial PRIMARY KEY,
    room   int NOT NULL REFERENCES rooms (id),
    during tstzrange NOT NULL,
    booker int NOT NULL
);
-- The overlap lookup (room = ? AND during && ?) by index, as a real calendar would.
CREATE INDEX bookings_room_during ON bookings USING gist (room, during);
CREATE TABLE bookings_excl (
    id     bigserial PRIMARY KEY,
    room   int NOT NULL REFERENCES rooms (id),
    during tstzrange NOT NULL,
    booker int NOT NULL,
    EXCLUDE USING gist (room WITH =, during WITH &&)
);
INSERT INTO rooms (id, name) SELECT g, 'room ' || g FROM generate_series(1, :rooms) AS g;
