-- wallet-overdraft: :wallets wallets opening with :opening each; every purchase debits :amount.
-- `wallets` has no constraint (naive, guarded); `wallets_checked` is the same table with
-- CHECK (balance >= 0), which only the check-constraint strategy debits (a constraint on the
-- shared table would rescue the naive strategy too).
CREATE TABLE wallets (
    id      int PRIMARY KEY,
    opening int NOT NULL,
    balance int NOT NULL
);
CREATE TABLE wallets_checked (
    id      int PRIMARY KEY,
    opening int NOT NULL,
    balance int NOT NULL CHECK (balance >= 0)
);
CREATE TABLE debits (
    id        bigserial PRIMARY KEY,
    wallet_id int NOT NULL,
    amount    int NOT NULL
);
INSERT INTO wallets (id, opening, balance) SELECT g, :opening, :opening FROM generate_series(1, :wallets) AS g;
INSERT INTO wallets_checked SELECT * FROM wallets;
