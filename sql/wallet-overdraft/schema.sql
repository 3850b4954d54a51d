-- wallet-overdraft: :wallets wallets opening with :opening each; every purchase debits :amount.
-- No constraint on the balance: the check-constraint strategy adds CHECK (balance >= 0) in its
-- own setup (on this table for every strategy it would rescue the naive one too).
CREATE TABLE wallets (
    id      int PRIMARY KEY,
    opening int NOT NULL,
    balance int NOT NULL
);
CREATE TABLE debits (
    id        bigserial PRIMARY KEY,
    wallet_id int NOT NULL,
    amount    int NOT NULL
);
INSERT INTO wallets (id, opening, balance) SELECT g, :opening, :opening FROM generate_series(1, :wallets) AS g;
