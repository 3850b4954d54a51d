//! The step interpreter: one attempt at an operation (one or more transactions) on one
//! connection, for any role (a strategy's clients or an auditor).
//!
//! Variables live in numbered slots resolved once per cell (params, draws, built-ins, and the
//! columns each statement returns), so the hot path does no name lookups for bind parameters.
//! This module runs steps and says how the attempt ended; it must not retry, count operations or
//! decide when to stop (the client loop does).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use evalexpr::error::EvalexprResultValue;
use evalexpr::{Context, DefaultNumericTypes, EvalexprError, EvalexprResult};
use futures::TryStreamExt;
use tokio_postgres::{Client, Statement};

use crate::db::server::pg_message;
use crate::db::value::{TextParam, column, readable};
use crate::outcome::{Abort, ErrorKind, classify};
use crate::scenario::{Scenario, Step, Think, Value};
use crate::stats::Stats;

/// Variable names and their slots, shared by every client of a cell.
#[derive(Debug, Default)]
pub struct Slots {
    index: HashMap<String, usize>,
}

impl Slots {
    pub fn slot(&mut self, name: &str) -> usize {
        let next = self.index.len();
        *self.index.entry(name.to_string()).or_insert(next)
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Names by slot number.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![String::new(); self.index.len()];
        for (name, &i) in &self.index {
            names[i] = name.clone();
        }
        names
    }
}

/// A client's variables: one optional value per slot (`None` = never set).
pub struct Vars {
    slots: Arc<Slots>,
    pub values: Vec<Option<Value>>,
}

impl Vars {
    pub fn new(slots: Arc<Slots>) -> Vars {
        let values = vec![None; slots.len()];
        Vars { slots, values }
    }

    pub fn set(&mut self, slot: usize, v: Value) {
        self.values[slot] = Some(v);
    }
}

impl Context for Vars {
    type NumericTypes = DefaultNumericTypes;

    fn get_value(&self, identifier: &str) -> Option<&Value> {
        self.slots
            .get(identifier)
            .and_then(|i| self.values[i].as_ref())
    }

    fn call_function(&self, identifier: &str, _argument: &Value) -> EvalexprResultValue {
        Err(EvalexprError::FunctionIdentifierNotFound(
            identifier.to_string(),
        ))
    }

    fn are_builtin_functions_disabled(&self) -> bool {
        false
    }

    fn set_builtin_functions_disabled(&mut self, _disabled: bool) -> EvalexprResult<()> {
        Err(EvalexprError::BuiltinFunctionsCannotBeDisabled)
    }
}

/// A step with its bind parameters and captured columns resolved to slots.
#[derive(Debug)]
struct Compiled {
    step: Step,
    params: Vec<usize>,
    captures: Vec<usize>,
    /// A COMMIT follows this step's statement with nothing in between but its think time: it
    /// is the last step or commits, and has no condition to check on the result.
    commit_follows: bool,
}

impl Compiled {
    /// The step's bind parameters, in `$n` order, from the client's variables.
    fn bind<'v>(&self, vars: &'v Vars) -> Vec<TextParam<'v>> {
        self.params
            .iter()
            .map(|&s| TextParam(vars.values[s].as_ref()))
            .collect()
    }
}

/// The steps of one role, ready to run on any connection of the cell.
#[derive(Debug)]
pub struct Program {
    steps: Vec<Compiled>,
    rows_slot: usize,
    /// Slot number -> variable name, for timelines.
    slot_names: Vec<String>,
}

/// How a client frames its transactions.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// The statement that opens a transaction (`BEGIN ISOLATION LEVEL ...`).
    pub begin: &'static str,
    /// The pause at `think = true` steps.
    pub think: Duration,
    pub pipeline: Pipeline,
}

/// Which round trips a client saves by sending BEGIN and COMMIT together with a statement.
/// The server sees the same statements in the same order either way; only the client's idle
/// waits for answers that carry nothing (BEGIN's and, when nothing runs in between, the last
/// statement's before COMMIT) are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    /// Every statement in its own round trip, BEGIN and COMMIT too (as pgbench's prepared mode).
    Off,
    /// BEGIN goes with the transaction's first statement; COMMIT stays an action of its own
    /// (replays, whose schedules place commits).
    Begin,
    /// BEGIN as above, and COMMIT goes with the statement before it when nothing comes in
    /// between: no think time and no `reject_if`, `retry_if` or `flag_if` on that step.
    Full,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    Committed,
    /// Refused by `reject_if`: the outcome name.
    Rejected(String),
    /// Failed: by `retry_if` (conflict) or with an SQL error class.
    Aborted(Abort),
}

impl Program {
    /// Prepares every statement of every role on one connection to learn their result columns,
    /// then resolves all names to slots. Returns the programs in the order given.
    pub async fn compile(
        client: &Client,
        scenario: &Scenario,
        roles: &[&[Step]],
        extra_names: &[&str],
    ) -> anyhow::Result<(Vec<Program>, Arc<Slots>)> {
        let mut slots = Slots::default();
        for n in extra_names {
            slots.slot(n);
        }
        for p in scenario.params.keys() {
            slots.slot(p);
        }
        for d in &scenario.draws {
            slots.slot(&d.name);
        }
        for b in crate::scenario::BUILTINS {
            slots.slot(b);
        }
        let mut programs = Vec::new();
        for steps in roles {
            let mut compiled = Vec::new();
            for (i, step) in steps.iter().enumerate() {
                let (params, captures) = match &step.sql {
                    None => (Vec::new(), Vec::new()),
                    Some(sql) => {
                        let stmt = client
                            .prepare(&sql.text)
                            .await
                            .map_err(|e| step_error(scenario, step, &pg_message(&e)))?;
                        let mut captures = Vec::new();
                        for c in stmt.columns() {
                            if !readable(c.type_()) {
                                return Err(step_error(
                                    scenario,
                                    step,
                                    &format!(
                                        "column `{}` has type {}, which the lab cannot read: cast it (::bigint, ::float8 or ::text)",
                                        c.name(),
                                        c.type_()
                                    ),
                                ));
                            }
                            captures.push(slots.slot(c.name()));
                        }
                        (sql.names.iter().map(|n| slots.slot(n)).collect(), captures)
                    }
                };
                compiled.push(Compiled {
                    step: step.clone(),
                    params,
                    captures,
                    commit_follows: (step.commit || i + 1 == steps.len())
                        && step.reject_if.is_none()
                        && step.retry_if.is_none()
                        && step.flag_if.is_none(),
                });
            }
            programs.push(compiled);
        }
        let rows_slot = slots.slot("rows");
        let slot_names = slots.names();
        let slots = Arc::new(slots);
        Ok((
            programs
                .into_iter()
                .map(|steps| Program {
                    steps,
                    rows_slot,
                    slot_names: slot_names.clone(),
                })
                .collect(),
            slots,
        ))
    }

    /// Prepares this program's statements on a connection.
    pub async fn prepare(&self, client: &Client) -> anyhow::Result<Vec<Option<Statement>>> {
        let mut out = Vec::with_capacity(self.steps.len());
        for c in &self.steps {
            out.push(match &c.step.sql {
                Some(sql) => Some(client.prepare(&sql.text).await.map_err(|e| {
                    anyhow!("{} (line {}): {}", c.step.key, c.step.line, pg_message(&e))
                })?),
                None => None,
            });
        }
        Ok(out)
    }

    /// The SQL texts, in step order (for pooled connections' statement caches).
    pub fn sql_texts(&self) -> impl Iterator<Item = Option<&str>> {
        self.steps
            .iter()
            .map(|c| c.step.sql.as_ref().map(|s| s.text.as_str()))
    }

    /// Runs one attempt. SQL errors that are outcomes of concurrency end the attempt as
    /// `Aborted`; errors that mean the scenario or the connection is broken are returned as `Err`.
    pub async fn attempt(
        &self,
        client: &Client,
        stmts: &[Option<Statement>],
        vars: &mut Vars,
        framing: Framing,
        stats: &mut Stats,
    ) -> anyhow::Result<End> {
        let mut cursor = Cursor::default();
        loop {
            if let Some(end) = self
                .step(client, stmts, vars, framing, stats, &mut cursor, None)
                .await?
            {
                return Ok(end);
            }
        }
    }

    /// How many actions an attempt has: one per step, then the final commit.
    pub fn actions(&self) -> usize {
        self.steps.len() + 1
    }

    /// The SQL the action at `index` would send with the current variables (for timelines, to
    /// show a statement that is waiting for a lock).
    pub fn preview(&self, index: usize, vars: &Vars) -> Option<String> {
        let c = self.steps.get(index)?;
        c.step.sql.as_ref()?;
        Some(shown(&c.step, &c.bind(vars)))
    }

    /// The index of the step with this name.
    pub fn named(&self, name: &str) -> Option<usize> {
        self.steps
            .iter()
            .position(|c| c.step.name.as_deref() == Some(name))
    }

    /// Runs the cursor's next action: one step (its `when`, SQL, conditions, think and commit),
    /// or, after the last step, the final COMMIT. Returns how the attempt ended, if it did.
    /// With `trace`, records what was sent and what came back, for timelines.
    #[allow(clippy::too_many_arguments)]
    pub async fn step(
        &self,
        client: &Client,
        stmts: &[Option<Statement>],
        vars: &mut Vars,
        framing: Framing,
        stats: &mut Stats,
        cursor: &mut Cursor,
        mut trace: Option<&mut Trace>,
    ) -> anyhow::Result<Option<End>> {
        let index = cursor.next;
        cursor.next += 1;
        let Some((c, stmt)) = self.steps.get(index).zip(stmts.get(index)) else {
            if !cursor.in_tx {
                return Ok(Some(End::Committed));
            }
            cursor.in_tx = false;
            if let Some(t) = trace.as_deref_mut() {
                t.sql = Some("COMMIT".into());
            }
            return match client.batch_execute("COMMIT").await {
                Ok(()) => Ok(Some(End::Committed)),
                Err(e) => fail(client, false, e, "COMMIT", trace).await.map(Some),
            };
        };
        let step = &c.step;
        let at = || format!("{} (line {})", step.key, step.line);
        if let Some(when) = &step.when
            && !when
                .eval_bool(vars)
                .map_err(|m| anyhow!("{}: when {m}", at()))?
        {
            if let Some(t) = trace.as_deref_mut() {
                t.skipped = true;
            }
            return Ok(None);
        }
        let think = match step.think {
            Think::None => Duration::ZERO,
            Think::Run => framing.think,
            Think::Fixed(d) => d,
        };
        if let Some(stmt) = stmt {
            if let Some(t) = trace.as_deref_mut() {
                t.sql = Some(shown(step, &c.bind(vars)));
            }
            if !cursor.in_tx && framing.pipeline == Pipeline::Off {
                if let Err(e) = client.batch_execute(framing.begin).await {
                    return fail(client, false, e, &at(), trace).await.map(Some);
                }
                cursor.in_tx = true;
            }
            // Requests polled together go out together, in order (tokio-postgres queues each
            // on its first poll), and each is its own Sync: BEGIN, the statement and COMMIT
            // reach the server as they would one by one. BEGIN only fails when the connection
            // does; a COMMIT after a failed statement ends the transaction as a ROLLBACK. An
            // interrupt that abandons this future after the COMMIT went out leaves that
            // transaction to commit uncounted (the report says it was interrupted).
            let send_begin = !cursor.in_tx;
            let send_commit =
                framing.pipeline == Pipeline::Full && c.commit_follows && think.is_zero();
            // Bind values go straight from the slots into the message, and only the first
            // row is kept (it is all a step captures): no per-statement vectors.
            let values = &vars.values;
            let args = c.params.iter().map(|&s| TextParam(values[s].as_ref()));
            let (began, result, committed) = futures::join!(
                async {
                    if send_begin {
                        Some(client.batch_execute(framing.begin).await)
                    } else {
                        None
                    }
                },
                async {
                    if c.captures.is_empty() {
                        return client
                            .execute_raw(stmt, args)
                            .await
                            .map(|n| (n as i64, None));
                    }
                    let rows = client.query_raw(stmt, args).await?;
                    futures::pin_mut!(rows);
                    let (mut n, mut first) = (0, None);
                    while let Some(row) = rows.try_next().await? {
                        n += 1;
                        first.get_or_insert(row);
                    }
                    Ok((n, Some(first)))
                },
                async {
                    if send_commit {
                        Some(client.batch_execute("COMMIT").await)
                    } else {
                        None
                    }
                },
            );
            if let Some(Err(e)) = began {
                return fail(client, false, e, &at(), trace).await.map(Some);
            }
            cursor.in_tx = !send_commit;
            let (n, rows) = match result {
                Ok(r) => r,
                Err(e) => return fail(client, cursor.in_tx, e, &at(), trace).await.map(Some),
            };
            if let Some(Err(e)) = committed {
                let at = format!("{}, its COMMIT", at());
                return fail(client, false, e, &at, trace).await.map(Some);
            }
            if send_commit && let Some(t) = trace.as_deref_mut() {
                t.committed = step.commit;
            }
            match &rows {
                Some(Some(row)) => {
                    for (i, &slot) in c.captures.iter().enumerate() {
                        vars.values[slot] = Some(column(row, i).with_context(at)?);
                    }
                }
                Some(None) => {
                    for &slot in &c.captures {
                        vars.values[slot] = None;
                    }
                }
                None => {}
            }
            vars.values[self.rows_slot] = Some(Value::Int(n));
            if let Some(t) = trace.as_deref_mut() {
                t.result = Some(self.result_text(c, vars, n, rows.is_some()));
            }
        }
        if let Some(cond) = &step.reject_if
            && cond
                .eval_bool(vars)
                .map_err(|m| anyhow!("{}: reject_if {m}", at()))?
        {
            rollback(client, cursor.in_tx).await?;
            cursor.in_tx = false;
            return Ok(Some(End::Rejected(step.outcome.clone())));
        }
        if let Some(cond) = &step.retry_if
            && cond
                .eval_bool(vars)
                .map_err(|m| anyhow!("{}: retry_if {m}", at()))?
        {
            rollback(client, cursor.in_tx).await?;
            cursor.in_tx = false;
            return Ok(Some(End::Aborted(Abort::Conflict)));
        }
        if let (Some(cond), Some(flag)) = (&step.flag_if, &step.flag)
            && cond
                .eval_bool(vars)
                .map_err(|m| anyhow!("{}: flag_if {m}", at()))?
        {
            stats.record_flag(flag);
            if let Some(t) = trace.as_deref_mut() {
                t.flag = Some(flag.clone());
            }
        }
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
        if step.commit && cursor.in_tx {
            cursor.in_tx = false;
            if let Some(t) = trace.as_deref_mut() {
                t.committed = true;
            }
            if let Err(e) = client.batch_execute("COMMIT").await {
                return fail(client, false, e, &at(), trace).await.map(Some);
            }
        }
        Ok(None)
    }

    /// "1 row: available=1, version=3", "0 rows", "2 rows affected".
    fn result_text(&self, c: &Compiled, vars: &Vars, n: i64, returns_rows: bool) -> String {
        if !returns_rows {
            return format!("{n} row{} affected", if n == 1 { "" } else { "s" });
        }
        let names: Vec<&str> = c
            .captures
            .iter()
            .filter_map(|&s| self.slot_names.get(s).map(String::as_str))
            .collect();
        let values: Vec<String> = c
            .captures
            .iter()
            .zip(&names)
            .map(|(&s, name)| {
                let v = vars.values[s]
                    .as_ref()
                    .and_then(crate::scenario::expr::to_text);
                format!("{name}={}", v.unwrap_or_else(|| "NULL".into()))
            })
            .collect();
        match n {
            0 => "0 rows".into(),
            1 => format!("1 row: {}", values.join(", ")),
            n => format!("{n} rows, first: {}", values.join(", ")),
        }
    }
}

/// Where an attempt is: the next action, and whether a transaction is open.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    pub next: usize,
    in_tx: bool,
}

impl Cursor {
    pub fn in_transaction(&self) -> bool {
        self.in_tx
    }
}

/// What one action did, for timelines (filled only when asked for).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Trace {
    /// The statement with its bind values shown inline.
    pub sql: Option<String>,
    pub result: Option<String>,
    /// `when` was false: the step did nothing.
    pub skipped: bool,
    pub flag: Option<String>,
    /// The step's `commit = true` committed.
    pub committed: bool,
    /// SQLSTATE and message of the error that ended the attempt.
    pub error: Option<(String, String)>,
}

/// The step's SQL as written, with each `:name` replaced by the value bound to it.
fn shown(step: &Step, params: &[TextParam]) -> String {
    let Some(sql) = &step.sql else {
        return String::new();
    };
    crate::scenario::sql::substitute(&sql.source, |name| {
        let i = sql.names.iter().position(|n| n == name);
        Ok::<_, ()>(match i.and_then(|i| params[i].0) {
            Some(Value::String(s)) => crate::scenario::sql::quote_literal(s),
            Some(v) => crate::scenario::expr::to_text(v).unwrap_or_else(|| "NULL".into()),
            None => "NULL".into(),
        })
    })
    .unwrap_or_else(|()| sql.source.clone())
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ")
}

async fn rollback(client: &Client, in_tx: bool) -> anyhow::Result<()> {
    if in_tx {
        client
            .batch_execute("ROLLBACK")
            .await
            .map_err(|e| anyhow!("ROLLBACK failed: {}", pg_message(&e)))?;
    }
    Ok(())
}

/// Classifies an error; an abort inside a transaction is rolled back before it is reported.
async fn fail(
    client: &Client,
    in_tx: bool,
    e: tokio_postgres::Error,
    at: &str,
    trace: Option<&mut Trace>,
) -> anyhow::Result<End> {
    if let Some(t) = trace {
        let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
        let msg = e
            .as_db_error()
            .map_or_else(|| pg_message(&e), |d| d.message().to_string());
        t.error = Some((code, msg));
    }
    match classify(&e) {
        ErrorKind::Abort(class) => {
            rollback(client, in_tx).await?;
            Ok(End::Aborted(class))
        }
        ErrorKind::ScenarioBug => Err(anyhow!("{at}: {}", pg_message(&e))),
        ErrorKind::Connection => Err(anyhow!("{at}: lost the connection: {}", pg_message(&e))),
    }
}

fn step_error(scenario: &Scenario, step: &Step, msg: &str) -> anyhow::Error {
    anyhow!(
        "{}:{}: key `{}`: {msg}",
        scenario.file.display(),
        step.line,
        step.key
    )
}
