-- rw-register: one register per key (NULL: never written); every write is also logged in
-- `written`, in the same transaction, for the lab's own invariant.
CREATE TABLE regs (
    k int PRIMARY KEY,
    v bigint
);
CREATE TABLE written (
    k int NOT NULL,
    v bigint NOT NULL
);
INSERT INTO regs (k) SELECT g FROM generate_series(1, :keys) AS g;
