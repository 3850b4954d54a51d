-- Both banks run this: the same accounts; on bank_b every `closed_every`-th account is closed
-- (a credit to it is refused), which is what makes a saga compensate.
CREATE TABLE accounts (
    id      int PRIMARY KEY,
    balance int NOT NULL,
    closed  boolean NOT NULL DEFAULT false
);
INSERT INTO accounts (id, balance) SELECT g, :balance FROM generate_series(1, :accounts) g;
