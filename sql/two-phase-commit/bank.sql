-- Every database node of the scenario runs this: each bank has the same accounts.
CREATE TABLE accounts (
    id      int PRIMARY KEY,
    balance int NOT NULL
);
INSERT INTO accounts (id, balance) SELECT g, :balance FROM generate_series(1, :accounts) g;
