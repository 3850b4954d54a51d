//! `contention bench`: the lab against its engine's benchmark client, the peer ([`Program`]:
//! pgbench on PostgreSQL, sysbench with `bench/tpcb.lua` on MariaDB). The peer's TPC-B-like
//! script and the `tpcb` scenario (the same five statements and draws) run on the same server
//! with the same client counts, alternating, each for `--duration`; the table shows contention's
//! ops/s as a ratio of the peer's tps. The peer works in its own database (`pgbench -i -s SCALE`
//! or `tpcb.lua prepare` before each of its runs, as the lab resets its own before each cell);
//! the lab creates and drops both. What is peer-specific lives in `pgbench` and `sysbench`;
//! [`Program::for_engine`] is the one place that picks.
//! `--footprint` instead runs tpcb in child `contention run`s on this bench's server (10,000
//! clients sharing 50 connections, then 1,000 clients with a connection each) and reports each
//! child's CPU time (`RUSAGE_CHILDREN` around it), peak memory (its `VmHWM`, read while it runs)
//! and the clients' start-up (from its JSON). The figures become a `report::bench::BenchReport`,
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
    self, BenchReport, BenchRow, Comparison, Footprint, FootprintRun, Peer, Round, Sample,
};
use crate::report::document::{self, Kind};
use crate::runner::{self, Settings};
use crate::scenario::{self, Scenario};

pub async fn bench(
    args: BenchArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Exit> {
    let sizes = FootprintSizes::of(&args)?;
    for &n in &args.clients {
        limits::clients(n).map_err(|e| anyhow::anyhow!("--clients {n}: {e}"))?;
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
    if !args.footprint
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
    let program = if args.footprint {
        None
    } else {
        Some(Program::for_engine(engine)?)
    };
    let most = match &sizes {
        Some(f) => f.connections.max(f.own),
        None => args.clients.iter().copied().max().unwrap_or(1),
    };
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
    let (comparison, footprint) = match (&program, sizes) {
        (Some(program), _) => (
            compare(&ws, &scenario, program, &args, &mut say)
                .await
                .map(Some),
            Ok(None),
        ),
        (None, Some(sizes)) => (
            Ok(None),
            // An interrupt stops the child run (wait_output), which then fails.
            match footprint(&ws, sizes, &args, &mut say).await {
                Err(_) if ws.abort.is_cancelled() => Ok(None),
                f => f.map(Some),
            },
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
        &runner::nodes::Targets::one(&ws.db),
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

/// `--footprint`'s sizes: `pooled` clients sharing `connections`, then `own` clients with a
/// connection each.
#[derive(Debug, Clone, Copy)]
struct FootprintSizes {
    pooled: u32,
    connections: u32,
    own: u32,
}

impl FootprintSizes {
    /// None without `--footprint`.
    fn of(args: &BenchArgs) -> anyhow::Result<Option<FootprintSizes>> {
        if !args.footprint {
            return Ok(None);
        }
        let &[pooled, connections, own] = args.footprint_sizes.as_slice() else {
            bail!("--footprint-sizes takes three counts: POOLED,CONNECTIONS,OWN");
        };
        for n in [pooled, own] {
            limits::clients(n).map_err(|e| anyhow::anyhow!("--footprint-sizes {n}: {e}"))?;
        }
        if connections == 0 {
            bail!("--footprint-sizes: the pool needs at least one connection");
        }
        Ok(Some(FootprintSizes {
            pooled,
            connections,
            own,
        }))
    }
}

/// Runs each footprint size in a child `contention run` on the bench's server.
async fn footprint(
    ws: &Workspace,
    sizes: FootprintSizes,
    args: &BenchArgs,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Footprint> {
    let mut runs = Vec::new();
    for (clients, connections) in [(sizes.pooled, Some(sizes.connections)), (sizes.own, None)] {
        say(format!(
            "tpcb with {clients} clients on {} for {}, in a child contention run",
            connections.map_or_else(
                || "a connection each".to_string(),
                |n| format!("{n} connections")
            ),
            humantime::format_duration(args.duration)
        ));
        runs.push(child_run(&ws.db, clients, connections, args).await?);
    }
    let connections = runs.pop().expect("two runs");
    let pooled = runs.pop().expect("two runs");
    Ok(Footprint {
        pooled,
        connections,
    })
}

/// One child `contention run tpcb` (JSON on its standard output) against `db`'s server (the
/// child creates its own database there): its figures, CPU time and peak resident memory.
async fn child_run(
    db: &RunDatabase,
    clients: u32,
    connections: Option<u32>,
    args: &BenchArgs,
) -> anyhow::Result<FootprintRun> {
    let mut cmd = Command::new(std::env::current_exe().context("the lab's own executable")?);
    cmd.args(["run", "tpcb", "--format", "json", "--quiet", "--clients"])
        .arg(clients.to_string())
        .arg("--duration")
        .arg(humantime::format_duration(args.duration).to_string())
        .arg("--seed")
        .arg(args.seed.to_string())
        .arg("--param")
        .arg(format!("scale={}", args.scale));
    if let Some(n) = connections {
        cmd.arg("--connections").arg(n.to_string());
    }
    if args.no_pipeline {
        cmd.arg("--no-pipeline");
    }
    child_database(&mut cmd, db);
    let hwm = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = hwm.clone();
    let (text, (user_s, sys_s)) = tokio::task::spawn_blocking(move || {
        let before = cpu_times(UsageWho::RUSAGE_CHILDREN)?;
        let text = wait_output("contention run", cmd, &mut |pid| {
            if let Some(kib) = peak_rss_kib(pid) {
                seen.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
            }
        })?;
        let after = cpu_times(UsageWho::RUSAGE_CHILDREN)?;
        anyhow::Ok((text, (after.0 - before.0, after.1 - before.1)))
    })
    .await??;
    let doc: report::RunReport = serde_json::from_str(&text)
        .with_context(|| format!("the child contention run's report: {text}"))?;
    let cell = doc
        .cells
        .first()
        .context("the child contention run reported no cell")?;
    Ok(FootprintRun::new(
        clients,
        connections,
        cell.stats.committed,
        cell.ops_per_s,
        user_s,
        sys_s,
        cell.startup_s,
        hwm.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
    ))
}

/// The libpq variables that would point a program at another server than the one it is given:
/// removed from the environment of every program the bench starts.
const LIBPQ_ENV: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGSERVICE",
    "PGOPTIONS",
];

/// Points a child `contention run` at `db`'s server, through its environment (never the
/// command line, which other users can read): the libpq variables and `--db-from-env` on
/// PostgreSQL, `DATABASE_URL` on MariaDB.
fn child_database(cmd: &mut Command, db: &RunDatabase) {
    let e = db.endpoint();
    for var in LIBPQ_ENV.iter().chain(&["DATABASE_URL"]) {
        cmd.env_remove(var);
    }
    match db.kind() {
        EngineKind::Postgres => {
            cmd.env("PGHOST", &e.host)
                .env("PGPORT", e.port.to_string())
                .env("PGUSER", &e.user)
                .env("PGDATABASE", &e.database);
            if let Some(pw) = &e.password {
                cmd.env("PGPASSWORD", pw);
            }
            cmd.arg("--db-from-env");
        }
        EngineKind::Mariadb => {
            use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode as enc};
            let password = e
                .password
                .as_deref()
                .map(|p| format!(":{}", enc(p, NON_ALPHANUMERIC)))
                .unwrap_or_default();
            let user = enc(&e.user, NON_ALPHANUMERIC);
            let url = if e.socket {
                format!(
                    "mysql://{user}{password}@localhost/{}?socket={}",
                    e.database,
                    enc(&e.host, NON_ALPHANUMERIC)
                )
            } else {
                format!(
                    "mysql://{user}{password}@{}:{}/{}",
                    e.host, e.port, e.database
                )
            };
            cmd.env("DATABASE_URL", url);
        }
    }
}

/// A process's peak resident memory in KiB (`VmHWM` in its `/proc` status; none once it has
/// exited).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Runs `init` then `run` (each a name for errors and a command), waiting for each; returns
/// `run`'s standard output and its CPU time (user + sys of the waited-for child, from
/// `RUSAGE_CHILDREN` around it).
async fn init_and_run(
    init: (&'static str, Command),
    run: (&'static str, Command),
) -> anyhow::Result<(String, f64)> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<(String, f64)> {
        let output = |(what, cmd): (&str, Command)| wait_output(what, cmd, &mut |_| {});
        output(init)?;
        let before = cpu_seconds(UsageWho::RUSAGE_CHILDREN)?;
        let text = output(run)?;
        Ok((text, cpu_seconds(UsageWho::RUSAGE_CHILDREN)? - before))
    })
    .await?
}

/// Runs `cmd` (`what` for errors) to its end on this blocking thread, calling `watch` with its
/// process id about every 10 ms while it runs; its standard output. Waited for in steps, so
/// that SIGINT or SIGTERM sent to the lab alone (not to its terminal's process group) ends the
/// child too.
fn wait_output(what: &str, mut cmd: Command, watch: &mut dyn FnMut(u32)) -> anyhow::Result<String> {
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
        watch(child.id());
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if crate::command::workspace::signalled() {
            // Interrupted in turn, so that it cleans up (a child `contention run` drops its
            // database); killed if it has not ended within 5 s.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            for _ in 0..500 {
                if child.try_wait()?.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
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
}
