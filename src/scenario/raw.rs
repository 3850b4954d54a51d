//! The scenario file as written: serde structs that mirror the TOML, with spans for error
//! locations. Every table refuses unknown keys. No checking beyond types happens here; the
//! meaning (names resolve, expressions parse, SQL files exist) is checked in `validate`.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Spanned<String>,
    pub summary: String,
    #[serde(default)]
    pub story: String,
    #[serde(default)]
    pub params: IndexMap<String, Spanned<RawParam>>,
    #[serde(default)]
    pub setup: RawSetup,
    /// Session settings (`SET name = value`) for every client; values may be `:param`.
    #[serde(default)]
    pub settings: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub draw: IndexMap<String, Spanned<RawDraw>>,
    #[serde(default)]
    pub run: RawRun,
    /// Named step sequences that strategies, auditors and sessions include (`include = "NAME"`).
    #[serde(default)]
    pub template: IndexMap<String, Spanned<RawTemplate>>,
    /// Absent only in replay-only scenarios (sessions with their own steps).
    #[serde(default)]
    pub strategy: Option<Spanned<IndexMap<String, Spanned<RawStrategy>>>>,
    #[serde(default)]
    pub auditor: IndexMap<String, Spanned<RawAuditor>>,
    #[serde(default)]
    pub invariant: Vec<Spanned<RawInvariant>>,
    /// Notes on the expected outcomes, shown by `contention show`.
    #[serde(default)]
    pub notes: Option<String>,
    /// Named sessions for deterministic replays.
    #[serde(default)]
    pub session: IndexMap<String, Spanned<RawSession>>,
    /// Named step orders for deterministic replays.
    #[serde(default)]
    pub schedule: IndexMap<String, Spanned<RawSchedule>>,
    /// For the classic anomaly catalogue: which anomaly this scenario exhibits.
    #[serde(default)]
    pub anomaly: Option<Spanned<RawAnomaly>>,
    /// `on.<engine>`: keys that replace this table's own on that engine (see [`RawOn`]).
    #[serde(default)]
    pub on: IndexMap<String, Spanned<RawOn>>,
    /// `[history] model = "list-append"`: the steps' `history` annotations form this Elle
    /// workload's micro-operations.
    #[serde(default)]
    pub history: Option<Spanned<RawHistory>>,
    /// `[node.NAME]`: the servers of a scenario that spans several (none: one database).
    #[serde(default)]
    pub node: IndexMap<String, Spanned<RawNode>>,
}

/// `[node.NAME]`: one server of the scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// `postgres`, `mariadb` (a database: it must be the run's engine) or `redis` (a lock
    /// service). Default: the run's engine.
    #[serde(default)]
    pub engine: Option<Spanned<String>>,
    /// Setup run on this node after the scenario's `[setup]` (which every database node runs).
    #[serde(default)]
    pub setup: Option<Spanned<RawSetup>>,
    /// Server settings for this node's private server (`max_prepared_transactions = "20"`).
    #[serde(default)]
    pub server: IndexMap<String, Spanned<String>>,
}

/// A step on a lock-service node: `lock = { acquire = "'k'", ttl = "ttl_ms" }` or
/// `lock = { release = "'k'" }` (expressions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLock {
    #[serde(default)]
    pub acquire: Option<Spanned<String>>,
    /// Milliseconds, an expression.
    #[serde(default)]
    pub ttl: Option<Spanned<String>>,
    #[serde(default)]
    pub release: Option<Spanned<String>>,
}

/// `restart = { node = "bank_b", down = "500ms" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestart {
    pub node: Spanned<String>,
    /// How long the server stays down before it starts again (a duration; default 0s).
    #[serde(default)]
    pub down: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHistory {
    /// `list-append` or `rw-register`.
    pub model: Spanned<String>,
}

/// A step's meaning in a recorded history: `{ f = "append", key = "k1", value = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStepHistory {
    /// `append`, `r` or `w`.
    pub f: Spanned<String>,
    /// An expression over the step's variables: the key.
    pub key: Spanned<String>,
    /// An expression: the value appended or written, or (for `r`) the column read.
    pub value: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    #[serde(default)]
    pub summary: String,
    /// Fixed values for the session's draws (and extra variables).
    #[serde(default)]
    pub bind: IndexMap<String, Spanned<toml::Value>>,
    /// Own steps; without them the session runs the strategy under test.
    #[serde(default)]
    pub step: Vec<Spanned<RawStep>>,
    /// Run the steps as written: no transaction framing by the runner.
    #[serde(default)]
    pub as_written: bool,
    /// SQL run on the session's connection before the schedule, and after it.
    #[serde(default)]
    pub setup: Option<Spanned<String>>,
    #[serde(default)]
    pub teardown: Option<Spanned<String>>,
    /// The session's isolation level, whatever `--isolation` says.
    #[serde(default)]
    pub isolation: Option<Spanned<String>>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub deferrable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub summary: String,
    /// `"a1 b1 a2"` or `["a.read", "b.read", "a.commit"]`.
    pub steps: Spanned<RawTokens>,
    /// The strategy replayed when `--strategy` is not given.
    #[serde(default)]
    pub strategy: Option<Spanned<String>>,
    /// Parameters this schedule sets (`--param` still wins).
    #[serde(default)]
    pub params: IndexMap<String, Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTokens {
    Compact(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnomaly {
    /// Adya's or Berenson et al.'s short name: G0, G1a, P4, G2-item ...
    pub id: String,
    /// Where the definition comes from.
    pub reference: String,
    /// The definition, in a sentence or two.
    pub definition: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawParam {
    Described {
        value: toml::Value,
        #[serde(default)]
        help: String,
    },
    Plain(toml::Value),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSetup {
    /// SQL files, relative to the scenario file.
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    /// Inline SQL run after the files.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// `on.<engine>`: keys that replace this table's own on that engine (see [`RawOn`]).
    #[serde(default)]
    pub on: IndexMap<String, Spanned<RawOn>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDraw {
    /// `[low, high]`, inclusive; each bound a number or an expression over params.
    #[serde(default)]
    pub uniform: Option<[Spanned<toml::Value>; 2]>,
    /// `[n, s]`: 1..=n with Zipf exponent s (hot keys; s = 0 is uniform).
    #[serde(default)]
    pub zipf: Option<[Spanned<toml::Value>; 2]>,
    /// Probability of `true`.
    #[serde(default)]
    pub chance: Option<Spanned<toml::Value>>,
    /// Redraw until different from this earlier draw.
    #[serde(default)]
    pub distinct_from: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    pub clients: Option<Spanned<u32>>,
    pub duration: Option<Spanned<String>>,
    pub operations: Option<Spanned<u64>>,
    pub think: Option<Spanned<String>>,
    pub max_tries: Option<Spanned<u32>>,
    pub isolation: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStrategy {
    pub summary: String,
    /// Pins the isolation level, whatever `--isolation` says.
    #[serde(default)]
    pub isolation: Option<Spanned<String>>,
    /// Which failures retry the operation (default: serialization, deadlock, conflict).
    #[serde(default)]
    pub retry: Option<Spanned<Vec<String>>>,
    /// Documented outcomes per isolation level: `rc = ["anomalies"]`.
    #[serde(default)]
    pub expect: IndexMap<String, Spanned<Vec<String>>>,
    /// Session settings of this strategy's clients, after the scenario's own.
    #[serde(default)]
    pub settings: IndexMap<String, Spanned<String>>,
    /// Setup run after the scenario's, for this strategy's cells only (a constraint, an index).
    #[serde(default)]
    pub setup: Option<Spanned<RawSetup>>,
    /// SQL error codes that are a business outcome: `{ "23P01" = "room_taken" }`.
    #[serde(default)]
    pub reject_on: IndexMap<String, Spanned<String>>,
    /// SQL error codes that mean a concurrent change: retried, counted as `conflict`.
    #[serde(default)]
    pub retry_on: Option<Spanned<Vec<String>>>,
    pub step: Vec<Spanned<RawStep>>,
    /// `on.<engine>`: keys that replace this table's own on that engine (see [`RawOn`]).
    #[serde(default)]
    pub on: IndexMap<String, Spanned<RawOn>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuditor {
    pub summary: String,
    /// Runs after the clients stop, one operation after another, until one is rejected
    /// (nothing left to do): a recovery pass.
    #[serde(default)]
    pub after: bool,
    #[serde(default)]
    pub clients: Option<Spanned<u32>>,
    #[serde(default)]
    pub expect: IndexMap<String, Spanned<Vec<String>>>,
    pub step: Vec<Spanned<RawStep>>,
    /// `on.<engine>`: keys that replace this table's own on that engine (see [`RawOn`]).
    #[serde(default)]
    pub on: IndexMap<String, Spanned<RawOn>>,
}

/// `[template.NAME]`: steps written once and included by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    pub step: Vec<Spanned<RawStep>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// The steps of `[template.NAME]` in this step's place (a step with `include` has no other
    /// key).
    #[serde(default)]
    pub include: Option<Spanned<String>>,
    /// Variables computed before the step's SQL: `let = { room = "client / 2 + 1" }`.
    #[serde(default, rename = "let")]
    pub lets: IndexMap<String, Spanned<String>>,
    /// A name for schedules (`a.read`); steps are also numbered from 1.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    #[serde(default)]
    pub reject_if: Option<Spanned<String>>,
    #[serde(default)]
    pub outcome: Option<Spanned<String>>,
    #[serde(default)]
    pub retry_if: Option<Spanned<String>>,
    #[serde(default)]
    pub flag_if: Option<Spanned<String>>,
    #[serde(default)]
    pub flag: Option<Spanned<String>>,
    #[serde(default)]
    pub think: Option<Spanned<RawThink>>,
    #[serde(default)]
    pub commit: Option<bool>,
    /// Run the step again, each time in a new transaction, until this expression holds (a
    /// client waiting for its own result).
    #[serde(default)]
    pub until: Option<Spanned<String>>,
    /// The pause between two runs of an `until` step (a duration; default 1ms).
    #[serde(default)]
    pub poll: Option<Spanned<String>>,
    /// What the step means in a recorded history (`--history`): one micro-operation.
    #[serde(default)]
    pub history: Option<Spanned<RawStepHistory>>,
    /// The node the step runs on (`[node.NAME]`; default: the only database node).
    #[serde(default)]
    pub node: Option<Spanned<String>>,
    /// A lock-service step (on a `redis` node).
    #[serde(default)]
    pub lock: Option<Spanned<RawLock>>,
    /// Ends the node's transaction with `PREPARE TRANSACTION` under this id (an expression).
    #[serde(default)]
    pub prepare: Option<Spanned<String>>,
    /// `COMMIT PREPARED` of this id (an expression), outside any transaction.
    #[serde(default)]
    pub commit_prepared: Option<Spanned<String>>,
    /// `ROLLBACK PREPARED` of this id (an expression), outside any transaction.
    #[serde(default)]
    pub rollback_prepared: Option<Spanned<String>>,
    /// A fault after the step: the client stops for this long (a GC pause), holding what it
    /// holds.
    #[serde(default)]
    pub pause: Option<Spanned<String>>,
    /// A fault after the step: the client crashes (every connection dropped without a commit);
    /// it reconnects for its next operation.
    #[serde(default)]
    pub crash: Option<Spanned<bool>>,
    /// A fault after the step: a node's private server is stopped at once (a crash) and
    /// started again `down` later, while the client goes on.
    #[serde(default)]
    pub restart: Option<Spanned<RawRestart>>,
    /// When the step's statement (or its COMMIT) fails with an outcome of concurrency or a lost
    /// connection, the step's transaction ends, this variable gets the error's code (`unknown`
    /// for a COMMIT whose connection went) and the attempt goes on; "" when it succeeded.
    #[serde(default)]
    pub catch: Option<Spanned<String>>,
    /// `on.<engine>`: keys that replace this table's own on that engine (see [`RawOn`]).
    #[serde(default)]
    pub on: IndexMap<String, Spanned<RawOn>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawThink {
    Run(bool),
    Fixed(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInvariant {
    pub name: Spanned<String>,
    pub anomaly: String,
    pub explain: String,
    /// SQL returning one number: 0 = holds, otherwise the size of the damage.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// The node `sql` runs on (scenarios with `[node.*]`).
    #[serde(default)]
    pub node: Option<Spanned<String>>,
    /// Reads on several nodes, `{ NODE = "SQL" }`: each query's first row's columns become
    /// variables of `value`.
    #[serde(default)]
    pub reads: IndexMap<String, Spanned<String>>,
    /// With `reads`: an expression over their columns and the params giving the damage.
    #[serde(default)]
    pub value: Option<Spanned<String>>,
    /// Counted from the `flag` of an auditor's steps instead of SQL.
    #[serde(default)]
    pub observed_by: Option<Spanned<String>>,
    /// In replays: an expression over what the sessions observed (`b.v1 == 101`), true or a
    /// positive number = the anomaly happened.
    #[serde(default)]
    pub expr: Option<Spanned<String>>,
    /// `writer` (the default) or `reader`.
    #[serde(default)]
    pub side: Option<Spanned<String>>,
    /// What prevents it (a strategy, an isolation level), shown under timelines.
    #[serde(default)]
    pub prevented_by: Option<String>,
    /// `on.<engine>`: keys that replace this table's own on that engine (see [`RawOn`]).
    #[serde(default)]
    pub on: IndexMap<String, Spanned<RawOn>>,
}

/// `on.<engine>` in a table: what differs on that engine. Each key replaces the table's own key
/// of that name (`expect` replaces only the levels it names); which keys a table may override is
/// checked in `dialect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOn {
    /// A step's, an invariant's or the setup's SQL.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// The setup's SQL files.
    #[serde(default)]
    pub files: Option<Vec<Spanned<String>>>,
    /// A strategy's or an auditor's documented outcomes, per isolation level.
    #[serde(default)]
    pub expect: Option<IndexMap<String, Spanned<Vec<String>>>>,
    /// The session settings of every client (top level).
    #[serde(default)]
    pub settings: Option<IndexMap<String, Spanned<String>>>,
}
