-- hot-item (MariaDB 10.11): as schema.sql. Changes: bigserial -> bigint AUTO_INCREMENT;
-- text -> varchar (an indexed column).
CREATE TABLE items (
    id      int PRIMARY KEY,
    stock   int NOT NULL,
    initial int NOT NULL,
    version int NOT NULL DEFAULT 0
) ENGINE = InnoDB;
INSERT INTO items (id, stock, initial) VALUES (1, :stock, :stock);
CREATE TABLE orders (
    id         bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    item_id    int NOT NULL,
    buyer      int NOT NULL,
    request_id bigint
) ENGINE = InnoDB;
CREATE TABLE requests (
    id      bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    item_id int NOT NULL,
    buyer   int NOT NULL,
    status  varchar(16) NOT NULL DEFAULT 'pending',
    INDEX requests_status (status, id)
) ENGINE = InnoDB;
