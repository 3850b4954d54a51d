//! contention: a lab for contention and transactions against real databases.
//!
//! Scenario files describe a business operation, the strategies for doing it concurrently and
//! the invariants that count the damage; `contention run` runs many clients against a real
//! PostgreSQL at each isolation level and reports anomalies next to throughput, latency, aborts
//! and retries.
//!
//! # Layout
//! Data flows `cli` -> `scenario` (validated) -> `engine` (a server, the run's own database, sessions) ->
//! `runner` (clients; `stats`) -> `check` (invariants) -> `expect` -> `report` (rendering);
//! replays go `scenario` -> `engine` -> `replay` (sessions stepped by a scheduler) -> `check`.
//! `command` is the only layer that sees every stage.
//!
//! - [`cli`]: clap definitions.
//! - [`command`]: the subcommands and exit codes.
//! - [`scenario`]: scenario files: raw TOML, validation with file/line/key errors, the built-in catalogue.
//! - [`engine`]: the engine boundary: provisioning (URL, environment, private server), the run
//!   database, sessions and their transaction framing, error classification, values.
//! - [`runner`]: client tasks, start barrier, retries with backoff, deadline and interrupt; the
//!   step interpreter, one action at a time (shared with replays).
//! - [`replay`]: deterministic schedules: session tasks, lock-wait detection, timelines.
//! - [`stats`]: per-client counters merged with `+=`, and HDR latency histograms shared by the
//!   clients of a role.
//! - [`check`]: invariants measured after a run.
//! - [`checker`]: an independent history checker (adya, elle-cli) run on a recorded history.
//! - [`history`]: Elle-format histories (`--history`): per-client recorders merged per cell.
//! - [`expect`]: expectations per cell (`no-anomalies`, `aborts:serialization`, `aborts<=5%`, ...).
//! - [`report`]: table, Markdown, CSV and JSON; sweeps' points; comparisons of result files.
//! - [`limits`]: the accepted range of every count and duration (file and command line alike)
//!   and the connections a server can give.
//! - [`alarm`]: timers that last a whole cell (deadline, cut, progress), on a thread of their own
//!   rather than in the runtime's wheel.
//! - [`isolation`], [`outcome`]: isolation levels; the abort classes the report counts.

pub mod alarm;
pub mod check;
pub mod checker;
pub mod cli;
pub mod command;
pub mod engine;
pub mod expect;
pub mod history;
pub mod isolation;
pub mod limits;
pub mod outcome;
pub mod replay;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod spec;
pub mod stats;
