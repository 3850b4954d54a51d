-- hot-item: one item on a flash sale with :stock units, the orders sold, and the queue of
-- purchase requests that the queue strategy's worker applies one at a time.
CREATE TABLE items (
    id      int PRIMARY KEY,
    stock   int NOT NULL,
    initial int NOT NULL,
    version int NOT NULL DEFAULT 0
);
INSERT INTO items (id, stock, initial) VALUES (1, :stock, :stock);
CREATE TABLE orders (
    id         bigserial PRIMARY KEY,
    item_id    int NOT NULL,
    buyer      int NOT NULL,
    request_id bigint
);
-- status: pending (the buyer waits), done (an order was made), sold_out.
CREATE TABLE requests (
    id      bigserial PRIMARY KEY,
    item_id int NOT NULL,
    buyer   int NOT NULL,
    status  text NOT NULL DEFAULT 'pending'
);
-- The worker looks for the oldest pending request: found through (status, id), not a scan.
CREATE INDEX requests_status ON requests (status, id);
