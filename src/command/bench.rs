//! `contention bench`: the lab against pgbench. pgbench's built-in TPC-B-like script and the
//! `tpcb` scenario (the same five statements and draws) run on the same server with the same
//! client counts, alternating, each for `--duration`; the table shows contention's ops/s as a
//! ratio of pgbench's tps. pgbench works in its own database (`pgbench -i -s SCALE` before each of
//! its runs, as the lab resets its own before each cell); the lab creates and drops both.
//! `--footprint` instead runs tpcb with many clients and reports the lab's own CPU time and peak
//! memory (getrusage of this process). The figures become a `report::bench::BenchReport`,
//! printed as a table, Markdown, CSV or JSON.
//!
//! It measures; it must not change what the runner does nor format tables itself.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use nix::sys::resource::{UsageWho, getrusage};

use super::Exit;
use super::workspace::Workspace;
use crate::cli::BenchArgs;
use crate::engine::{RunDatabase, find_bindir};
use crate::isolation::Isolation;
use crate::report;
use crate::report::bench::{self, BenchReport, BenchRow, Comparison, Footprint, Round, Sample};
use crate::report::document::{self, Kind};
use crate::runner::{self, Settings};
use crate::scenario::{self, Scenario};

pub async fn bench(
    args: BenchArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Exit> {
    if args.clients.contains(&0) || args.footprint == Some(0) {
        bail!("--clients and --footprint must be at least 1");
    }
    if args.rounds == 0 || args.scale == 0 {
        bail!("--rounds and --scale must be at least 1");
    }
    if args.footprint.is_none()
        && (args.duration.subsec_nanos() != 0 || args.duration < Duration::from_secs(1))
    {
        bail!(
            "--duration must be whole seconds, as pgbench's -T takes them (got {})",
            humantime::format_duration(args.duration)
        );
    }
    let scenario = scenario::load_on(
        "tpcb",
        &[("scale".into(), args.scale.to_string())],
        args.db.engine()?,
    )?;
    let quiet = args.quiet;
    let mut say = |msg: String| {
        if !quiet {
            let _ = writeln!(err, "contention: {msg}");
        }
    };
    let pgbench = if args.footprint.is_none() {
        Some(find_pgbench()?)
    } else {
        None
    };
    let most = args
        .footprint
        .unwrap_or_else(|| args.clients.iter().copied().max().unwrap_or(1));
    let ws = Workspace::open(&args.db, args.db.engine()?, "tpcb", most, &mut say).await?;
    let (comparison, footprint) = match (&pgbench, args.footprint) {
        (Some(pgbench), _) => (
            compare(&ws, &scenario, pgbench, &args, &mut say)
                .await
                .map(Some),
            Ok(None),
        ),
        (None, Some(clients)) => (
            Ok(None),
            footprint(&ws, &scenario, clients, &args, &mut say)
                .await
                .map(Some),
        ),
        (None, None) => unreachable!("pgbench is found unless --footprint"),
    };
    let interrupted = ws.abort.is_cancelled();
    let server = ws.info.clone();
    ws.close(&mut say).await?;
    let report = BenchReport {
        kind: Kind::Bench,
        version: document::VERSION,
        tool: document::tool(),
        server,
        scenario: scenario.name.clone(),
        scale: args.scale,
        duration_s: args.duration.as_secs_f64(),
        seed: args.seed,
        pipeline: !args.no_pipeline,
        comparison: comparison?,
        footprint: footprint?,
        interrupted,
    };
    if let Some(path) = &args.output {
        report::write_files(path, &report, |w| bench::render_csv(&report, w))?;
    }
    bench::render(&report, args.format, out)?;
    Ok(if interrupted {
        Exit::Interrupted
    } else {
        Exit::Ok
    })
}

/// Alternates pgbench and the lab at each client count (pgbench first in odd rounds, the lab
/// first in even ones, so that a drift of the machine's speed does not favour one side); returns
/// the rounds of each client count with their figures.
async fn compare(
    ws: &Workspace,
    scenario: &Scenario,
    pgbench: &std::path::Path,
    args: &BenchArgs,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Comparison> {
    let pg_db = ws.server.create_database("pgbench").await?;
    say(format!("pgbench database {}", pg_db.name()));
    let rows = async {
        // An interrupt ends the table with the rounds done: a run it cut short is left out.
        let mut rows = Vec::new();
        for &clients in &args.clients {
            let mut rounds = Vec::new();
            'rounds: for round in 1..=args.rounds {
                let mut pair = (None, None);
                for lab_turn in [round % 2 == 0, round % 2 == 1] {
                    if ws.abort.is_cancelled() {
                        break 'rounds;
                    }
                    if lab_turn {
                        let (s, _, interrupted) = run_lab(ws, scenario, clients, args).await?;
                        if interrupted {
                            break 'rounds;
                        }
                        say(format!(
                            "{clients} clients, round {round}: contention {:.0} ops/s, {:.0} µs CPU per op",
                            s.per_sec, s.cpu_us_per_txn
                        ));
                        pair.1 = Some(s);
                    } else {
                        // Ctrl-C on a terminal reaches pgbench too, which then fails.
                        let s = match run_pgbench(pgbench, &pg_db, clients, args).await {
                            Err(_) if ws.abort.is_cancelled() => break 'rounds,
                            s => s?,
                        };
                        say(format!(
                            "{clients} clients, round {round}: pgbench {:.0} tps, {:.0} µs CPU per transaction",
                            s.per_sec, s.cpu_us_per_txn
                        ));
                        pair.0 = Some(s);
                    }
                }
                if let (Some(pgbench), Some(contention)) = pair {
                    rounds.push(Round {
                        pgbench,
                        contention,
                    });
                }
            }
            if !rounds.is_empty() {
                rows.push(BenchRow::new(clients, rounds));
            }
            if ws.abort.is_cancelled() {
                break;
            }
        }
        anyhow::Ok(rows)
    }
    .await;
    let dropped = ws.server.drop_database(&pg_db).await;
    let rows = rows?;
    dropped?;
    Ok(Comparison {
        rounds: args.rounds,
        rows,
    })
}

/// CPU time (user, sys) in seconds of this process or of its waited-for children.
fn cpu_times(who: UsageWho) -> anyhow::Result<(f64, f64)> {
    let u = getrusage(who)?;
    let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    Ok((secs(u.user_time()), secs(u.system_time())))
}

/// CPU time (user + sys) in seconds of this process or of its waited-for children.
fn cpu_seconds(who: UsageWho) -> anyhow::Result<f64> {
    cpu_times(who).map(|(user, sys)| user + sys)
}

/// One lab run of tpcb at rc: its committed ops/s and this process's CPU per committed op
/// (reset and connecting included), the committed count, and whether an interrupt cut it short.
async fn run_lab(
    ws: &Workspace,
    scenario: &Scenario,
    clients: u32,
    args: &BenchArgs,
) -> anyhow::Result<(Sample, u64, bool)> {
    let strategy = scenario.strategies.get("tpcb").expect("tpcb strategy");
    let settings = Settings {
        clients,
        duration: args.duration,
        operations: None,
        think: Duration::ZERO,
        max_tries: scenario.run.max_tries,
        seed: args.seed,
        connections: None,
        pipeline: !args.no_pipeline,
        live: None,
    };
    let before = cpu_seconds(UsageWho::RUSAGE_SELF)?;
    let outcome = runner::run_cell(
        &ws.db,
        scenario,
        strategy,
        Isolation::Rc,
        &settings,
        &ws.abort,
    )
    .await
    .context("tpcb @ rc")?;
    let cpu = cpu_seconds(UsageWho::RUSAGE_SELF)? - before;
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    let committed = outcome.stats.committed;
    Ok((
        Sample {
            per_sec: committed as f64 / secs,
            cpu_us_per_txn: cpu * 1e6 / committed.max(1) as f64,
        },
        committed,
        outcome.interrupted,
    ))
}

/// Runs tpcb with many clients and reports the lab's CPU and peak memory.
async fn footprint(
    ws: &Workspace,
    scenario: &Scenario,
    clients: u32,
    args: &BenchArgs,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Footprint> {
    say(format!(
        "tpcb with {clients} clients for {}",
        humantime::format_duration(args.duration)
    ));
    let before = cpu_times(UsageWho::RUSAGE_SELF)?;
    let (sample, committed, _) = run_lab(ws, scenario, clients, args).await?;
    let after = cpu_times(UsageWho::RUSAGE_SELF)?;
    // ru_maxrss is in KiB on Linux.
    let rss_mib = getrusage(UsageWho::RUSAGE_SELF)?.max_rss() as f64 / 1024.0;
    Ok(Footprint::new(
        clients,
        committed,
        sample.per_sec,
        after.0 - before.0,
        after.1 - before.1,
        rss_mib,
    ))
}

/// pgbench next to the server binaries, else on PATH.
fn find_pgbench() -> anyhow::Result<PathBuf> {
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
fn pgbench_command(pgbench: &std::path::Path, db: &RunDatabase) -> Command {
    let c = db.endpoint();
    let mut cmd = Command::new(pgbench);
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGSERVICE",
        "PGOPTIONS",
    ] {
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
async fn run_pgbench(
    pgbench: &std::path::Path,
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
    let (text, cpu) = tokio::task::spawn_blocking(move || -> anyhow::Result<(String, f64)> {
        let output = |what: &str, cmd: &mut Command| -> anyhow::Result<String> {
            let o = cmd.output().with_context(|| format!("cannot run {what}"))?;
            if !o.status.success() {
                bail!(
                    "{what} failed ({}):\n{}{}",
                    o.status,
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        };
        output("pgbench -i", &mut init)?;
        let before = cpu_seconds(UsageWho::RUSAGE_CHILDREN)?;
        let text = output("pgbench", &mut run)?;
        Ok((text, cpu_seconds(UsageWho::RUSAGE_CHILDREN)? - before))
    })
    .await??;
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
