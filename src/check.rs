//! Invariants: after the clients stop, each `sql` invariant is run on the run database and
//! yields a number (0 = holds, otherwise the size of the damage); each `observed_by` invariant is
//! the count of an auditor's flags. This module measures; it must not decide pass or fail
//! (that is `expect`) nor print.

use anyhow::anyhow;
use serde::Serialize;

use crate::db::RunDatabase;
use crate::db::server::pg_message;
use crate::db::value::column;
use crate::runner::Outcome;
use crate::scenario::{InvariantSource, Scenario, Side, Value};

/// One invariant's measured damage.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub name: String,
    pub anomaly: String,
    pub side: Side,
    pub value: i64,
}

pub async fn measure(
    db: &RunDatabase,
    scenario: &Scenario,
    outcome: &Outcome,
) -> anyhow::Result<Vec<Measured>> {
    let client = db.connect(&[]).await?;
    let mut out = Vec::new();
    for inv in &scenario.invariants {
        let value = match &inv.source {
            InvariantSource::Sql(sql) => {
                let row = client.query_opt(sql.as_str(), &[]).await.map_err(|e| {
                    anyhow!(
                        "{}: invariant `{}`: {}",
                        scenario.file.display(),
                        inv.name,
                        pg_message(&e)
                    )
                })?;
                let v = match row {
                    Some(r) if !r.is_empty() => column(&r, 0)?,
                    _ => Value::Empty,
                };
                match v {
                    Value::Int(i) => i,
                    Value::Float(f) => f.round() as i64,
                    Value::Boolean(b) => i64::from(b),
                    Value::Empty => 0,
                    other => {
                        return Err(anyhow!(
                            "{}: invariant `{}` returned {other:?}; it must return one number (0 = holds)",
                            scenario.file.display(),
                            inv.name
                        ));
                    }
                }
            }
            InvariantSource::Observed { auditor } => outcome
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
