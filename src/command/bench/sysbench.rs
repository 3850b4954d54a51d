//! sysbench, the peer on MariaDB/MySQL: the repository's `bench/tpcb.lua` (pgbench's TPC-B-like
//! transaction, compiled into the binary and written to a temporary directory), its `prepare`
//! before each run as `pgbench -i` is, `run` with the clients as threads; tps and CPU per
//! transaction from its output and the waited-for child. It reaches the run database through the
//! endpoint the engine gives: the private server's Unix socket, never a default host or port.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, anyhow};

use super::init_and_run;
use crate::cli::BenchArgs;
use crate::engine::RunDatabase;
use crate::report::bench::Sample;

/// The Lua script sysbench runs (`bench/tpcb.lua` in the repository).
pub const SCRIPT: &str = include_str!("../../../bench/tpcb.lua");

/// sysbench and the script it runs, in a directory removed when dropped.
pub struct Sysbench {
    program: PathBuf,
    script: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sysbench {
    /// sysbench on PATH, and the script written out for it.
    pub fn find() -> anyhow::Result<Sysbench> {
        let program = std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("sysbench"))
                    .find(|p| p.is_file())
            })
            .ok_or_else(|| {
                anyhow!("sysbench not found on PATH (Debian/Ubuntu: apt-get install sysbench)")
            })?;
        let dir = tempfile::Builder::new()
            .prefix("contention-sysbench-")
            .tempdir()
            .context("cannot create a directory for sysbench's script")?;
        let script = dir.path().join("tpcb.lua");
        std::fs::write(&script, SCRIPT)
            .with_context(|| format!("cannot write {}", script.display()))?;
        Ok(Sysbench {
            program,
            script,
            _dir: dir,
        })
    }

    /// `sysbench tpcb.lua` with the database's connection settings and the scale.
    fn command(&self, db: &RunDatabase, args: &BenchArgs) -> Command {
        let c = db.endpoint();
        let mut cmd = Command::new(&self.program);
        cmd.arg(&self.script)
            .arg("--db-driver=mysql")
            .arg(format!("--mysql-user={}", c.user))
            .arg(format!("--mysql-db={}", c.database))
            .arg(format!("--scale={}", args.scale));
        if c.socket {
            // `localhost` makes the client library take the socket, not TCP.
            cmd.arg("--mysql-host=localhost")
                .arg(format!("--mysql-socket={}", c.host));
        } else {
            cmd.arg(format!("--mysql-host={}", c.host))
                .arg(format!("--mysql-port={}", c.port));
        }
        if let Some(pw) = c.password {
            cmd.arg(format!("--mysql-password={pw}"));
        }
        cmd
    }

    /// `tpcb.lua prepare` (drops and rebuilds the tables), then `tpcb.lua run` with `clients`
    /// threads for `--duration`; returns its tps (sysbench's clock starts once every thread has
    /// connected and prepared its statements, as the lab's does) and its CPU per transaction
    /// (getrusage of the waited-for child, connecting included, as for pgbench).
    pub async fn run(
        &self,
        db: &RunDatabase,
        clients: u32,
        args: &BenchArgs,
    ) -> anyhow::Result<Sample> {
        let mut init = self.command(db, args);
        init.arg("prepare");
        let mut run = self.command(db, args);
        run.arg(format!("--threads={clients}"))
            .arg(format!("--time={}", args.duration.as_secs()))
            .arg("--events=0")
            .arg("run");
        let (text, cpu) = init_and_run(("sysbench prepare", init), ("sysbench", run)).await?;
        let (txns, tps) = parse_transactions(&text)
            .ok_or_else(|| anyhow!("no `transactions:` line in sysbench's output:\n{text}"))?;
        Ok(Sample {
            per_sec: tps,
            cpu_us_per_txn: cpu * 1e6 / txns.max(1) as f64,
        })
    }
}

/// sysbench's `transactions:   7950   (3968.57 per sec.)`: the count and the rate.
fn parse_transactions(text: &str) -> Option<(u64, f64)> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("transactions:")?;
        let (count, rate) = rest.trim().split_once('(')?;
        let rate = rate.trim().strip_suffix("per sec.)")?;
        Some((count.trim().parse().ok()?, rate.trim().parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::{SCRIPT, parse_transactions};

    #[test]
    fn reads_sysbench_transactions() {
        let t = "SQL statistics:\n    queries performed:\n        read:                            7950\n    transactions:                        7950   (3968.57 per sec.)\n    queries:                             55658  (27783.99 per sec.)\n";
        assert_eq!(parse_transactions(t), Some((7950, 3968.57)));
        assert_eq!(parse_transactions("total time: 2.0s"), None);
    }

    #[test]
    fn the_script_sends_the_five_statements_of_tpcb() {
        for s in [
            "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?",
            "SELECT abalance FROM pgbench_accounts WHERE aid = ?",
            "UPDATE pgbench_tellers SET tbalance = tbalance + ? WHERE tid = ?",
            "UPDATE pgbench_branches SET bbalance = bbalance + ? WHERE bid = ?",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)",
        ] {
            assert!(SCRIPT.contains(s), "{s}");
        }
    }
}
