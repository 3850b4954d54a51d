UPDATE accounts SET closed = true WHERE id % :closed_every = 0;
-- The credits bank_b has applied, by transfer: a saga whose credit's COMMIT lost its
-- connection (bank_b went down) asks here whether the credit landed before it compensates.
CREATE TABLE credits (xfer text PRIMARY KEY);
