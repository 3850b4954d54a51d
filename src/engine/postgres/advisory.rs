//! A lock service on a PostgreSQL server: session-level advisory locks, leased. A lock is
//! `pg_try_advisory_lock(hashtext(key))`, taken in the same statement as the next fencing token
//! (`nextval` of the run database's `contention_fence` sequence: it grows with every
//! acquisition and is never reused). The lease is the session's `idle_session_timeout`: a holder
//! whose session sits idle longer than the TTL (a paused process) is disconnected by the server,
//! which releases its locks, so another holder can take them. The paused holder only finds out
//! when it next uses the session. Release is `pg_advisory_unlock`, true only while the session
//! still holds the lock.
//!
//! It speaks SQL to one session; it must not reconnect, retry or decide what a scenario does
//! with a lock (the runner's nodes do).

use std::time::Duration;

use super::session::Session;
use crate::engine::{DbError, ErrorKind};
use crate::scenario::Value;

/// The fencing counter, in the lock node's run database (made by [`setup`]).
const SETUP: &str = "CREATE SEQUENCE IF NOT EXISTS contention_fence";

/// Creates the fencing counter (a reset of the node drops it with the run's tables).
pub async fn setup(s: &mut Session) -> Result<(), DbError> {
    s.batch(SETUP).await
}

/// Takes `key` if no other session holds it, with the next fencing token; `None` when another
/// session holds it. `lease`: a new lease (the session's idle time allowed) to set first, when
/// it differs from the session's. `leftover`: the session's locks belong to an attempt that is
/// over, and are released first (advisory locks stack, so a session that took one twice would
/// otherwise keep it after one release). Without either, one round trip.
pub async fn acquire(
    s: &mut Session,
    key: &str,
    lease: Option<Duration>,
    leftover: bool,
) -> Result<Option<i64>, DbError> {
    let mut first = Vec::new();
    if let Some(ttl) = lease {
        let ms = ttl.as_millis().clamp(1, i32::MAX as u128);
        first.push(format!("SET idle_session_timeout = {ms}"));
    }
    if leftover {
        first.push("SELECT pg_advisory_unlock_all()".to_string());
    }
    if !first.is_empty() {
        s.batch(&first.join("; ")).await?;
    }
    let token = s
        .scalar(&format!(
            "SELECT CASE WHEN pg_try_advisory_lock(hashtext({})) THEN nextval('contention_fence') END",
            literal(key)
        ))
        .await?;
    match token {
        Some(Value::Int(t)) => Ok(Some(t)),
        None | Some(Value::Empty) => Ok(None),
        Some(other) => Err(DbError {
            kind: ErrorKind::ScenarioBug,
            code: String::new(),
            message: format!("an advisory lock's fencing token came back as {other:?}"),
            position: None,
        }),
    }
}

/// Releases `key` if this session holds it (true), else nothing (false).
pub async fn release(s: &mut Session, key: &str) -> Result<bool, DbError> {
    let done = s
        .scalar(&format!(
            "SELECT pg_advisory_unlock(hashtext({}))",
            literal(key)
        ))
        .await?;
    Ok(matches!(done, Some(Value::Boolean(true))))
}

/// A string literal (standard-conforming strings: only `'` is special).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
