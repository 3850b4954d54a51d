-- deadlock: :pairs pairs of accounts; pair p is accounts a = 2p - 1 and b = 2p.
-- `opening` keeps each account's balance at setup, so money_drift needs no parameters.
-- No CHECK (balance >= 0): the invariants measure overdrafts instead of turning them into errors.
CREATE TABLE accounts (
    id      int PRIMARY KEY,
    opening bigint NOT NULL,
    balance bigint NOT NULL
);
INSERT INTO accounts (id, opening, balance)
SELECT g, :initial_balance, :initial_balance FROM generate_series(1, 2 * :pairs) AS g;
