-- pgbench's built-in TPC-B-like script for sysbench 1.0 on MariaDB/MySQL: what
-- `contention bench --engine mariadb` runs against the lab's `tpcb` scenario.
--
-- The same five statements in one transaction as pgbench's script and the scenario, in the
-- same order, each a server-side prepared statement (BEGIN and COMMIT too, as pgbench -M
-- prepared and sysbench's own OLTP scripts do); the same draws (pgbench's `random(a, b)`:
-- uniform, bounds included); READ COMMITTED, the lab's default level. `prepare` builds the
-- tables as `pgbench -i -s SCALE` does, in the lab's MariaDB schema
-- (sql/tpcb/schema.mariadb.sql): 1 branch, 10 tellers and 100000 accounts per scale unit.
--
--   sysbench bench/tpcb.lua --mysql-socket=... --mysql-user=root --mysql-db=DB --scale=1 prepare
--   sysbench bench/tpcb.lua --mysql-socket=... --mysql-user=root --mysql-db=DB --scale=1 \
--     --threads=8 --time=3 run

sysbench.cmdline.options = {
   scale = {"pgbench's scale factor: branches; 10 tellers and 100000 accounts per branch", 1},
}

local TABLES = {"pgbench_history", "pgbench_tellers", "pgbench_accounts", "pgbench_branches"}

local SCHEMA = {
   "CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp NULL, filler char(22)) ENGINE = InnoDB",
   "CREATE TABLE pgbench_tellers (tid int NOT NULL PRIMARY KEY, bid int, tbalance int, filler char(84)) ENGINE = InnoDB",
   "CREATE TABLE pgbench_accounts (aid int NOT NULL PRIMARY KEY, bid int, abalance int, filler char(84)) ENGINE = InnoDB",
   "CREATE TABLE pgbench_branches (bid int NOT NULL PRIMARY KEY, bbalance int, filler char(88)) ENGINE = InnoDB",
   "INSERT INTO pgbench_branches (bid, bbalance) SELECT seq, 0 FROM seq_1_to_4294967295 WHERE seq <= %d",
   "INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT seq, (seq - 1) DIV 10 + 1, 0 FROM seq_1_to_4294967295 WHERE seq <= 10 * %d",
   "INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT seq, (seq - 1) DIV 100000 + 1, 0, '' FROM seq_1_to_4294967295 WHERE seq <= 100000 * %d",
}

local function drop_tables(con)
   for _, t in ipairs(TABLES) do
      con:query("DROP TABLE IF EXISTS " .. t)
   end
end

-- Drops and rebuilds the tables (as `pgbench -i` does on every call).
function cmd_prepare()
   local drv = sysbench.sql.driver()
   local con = drv:connect()
   drop_tables(con)
   for _, sql in ipairs(SCHEMA) do
      con:query(string.format(sql, sysbench.opt.scale))
   end
   con:query("ANALYZE TABLE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history")
   con:disconnect()
end

sysbench.cmdline.commands = {
   prepare = {cmd_prepare},
}

function cleanup()
   local drv = sysbench.sql.driver()
   local con = drv:connect()
   drop_tables(con)
   con:disconnect()
end

local INT = sysbench.sql.type.INT

-- name, SQL, parameter names in placeholder order
local STATEMENTS = {
   {"begin", "BEGIN", {}},
   {"account", "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?", {"delta", "aid"}},
   {"balance", "SELECT abalance FROM pgbench_accounts WHERE aid = ?", {"aid"}},
   {"teller", "UPDATE pgbench_tellers SET tbalance = tbalance + ? WHERE tid = ?", {"delta", "tid"}},
   {"branch", "UPDATE pgbench_branches SET bbalance = bbalance + ? WHERE bid = ?", {"delta", "bid"}},
   {"history", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)",
    {"tid", "bid", "aid", "delta"}},
   {"commit", "COMMIT", {}},
}

function thread_init()
   drv = sysbench.sql.driver()
   con = drv:connect()
   con:query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
   stmts = {}
   -- binds[name] = every bind variable that takes draw `name`
   binds = {aid = {}, bid = {}, tid = {}, delta = {}}
   for _, def in ipairs(STATEMENTS) do
      local stmt = con:prepare(def[2])
      local params = {}
      for i, name in ipairs(def[3]) do
         params[i] = stmt:bind_create(INT)
         table.insert(binds[name], params[i])
      end
      if #params > 0 then
         stmt:bind_param(unpack(params))
      end
      table.insert(stmts, stmt)
   end
end

local function set(name, value)
   for _, p in ipairs(binds[name]) do
      p:set(value)
   end
end

function event()
   local scale = sysbench.opt.scale
   -- pgbench: random(1, 100000 * :scale), random(1, :scale), random(1, 10 * :scale),
   -- random(-5000, 5000); sysbench's uniform draws unsigned values, hence the shift.
   set("aid", sysbench.rand.uniform(1, 100000 * scale))
   set("bid", sysbench.rand.uniform(1, scale))
   set("tid", sysbench.rand.uniform(1, 10 * scale))
   set("delta", sysbench.rand.uniform(0, 10000) - 5000)
   for _, stmt in ipairs(stmts) do
      stmt:execute()
   end
end

function thread_done()
   for _, stmt in ipairs(stmts) do
      stmt:close()
   end
   con:disconnect()
end
