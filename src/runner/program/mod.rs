//! The step interpreter: one attempt at an operation (one or more transactions) on one
//! connection, for any role (a strategy's clients or an auditor).
//!
//! Variables live in numbered slots resolved once per cell (params, draws, built-ins, and the
//! columns each statement returns), so the hot path does no name lookups for bind parameters.
//! This module runs steps and says how the attempt ended; it must not retry, count operations or
//! decide when to stop (the client loop does). How a failed statement ends the attempt is
//! `failure`; lock steps are `lock`.

mod failure;
mod lock;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use evalexpr::error::EvalexprResultValue;
use evalexpr::{Context, DefaultNumericTypes, EvalexprError, EvalexprResult};

use super::nodes::Others;
use crate::engine::{DbError, ErrorKind, Exchange, Failed, Phase, Returned, Session};
use crate::isolation::Isolation;
use crate::outcome::Abort;
use crate::scenario::{
    Fault, LOCK_VARIABLES, MopKind, OnError, Scenario, Step, Think, TwoPhase, Until, Value, names,
};
use crate::stats::FaultEvent;
use crate::stats::Stats;
use failure::rollback_all;

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
    /// The client's history log, when `--history` records one (steps with a `history`
    /// annotation add their micro-operation to it).
    pub history: Option<crate::history::Recorder>,
    /// Who runs these variables (`client 3`), and since when, for the faults it injects.
    pub who: String,
    pub started: std::time::Instant,
}

impl Vars {
    pub fn new(slots: Arc<Slots>) -> Vars {
        let values = vec![None; slots.len()];
        Vars {
            slots,
            values,
            history: None,
            who: String::new(),
            started: std::time::Instant::now(),
        }
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
    /// The step's `let` variables, by slot.
    lets: Vec<usize>,
    /// The slot of the step's `catch` variable.
    catch: Option<usize>,
}

/// The steps of one role, ready to run on any connection of the cell.
#[derive(Debug)]
pub struct Program {
    steps: Vec<Compiled>,
    rows_slot: usize,
    /// Slot number -> variable name, for timelines.
    slot_names: Vec<String>,
    /// Compiled for numbered placeholders (`$1`, PostgreSQL) rather than `?` (MySQL).
    numbered: bool,
    /// The scenario file, for errors in the steps' expressions.
    file: Arc<str>,
    /// The strategy's `reject_on` and `retry_on` (empty for auditors and own session steps).
    on_error: OnError,
    /// Slots of the variables lock steps set: `acquired`, `fence`, `released`.
    lock_slots: [usize; 3],
    /// The scenario's node names, by index (for fault texts).
    node_names: Arc<[String]>,
}

/// How a client frames its transactions.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// The level each transaction is opened at.
    pub isolation: Isolation,
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
    /// The connection was lost during a COMMIT: committed or not, the client cannot know.
    Unknown,
    /// A `crash` fault: the client dropped its connections without committing.
    Crashed,
    /// The final COMMIT succeeded on some nodes and failed on a later one: partly committed.
    Partial,
    /// A connection was lost (or a node could not be reached) outside a COMMIT: the servers
    /// roll back what was open there; the client reconnects.
    Lost,
}

impl End {
    /// The client's connections are gone (lost, or dropped by a crash): it reconnects.
    pub fn lost_connections(&self) -> bool {
        matches!(self, End::Unknown | End::Crashed | End::Lost)
    }
}

impl Program {
    /// Prepares every statement of every role on one connection to learn their result columns,
    /// then resolves all names to slots. Returns the programs in the order given.
    pub async fn compile(
        session: &mut Session,
        others: &mut Others,
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
        let lock_slots = LOCK_VARIABLES.map(|n| slots.slot(n));
        let several = scenario.nodes.len() > 1;
        let base: HashSet<String> = slots.names().into_iter().collect();
        let engine = session.kind();
        let numbered = engine.numbered_placeholders();
        let mut programs = Vec::new();
        for steps in roles {
            let mut compiled = Vec::new();
            let mut returned = HashSet::new();
            for (i, step) in steps.iter().enumerate() {
                if step.lock.is_some() {
                    returned.extend(LOCK_VARIABLES.map(String::from));
                }
                let (params, captures) = match &step.sql {
                    None => (Vec::new(), Vec::new()),
                    Some(sql) => {
                        let on = if step.node == 0 {
                            &mut *session
                        } else {
                            others
                                .database(step.node, async |_| Ok(()))
                                .await?
                                .map_err(|e| step_error(scenario, step, &e.to_string()))?
                        };
                        let columns = on.describe(sql.text_for(numbered)).await.map_err(|e| {
                            step_error(scenario, step, &format!("{}: {e}", engine.title()))
                        })?;
                        let mut captures = Vec::new();
                        for c in columns {
                            if !c.readable {
                                return Err(step_error(
                                    scenario,
                                    step,
                                    &format!(
                                        "column `{}` has type {}, which the lab cannot read: cast it to an integer, a float or text",
                                        c.name, c.type_name
                                    ),
                                ));
                            }
                            captures.push(slots.slot(&c.name));
                            returned.insert(c.name);
                        }
                        // In the order the engine binds them: one per name for numbered
                        // placeholders, one per occurrence for `?`.
                        let params = if numbered {
                            sql.names.iter().map(|n| slots.slot(n)).collect()
                        } else {
                            sql.order
                                .iter()
                                .map(|&i| slots.slot(&sql.names[i]))
                                .collect()
                        };
                        (params, captures)
                    }
                };
                let lets = step.lets.iter().map(|(n, _)| slots.slot(n)).collect();
                compiled.push(Compiled {
                    step: step.clone(),
                    params,
                    captures,
                    lets,
                    catch: step.catch.as_ref().map(|n| slots.slot(n)),
                    commit_follows: !several
                        && (step.commit || i + 1 == steps.len())
                        && step.reject_if.is_none()
                        && step.retry_if.is_none()
                        && step.flag_if.is_none(),
                });
            }
            if let Some((step, name, field)) =
                names::first_unset(steps, &base, &|n| returned.contains(n))
            {
                return Err(step_error(
                    scenario,
                    step,
                    &names::unset_message(name, field, true),
                ));
            }
            programs.push(compiled);
        }
        let rows_slot = slots.slot("rows");
        let slot_names = slots.names();
        let slots = Arc::new(slots);
        let file: Arc<str> = scenario.file.display().to_string().into();
        let node_names: Arc<[String]> = scenario.nodes.iter().map(|n| n.name.clone()).collect();
        Ok((
            programs
                .into_iter()
                .map(|steps| Program {
                    steps,
                    rows_slot,
                    slot_names: slot_names.clone(),
                    numbered,
                    file: file.clone(),
                    on_error: OnError::default(),
                    lock_slots,
                    node_names: node_names.clone(),
                })
                .collect(),
            slots,
        ))
    }

    /// The strategy's error codes that are outcomes or retries, for the program that runs it.
    pub fn with_on_error(mut self, on_error: &OnError) -> Program {
        self.on_error = on_error.clone();
        self
    }

    /// Prepares this program's statements on a connection to the run database (in step
    /// order; a step on another node keeps an empty place).
    pub async fn prepare(&self, session: &mut Session) -> anyhow::Result<()> {
        self.prepare_on(session, 0).await
    }

    /// Prepares the statements of node `node`'s steps on a connection to it.
    /// A lost connection is returned as the [`DbError`] itself (a node that went down between
    /// the connect and the prepare), anything else with the step it failed at.
    pub async fn prepare_on(&self, session: &mut Session, node: usize) -> anyhow::Result<()> {
        for c in &self.steps {
            let sql = c.step.sql.as_ref().filter(|_| c.step.node == node);
            let prepared = session
                .prepare(sql.map(|s| s.text_for(self.numbered)))
                .await;
            match prepared {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::Connection => return Err(e.into()),
                Err(e) => return Err(anyhow!("{} (line {}): {e}", c.step.key, c.step.line)),
            }
        }
        Ok(())
    }

    /// The run database's SQL texts, in step order (for pooled connections' statement caches).
    pub fn sql_texts(&self) -> impl Iterator<Item = Option<&str>> {
        self.steps.iter().map(|c| {
            c.step
                .sql
                .as_ref()
                .filter(|_| c.step.node == 0)
                .map(|s| s.text_for(self.numbered))
        })
    }

    /// Runs one attempt. SQL errors that are outcomes of concurrency end the attempt as
    /// `Aborted`; errors that mean the scenario or the connection is broken are returned as `Err`.
    pub async fn attempt(
        &self,
        session: &mut Session,
        others: &mut Others,
        vars: &mut Vars,
        framing: Framing,
        stats: &mut Stats,
    ) -> anyhow::Result<End> {
        let mut cursor = Cursor::default();
        loop {
            if let Some(end) = self
                .step(session, others, vars, framing, stats, &mut cursor, None)
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
        Some(shown(&c.step, vars))
    }

    /// The index of the step with this name.
    pub fn named(&self, name: &str) -> Option<usize> {
        self.steps
            .iter()
            .position(|c| c.step.name.as_deref() == Some(name))
    }

    /// The connection to the node a step runs on: the run database's, or another node's
    /// (opened and prepared on first use; the inner error when its server cannot be reached).
    async fn on<'s>(
        &self,
        node: usize,
        session: &'s mut Session,
        others: &'s mut Others,
    ) -> anyhow::Result<Result<&'s mut Session, DbError>> {
        if node == 0 {
            return Ok(Ok(session));
        }
        // Boxed: connecting and preparing stay out of the state of every step's future.
        Box::pin(others.database(node, async |s: &mut Session| self.prepare_on(s, node).await))
            .await
    }

    /// COMMIT on `node`: its connection's error, or the error of reaching it.
    async fn commit_on(
        &self,
        node: usize,
        session: &mut Session,
        others: &mut Others,
    ) -> anyhow::Result<Result<(), DbError>> {
        Ok(match self.on(node, session, others).await? {
            Ok(conn) => conn.commit().await,
            Err(e) => Err(e),
        })
    }

    /// Runs the cursor's next action: one step (its `when`, SQL or lock, conditions, think,
    /// commit and fault), or, after the last step, the final COMMIT on every node with an open
    /// transaction. Returns how the attempt ended, if it did. With `trace`, records what was
    /// sent and what came back, for timelines.
    #[allow(clippy::too_many_arguments)]
    pub async fn step(
        &self,
        session: &mut Session,
        others: &mut Others,
        vars: &mut Vars,
        framing: Framing,
        stats: &mut Stats,
        cursor: &mut Cursor,
        mut trace: Option<&mut Trace>,
    ) -> anyhow::Result<Option<End>> {
        let index = cursor.next;
        cursor.next += 1;
        let Some(c) = self.steps.get(index) else {
            if cursor.open == 0 {
                return Ok(Some(End::Committed));
            }
            if let Some(t) = trace.as_deref_mut() {
                t.sql = Some("COMMIT".into());
            }
            // Node by node, in order: a failure after the first commit leaves the others' work
            // committed (what two-phase commit exists to prevent). Such an operation is
            // neither committed nor aborted, and is never retried.
            let mut some_committed = false;
            while cursor.open != 0 {
                let node = cursor.open.trailing_zeros() as usize;
                cursor.open &= !(1 << node);
                let committed = self.commit_on(node, session, others).await?;
                match committed {
                    Ok(()) => some_committed = true,
                    Err(e) if some_committed => {
                        if let Some(t) = trace.as_deref_mut() {
                            t.error = Some((e.code.clone(), e.message.clone()));
                        }
                        let lost = e.kind == ErrorKind::Connection;
                        rollback_all(session, others, cursor)
                            .await
                            .or_else(|r| if lost { Ok(()) } else { Err(r) })?;
                        stats.partial += 1;
                        return Ok(Some(End::Partial));
                    }
                    Err(e) => {
                        return Box::pin(
                            self.fail(session, others, cursor, e, "COMMIT", true, trace, stats),
                        )
                        .await
                        .map(Some);
                    }
                }
            }
            return Ok(Some(End::Committed));
        };
        let step = &c.step;
        let node = step.node;
        let at = || format!("{} (line {})", step.key, step.line);
        // An expression's error names the file too: `file:line: key: ...`.
        let expr_at =
            |field: &str| format!("{}:{}: key `{}.{field}`", self.file, step.line, step.key);
        if let Some(when) = &step.when
            && !when
                .eval_bool(vars)
                .map_err(|m| anyhow!("{}: {m}", expr_at("when")))?
        {
            if let Some(t) = trace.as_deref_mut() {
                t.skipped = true;
            }
            return Ok(None);
        }
        for ((name, e), &slot) in step.lets.iter().zip(&c.lets) {
            let v = e
                .eval(vars)
                .map_err(|m| anyhow!("{}: {m}", expr_at(&format!("let.{name}"))))?;
            if let Some(t) = trace.as_deref_mut() {
                t.lets.push(format!(
                    "let {name} = {}",
                    crate::scenario::expr::to_text(&v).unwrap_or_default()
                ));
            }
            vars.values[slot] = Some(v);
        }
        let think = match step.think {
            Think::None => Duration::ZERO,
            Think::Run => framing.think,
            Think::Fixed(d) => d,
        };
        // Boxed, as the failure paths and other nodes' connections are: what only some steps
        // await stays out of the state every step's future carries (see `operate`'s boxing).
        if let Some(op) = &step.lock {
            Box::pin(self.lock(
                op,
                node,
                others,
                vars,
                cursor,
                trace.as_deref_mut(),
                &expr_at,
            ))
            .await?;
        }
        if step.sql.is_some() {
            if let Some(t) = trace.as_deref_mut() {
                t.sql = Some(shown(step, vars));
            }
            // A write is recorded before it is sent: if the attempt is cut while its COMMIT
            // (pipelined with it) is in flight, the history's `info` still names it.
            if step.history.as_ref().is_some_and(|h| h.f != MopKind::Read) {
                self.record(index, step, vars)?;
            }
            let commit = framing.pipeline == Pipeline::Full && c.commit_follows && think.is_zero();
            let sent = self
                .send(
                    index,
                    commit,
                    session,
                    others,
                    vars,
                    framing,
                    stats,
                    cursor,
                    trace.as_deref_mut(),
                )
                .await?;
            if let Some(end) = sent {
                return Ok(Some(end));
            }
            // A caught failure committed nothing and read nothing.
            let caught = c.catch.is_some_and(
                |slot| !matches!(&vars.values[slot], Some(Value::String(code)) if code.is_empty()),
            );
            if commit
                && !caught
                && let Some(t) = trace.as_deref_mut()
            {
                t.committed = step.commit;
            }
            if !caught && step.history.as_ref().is_some_and(|h| h.f == MopKind::Read) {
                self.record(index, step, vars)?;
            }
        }
        // Boxed: the polling loop's state stays out of the futures of steps without `until`.
        if step.until.is_some()
            && let Some(end) = Box::pin(self.poll_until(
                session,
                others,
                vars,
                framing,
                stats,
                cursor,
                index,
                trace.as_deref_mut(),
            ))
            .await?
        {
            return Ok(Some(end));
        }
        if let Some((action, id)) = &step.two_phase {
            let id = id
                .eval(vars)
                .map_err(|m| anyhow!("{}: {m}", expr_at("two-phase id")))?;
            let id = crate::scenario::expr::to_text(&id).unwrap_or_default();
            let verb = match action {
                TwoPhase::Prepare => "PREPARE TRANSACTION",
                TwoPhase::CommitPrepared => "COMMIT PREPARED",
                TwoPhase::RollbackPrepared => "ROLLBACK PREPARED",
            };
            let open = cursor.is_open(node);
            if (*action == TwoPhase::Prepare) != open {
                return Err(anyhow!(
                    "{}: {verb}: {}",
                    at(),
                    if open {
                        "a transaction is open on this node: COMMIT PREPARED and ROLLBACK PREPARED run outside one (commit it first)"
                    } else {
                        "no transaction is open on this node to prepare (run a statement there first)"
                    }
                ));
            }
            if let Some(t) = trace.as_deref_mut() {
                let text = format!("{verb} '{id}'");
                t.sql = Some(match t.sql.take() {
                    Some(sql) => format!("{sql}; {text}"),
                    None => text,
                });
            }
            cursor.set_open(node, false);
            let done = match self.on(node, session, others).await? {
                Ok(conn) => conn.two_phase(*action, &id).await,
                Err(e) => Err(e),
            };
            if let (Ok(false), Some(t)) = (&done, trace.as_deref_mut()) {
                t.result = Some("no such prepared transaction: another session ended it".into());
            }
            if let Err(e) = done {
                let committing = *action == TwoPhase::CommitPrepared;
                return Box::pin(self.fail(
                    session,
                    others,
                    cursor,
                    e,
                    &at(),
                    committing,
                    trace,
                    stats,
                ))
                .await
                .map(Some);
            }
        }
        if let Some(cond) = &step.reject_if
            && cond
                .eval_bool(vars)
                .map_err(|m| anyhow!("{}: {m}", expr_at("reject_if")))?
        {
            rollback_all(session, others, cursor).await?;
            return Ok(Some(End::Rejected(step.outcome.clone())));
        }
        if let Some(cond) = &step.retry_if
            && cond
                .eval_bool(vars)
                .map_err(|m| anyhow!("{}: {m}", expr_at("retry_if")))?
        {
            rollback_all(session, others, cursor).await?;
            return Ok(Some(End::Aborted(Abort::Conflict)));
        }
        if let (Some(cond), Some(flag)) = (&step.flag_if, &step.flag)
            && cond
                .eval_bool(vars)
                .map_err(|m| anyhow!("{}: {m}", expr_at("flag_if")))?
        {
            stats.record_flag(flag);
            if let Some(t) = trace.as_deref_mut() {
                t.flag = Some(flag.clone());
            }
        }
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
        if step.commit && cursor.is_open(node) {
            cursor.set_open(node, false);
            if let Some(t) = trace.as_deref_mut() {
                t.committed = true;
            }
            let committed = self.commit_on(node, session, others).await?;
            if let Err(e) = committed {
                let at = format!("{}, its COMMIT", at());
                let end = Box::pin(self.failed(
                    index,
                    e,
                    &at,
                    true,
                    session,
                    others,
                    cursor,
                    vars,
                    trace.as_deref_mut(),
                    stats,
                ))
                .await?;
                if end.is_some() {
                    return Ok(end);
                }
            }
        }
        if let Some(fault) = step.fault {
            let text = match fault {
                Fault::Pause(d) => format!("pause {}", humantime::format_duration(d)),
                Fault::Crash => "crash".to_string(),
                Fault::Restart { node, down } => format!(
                    "restart node {} (down {})",
                    self.node_names.get(node).map_or("?", String::as_str),
                    humantime::format_duration(down)
                ),
            };
            if let Fault::Restart { node, down } = fault {
                let targets = others
                    .targets()
                    .ok_or_else(|| anyhow!("{}: the run has one database only", at()))?;
                let made = targets
                    .restart(node, down)
                    .await
                    .map_err(|e| anyhow!("{}: {e:#}", at()))?;
                if !made {
                    // A restart of that server is under way: no second one, and none listed.
                    if let Some(t) = trace {
                        t.fault = Some(format!("{text}: not made, a restart is under way"));
                    }
                    return Ok(None);
                }
            }
            stats.record_fault(FaultEvent {
                at_ms: vars.started.elapsed().as_secs_f64() * 1000.0,
                who: vars.who.clone(),
                step: step.key.clone(),
                fault: text.clone(),
            });
            if let Some(t) = trace {
                t.fault = Some(text);
            }
            match fault {
                Fault::Pause(d) => tokio::time::sleep(d).await,
                Fault::Restart { .. } => {}
                Fault::Crash => {
                    // Nothing is committed or rolled back: the client's connections go, and
                    // the servers roll back what they had open (prepared transactions stay).
                    cursor.open = 0;
                    return Ok(Some(End::Crashed));
                }
            }
        }
        Ok(None)
    }

    /// Sends step `index`'s statement on its node, with the `BEGIN` before it when no
    /// transaction is open there (in the same exchange, or on its own without pipelining) and,
    /// with `commit`, the `COMMIT` after it; sets `rows` and, with `trace`, what came back.
    /// Returns how the attempt ended when the statement failed.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        index: usize,
        commit: bool,
        session: &mut Session,
        others: &mut Others,
        vars: &mut Vars,
        framing: Framing,
        stats: &mut Stats,
        cursor: &mut Cursor,
        trace: Option<&mut Trace>,
    ) -> anyhow::Result<Option<End>> {
        let c = &self.steps[index];
        let step = &c.step;
        let node = step.node;
        let at = || format!("{} (line {})", step.key, step.line);
        // Without pipelining, BEGIN goes on its own first; a failure to reach the node or to
        // begin ends the step like a failed statement.
        let begin_alone = !cursor.is_open(node) && framing.pipeline == Pipeline::Off;
        let conn = match self.on(node, session, others).await? {
            Ok(conn) if begin_alone => conn.begin(framing.isolation).await.map(|()| conn),
            reached => reached,
        };
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                return Box::pin(self.failed(
                    index,
                    e,
                    &at(),
                    false,
                    session,
                    others,
                    cursor,
                    vars,
                    trace,
                    stats,
                ))
                .await;
            }
        };
        if begin_alone {
            cursor.set_open(node, true);
        }
        let exchange = Exchange {
            statement: index,
            begin: (!cursor.is_open(node)).then_some(framing.isolation),
            commit,
            params: &c.params,
            captures: &c.captures,
            keep: trace.is_some(),
        };
        let returned = match conn.exchange(exchange, &mut vars.values).await {
            Ok(r) => r,
            Err(Failed {
                phase,
                error,
                in_transaction,
            }) => {
                cursor.set_open(node, in_transaction);
                let at = match phase {
                    Phase::Commit => format!("{}, its COMMIT", at()),
                    Phase::Begin | Phase::Statement => at(),
                };
                // Pipelined, a lost connection may have taken the COMMIT with it.
                return Box::pin(self.failed(
                    index, error, &at, commit, session, others, cursor, vars, trace, stats,
                ))
                .await;
            }
        };
        if let Some(slot) = c.catch {
            vars.values[slot] = Some(Value::String(String::new()));
        }
        cursor.set_open(node, !commit);
        let (n, returns_rows) = match returned {
            Returned::Affected(n) => (n, false),
            Returned::Rows(n) => (n, true),
        };
        vars.values[self.rows_slot] = Some(Value::Int(n));
        if let Some(t) = trace {
            t.result = Some(self.result_text(c, vars, n, returns_rows));
            t.rows = conn.take_kept();
            t.notices = conn.take_notices();
        }
        Ok(None)
    }

    /// A step's `until`: while its condition is false, ends the step's transaction (the step
    /// started it, and reads: a commit), sleeps `poll` and runs the statement again in a new
    /// transaction, so a snapshot at any level sees what others committed meanwhile. Past
    /// [`Until::WAIT`] the attempt ends as the rejection [`Until::TIMEOUT`]. A cut or an
    /// interrupt drops the attempt, this loop with it, as at any other statement.
    #[allow(clippy::too_many_arguments)]
    async fn poll_until(
        &self,
        session: &mut Session,
        others: &mut Others,
        vars: &mut Vars,
        framing: Framing,
        stats: &mut Stats,
        cursor: &mut Cursor,
        index: usize,
        mut trace: Option<&mut Trace>,
    ) -> anyhow::Result<Option<End>> {
        let c = &self.steps[index];
        let (step, Some(until)) = (&c.step, &c.step.until) else {
            return Ok(None);
        };
        let node = step.node;
        let at = || format!("{} (line {})", step.key, step.line);
        let started = std::time::Instant::now();
        let mut runs = 1u64;
        loop {
            if until.expr.eval_bool(vars).map_err(|m| {
                anyhow!("{}:{}: key `{}.until`: {m}", self.file, step.line, step.key)
            })? {
                if runs > 1
                    && let Some(t) = trace.as_deref_mut()
                {
                    t.result = t.result.take().map(|r| format!("{r} (run {runs} times)"));
                }
                return Ok(None);
            }
            if cursor.is_open(node) {
                cursor.set_open(node, false);
                let committed = self.commit_on(node, session, others).await?;
                if let Err(e) = committed {
                    return Box::pin(self.fail(
                        session,
                        others,
                        cursor,
                        e,
                        &at(),
                        true,
                        trace,
                        stats,
                    ))
                    .await
                    .map(Some);
                }
            }
            if started.elapsed() >= Until::WAIT {
                rollback_all(session, others, cursor).await?;
                return Ok(Some(End::Rejected(Until::TIMEOUT.into())));
            }
            tokio::time::sleep(until.poll).await;
            runs += 1;
            let sent = self
                .send(
                    index,
                    false,
                    session,
                    others,
                    vars,
                    framing,
                    stats,
                    cursor,
                    trace.as_deref_mut(),
                )
                .await?;
            if let Some(end) = sent {
                return Ok(Some(end));
            }
        }
    }

    /// Adds the step's micro-operation to the client's history log, if one is recorded.
    fn record(&self, index: usize, step: &Step, vars: &mut Vars) -> anyhow::Result<()> {
        let (Some(h), Some(_)) = (&step.history, &vars.history) else {
            return Ok(());
        };
        let at = |field: &str| format!("{}:{}: key `{}.{field}`", self.file, step.line, step.key);
        let key = h
            .key
            .eval(vars)
            .map_err(|m| anyhow!("{}: {m}", at("history.key")))?;
        let value = h
            .value
            .eval(vars)
            .map_err(|m| anyhow!("{}: {m}", at("history.value")))?;
        if let Some(r) = &mut vars.history {
            r.mop(index + 1, h.f, &key, &value);
        }
        Ok(())
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

/// Where an attempt is: the next action, the nodes with an open transaction, and the
/// attempt's holder token for lock steps.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    pub next: usize,
    /// One bit per node (node 0: the run database).
    open: u64,
    holder: Option<String>,
}

impl Cursor {
    pub fn in_transaction(&self) -> bool {
        self.open != 0
    }

    fn is_open(&self, node: usize) -> bool {
        self.open & (1 << node) != 0
    }

    fn set_open(&mut self, node: usize, open: bool) {
        if open {
            self.open |= 1 << node;
        } else {
            self.open &= !(1 << node);
        }
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
    /// The engine's code (a SQLSTATE on PostgreSQL) and message of the error that ended the
    /// attempt.
    pub error: Option<(String, String)>,
    /// The abort class of that error, when it was an outcome of concurrency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<Abort>,
    /// Every row the statement returned, as the server named the columns (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<crate::engine::written::ResultSet>,
    /// The notices the server sent while the step ran (replays, on PostgreSQL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<crate::engine::written::Output>,
    /// The step's `let` variables with their values: `let callback = 1000`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lets: Vec<String>,
    /// The fault the step injected after it ran (`pause 2s`, `crash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// The step's SQL as written, with each `:name` replaced by the value bound to it.
fn shown(step: &Step, vars: &Vars) -> String {
    let Some(sql) = &step.sql else {
        return String::new();
    };
    crate::scenario::sql::substitute(&sql.source, |name| {
        Ok::<_, ()>(
            match vars.slots.get(name).and_then(|i| vars.values[i].as_ref()) {
                Some(Value::String(s)) => crate::scenario::sql::quote_literal(s),
                Some(v) => crate::scenario::expr::to_text(v).unwrap_or_else(|| "NULL".into()),
                None => "NULL".into(),
            },
        )
    })
    .unwrap_or_else(|()| sql.source.clone())
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ")
}

fn step_error(scenario: &Scenario, step: &Step, msg: &str) -> anyhow::Error {
    anyhow!(
        "{}:{}: key `{}`: {msg}",
        scenario.file.display(),
        step.line,
        step.key
    )
}
