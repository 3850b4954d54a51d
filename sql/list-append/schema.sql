-- list-append: one list per key, stored as text `1,2,3` (NULL: the empty list); every append
-- is also logged in `appended`, in the same transaction, for the lab's own invariant.
CREATE TABLE lists (
    k int PRIMARY KEY,
    v text
);
CREATE TABLE appended (
    k int NOT NULL,
    v bigint NOT NULL
);
INSERT INTO lists (k) SELECT g FROM generate_series(1, :keys) AS g;
