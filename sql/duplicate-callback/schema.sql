-- duplicate-callback: a ledger of the payments the provider notified us of.
-- A plain index on callback_id: the handler looks callbacks up, nothing enforces one payment per
-- callback. The unique and on-conflict strategies replace this index by UNIQUE (callback_id) in
-- their own setup (on this table for every strategy it would rescue naive too).
CREATE TABLE payments (
    id          bigserial PRIMARY KEY,
    callback_id bigint NOT NULL,
    amount      int NOT NULL
);
CREATE INDEX payments_callback ON payments (callback_id);
