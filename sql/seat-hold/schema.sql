-- seat-hold: one show of :seats seats. A seat is 'available', 'held' (by hold_id, until
-- hold_until) or 'sold'. An expired hold stays 'held' until someone takes the seat over or the
-- sweeper releases it: expiry is lazy.
CREATE TABLE shows (
    id       int PRIMARY KEY,
    capacity int NOT NULL,
    price    int NOT NULL
);
CREATE TABLE seats (
    id         int PRIMARY KEY,
    status     text NOT NULL DEFAULT 'available',
    holder     int,
    hold_id    int,
    hold_until timestamptz,
    sold_at    timestamptz
);
-- The sweeper looks for expired holds: held seats by expiry.
CREATE INDEX seats_held ON seats (status, hold_until);
-- Every hold ever taken, with the expiry it was given: the truth the invariants judge a sale by
-- (the seat's own hold_until is overwritten by a takeover).
CREATE TABLE holds (
    id         int PRIMARY KEY,
    seat_id    int NOT NULL,
    holder     int NOT NULL,
    hold_until timestamptz NOT NULL
);
-- Every sale: the hold it sold (none for lock-whole-purchase) and when the seat was marked sold.
CREATE TABLE sales (
    id      bigserial PRIMARY KEY,
    seat_id int NOT NULL,
    hold_id int,
    buyer   int NOT NULL,
    sold_at timestamptz NOT NULL
);
INSERT INTO shows (id, capacity, price) VALUES (1, :seats, 40);
INSERT INTO seats (id) SELECT g FROM generate_series(1, :seats) AS g;
