//! The command line: subcommands, flags and their help, parsed by clap. It only describes and
//! parses arguments; it must not run anything.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::isolation::Isolation;
use crate::report::Format;

const EXAMPLES: &str = "\
Examples:
  contention run ticketmaster --isolation rc            the last ticket sells twice
  contention run ticketmaster --isolation all --strategy all
  contention run bank-transfer --clients 32 --duration 5s --seed 7 --format json
  contention run ./my-scenario.toml --param seats=1
  contention run write-skew --isolation all --expect declared
  contention run ticketmaster --engine mariadb --isolation rr --strategy naive
                                                         MariaDB's rr loses the update
  contention run ticketmaster --engine postgres,mariadb --isolation rr   side by side
  contention run ticketmaster --db mysql://root@db.example:3306/
  contention run two-phase-commit --strategy all          three private PostgreSQL servers
  contention run distributed-lock --node locks=redis://127.0.0.1:6379
                                                         its lock service on an existing Redis
  contention run saga --strategy saga --param restart_every=50
                                                         bank_b's server restarted more often
  contention replay ticketmaster --isolation rc          the oversell, step by step
  contention replay write-skew --isolation serializable --schedule \"a1 b1 a2 b2 a3 b3\"
  contention anomalies                                   the classic anomaly table
  contention anomalies --engine all                      one column per engine and level
  contention anomalies --isolation rr --only lost-update --explain
  contention list
  contention show write-skew
  contention validate ./my-scenario.toml

Exit codes: 0 ran and every expectation held, 1 an expectation failed,
2 could not run (bad input, no database), 130 interrupted (SIGINT), 143 terminated (SIGTERM).";

#[derive(Debug, Parser)]
#[command(
    name = "contention",
    version,
    about = "A lab for contention and transactions against real PostgreSQL and MariaDB",
    long_about = "Runs scenario files (the last-ticket race, bank transfers, write skew, ABA, deadlocks) \
with many concurrent clients against a real PostgreSQL or MariaDB, at each isolation level and with \
each concurrency-control strategy, and tabulates anomalies next to throughput, latency, aborts and retries.\n\n\
Without --db it starts a private throw-away server (PostgreSQL, or MariaDB with --engine mariadb) \
from the local binaries and removes it afterwards.",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: every chosen strategy at every chosen isolation level.
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
    /// Replay a schedule: sessions run their steps in an exact order, step by step, with waits,
    /// resumptions and aborts shown on a timeline.
    #[command(after_help = REPLAY_EXAMPLES)]
    Replay(ReplayArgs),
    /// Run the classic anomaly catalogue (G0 ... G2) at each isolation level against the server
    /// and print which anomalies it prevents.
    #[command(after_help = ANOMALIES_EXAMPLES)]
    Anomalies(AnomaliesArgs),
    /// Sweep a parameter or the client count: every strategy and level at every value, with
    /// repetitions, as a table, JSON/CSV files and a plot.
    #[command(after_help = SWEEP_EXAMPLES)]
    Sweep(SweepArgs),
    /// Compare two result files (run reports or sweeps): throughput ratio, aborts and anomalies
    /// before and after, cell by cell.
    #[command(
        after_help = "Examples:\n  contention run write-skew --isolation all --output before.json\n  contention run write-skew --isolation all --output after.json\n  contention compare before.json after.json"
    )]
    Compare(CompareArgs),
    /// Benchmark the lab against pgbench (sysbench on MariaDB): pgbench's TPC-B-like script and
    /// the tpcb scenario on the same server with the same clients, alternating, and contention's
    /// ops/s as a ratio of the peer's tps; or, with --footprint, the lab's own CPU and memory at many clients.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// List the built-in scenarios.
    List,
    /// Show a scenario: its story, parameters, strategies with their SQL, invariants, expectations.
    Show(ShowArgs),
    /// Write a commented starter scenario (a shared stock, three strategies, two invariants)
    /// that validates and runs as it is: the quickest start on a scenario of your own.
    #[command(
        after_help = "Examples:\n  contention new stock                  writes ./stock.toml\n  contention new scenarios/my-shop.toml\n  contention run stock.toml --isolation all --expect declared\n\nAn existing file is never overwritten (exit 2)."
    )]
    New(NewArgs),
    /// Check scenario files without running them.
    Validate(ValidateArgs),
    /// Turn JSON results (runs, sweeps, replays) into one self-contained HTML page, or a
    /// sweep into a plot.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A built-in scenario name (see `contention list`) or a path to a .toml file.
    pub scenario: String,

    /// Isolation levels: rc, rr, serializable, ru, comma-separated, or all
    /// [default: the scenario's, usually rc].
    #[arg(short, long, value_parser = parse_levels)]
    pub isolation: Option<Levels>,

    /// Strategies, comma-separated, or all.
    #[arg(short, long, default_value = "all")]
    pub strategy: String,

    #[command(flatten)]
    pub load: LoadArgs,

    /// Check every cell: no-anomalies, anomalies, declared (the scenario's documented
    /// expectations), aborts:CLASS, no-aborts:CLASS, anomaly:NAME (repeatable). Exit 1 if one fails.
    #[arg(short, long)]
    pub expect: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: Format,

    /// Also write the report as JSON to this file, and as CSV next to it (.csv).
    #[arg(long, value_name = "FILE.json")]
    pub output: Option<std::path::PathBuf>,

    /// No progress messages on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub db: DbArgs,
}

const REPLAY_EXAMPLES: &str = "\
Examples:
  contention replay ticketmaster --isolation rc            two buyers, one seat, the oversell
  contention replay ticketmaster --isolation all --strategy naive,for-update
  contention replay write-skew --isolation serializable --schedule \"a1 b1 a2 b2 a3 b3\"
  contention replay deadlock --format markdown
  contention replay two-phase-commit                       a coordinator crash, and the recovery
  contention replay ticketmaster --engine postgres,mariadb --isolation rr --strategy naive
                                                           40001 on one, a lost update on the other

A schedule is a scenario's named schedule or tokens: a2 or a.2 = session a's step 2 (one past
the last step is the commit), a.read = the step named read, a.commit = the commit. A token runs
the session up to that step; a step that waits for a lock is shown waiting and the schedule
moves on. What is left after the schedule runs session by session; retryable aborts are then
retried. Exit codes: 0 replayed, 2 could not run, 130 interrupted (SIGINT), 143 terminated (SIGTERM).";

const SWEEP_EXAMPLES: &str = "\
Examples:
  contention sweep ticketmaster --strategy conditional,for-update,version,serializable \\
      --vary clients=1,2,4,8,16,32,64 --duration 3s --plot out/ticketmaster.svg
  contention sweep bank-transfer --vary hot-accounts=2,4,16,64 --repeat 3 --output sweep.json
  contention sweep ticketmaster --vary seats=1,10,100 --format csv
  contention sweep ticketmaster --engine postgres,mariadb --vary clients=2,8,32 --isolation rr

--vary takes `clients` or any parameter of the scenario (`-` and `_` are the same). Each
repetition uses the next seed. --output FILE.json also writes FILE.csv.
Exit codes: 0 ran, 2 could not run, 130 interrupted (SIGINT), 143 terminated (SIGTERM) (partial results are printed).";

const ANOMALIES_EXAMPLES: &str = "\
Examples:
  contention anomalies                                     every anomaly at rc, rr, serializable
  contention anomalies --isolation rr --only lost-update --explain
  contention anomalies --isolation rr --only P4 --expect prevented     exit 1 if the server allows it
  contention anomalies --engine postgres,mariadb                 Hermitage-style, both engines
  contention anomalies --engine all --only P4 --isolation rr --expect postgres:prevented --expect mariadb:possible

Exit codes: 0 ran (and --expect held), 1 an --expect failed, 2 could not run, 130 interrupted (SIGINT), 143 terminated (SIGTERM).";

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A built-in scenario name, a path to a .toml file, or a PostgreSQL isolation-tester
    /// .spec file (every permutation replayed).
    pub scenario: String,

    /// With a .spec file: compare the server's behaviour with this recorded isolation-tester
    /// output, permutation by permutation (waits, errors, rows); exit 1 on a difference.
    #[arg(long, value_name = "FILE.out")]
    pub expected: Option<std::path::PathBuf>,

    /// With a .spec file: write what the server did in the isolation tester's output format,
    /// to make or refresh a FILE.out for --expected.
    #[arg(long, value_name = "FILE.out")]
    pub record: Option<std::path::PathBuf>,

    /// Isolation levels, comma-separated, or all: one replay per level.
    #[arg(short, long, value_parser = parse_levels, default_value = "rc")]
    pub isolation: Levels,

    /// Strategies, comma-separated, or all [default: the schedule's, else the first].
    #[arg(short, long)]
    pub strategy: Option<String>,

    /// A schedule name of the scenario, or tokens like "a1 b1 a2 b2" [default: its first].
    #[arg(long)]
    pub schedule: Option<String>,

    /// Seed for draws the sessions do not bind.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// For the classroom: wait for Enter before each step of the schedule and redraw the
    /// timeline as it grows (stdin must be a terminal).
    #[arg(long)]
    pub step: bool,
    /// Record each replay's history in Elle's JSON-lines format (one process per session), one
    /// file per replay: h.jsonl -> h.STRATEGY.LEVEL.ENGINE.jsonl. The scenario must declare
    /// `[history] model`.
    #[arg(long, value_name = "FILE.jsonl")]
    pub history: Option<std::path::PathBuf>,

    /// Override a scenario parameter, e.g. --param seats=1 (repeatable).
    #[arg(short, long = "param", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,

    #[command(flatten)]
    pub common: ReplayCommon,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier result file (JSON from --output or --format json).
    pub before: String,
    /// The later result file.
    pub after: String,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// A built-in scenario name or a path to a .toml file.
    pub scenario: String,

    /// What to vary: clients=1,2,4 or PARAM=v1,v2,...
    #[arg(long, value_name = "NAME=V1,V2,...")]
    pub vary: String,

    /// Isolation levels, comma-separated, or all [default: the scenario's].
    #[arg(short, long, value_parser = parse_levels)]
    pub isolation: Option<Levels>,

    /// Strategies, comma-separated, or all.
    #[arg(short, long, default_value = "all")]
    pub strategy: String,

    /// Runs per point (each with the next seed): mean, min and max are reported.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,

    #[command(flatten)]
    pub load: LoadArgs,

    /// Write the sweep as JSON to this file, and as CSV next to it (.csv).
    #[arg(long, value_name = "FILE.json")]
    pub output: Option<std::path::PathBuf>,

    /// Draw throughput, p99 latency, abort rate and anomaly rate against the varied value:
    /// SVG or PNG by the file's extension.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub plot: Option<std::path::PathBuf>,

    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: Format,

    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub db: DbArgs,
}

/// What replays and the anomaly table share: step timeout, output, server.
#[derive(Debug, Args)]
pub struct ReplayCommon {
    /// A step that neither finishes nor waits for a lock within this is an error.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub step_timeout: Duration,

    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    pub format: TimelineFormat,

    /// Colour: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,

    /// No progress messages on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    /// Isolation levels, comma-separated, or all.
    #[arg(short, long, value_parser = parse_levels, default_value = "all")]
    pub isolation: Levels,

    /// Only these anomalies, by id or name (G1a, lost-update, ...), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,

    /// Also print each replay's timeline and the anomaly's definition.
    #[arg(long)]
    pub explain: bool,

    /// Exit 1 unless every selected anomaly has this outcome at every selected level:
    /// prevented or possible, for every engine, or per engine (`mariadb:possible`); repeatable.
    #[arg(short, long, value_name = "[ENGINE:]prevented|possible")]
    pub expect: Vec<String>,

    #[command(flatten)]
    pub common: ReplayCommon,
}

const BENCH_EXAMPLES: &str = "\
Examples:
  contention bench                                  1, 8 and 32 clients, 3 rounds of 3 s each
  contention bench --clients 8,32 --rounds 5 --duration 10s
  contention bench --no-pipeline                    the lab in pgbench's round trips, one per statement
  contention bench --footprint                      the lab's CPU, peak memory and start-up: 10,000 clients
                                                    on 50 connections, 1,000 on their own
  contention bench --format json --output bench.json   every figure as JSON (and bench.csv)
  contention bench --db postgres://user@host/postgres
  contention bench --engine mariadb                 against sysbench (bench/tpcb.lua) on a private MariaDB

pgbench is looked for next to the server binaries, then on PATH; sysbench on PATH. Exit codes: 0 ran, 2 could not
run, 130 interrupted (SIGINT), 143 terminated (SIGTERM).";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Client counts, comma-separated: each is run by pgbench and by the lab.
    #[arg(short, long, value_delimiter = ',', default_value = "1,8,32")]
    pub clients: Vec<u32>,

    /// How long each run lasts (whole seconds for pgbench).
    #[arg(short, long, value_parser = humantime::parse_duration, default_value = "3s")]
    pub duration: Duration,

    /// Rounds per client count, each a pgbench run and a lab run back to back (pgbench first in
    /// odd rounds, the lab first in even ones); the table shows mean throughput and the median of
    /// the rounds' ratios, which a noisy machine moves less than either side's throughput.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,

    /// pgbench's scale factor (branches; 100000 accounts each), for both sides.
    #[arg(long, default_value_t = 1)]
    pub scale: u32,

    /// Instead: the lab's own footprint. tpcb runs for --duration in a child `contention run`,
    /// with 10,000 clients sharing 50 connections, then with 1,000 clients on a connection each;
    /// each child's peak memory (max RSS), CPU time (user + sys) and the clients' start-up.
    #[arg(long)]
    pub footprint: bool,

    /// --footprint's sizes: pooled clients, their connections, clients with their own (a test
    /// runs them small).
    #[arg(
        long,
        hide = true,
        value_delimiter = ',',
        num_args = 1,
        default_value = "10000,50,1000"
    )]
    pub footprint_sizes: Vec<u32>,

    /// Seed for the lab's draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// The lab sends every statement in its own round trip, BEGIN and COMMIT too, as pgbench
    /// does (by default they go with the neighbouring statement: see `run --help`).
    #[arg(long)]
    pub no_pipeline: bool,

    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: Format,

    /// Also write the results as JSON to this file, and as CSV next to it (.csv).
    #[arg(long, value_name = "FILE.json")]
    pub output: Option<std::path::PathBuf>,

    /// No progress messages on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimelineFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour stdout.
    pub fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

/// How hard and how long each cell runs: shared by `run` and `sweep`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent clients [default: the scenario's].
    #[arg(short, long)]
    pub clients: Option<u32>,

    /// How long each cell runs, e.g. 500ms, 5s (ignored with --operations)
    /// [default: the scenario's].
    #[arg(short, long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Total operations per cell, shared by all clients, instead of a duration. Such a cell has
    /// no deadline unless --timeout gives one.
    #[arg(short, long)]
    pub operations: Option<u64>,

    /// A deadline for an --operations cell: past it, what is in flight is cut as at the end of
    /// a --duration cell (for CI: a statement that never returns cannot hold the run).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Option<std::time::Duration>,

    /// Seed for every random draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Think time at the scenario's `think = true` steps, e.g. 0ms, 20ms (widens race windows)
    /// [default: the scenario's].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub think: Option<Duration>,

    /// Attempts per operation before giving up (40001, 40P01 and conflicts are retried).
    #[arg(long)]
    pub max_tries: Option<u32>,

    /// Share a pool of N connections among the clients instead of one connection each.
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,

    /// Send every statement in its own round trip, BEGIN and COMMIT too. By default BEGIN goes
    /// with a transaction's first statement and COMMIT with its last when nothing (think time, a
    /// condition) comes in between: the server sees the same statements in the same order.
    #[arg(long)]
    pub no_pipeline: bool,

    /// Override a scenario parameter, e.g. --param seats=1 (repeatable).
    #[arg(short, long = "param", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,

    /// Record each cell's history in Elle's JSON-lines format, for `adya check` or `elle-cli`:
    /// one file per cell, named from this one: h.jsonl -> h.STRATEGY.LEVEL.ENGINE.jsonl (a
    /// sweep adds its point: h.clients=8.STRATEGY.LEVEL.ENGINE.jsonl). The scenario must
    /// declare `[history] model` (list-append and rw-register do).
    #[arg(long, value_name = "FILE.jsonl")]
    pub history: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// The engine: postgres (the default), mariadb (MariaDB/MySQL), several comma-separated
    /// (side by side, each on its own private server) or all. With --db it follows the URL's
    /// scheme (postgres://, mysql://, mariadb://) or the docker: image's name.
    #[arg(long, value_name = "ENGINE", value_parser = parse_engines)]
    pub engine: Option<Engines>,

    /// Use this server (a postgres://, mysql:// or mariadb:// URL, or a libpq key=value
    /// string); the run creates its own database there and drops it afterwards. docker:IMAGE
    /// (e.g. docker:postgres:15, docker:mariadb:10.11) starts the image in a Docker container
    /// (the engine follows the image's name) and removes it afterwards. Without it: a private
    /// server started from the local binaries.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "URL|docker:IMAGE",
        hide_env_values = true
    )]
    pub db: Option<String>,

    /// A session setting for every connection the scenario's sessions open, after the
    /// scenario's own: `--set innodb_snapshot_isolation=ON` (MariaDB's second REPEATABLE READ),
    /// `--set lock_timeout=1s` (PostgreSQL). Repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,

    /// Points one node of a scenario that spans several servers (`[node.NAME]`) at an existing
    /// server: `--node bank_b=postgres://host/db`, `--node locks=redis://host:6379`. Nodes
    /// without one get a private server each (a node that a `restart` fault restarts must).
    /// Repeatable. (A separate flag, not `--db NAME=URL`: a libpq connection string is
    /// `key=value` too.)
    #[arg(long = "node", value_name = "NAME=URL", value_parser = parse_key_value)]
    pub node: Vec<(String, String)>,

    /// Use the libpq variables PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD.
    #[arg(long, conflicts_with = "db")]
    pub db_from_env: bool,

    /// Keep the run's database afterwards (only with a --db URL or --db-from-env).
    #[arg(long)]
    pub keep: bool,
}

/// `--engine`: one or several engines.
#[derive(Debug, Clone)]
pub struct Engines(pub Vec<crate::engine::EngineKind>);

impl DbArgs {
    /// The engines to run on: `--engine`, else the `--db` URL's scheme (or `docker:` image's
    /// name), else PostgreSQL.
    pub fn engines(&self) -> anyhow::Result<Vec<crate::engine::EngineKind>> {
        use crate::engine::{EngineKind, docker};
        if let Some(db) = &self.db
            && let Some(spec) = docker::spec(db)
        {
            let asked = match self.engine.as_ref().map(|e| e.0.as_slice()) {
                None => None,
                Some([one]) => Some(*one),
                Some(_) => anyhow::bail!(
                    "--engine: several engines run side by side on private servers; --db names one server"
                ),
            };
            return docker::resolve(spec, asked)
                .map(|(_, engine)| vec![engine])
                .map_err(|e| anyhow::anyhow!("--db {db}: {e}"));
        }
        let of_url = self.db.as_deref().and_then(EngineKind::of_url);
        match (&self.engine, of_url) {
            (Some(e), _) if e.0.len() > 1 && (self.db.is_some() || self.db_from_env) => {
                anyhow::bail!(
                    "--engine {}: several engines run side by side on private servers; --db names one server",
                    e.0.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
                )
            }
            (Some(e), Some(u)) if e.0 != [u] => anyhow::bail!(
                "--engine {} but --db points at a {u} server (its URL's scheme): drop one of them",
                e.0[0]
            ),
            (Some(e), _) => Ok(e.0.clone()),
            (None, Some(u)) => Ok(vec![u]),
            (None, None) => Ok(vec![EngineKind::Postgres]),
        }
    }

    /// Adds `--set` to a scenario's session settings (after its own, so they win).
    pub fn apply_sets(&self, scenario: &mut crate::scenario::Scenario) {
        scenario.settings.extend(self.set.iter().cloned());
    }

    /// The one engine of a command that runs on one.
    pub fn engine(&self) -> anyhow::Result<crate::engine::EngineKind> {
        match self.engines()?.as_slice() {
            [one] => Ok(*one),
            _ => anyhow::bail!("--engine: this command runs on one engine at a time"),
        }
    }
}

fn parse_engines(s: &str) -> Result<Engines, String> {
    crate::engine::EngineKind::parse_list(s).map(Engines)
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The scenario's name (written to NAME.toml here) or the path of the .toml file to write.
    #[arg(value_name = "NAME|FILE.toml")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A built-in scenario name or a path to a .toml file.
    pub scenario: String,
    /// Override a parameter before showing, e.g. --param seats=1.
    #[arg(short, long = "param", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
    /// `json` prints the resolved scenario.
    #[arg(short, long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Show it in this engine's dialect (its `on.<engine>` SQL and expectations).
    #[arg(long, value_name = "ENGINE", default_value = "postgres", value_parser = parse_engine_one)]
    pub engine: crate::engine::EngineKind,
}

fn parse_engine_one(s: &str) -> Result<crate::engine::EngineKind, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files or built-in names.
    #[arg(required = true)]
    pub scenarios: Vec<String>,
}

const REPORT_EXAMPLES: &str = "\
Examples:
  contention run ticketmaster --isolation all --format json > r.json
  contention report r.json --html report.html                the matrix, anomalies, metadata
  contention report r.json s.json replay.json --html all.html  several documents in one page
  contention report s.json --plot s.png                       a sweep's 2x2 figure (or .svg)

Reads what `contention run --format json`, `contention sweep --output`, `contention replay
--format json`, `contention anomalies --format json` and `contention bench --format json` write. The page has no scripts and fetches nothing: plots are inline SVG.
Exit codes: 0 written, 2 could not read or write.";

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON documents: run reports, sweeps, replays (in this order on the page).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,

    /// Write one self-contained HTML page here.
    #[arg(long, value_name = "OUT.html", required_unless_present = "plot")]
    pub html: Option<std::path::PathBuf>,

    /// Draw the (one) sweep among FILEs here: .svg or .png.
    #[arg(long, value_name = "OUT.svg|OUT.png")]
    pub plot: Option<std::path::PathBuf>,
}

/// A list of isolation levels given as one flag value (`rc,rr` or `all`).
#[derive(Debug, Clone)]
pub struct Levels(pub Vec<Isolation>, pub bool);

impl Levels {
    /// The levels on `engine`: `all` includes READ UNCOMMITTED where it is a level of its own
    /// (MariaDB; PostgreSQL runs it as READ COMMITTED).
    pub fn on(&self, engine: crate::engine::EngineKind) -> Vec<Isolation> {
        if self.1 && engine.has_read_uncommitted() {
            let mut all = vec![Isolation::Ru];
            all.extend(self.0.iter().copied().filter(|l| *l != Isolation::Ru));
            all
        } else {
            self.0.clone()
        }
    }
}

fn parse_levels(s: &str) -> Result<Levels, String> {
    let all = s.split(',').any(|p| p.trim().eq_ignore_ascii_case("all"));
    Isolation::parse_list(s).map(|l| Levels(l, all))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))?;
    if k.trim().is_empty() {
        return Err(format!("`{s}`: empty parameter name"));
    }
    Ok((k.trim().to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn param_needs_an_equals_sign() {
        assert!(parse_key_value("seats").is_err());
        assert_eq!(
            parse_key_value("seats=1").unwrap(),
            ("seats".to_string(), "1".to_string())
        );
    }
}
