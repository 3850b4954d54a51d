-- bank-transfer (MariaDB 10.11): :accounts accounts (or :hot_accounts, if more) holding :initial_balance each.
-- Changes: bigserial -> bigint AUTO_INCREMENT; generate_series -> SEQUENCE engine.
CREATE TABLE accounts (
    id      int PRIMARY KEY,
    opening bigint NOT NULL,
    balance bigint NOT NULL,
    version bigint NOT NULL DEFAULT 0
) ENGINE = InnoDB;
CREATE TABLE transfers (
    id      bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    from_id int NOT NULL,
    to_id   int NOT NULL,
    amount  bigint NOT NULL CHECK (amount > 0),
    client  int NOT NULL
) ENGINE = InnoDB;
INSERT INTO accounts (id, opening, balance)
SELECT seq, :initial_balance, :initial_balance FROM seq_1_to_4294967295
WHERE seq <= greatest(:accounts, :hot_accounts);
