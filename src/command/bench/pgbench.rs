//! pgbench, the peer on PostgreSQL: its built-in TPC-B-like script, `pgbench -i -s SCALE` before
//! each run, `-M prepared`; tps and CPU per transaction from its output and the waited-for child.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::anyhow;

use super::init_and_run;
use crate::cli::BenchArgs;
use crate::engine::{RunDatabase, find_bindir};
use crate::report::bench::Sample;

/// pgbench next to the server binaries, else on PATH.
pub fn find() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = find_bindir() {
        let p = dir.join("pgbench");
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("pgbench");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(anyhow!(
        "pgbench not found next to the PostgreSQL server binaries nor on PATH \
         (Debian/Ubuntu: apt-get install postgresql-contrib or postgresql)"
    ))
}

/// pgbench with the database's connection settings (never through the ambient libpq variables).
fn pgbench_command(pgbench: &Path, db: &RunDatabase) -> Command {
    let c = db.endpoint();
    let mut cmd = Command::new(pgbench);
    for var in super::LIBPQ_ENV {
        cmd.env_remove(var);
    }
    cmd.arg("-h").arg(&c.host);
    cmd.arg("-p").arg(c.port.to_string());
    cmd.arg("-U").arg(&c.user);
    if let Some(pw) = c.password {
        cmd.env("PGPASSWORD", pw);
    }
    cmd
}

/// `pgbench -i -s SCALE` then `pgbench -M prepared -n -c N -j min(N,2) -T secs`; returns its tps
/// (without the initial connection time, as the lab's clients connect before the clock starts)
/// and its CPU per transaction (getrusage of the waited-for child, connecting included).
pub async fn run(
    pgbench: &Path,
    db: &RunDatabase,
    clients: u32,
    args: &BenchArgs,
) -> anyhow::Result<Sample> {
    let mut init = pgbench_command(pgbench, db);
    init.args(["-i", "-q", "-s", &args.scale.to_string()])
        .arg(db.name());
    let mut run = pgbench_command(pgbench, db);
    run.args([
        "-M",
        "prepared",
        "-n",
        "-c",
        &clients.to_string(),
        "-j",
        &clients.min(2).to_string(),
        "-T",
        &args.duration.as_secs().to_string(),
    ])
    .arg(db.name());
    let (text, cpu) = init_and_run(("pgbench -i", init), ("pgbench", run)).await?;
    let tps =
        parse_tps(&text).ok_or_else(|| anyhow!("no `tps = ` line in pgbench's output:\n{text}"))?;
    let txns = parse_count(&text).ok_or_else(|| {
        anyhow!("no `number of transactions actually processed` line in pgbench's output:\n{text}")
    })?;
    Ok(Sample {
        per_sec: tps,
        cpu_us_per_txn: cpu * 1e6 / txns.max(1) as f64,
    })
}

/// pgbench's `number of transactions actually processed: 12345` (with `/12345` when -t is given).
fn parse_count(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l
            .trim()
            .strip_prefix("number of transactions actually processed: ")?;
        rest.split('/').next()?.trim().parse().ok()
    })
}

/// pgbench's tps line: `tps = 1234.5 (without initial connection time)` (PostgreSQL 14+) or
/// `tps = 1234.5 (excluding connections establishing)` (older).
fn parse_tps(text: &str) -> Option<f64> {
    let tps: Vec<(f64, &str)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("tps = ")?;
            let (num, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((num.parse().ok()?, tail))
        })
        .collect();
    tps.iter()
        .find(|(_, tail)| tail.contains("without") || tail.contains("excluding"))
        .or(tps.first())
        .map(|(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::{parse_count, parse_tps};

    #[test]
    fn reads_pgbench_tps() {
        let new = "latency average = 1.2 ms\ninitial connection time = 3.1 ms\ntps = 6543.210987 (without initial connection time)\n";
        assert_eq!(parse_tps(new), Some(6543.210987));
        let old = "tps = 100.5 (including connections establishing)\ntps = 101.25 (excluding connections establishing)\n";
        assert_eq!(parse_tps(old), Some(101.25));
        assert_eq!(parse_tps("nothing"), None);
    }

    #[test]
    fn reads_pgbench_count() {
        let t = "number of failed transactions: 0 (0.000%)\nnumber of transactions actually processed: 16959\n";
        assert_eq!(parse_count(t), Some(16959));
        assert_eq!(
            parse_count("number of transactions actually processed: 100/100"),
            Some(100)
        );
        assert_eq!(parse_count("tps = 1"), None);
    }
}
