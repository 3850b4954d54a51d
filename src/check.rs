//! Invariants: after the clients stop, each `sql` invariant is run on the run database and
//! yields a number (0 = holds, otherwise the size of the damage); each `observed_by` invariant is
//! the count of an auditor's flags; in replays, each `expr` invariant is evaluated over what the
//! sessions observed (true = 1). This module measures; it must not decide pass or fail
//! (that is `expect`) nor print.

use anyhow::anyhow;
use evalexpr::ContextWithMutableVariables;
use serde::{Deserialize, Serialize};

use crate::runner::nodes::Targets;
use crate::scenario::{InvariantSource, Scenario, Side, Value};
use crate::stats::Stats;

/// What invariants are measured against, besides the run database.
#[derive(Default)]
pub struct Sources<'a> {
    /// Auditors' stats, with their flags (load runs).
    pub auditors: &'a [(String, Stats)],
    /// The sessions' observations as `session.variable` (replays).
    pub sessions: Option<&'a evalexpr::HashMapContext>,
}

/// One invariant's measured damage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub name: String,
    pub anomaly: String,
    pub side: Side,
    pub value: i64,
}

/// How long one SQL invariant may take.
pub const INVARIANT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn measure(
    targets: &Targets,
    scenario: &Scenario,
    sources: Sources<'_>,
) -> anyhow::Result<Vec<Measured>> {
    // One connection per database node, opened when an invariant first reads it.
    let mut sessions: Vec<Option<crate::engine::Session>> =
        (0..targets.len()).map(|_| None).collect();
    let mut out = Vec::new();
    for inv in &scenario.invariants {
        let value = match &inv.source {
            InvariantSource::Sql(sql) => {
                let v = read(targets, &mut sessions, inv.node, sql, scenario, &inv.name).await?;
                number(v, scenario, &inv.name)?
            }
            InvariantSource::Reads { reads, value } => {
                let mut ctx = evalexpr::HashMapContext::new();
                for (name, p) in &scenario.params {
                    ctx.set_value(name.clone(), p.value.clone())
                        .expect("plain variables");
                }
                for (node, sql) in reads {
                    let v = read(targets, &mut sessions, *node, sql, scenario, &inv.name).await?;
                    let v = number(v, scenario, &inv.name)?;
                    ctx.set_value(scenario.nodes[*node].name.clone(), Value::Int(v))
                        .expect("plain variables");
                }
                match value.eval(&ctx).map_err(|m| {
                    anyhow!(
                        "{}: invariant `{}`: value: {m}",
                        scenario.file.display(),
                        inv.name
                    )
                })? {
                    Value::Boolean(b) => i64::from(b),
                    Value::Int(i) => i,
                    Value::Float(f) => f.round() as i64,
                    other => {
                        return Err(anyhow!(
                            "{}: invariant `{}`: value gave {other:?}: expected a number (0 = holds)",
                            scenario.file.display(),
                            inv.name
                        ));
                    }
                }
            }
            InvariantSource::Expr(e) => {
                let ctx = sources.sessions.ok_or_else(|| {
                    anyhow!(
                        "invariant `{}` reads replay sessions: it can only be measured by a replay",
                        inv.name
                    )
                })?;
                match e
                    .eval(ctx)
                    .map_err(|m| anyhow!("invariant `{}`: {m}", inv.name))?
                {
                    Value::Boolean(b) => i64::from(b),
                    Value::Int(i) => i,
                    Value::Float(f) => f.round() as i64,
                    other => {
                        return Err(anyhow!(
                            "invariant `{}` gave {other:?}: expected true/false or a number",
                            inv.name
                        ));
                    }
                }
            }
            InvariantSource::Observed { auditor } => sources
                .auditors
                .iter()
                .filter(|(a, _)| a == auditor)
                .map(|(_, s)| s.flags.get(&inv.name).copied().unwrap_or(0) as i64)
                .sum(),
        };
        out.push(Measured {
            name: inv.name.clone(),
            anomaly: inv.anomaly.clone(),
            side: inv.side,
            value,
        });
    }
    Ok(out)
}

/// Runs one invariant's SQL on node `node` (its connection opened on first use), bounded by
/// [`INVARIANT_TIMEOUT`]: the first column of the first row.
async fn read(
    targets: &Targets,
    sessions: &mut [Option<crate::engine::Session>],
    node: usize,
    sql: &str,
    scenario: &Scenario,
    name: &str,
) -> anyhow::Result<Value> {
    let on = scenario
        .nodes
        .get(node)
        .map(|n| format!(" (node {})", n.name))
        .unwrap_or_default();
    if sessions[node].is_none() {
        sessions[node] = Some(targets.session(node, &[]).await?);
    }
    let session = sessions[node].as_mut().expect("opened above");
    let answered = tokio::time::timeout(INVARIANT_TIMEOUT, session.scalar(sql)).await;
    let Ok(answered) = answered else {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), session.cancel()).await;
        return Err(anyhow!(
            "{}: invariant `{name}`{on} did not answer within {} s (cancelled on the server; is something holding a lock on what it reads?)",
            scenario.file.display(),
            INVARIANT_TIMEOUT.as_secs()
        ));
    };
    answered
        .map_err(|e| {
            let at = e
                .line_in(sql)
                .map(|n| format!(", line {n} of its SQL"))
                .unwrap_or_default();
            anyhow!(
                "{}: invariant `{name}`{on}{at}: {}: {e}",
                scenario.file.display(),
                session.kind().title()
            )
        })?
        .ok_or_else(|| {
            anyhow!(
                "{}: invariant `{name}`{on} returned no row; it must return one number (0 = holds)",
                scenario.file.display(),
            )
        })
}

/// An invariant's answer as a number of violations.
fn number(v: Value, scenario: &Scenario, name: &str) -> anyhow::Result<i64> {
    Ok(match v {
        Value::Int(i) => i,
        Value::Float(f) => f.round() as i64,
        Value::Boolean(b) => i64::from(b),
        // Unknown is not "holds": a NULL would hide damage (sum() over no rows).
        Value::Empty => {
            return Err(anyhow!(
                "{}: invariant `{name}` returned NULL; it must return one number (0 = holds): use coalesce() if NULL means none",
                scenario.file.display(),
            ));
        }
        other => {
            return Err(anyhow!(
                "{}: invariant `{name}` returned {other:?}; it must return one number (0 = holds)",
                scenario.file.display(),
            ));
        }
    })
}
