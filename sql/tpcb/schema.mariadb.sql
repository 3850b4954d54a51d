-- tpcb (MariaDB 10.11): pgbench's tables as `pgbench -i -s :scale` creates them.
-- Changes: WITH (fillfactor = 100) dropped (InnoDB has no per-table fillfactor; innodb_fill_factor is
-- a global for index builds, default 100); generate_series -> SEQUENCE engine; the primary keys are
-- declared inline (InnoDB clusters the table on its primary key: adding it afterwards rebuilds the
-- table; the result is the same). pgbench_history has no key: InnoDB adds a hidden 6-byte row id.
-- The setup's `VACUUM (ANALYZE) ...` has no MariaDB equivalent that is needed; use
-- `ANALYZE TABLE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history` (it returns a result set).
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp NULL, filler char(22)) ENGINE = InnoDB;
CREATE TABLE pgbench_tellers (tid int NOT NULL PRIMARY KEY, bid int, tbalance int, filler char(84)) ENGINE = InnoDB;
CREATE TABLE pgbench_accounts (aid int NOT NULL PRIMARY KEY, bid int, abalance int, filler char(84)) ENGINE = InnoDB;
CREATE TABLE pgbench_branches (bid int NOT NULL PRIMARY KEY, bbalance int, filler char(88)) ENGINE = InnoDB;
INSERT INTO pgbench_branches (bid, bbalance) SELECT seq, 0 FROM seq_1_to_4294967295 WHERE seq <= :scale;
INSERT INTO pgbench_tellers (tid, bid, tbalance)
SELECT seq, (seq - 1) DIV 10 + 1, 0 FROM seq_1_to_4294967295 WHERE seq <= 10 * :scale;
INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
SELECT seq, (seq - 1) DIV 100000 + 1, 0, '' FROM seq_1_to_4294967295 WHERE seq <= 100000 * :scale;
