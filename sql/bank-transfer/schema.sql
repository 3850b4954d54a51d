-- bank-transfer: :accounts accounts (or :hot_accounts, if more) holding :initial_balance each, and a log of every transfer.
-- `opening` keeps each account's balance at setup, so the invariants can check conservation
-- without knowing the parameters. No CHECK (balance >= 0) and no foreign keys on purpose: a
-- CHECK would turn the damage the invariants measure into errors, and the KEY SHARE locks of
-- foreign-key checks would add lock conflicts that are not part of the story.
CREATE TABLE accounts (
    id      int PRIMARY KEY,
    opening bigint NOT NULL,
    balance bigint NOT NULL,
    version bigint NOT NULL DEFAULT 0
);
CREATE TABLE transfers (
    id      bigserial PRIMARY KEY,
    from_id int NOT NULL,
    to_id   int NOT NULL,
    amount  bigint NOT NULL CHECK (amount > 0),
    client  int NOT NULL
);
INSERT INTO accounts (id, opening, balance)
SELECT g, :initial_balance, :initial_balance FROM generate_series(1, greatest(:accounts, :hot_accounts)) AS g;
