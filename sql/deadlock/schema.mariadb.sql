-- deadlock (MariaDB 10.11): :pairs pairs of accounts; pair p is accounts a = 2p - 1 and b = 2p.
-- Changes: generate_series -> SEQUENCE engine.
CREATE TABLE accounts (
    id      int PRIMARY KEY,
    opening bigint NOT NULL,
    balance bigint NOT NULL
) ENGINE = InnoDB;
INSERT INTO accounts (id, opening, balance)
SELECT seq, :initial_balance, :initial_balance FROM seq_1_to_4294967295 WHERE seq <= 2 * :pairs;
