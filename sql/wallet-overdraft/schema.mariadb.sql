-- wallet-overdraft (MariaDB 10.11): as schema.sql. Changes: bigserial -> bigint AUTO_INCREMENT;
-- generate_series -> the SEQUENCE engine. MariaDB enforces CHECK constraints (since 10.2): a
-- violating UPDATE fails with error 4025 (ER_CONSTRAINT_FAILED).
CREATE TABLE wallets (
    id      int PRIMARY KEY,
    opening int NOT NULL,
    balance int NOT NULL
) ENGINE = InnoDB;
CREATE TABLE wallets_checked (
    id      int PRIMARY KEY,
    opening int NOT NULL,
    balance int NOT NULL,
    CONSTRAINT balance_not_negative CHECK (balance >= 0)
) ENGINE = InnoDB;
CREATE TABLE debits (
    id        bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    wallet_id int NOT NULL,
    amount    int NOT NULL
) ENGINE = InnoDB;
INSERT INTO wallets (id, opening, balance)
SELECT seq, :opening, :opening FROM seq_1_to_4294967295 WHERE seq <= :wallets;
INSERT INTO wallets_checked SELECT * FROM wallets;
