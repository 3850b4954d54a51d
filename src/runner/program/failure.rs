//! How an attempt ends when a statement fails: an outcome of concurrency (rolled back and
//! classified by the strategy's `reject_on`/`retry_on` and the engine's classes), a lost
//! connection (`unknown` during a COMMIT, `lost` elsewhere), a failure that the step's `catch`
//! turns into a variable so that the attempt goes on, or a broken scenario (an error).
//!
//! It classifies and ends transactions; it must not retry or count operations (the client loop
//! does), nor run steps (the interpreter in `mod.rs` does).

use anyhow::anyhow;

use super::{Cursor, End, Program, Trace, Vars};
use crate::engine::{DbError, ErrorKind, Session};
use crate::outcome::Abort;
use crate::runner::nodes::Others;
use crate::scenario::Value;
use crate::stats::Stats;

impl Program {
    /// Classifies an error and ends the attempt: every transaction still open (the cursor says
    /// which) is rolled back first. The strategy's `reject_on` and `retry_on` come first: a
    /// listed code is an outcome (or a retry) whatever its class; an unlisted error of class
    /// `other` is counted by its code. A connection lost during a COMMIT is an unknown outcome.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fail(
        &self,
        session: &mut Session,
        others: &mut Others,
        cursor: &mut Cursor,
        e: DbError,
        at: &str,
        committing: bool,
        trace: Option<&mut Trace>,
        stats: &mut Stats,
    ) -> anyhow::Result<End> {
        let mapped =
            if let Some((_, outcome)) = self.on_error.reject.iter().find(|(c, _)| *c == e.code) {
                Some(End::Rejected(outcome.clone()))
            } else if self.on_error.retry.contains(&e.code) {
                Some(End::Aborted(Abort::Conflict))
            } else {
                None
            };
        if let Some(t) = trace {
            t.notices = session.take_notices();
            t.error = Some((e.code.clone(), e.message.clone()));
            t.aborted = match (&mapped, e.kind) {
                (Some(End::Aborted(class)), _) => Some(*class),
                (None, ErrorKind::Abort(class)) => Some(class),
                _ => None,
            };
        }
        if e.kind == ErrorKind::Connection {
            // The client drops every connection and reconnects: the servers roll back what
            // was open (nothing to roll back on a lost connection).
            cursor.open = 0;
            if committing {
                stats.unknown += 1;
                return Ok(End::Unknown);
            }
            stats.lost += 1;
            return Ok(End::Lost);
        }
        if let Some(end) = mapped {
            rollback_all(session, others, cursor).await?;
            return Ok(end);
        }
        match e.kind {
            ErrorKind::Abort(class) => {
                rollback_all(session, others, cursor).await?;
                if class == Abort::Other {
                    stats.record_other_code(&e.code);
                }
                Ok(End::Aborted(class))
            }
            ErrorKind::ScenarioBug => Err(anyhow!("{at}: {e}")),
            ErrorKind::Connection => unreachable!("handled above"),
        }
    }

    /// A failure of a step with `catch`: the step's transaction on its node ends (rolled back,
    /// or, when the connection was lost, dropped with it: the next use reconnects), the catch
    /// variable gets the error's code (`connection` for a lost or unreachable server,
    /// `unknown` for a COMMIT whose connection went), `rows` is 0, and the attempt goes on.
    /// False when the failure cannot be caught: a broken scenario, or a lost connection to the
    /// run database, which every step of the attempt stands on.
    #[allow(clippy::too_many_arguments)]
    async fn catch(
        &self,
        index: usize,
        e: &DbError,
        committing: bool,
        session: &mut Session,
        others: &mut Others,
        cursor: &mut Cursor,
        vars: &mut Vars,
        trace: Option<&mut Trace>,
    ) -> anyhow::Result<bool> {
        let c = &self.steps[index];
        let (Some(slot), node) = (c.catch, c.step.node) else {
            return Ok(false);
        };
        let lost = e.kind == ErrorKind::Connection;
        if e.kind == ErrorKind::ScenarioBug || (lost && node == 0) {
            return Ok(false);
        }
        let code = match (lost, committing) {
            (true, true) => "unknown",
            (true, false) => "connection",
            (false, _) if e.code.is_empty() => "?",
            (false, _) => e.code.as_str(),
        };
        if lost {
            others.forget(node);
        } else if cursor.is_open(node) {
            rollback(node, session, others).await?;
        }
        cursor.set_open(node, false);
        vars.values[slot] = Some(Value::String(code.to_string()));
        vars.values[self.rows_slot] = Some(Value::Int(0));
        if let Some(t) = trace {
            t.error = Some((e.code.clone(), e.message.clone()));
            t.result = Some(format!(
                "caught: {} = '{code}', the attempt goes on",
                self.slot_names[slot]
            ));
        }
        Ok(true)
    }

    /// A failed statement of step `index`: caught (`Ok(None)`, the attempt goes on) when the
    /// step has `catch` and the failure can be caught, else the attempt ends as [`Self::fail`]
    /// says.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn failed(
        &self,
        index: usize,
        e: DbError,
        at: &str,
        committing: bool,
        session: &mut Session,
        others: &mut Others,
        cursor: &mut Cursor,
        vars: &mut Vars,
        mut trace: Option<&mut Trace>,
        stats: &mut Stats,
    ) -> anyhow::Result<Option<End>> {
        let caught = self
            .catch(
                index,
                &e,
                committing,
                session,
                others,
                cursor,
                vars,
                trace.as_deref_mut(),
            )
            .await?;
        if caught {
            return Ok(None);
        }
        self.fail(session, others, cursor, e, at, committing, trace, stats)
            .await
            .map(Some)
    }
}

/// Rolls back every open transaction of the attempt.
pub(super) async fn rollback_all(
    session: &mut Session,
    others: &mut Others,
    cursor: &mut Cursor,
) -> anyhow::Result<()> {
    while cursor.open != 0 {
        let node = cursor.open.trailing_zeros() as usize;
        cursor.open &= !(1 << node);
        rollback(node, session, others).await?;
    }
    Ok(())
}

/// Rolls back node `node`'s transaction. A connection that is gone needs none (its server
/// ended the transaction): another node's is dropped, to be reopened at its next use, and the
/// run database's fails at its next statement, which ends the attempt as lost.
async fn rollback(node: usize, session: &mut Session, others: &mut Others) -> anyhow::Result<()> {
    let conn = if node == 0 {
        Some(&mut *session)
    } else {
        others.opened(node)
    };
    let Some(conn) = conn else {
        return Ok(());
    };
    match conn.rollback().await {
        Ok(()) => Ok(()),
        Err(e) if e.kind == ErrorKind::Connection => {
            if node != 0 {
                others.forget(node);
            }
            Ok(())
        }
        Err(e) => Err(anyhow!("ROLLBACK failed: {e}")),
    }
}
