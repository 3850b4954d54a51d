-- tpcb: pgbench's tables as `pgbench -i -s :scale` creates them (branches, tellers, accounts at
-- fillfactor 100, an empty history, primary keys but no foreign keys): 1 branch, 10 tellers and
-- 100000 accounts per scale unit, every balance 0.
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100);
INSERT INTO pgbench_branches (bid, bbalance) SELECT g, 0 FROM generate_series(1, :scale) AS g;
INSERT INTO pgbench_tellers (tid, bid, tbalance)
SELECT g, (g - 1) / 10 + 1, 0 FROM generate_series(1, 10 * :scale) AS g;
INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, 100000 * :scale) AS g;
ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
