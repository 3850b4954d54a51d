UPDATE accounts SET closed = true WHERE id % :closed_every = 0;
