-- The coordinator's durable log: one decision per global transaction id, taken once (the
-- primary key): the coordinator's `commit` and a recovery's `abort` cannot both win.
CREATE TABLE decisions (
    gid      text PRIMARY KEY,
    decision text NOT NULL CHECK (decision IN ('commit', 'abort'))
);
