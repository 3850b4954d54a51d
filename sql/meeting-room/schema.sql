-- meeting-room: :rooms rooms; a booking holds a room for a tstzrange.
-- No constraint against overlaps: the exclusion strategy adds
-- EXCLUDE USING gist (room WITH =, during WITH &&) in its own setup (on this table for every
-- strategy it would rescue the others too). `room WITH =` in a GiST index needs the btree_gist
-- extension (contrib; a superuser, or a trusted-extension owner, may create it).
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
INSERT INTO rooms (id, name) SELECT g, 'room ' || g FROM generate_series(1, :rooms) AS g;
