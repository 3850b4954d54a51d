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
use tokio_postgres::types::ToSql;
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
        Err(EvalexprError::FunctionIdentifierNotFound(identifier.to_string()))
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
}

/// The steps of one role, ready to run on any connection of the cell.
#[derive(Debug)]
pub struct Program {
    steps: Vec<Compiled>,
    rows_slot: usize,
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
    ) -> anyhow::Result<(Vec<Program>, Arc<Slots>)> {
        let mut slots = Slots::default();
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
            for step in steps.iter() {
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
                });
            }
            programs.push(compiled);
        }
        let rows_slot = slots.slot("rows");
        let slots = Arc::new(slots);
        Ok((
            programs
                .into_iter()
                .map(|steps| Program { steps, rows_slot })
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
        begin: &str,
        think: Duration,
        stats: &mut Stats,
    ) -> anyhow::Result<End> {
        let mut in_tx = false;
        for (c, stmt) in self.steps.iter().zip(stmts) {
            let step = &c.step;
            let at = || format!("{} (line {})", step.key, step.line);
            if let Some(when) = &step.when {
                if !when.eval_bool(vars).map_err(|m| anyhow!("{}: when {m}", at()))? {
                    continue;
                }
            }
            if let Some(stmt) = stmt {
                if !in_tx {
                    if let Err(e) = client.batch_execute(begin).await {
                        return fail(client, false, e, &at()).await;
                    }
                    in_tx = true;
                }
                let result = {
                    let params: Vec<TextParam> = c
                        .params
                        .iter()
                        .map(|&s| TextParam(vars.values[s].as_ref()))
                        .collect();
                    let refs: Vec<&(dyn ToSql + Sync)> =
                        params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                    if c.captures.is_empty() {
                        client.execute(stmt, &refs).await.map(|n| (n as i64, None))
                    } else {
                        client
                            .query(stmt, &refs)
                            .await
                            .map(|rows| (rows.len() as i64, Some(rows)))
                    }
                };
                let (n, rows) = match result {
                    Ok(r) => r,
                    Err(e) => return fail(client, in_tx, e, &at()).await,
                };
                if let Some(rows) = rows {
                    match rows.first() {
                        Some(row) => {
                            for (i, &slot) in c.captures.iter().enumerate() {
                                vars.values[slot] = Some(column(row, i).with_context(at)?);
                            }
                        }
                        None => {
                            for &slot in &c.captures {
                                vars.values[slot] = None;
                            }
                        }
                    }
                }
                vars.values[self.rows_slot] = Some(Value::Int(n));
            }
            if let Some(cond) = &step.reject_if {
                if cond.eval_bool(vars).map_err(|m| anyhow!("{}: reject_if {m}", at()))? {
                    rollback(client, in_tx).await?;
                    return Ok(End::Rejected(step.outcome.clone()));
                }
            }
            if let Some(cond) = &step.retry_if {
                if cond.eval_bool(vars).map_err(|m| anyhow!("{}: retry_if {m}", at()))? {
                    rollback(client, in_tx).await?;
                    return Ok(End::Aborted(Abort::Conflict));
                }
            }
            if let (Some(cond), Some(flag)) = (&step.flag_if, &step.flag) {
                if cond.eval_bool(vars).map_err(|m| anyhow!("{}: flag_if {m}", at()))? {
                    stats.record_flag(flag);
                }
            }
            match step.think {
                Think::None => {}
                Think::Run if think.is_zero() => {}
                Think::Run => tokio::time::sleep(think).await,
                Think::Fixed(d) => tokio::time::sleep(d).await,
            }
            if step.commit && in_tx {
                in_tx = false;
                if let Err(e) = client.batch_execute("COMMIT").await {
                    return fail(client, false, e, &at()).await;
                }
            }
        }
        if in_tx {
            if let Err(e) = client.batch_execute("COMMIT").await {
                return fail(client, false, e, "COMMIT").await;
            }
        }
        Ok(End::Committed)
    }
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
) -> anyhow::Result<End> {
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
