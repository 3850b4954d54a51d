//! `contention bench`: the lab against its engine's benchmark client, the peer ([`Program`]:
//! pgbench on PostgreSQL, sysbench with `bench/tpcb.lua` on MariaDB). The peer's TPC-B-like
//! script and the `tpcb` scenario (the same five statements and draws) run on the same server
//! with the same client counts, alternating, each for `--duration`; the table shows contention's
//! ops/s as a ratio of the peer's tps. The peer works in its own database (`pgbench -i -s SCALE`
//! or `tpcb.lua prepare` before each of its runs, as the lab resets its own before each cell);
//! the lab creates and drops both. What is peer-specific lives in `pgbench` and `sysbench`;
//! [`Program::for_engine`] is the one place that picks.
//! `--footprint` instead runs tpcb with many clients and reports the lab's own CPU time and peak
//! memory (getrusage of this process). The figures become a `report::bench::BenchReport`,
//! printed as a table, Markdown, CSV or JSON.
//!
//! It measures; it must not change what the runner does nor format tables itself.

mod pgbench;
mod sysbench;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::resource::{UsageWho, getrusage};

use super::Exit;
use super::workspace::Workspace;
use crate::cli::BenchArgs;
use crate::engine::{EngineKind, RunDatabase};
use crate::isolation::Isolation;
use crate::limits;
use crate::report;
use crate::report::bench::{
    self, BenchReport, BenchRow, Comparison, Footprint, Peer, Round, Sample,
};
use crate::report::document::{self, Kind};
use crate::runner::{self, Settings};
use crate::scenario::{self, Scenario};

pub async fn bench(
    args: BenchArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Exit> {
    for &n in args.clients.iter().chain(&args.footprint) {
        limits::clients(n).map_err(|e| {
            let flag = if args.footprint.is_some() {
                "footprint"
            } else {
                "clients"
            };
            anyhow::anyhow!("--{flag} {n}: {e}")
        })?;
    }
    limits::duration(args.duration).map_err(|e| {
        anyhow::anyhow!(
            "--duration {}: {e}",
            humantime::format_duration(args.duration)
        )
    })?;
    if args.rounds == 0 || args.scale == 0 {
        bail!("--rounds and --scale must be at least 1");
    }
    let engine = args.db.engine()?;
    let peer = Program::peer_of(engine);
    if args.footprint.is_none()
        && (args.duration.subsec_nanos() != 0 || args.duration < Duration::from_secs(1))
    {
        bail!(
            "--duration must be whole seconds, as {}'s {} takes them (got {})",
            peer.name(),
            match peer {
                Peer::Pgbench => "-T",
                Peer::Sysbench => "--time",
            },
            humantime::format_duration(args.duration)
        );
    }
    if args.no_pipeline && engine == EngineKind::Mariadb {
        bail!(
            "--no-pipeline means nothing on MariaDB: the MySQL protocol has no pipelining, so the \
             lab already sends every statement on its own there, BEGIN and COMMIT too (7 round \
             trips per transaction, as sysbench)"
        );
    }
    let scenario = scenario::load_on("tpcb", &[("scale".into(), args.scale.to_string())], engine)?;
    let quiet = args.quiet;
    let mut say = |msg: String| {
        if !quiet {
            let _ = writeln!(err, "contention: {msg}");
        }
    };
    let program = if args.footprint.is_none() {
        Some(Program::for_engine(engine)?)
    } else {
        None
    };
    let most = args
        .footprint
        .unwrap_or_else(|| args.clients.iter().copied().max().unwrap_or(1));
    let ws = Workspace::open(&args.db, engine, "tpcb", most, &mut say).await?;
    // Each of the lab's clients has its own connection (as pgbench's): a --db server must take
    // the most of them, refused before the first round starts.
    if let Some(available) = limits::available_connections(&ws.info)
        && most > available
    {
        let max = ws
            .info
            .settings
            .get("max_connections")
            .cloned()
            .unwrap_or_default();
        if let Err(closing) = ws.close(&mut say).await {
            say(format!("{closing:#}"));
        }
        bail!(
            "{most} clients need {most} connections, but the server takes {available} from this \
             lab (max_connections {}, minus reserved connections and {} of the lab's own): use \
             --clients {available} or fewer, or raise the server's max_connections",
            max,
            limits::LAB_CONNECTIONS
        );
    }
    let (comparison, footprint) = match (&program, args.footprint) {
        (Some(program), _) => (
            compare(&ws, &scenario, program, &args, &mut say)
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
        (None, None) => unreachable!("the peer is found unless --footprint"),
    };
    let interrupted = ws.abort.is_cancelled();
    let server = ws.info.clone();
    ws.close(&mut say).await?;
    let report = BenchReport {
        kind: Kind::Bench,
        version: document::VERSION,
        tool: document::tool(),
        server,
        peer,
        scenario: scenario.name.clone(),
        scale: args.scale,
        duration_s: args.duration.as_secs_f64(),
        seed: args.seed,
        // MySQL has no pipelining: the lab's framing is pgbench's there.
        pipeline: !args.no_pipeline && engine == EngineKind::Postgres,
        comparison: comparison?,
        footprint: footprint?,
        interrupted,
    };
    if let Some(path) = &args.output {
        report::write_files(path, &report, |w| bench::render_csv(&report, w))?;
    }
    bench::render(&report, args.format, out)?;
    Ok(if interrupted {
        Exit::signalled()
    } else {
        Exit::Ok
    })
}

/// The peer program of each engine, ready to run: the one place that knows which engine has
/// which benchmark client.
enum Program {
    Pgbench(PathBuf),
    Sysbench(sysbench::Sysbench),
}

impl Program {
    fn peer_of(engine: EngineKind) -> Peer {
        match engine {
            EngineKind::Postgres => Peer::Pgbench,
            EngineKind::Mariadb => Peer::Sysbench,
        }
    }

    /// Finds the engine's peer program (and writes out sysbench's script).
    fn for_engine(engine: EngineKind) -> anyhow::Result<Program> {
        Ok(match Program::peer_of(engine) {
            Peer::Pgbench => Program::Pgbench(pgbench::find()?),
            Peer::Sysbench => Program::Sysbench(sysbench::Sysbench::find()?),
        })
    }

    fn peer(&self) -> Peer {
        match self {
            Program::Pgbench(_) => Peer::Pgbench,
            Program::Sysbench(_) => Peer::Sysbench,
        }
    }

    /// Rebuilds the peer's tables in `db` at `--scale`, then runs its transaction with
    /// `clients` clients for `--duration`: its tps and CPU per transaction.
    async fn run(
        &self,
        db: &RunDatabase,
        clients: u32,
        args: &BenchArgs,
    ) -> anyhow::Result<Sample> {
        match self {
            Program::Pgbench(p) => pgbench::run(p, db, clients, args).await,
            Program::Sysbench(s) => s.run(db, clients, args).await,
        }
    }
}

/// Alternates the peer and the lab at each client count (the peer first in odd rounds, the lab
/// first in even ones, so that a drift of the machine's speed does not favour one side); returns
/// the rounds of each client count with their figures.
async fn compare(
    ws: &Workspace,
    scenario: &Scenario,
    program: &Program,
    args: &BenchArgs,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Comparison> {
    let name = program.peer().name();
    let peer_db = ws.server.create_database(name).await?;
    say(format!("{name} database {}", peer_db.name()));
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
                        // An interrupt stops the peer (init_and_run), which then fails.
                        let s = match program.run(&peer_db, clients, args).await {
                            Err(_) if ws.abort.is_cancelled() => break 'rounds,
                            s => s?,
                        };
                        say(format!(
                            "{clients} clients, round {round}: {name} {:.0} tps, {:.0} µs CPU per transaction",
                            s.per_sec, s.cpu_us_per_txn
                        ));
                        pair.0 = Some(s);
                    }
                }
                if let (Some(peer), Some(contention)) = pair {
                    rounds.push(Round { peer, contention });
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
    let dropped = ws.server.drop_database(&peer_db).await;
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
        timeout: None,
        think: Duration::ZERO,
        max_tries: scenario.run.max_tries,
        seed: args.seed,
        connections: None,
        pipeline: !args.no_pipeline,
        live: None,
        history: None,
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

/// Runs `init` then `run` (each a name for errors and a command), waiting for each; returns
/// `run`'s standard output and its CPU time (user + sys of the waited-for child, from
/// `RUSAGE_CHILDREN` around it).
async fn init_and_run(
    init: (&'static str, Command),
    run: (&'static str, Command),
) -> anyhow::Result<(String, f64)> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<(String, f64)> {
        // Waited for in steps, so that SIGINT or SIGTERM sent to the lab alone (not to its
        // terminal's process group) ends the peer too, within about 10 ms.
        let output = |(what, mut cmd): (&str, Command)| -> anyhow::Result<String> {
            let mut child = cmd
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {what}"))?;
            let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
                std::thread::spawn(move || {
                    let mut text = Vec::new();
                    if let Some(mut p) = pipe {
                        let _ = p.read_to_end(&mut text);
                    }
                    text
                })
            };
            let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
            let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
            let status = loop {
                if let Some(status) = child.try_wait()? {
                    break status;
                }
                if crate::command::workspace::signalled() {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("{what} stopped: the lab was interrupted");
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            };
            let o = std::process::Output {
                status,
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            };
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
        output(init)?;
        let before = cpu_seconds(UsageWho::RUSAGE_CHILDREN)?;
        let text = output(run)?;
        Ok((text, cpu_seconds(UsageWho::RUSAGE_CHILDREN)? - before))
    })
    .await?
}
