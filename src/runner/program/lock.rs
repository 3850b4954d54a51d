//! Lock steps (`lock = { acquire = KEY, ttl = MS }`, `lock = { release = KEY }`): the key and
//! TTL evaluated, the lock asked of the node's lock service (Redis, or PostgreSQL's advisory
//! locks) with the attempt's own holder token, and the variables `acquired`, `fence` and
//! `released` set.
//!
//! It must not know how a lock service works (the runner's nodes and the engines do).

use std::time::Duration;

use anyhow::anyhow;

use super::{Cursor, Program, Trace, Vars};
use crate::runner::nodes::Others;
use crate::scenario::{LockOp, Value};

impl Program {
    /// A lock-service step: takes the lock with a fencing token for the attempt's own holder
    /// token, or releases it if that token still holds it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn lock(
        &self,
        op: &LockOp,
        node: usize,
        others: &mut Others,
        vars: &mut Vars,
        cursor: &mut Cursor,
        trace: Option<&mut Trace>,
        expr_at: &(dyn Fn(&str) -> String + Sync),
    ) -> anyhow::Result<()> {
        let text = |v: Value| crate::scenario::expr::to_text(&v).unwrap_or_default();
        let [acquired, fence, released] = self.lock_slots;
        let holder = cursor
            .holder
            .get_or_insert_with(|| {
                static HOLDERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                format!(
                    "holder-{}",
                    HOLDERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                )
            })
            .clone();
        let (sent, result) = match op {
            LockOp::Acquire { key, ttl_ms } => {
                let key = text(
                    key.eval(vars)
                        .map_err(|m| anyhow!("{}: {m}", expr_at("lock.acquire")))?,
                );
                let ttl = match ttl_ms
                    .eval(vars)
                    .map_err(|m| anyhow!("{}: {m}", expr_at("lock.ttl")))?
                {
                    Value::Int(ms) if ms > 0 => Duration::from_millis(ms as u64),
                    Value::Float(ms) if ms > 0.0 => Duration::from_secs_f64(ms / 1000.0),
                    other => {
                        return Err(anyhow!(
                            "{}: the TTL is {other:?}: expected a positive number of milliseconds",
                            expr_at("lock.ttl")
                        ));
                    }
                };
                let token = others
                    .lock_acquire(node, &key, &holder, ttl)
                    .await
                    .map_err(|e| anyhow!("{}: {e:#}", expr_at("lock")))?;
                vars.values[acquired] = Some(Value::Boolean(token.is_some()));
                vars.values[fence] = Some(token.map_or(Value::Empty, Value::Int));
                (
                    format!(
                        "LOCK acquire '{key}' for {} as {holder}",
                        humantime::format_duration(ttl)
                    ),
                    match token {
                        Some(t) => format!("acquired, fencing token {t}"),
                        None => "not acquired: another holder has it".to_string(),
                    },
                )
            }
            LockOp::Release { key } => {
                let key = text(
                    key.eval(vars)
                        .map_err(|m| anyhow!("{}: {m}", expr_at("lock.release")))?,
                );
                let done = others
                    .lock_release(node, &key, &holder)
                    .await
                    .map_err(|e| anyhow!("{}: {e:#}", expr_at("lock")))?;
                vars.values[released] = Some(Value::Boolean(done));
                (
                    format!("LOCK release '{key}' as {holder}"),
                    if done {
                        "released".to_string()
                    } else {
                        "not released: the lock expired (or another holder has it now)".to_string()
                    },
                )
            }
        };
        if let Some(t) = trace {
            t.sql = Some(sent);
            t.result = Some(result);
        }
        Ok(())
    }
}
