-- duplicate-callback (MariaDB 10.11): as schema.sql; bigserial -> bigint AUTO_INCREMENT.
-- A duplicate key fails with error 1062 (ER_DUP_ENTRY).
CREATE TABLE payments (
    id          bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    callback_id bigint NOT NULL,
    amount      int NOT NULL,
    INDEX payments_callback (callback_id)
) ENGINE = InnoDB;
CREATE TABLE payments_keyed (
    id          bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    callback_id bigint NOT NULL UNIQUE,
    amount      int NOT NULL
) ENGINE = InnoDB;
