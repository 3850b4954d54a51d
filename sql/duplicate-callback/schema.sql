-- duplicate-callback: a ledger of the payments the provider notified us of.
-- `payments` has a plain index on callback_id (the naive strategy looks it up, nothing enforces
-- it); `payments_keyed` is the same table with UNIQUE (callback_id), which the unique and
-- on-conflict strategies write (the constraint on the shared table would rescue naive too).
CREATE TABLE payments (
    id          bigserial PRIMARY KEY,
    callback_id bigint NOT NULL,
    amount      int NOT NULL
);
CREATE INDEX payments_callback ON payments (callback_id);
CREATE TABLE payments_keyed (
    id          bigserial PRIMARY KEY,
    callback_id bigint NOT NULL UNIQUE,
    amount      int NOT NULL
);
