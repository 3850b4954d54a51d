//! Sessions that run their steps as written (`as_written = true`, every session of an
//! isolation-tester spec): the step's SQL goes to the server unchanged, on a connection the
//! runner never frames, so `BEGIN`, `COMMIT`, `ROLLBACK`, `SET` and advisory locks are steps
//! like any other, a step outside a transaction runs in autocommit, and a session that fails
//! inside a transaction stays in it (PostgreSQL answers its later statements with 25P02 and its
//! `COMMIT` with a rollback) until one of its own steps ends it. Every result set and notice is
//! kept for the timeline; what the last run of each step returned is kept for the invariants as
//! `session.step.rows` (0 for a step not run), `session.step.column` (its first row) and `session.step.column.all`
//! (a tuple of every kept row's value).
//!
//! Like `session`, the task never decides what runs next: the scheduler sends it a step.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use indexmap::IndexMap;
use tokio::sync::mpsc;

use super::session::{Command, Done, Handle, Observed, Report};
use crate::engine::ErrorKind;
use crate::engine::written::Output;
use crate::engine::{self};
use crate::runner::program::{Program, Trace};
use crate::scenario::{Session, Value};

/// Starts the session's task: its setup first (an error there stops the replay).
pub async fn start(
    mut conn: engine::Session,
    session: &Session,
    program: Arc<Program>,
) -> anyhow::Result<Handle> {
    let name = session.name.clone();
    let steps = Arc::new(
        session
            .written
            .clone()
            .ok_or_else(|| anyhow!("session {name} does not run its steps as written"))?,
    );
    let pid = conn.server_id().await?;
    let mut setup_outputs = Vec::new();
    if let Some(sql) = &session.setup {
        let w = conn
            .run_written(sql)
            .await
            .map_err(|e| anyhow!("session {name}: setup: {e}"))?;
        if let Some(e) = w.error {
            bail!("session {name}: setup failed: {e}");
        }
        setup_outputs = w.outputs;
    }
    let (commands, mut inbox) = mpsc::unbounded_channel();
    let (outbox, reports) = mpsc::unbounded_channel();
    let teardown = session.teardown.clone();
    let task_steps = steps.clone();
    let task = tokio::spawn(async move {
        // A step the schedule never ran returned no rows.
        let mut seen: IndexMap<String, Value> = task_steps
            .iter()
            .map(|s| (format!("{}.rows", s.name), Value::Int(0)))
            .collect();
        while let Some(cmd) = inbox.recv().await {
            let Command::Run(index) = cmd else {
                let _ = outbox.send(Report::Done(Box::new(Done {
                    index: 0,
                    trace: Trace::default(),
                    end: None,
                    failure: Some("a session run as written takes named steps only".into()),
                    outputs: Vec::new(),
                })));
                continue;
            };
            let step = &task_steps[index];
            let _ = outbox.send(Report::Starting(step.sql.clone()));
            let mut trace = Trace {
                sql: Some(step.sql.clone()),
                ..Trace::default()
            };
            let (outputs, failure) = match conn.run_written(&step.sql).await {
                Ok(w) => {
                    if let Some(e) = w.error {
                        if e.code.is_empty() && e.kind == ErrorKind::Connection {
                            (
                                w.outputs,
                                Some(format!("{} ({}): {e}", step.key, step.line)),
                            )
                        } else {
                            if let ErrorKind::Abort(class) = e.kind {
                                trace.aborted = Some(class);
                            }
                            trace.error = Some((e.code, e.message));
                            (w.outputs, None)
                        }
                    } else {
                        (w.outputs, None)
                    }
                }
                Err(e) => (
                    Vec::new(),
                    Some(format!("{} ({}): {e}", step.key, step.line)),
                ),
            };
            observe(&mut seen, &step.name, &outputs);
            if outbox
                .send(Report::Done(Box::new(Done {
                    index,
                    trace,
                    end: None,
                    failure,
                    outputs,
                })))
                .is_err()
            {
                break;
            }
        }
        // Like the isolation tester, a teardown that fails does not fail the replay.
        if let Some(sql) = teardown {
            let _ = conn.run_written(&sql).await;
        }
        Observed {
            vars: seen.into_iter().collect(),
        }
    });
    let mut handle = Handle::from_parts(name, pid, program, steps, commands, reports, task);
    handle.setup_outputs = setup_outputs;
    Ok(handle)
}

/// What the step's last result set returned, as variables for the invariants.
fn observe(seen: &mut IndexMap<String, Value>, step: &str, outputs: &[Output]) {
    let last = outputs.iter().rev().find_map(|o| match o {
        Output::Rows(set) => Some(set),
        _ => None,
    });
    let Some(set) = last else {
        return;
    };
    seen.insert(format!("{step}.rows"), Value::Int(set.total as i64));
    for (c, column) in set.columns.iter().enumerate() {
        let values: Vec<Value> = set
            .rows
            .iter()
            .map(|r| {
                r.get(c)
                    .cloned()
                    .flatten()
                    .map_or(Value::Empty, |t| typed(&t))
            })
            .collect();
        seen.insert(
            format!("{step}.{column}"),
            values.first().cloned().unwrap_or(Value::Empty),
        );
        seen.insert(format!("{step}.{column}.all"), Value::Tuple(values));
    }
}

/// A value the server sent as text: a number when it reads as one, `t`/`f` as booleans.
fn typed(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        Value::Int(i)
    } else if let Ok(f) = text.parse::<f64>()
        && text.chars().any(|c| c.is_ascii_digit())
    {
        Value::Float(f)
    } else {
        match text {
            "t" => Value::Boolean(true),
            "f" => Value::Boolean(false),
            _ => Value::String(text.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::written::ResultSet;

    #[test]
    fn every_row_of_the_last_result_set_is_observed() {
        let mut seen = IndexMap::new();
        let set = ResultSet {
            columns: vec!["id".into(), "name".into()],
            rows: vec![
                vec![Some("1".into()), Some("a".into())],
                vec![Some("2".into()), None],
            ],
            total: 2,
        };
        observe(&mut seen, "read", &[Output::Rows(set)]);
        assert_eq!(seen["read.rows"], Value::Int(2));
        assert_eq!(seen["read.id"], Value::Int(1));
        assert_eq!(
            seen["read.name.all"],
            Value::Tuple(vec![Value::String("a".into()), Value::Empty])
        );
    }
}
