//! Scenarios: the validated, ready-to-run form of a scenario file (TOML plus SQL files).
//!
//! `load` turns a file (or a built-in name) plus `--param` overrides into a [`Scenario`]:
//! parameters resolved, setup SQL rendered, steps compiled (named bind parameters, expressions),
//! every reference checked. Everything here is plain data; this module must not touch a
//! database or the clock.

pub mod catalog;
mod dialect;
pub mod error;
pub mod expr;
pub mod names;
mod raw;
mod schedule;
pub mod sql;
mod steps;
mod template;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use error::ScenarioError;

use crate::engine::EngineKind;
pub use crate::engine::written::Characteristics;
pub use expr::{Expr, Value};
pub use schedule::adhoc_schedule;
pub use sql::NamedSql;

use crate::expect::Expectation;
use crate::isolation::Isolation;
use crate::outcome::Abort;

/// Variables every step can read besides params, draws and captured columns.
pub const BUILTINS: [&str; 4] = ["client", "op", "try", "rows"];

/// A validated scenario, with parameters already resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    /// The engine whose dialect this is (its `on.<engine>` overrides applied).
    #[serde(default)]
    pub engine: EngineKind,
    pub summary: String,
    pub story: String,
    pub notes: Option<String>,
    /// Where it came from (a path, or `builtin:NAME`).
    pub file: PathBuf,
    pub params: IndexMap<String, Param>,
    /// Setup scripts with parameters substituted, in order: (label, SQL).
    pub setup: Vec<(String, String)>,
    /// `SET` for every client session: (name, value).
    pub settings: Vec<(String, String)>,
    pub draws: Vec<Draw>,
    pub run: RunDefaults,
    pub strategies: IndexMap<String, Strategy>,
    pub auditors: Vec<Auditor>,
    pub invariants: Vec<Invariant>,
    /// Named sessions for replays (declared, or implied by the schedules).
    pub sessions: Vec<Session>,
    /// Named step orders for replays, in file order (the first is the default).
    pub schedules: IndexMap<String, Schedule>,
    /// Set for the classic anomaly catalogue's scenarios.
    pub anomaly: Option<ClassicAnomaly>,
    /// `[history] model`: which Elle workload the steps' `history` annotations form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryModel>,
    /// `[node.*]`: the servers the scenario spans, database nodes first (the first is the run
    /// database that `setup` and unplaced steps use). Empty: one database, as ever.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<Node>,
}

/// One server of a scenario that spans several.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    /// Its own setup, run after the scenario's (database nodes): (label, rendered SQL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<(String, String)>,
    /// Settings of its private server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server: Vec<(String, String)>,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// A database of the run's engine.
    Database,
    /// A Redis lock service.
    Redis,
    /// A lock service on PostgreSQL's advisory locks (`engine = "postgres-advisory"`), whatever
    /// the run's engine: leased by the server ending a session idle past the TTL.
    Advisory,
}

impl NodeKind {
    /// A node that serves `lock` steps, and no SQL.
    pub fn is_lock_service(self) -> bool {
        matches!(self, NodeKind::Redis | NodeKind::Advisory)
    }
}

/// A lock-service step: takes a lock for a TTL with a fencing token (variables `acquired`,
/// `fence`), or releases it if this attempt still holds it (variable `released`). On Redis the
/// TTL is the key's; on PostgreSQL advisory locks it is the holder session's idle time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockOp {
    Acquire { key: Expr, ttl_ms: Expr },
    Release { key: Expr },
}

/// The variables a lock step sets.
pub const LOCK_VARIABLES: [&str; 3] = ["acquired", "fence", "released"];

/// A two-phase-commit step on a database node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TwoPhase {
    /// `PREPARE TRANSACTION 'id'`: ends the node's transaction, which survives the session.
    Prepare,
    /// `COMMIT PREPARED 'id'`.
    CommitPrepared,
    /// `ROLLBACK PREPARED 'id'`.
    RollbackPrepared,
}

/// A fault a step injects after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The client stops, holding its locks and transactions (a GC pause).
    Pause(#[serde(with = "humantime_serde_compat")] Duration),
    /// The client crashes: every connection is dropped without a commit.
    Crash,
    /// A database node's private server stops at once (as in a crash: open transactions are
    /// lost, prepared ones stay) and starts again after `down`; the client goes on meanwhile.
    Restart {
        node: usize,
        #[serde(with = "humantime_serde_compat")]
        down: Duration,
    },
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Pause(_) => "pause",
            Fault::Crash => "crash",
            Fault::Restart { .. } => "restart",
        }
    }
}

/// One of Elle's workloads: what a recorded history's micro-operations are, and how a checker
/// (`adya check -m`, `elle-cli --model`) reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HistoryModel {
    /// Appends of unique values to per-key lists; a read returns the whole list.
    ListAppend,
    /// Writes of unique values to registers; a read returns the value.
    RwRegister,
}

impl HistoryModel {
    pub fn name(self) -> &'static str {
        match self {
            HistoryModel::ListAppend => "list-append",
            HistoryModel::RwRegister => "rw-register",
        }
    }
}

/// A micro-operation's function, as Elle writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MopKind {
    #[serde(rename = "append")]
    Append,
    #[serde(rename = "r")]
    Read,
    #[serde(rename = "w")]
    Write,
}

impl MopKind {
    pub fn name(self) -> &'static str {
        match self {
            MopKind::Append => "append",
            MopKind::Read => "r",
            MopKind::Write => "w",
        }
    }
}

/// What a step means in a history: one micro-operation whose key and value are expressions
/// over the step's variables (for a read, the value is the column read).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepHistory {
    pub f: MopKind,
    pub key: Expr,
    pub value: Expr,
}

impl Scenario {
    /// A scenario whose sessions bring their own steps: it can be replayed, not run under load.
    pub fn is_replay_only(&self) -> bool {
        self.strategies.is_empty()
    }

    /// The nodes a step's `restart` fault restarts (by index), in any role or session.
    pub fn restarted_nodes(&self) -> Vec<usize> {
        let steps = self
            .strategies
            .values()
            .flat_map(|s| &s.steps)
            .chain(self.auditors.iter().flat_map(|a| &a.steps))
            .chain(self.sessions.iter().flat_map(|s| s.steps.iter().flatten()));
        let mut nodes: Vec<usize> = steps
            .filter_map(|s| match s.fault {
                Some(Fault::Restart { node, .. }) => Some(node),
                _ => None,
            })
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }
}

/// One participant of a replay: runs its own steps, or one operation of the strategy replayed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub name: String,
    pub summary: String,
    /// Fixed values for draws (and extra variables), instead of seeded random ones.
    #[serde(serialize_with = "ser_bind", deserialize_with = "de_bind")]
    pub bind: Vec<(String, Value)>,
    pub steps: Option<Vec<Step>>,
    /// Steps run as written (`as_written = true`, and every session of an isolation-tester
    /// spec): no transaction framing by the runner, and a schedule runs any of them, in any
    /// order, as often as it names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Vec<WrittenStep>>,
    /// SQL run on the session's connection before the schedule, and after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<String>,
    /// Isolation level, read only, deferrable: for every transaction the session opens.
    #[serde(default, skip_serializing_if = "Characteristics::is_default")]
    pub characteristics: Characteristics,
}

/// A step of a session that runs its steps as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrittenStep {
    pub name: String,
    pub sql: String,
    /// Where it is written: `session.a.step[2]`, or a spec file's `step "s1a"`.
    pub key: String,
    pub line: usize,
}

fn ser_bind<S: serde::Serializer>(b: &[(String, Value)], s: S) -> Result<S::Ok, S::Error> {
    let m: serde_json::Map<String, serde_json::Value> = b
        .iter()
        .map(|(k, v)| (k.clone(), expr::to_json(v)))
        .collect();
    m.serialize(s)
}

fn de_bind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, Value)>, D::Error> {
    let m = IndexMap::<String, serde_json::Value>::deserialize(d)?;
    m.into_iter()
        .map(|(k, v)| Ok((k, expr::from_json(v).map_err(serde::de::Error::custom)?)))
        .collect()
}

/// An explicit order of the sessions' steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub summary: String,
    pub tokens: Vec<Token>,
    /// The strategy replayed by default.
    pub strategy: Option<String>,
    /// Parameters the schedule sets, as `--param NAME=VALUE` would (`--param` still wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
}

/// "Run session `a` up to and including its step `target`" (earlier steps first, if needed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub session: String,
    pub target: Target,
    /// As written (`a2`, `b.write`).
    pub text: String,
    /// The isolation tester's annotations (`s1a(*)`, `s1a(s2b)`): `*` shows the step as
    /// waiting whatever the server says; a step or session name holds the step's completion
    /// until that session's step completes. Only for sessions that run steps as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The n-th step, from 1; one past the last step is the final commit.
    Step(usize),
    /// The step with this `name`.
    Named(String),
    /// The final commit.
    Commit,
}

/// Which classic anomaly a catalogue scenario exhibits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassicAnomaly {
    pub id: String,
    pub reference: String,
    pub definition: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Param {
    #[serde(serialize_with = "ser_value", deserialize_with = "de_value")]
    pub value: Value,
    #[serde(serialize_with = "ser_value", deserialize_with = "de_value")]
    pub default: Value,
    pub help: String,
}

fn ser_value<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    expr::to_json(v).serialize(s)
}

fn de_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    expr::from_json(serde_json::Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// A per-operation random draw, seeded from the run seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Draw {
    pub name: String,
    pub kind: DrawKind,
    pub distinct_from: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrawKind {
    /// Integers low..=high, each equally likely.
    Uniform { low: i64, high: i64 },
    /// Integers 1..=n, rank k with weight 1/k^s (hot keys).
    Zipf { n: u64, s: f64 },
    /// `true` with probability p.
    Chance { p: f64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDefaults {
    pub clients: u32,
    #[serde(with = "humantime_serde_compat")]
    pub duration: Duration,
    pub operations: Option<u64>,
    #[serde(with = "humantime_serde_compat")]
    pub think: Duration,
    pub max_tries: u32,
    pub isolation: Vec<Isolation>,
}

/// One named way of doing the business operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Strategy {
    pub name: String,
    pub summary: String,
    /// Pinned isolation level (the strategy is defined by it).
    pub isolation: Option<Isolation>,
    pub retry: Vec<Abort>,
    pub expect: Vec<(Isolation, Vec<Expectation>)>,
    pub steps: Vec<Step>,
    /// Session settings of its clients, after the scenario's (`innodb_snapshot_isolation`).
    #[serde(default)]
    pub settings: Vec<(String, String)>,
    /// SQL errors that end an operation as a business outcome, or retry it.
    #[serde(default)]
    pub on_error: OnError,
    /// Setup run after the scenario's for this strategy's cells: (label, rendered SQL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<(String, String)>,
}

/// What a strategy makes of SQL errors by code (a SQLSTATE such as `23505`, or MariaDB's error
/// number such as `1062`; the two never collide, so one table serves both engines). An error
/// whose code is listed here is rolled back and becomes that outcome; any other error keeps its
/// class, and one of class `other` is counted under its code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnError {
    /// Code -> the business outcome it means (`23P01` -> `room_taken`): counted as a rejection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reject: Vec<(String, String)>,
    /// Codes that mean a concurrent change: the attempt counts as `conflict` and is retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<String>,
}

impl Strategy {
    pub fn expectations_at(&self, level: Isolation) -> &[Expectation] {
        expectations_at(&self.expect, level)
    }
}

/// A role that reads concurrently with the clients, flagging what it sees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Auditor {
    pub name: String,
    pub summary: String,
    pub clients: u32,
    /// Runs after the writers stop, until an operation is rejected (a recovery pass), rather
    /// than beside them.
    #[serde(default)]
    pub after: bool,
    pub expect: Vec<(Isolation, Vec<Expectation>)>,
    pub steps: Vec<Step>,
}

impl Auditor {
    pub fn expectations_at(&self, level: Isolation) -> &[Expectation] {
        expectations_at(&self.expect, level)
    }
}

/// The expectations declared for `level`; READ UNCOMMITTED without its own takes READ
/// COMMITTED's (PostgreSQL runs it as READ COMMITTED; on MariaDB a scenario declares `ru` where
/// dirty reads change the outcome).
fn expectations_at(list: &[(Isolation, Vec<Expectation>)], level: Isolation) -> &[Expectation] {
    let find = |level: Isolation| list.iter().find(|(l, _)| *l == level);
    find(level)
        .or_else(|| {
            (level == Isolation::Ru)
                .then(|| find(Isolation::Rc))
                .flatten()
        })
        .map_or(&[], |(_, e)| e.as_slice())
}

/// One step of an operation, in order: `when` gates it, `let` computes variables, `sql` runs (its
/// first row's columns become variables, `rows` the row count; with `until`, again in new
/// transactions until that holds), then `reject_if`, `retry_if`,
/// `flag_if` are checked, then the client thinks, then `commit` ends the transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// For schedules (`a.read`).
    pub name: Option<String>,
    /// Where the step is written, for error messages: `strategy.naive.step[2]` (line 31).
    pub key: String,
    pub line: usize,
    pub when: Option<Expr>,
    pub sql: Option<NamedSql>,
    pub reject_if: Option<Expr>,
    pub outcome: String,
    pub retry_if: Option<Expr>,
    pub flag_if: Option<Expr>,
    pub flag: Option<String>,
    pub think: Think,
    pub commit: bool,
    /// Variables computed (in order) after `when` and before the SQL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lets: Vec<(String, Expr)>,
    /// What the step means in a recorded history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<StepHistory>,
    /// The node it runs on (an index into [`Scenario::nodes`]; 0 without nodes).
    #[serde(default)]
    pub node: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockOp>,
    /// A two-phase-commit action, with the transaction id's expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_phase: Option<(TwoPhase, Expr)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// `until`: the step runs again, each time in a new transaction, until this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Until>,
    /// `catch`: the variable that gets the code of the step's caught failure ("" without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch: Option<String>,
}

/// A step that waits for a result: after its SQL, while `expr` is false, its transaction ends
/// (commits: it started it, and reads), the client sleeps `poll` and the step runs again in a
/// new transaction (a fresh snapshot at every level), at most [`Until::WAIT`] in all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Until {
    pub expr: Expr,
    #[serde(with = "humantime_serde_compat")]
    pub poll: Duration,
}

impl Until {
    /// The default pause between two runs.
    pub const POLL: Duration = Duration::from_millis(1);
    /// How long a step may wait for its condition: past it, the attempt ends as the rejection
    /// [`Until::TIMEOUT`] (a client that gives up), so a queue nobody serves cannot hang a run.
    pub const WAIT: Duration = Duration::from_secs(10);
    /// The outcome of an attempt that waited [`Until::WAIT`] in vain.
    pub const TIMEOUT: &str = "until_timeout";
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Think {
    None,
    /// The run's think time (`--think`, or the scenario's `[run] think`).
    Run,
    Fixed(#[serde(with = "humantime_serde_compat")] Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// Damage done by the writing clients' strategy.
    Writer,
    /// Something a concurrent reader (auditor) saw.
    Reader,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invariant {
    pub name: String,
    /// The node an `sql` invariant reads (0 without nodes).
    #[serde(default)]
    pub node: usize,
    pub anomaly: String,
    pub explain: String,
    pub side: Side,
    pub source: InvariantSource,
    /// What prevents it, for timelines.
    pub prevented_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvariantSource {
    /// SQL returning one number after the clients stop.
    Sql(String),
    /// Count of an auditor's flags of this name.
    Observed { auditor: String },
    /// In replays: an expression over the sessions' observations (`b.v1 == 101`).
    Expr(Expr),
    /// Reads on several nodes (node index, SQL whose first row's columns become variables),
    /// then an expression over them giving the damage.
    Reads {
        reads: Vec<(usize, String)>,
        value: Expr,
    },
}

/// Loads a scenario by built-in name or path, applying `--param name=value` overrides.
/// Loads a scenario as PostgreSQL runs it.
pub fn load(name_or_path: &str, overrides: &[(String, String)]) -> Result<Scenario, ScenarioError> {
    load_on(name_or_path, overrides, EngineKind::Postgres)
}

/// Loads a scenario as `engine` runs it: its `on.<engine>` overrides applied.
pub fn load_on(
    name_or_path: &str,
    overrides: &[(String, String)],
    engine: EngineKind,
) -> Result<Scenario, ScenarioError> {
    let source = catalog::open(name_or_path)?;
    validate::validate(&source, overrides, engine)
}

/// The engines a scenario can run on: the one its nodes pin, or every engine.
pub fn engines_of(name_or_path: &str) -> Result<Vec<EngineKind>, ScenarioError> {
    let source = catalog::open(name_or_path)?;
    Ok(match validate::pinned_engine(&source) {
        Some(e) => vec![e],
        None => EngineKind::ALL.to_vec(),
    })
}

/// Loads a scenario from its text, as `engine` runs it; `path` is what errors name and where
/// its setup files are looked for (relative to it). No `--param` overrides.
pub fn load_text(
    path: &std::path::Path,
    text: &str,
    engine: EngineKind,
) -> Result<Scenario, ScenarioError> {
    validate::validate(&catalog::Source::from_text(path, text), &[], engine)
}

mod humantime_serde_compat {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
