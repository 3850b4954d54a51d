//! Statements run as written, for replays: the SQL text goes to the server unchanged (several
//! statements, `BEGIN`, `COMMIT`, `ROLLBACK`, `SET` alike) and everything the server answers is
//! kept in order: each result set with every column as the server named it (names may repeat)
//! and its rows as text (at most [`MAX_ROWS`] per result set, the total still counted), the
//! row counts of statements without results, and the notices (`RAISE NOTICE`) where they came.
//!
//! MariaDB reports no notices here, and a result set without rows is indistinguishable from a
//! statement without results (sqlx gives no column description without a row): it is shown as
//! affecting 0 rows.
//!
//! It also turns a session's transaction characteristics (isolation level, read only,
//! deferrable) into the engine's session settings. This module dispatches to the engines; it
//! must not decide what runs when, nor print.

use serde::{Deserialize, Serialize};

use super::{DbError, EngineKind, Session};
use crate::isolation::Isolation;

/// Rows kept per result set; the rest are counted, not kept.
pub const MAX_ROWS: usize = 200;

/// One result set as the server sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultSet {
    pub columns: Vec<String>,
    /// Values as text, `None` for NULL; the first [`MAX_ROWS`] rows.
    pub rows: Vec<Vec<Option<String>>>,
    /// How many rows the server returned.
    pub total: u64,
}

impl ResultSet {
    /// Some rows were not kept.
    pub fn is_cut(&self) -> bool {
        (self.rows.len() as u64) < self.total
    }
}

/// One thing the server answered, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Output {
    Rows(ResultSet),
    /// A statement without result columns: the rows it affected.
    Affected {
        rows: u64,
    },
    /// A notice: its severity (`NOTICE`, `WARNING`...) and message.
    Notice {
        severity: String,
        message: String,
    },
}

/// What SQL run as written gave: everything before the error, and the error.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub outputs: Vec<Output>,
    pub error: Option<DbError>,
}

/// A session's transaction characteristics, for the transactions it opens itself (and the
/// statements it runs outside one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Characteristics {
    pub isolation: Option<Isolation>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub deferrable: bool,
}

impl Characteristics {
    pub fn is_default(&self) -> bool {
        *self == Characteristics::default()
    }

    /// The engine's session settings that give these characteristics to every transaction the
    /// session opens without naming them; an error names what the engine lacks.
    pub fn settings(&self, engine: EngineKind) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        match engine {
            EngineKind::Postgres => {
                if let Some(level) = self.isolation {
                    let name = match level {
                        Isolation::Ru => "read uncommitted",
                        Isolation::Rc => "read committed",
                        Isolation::Rr => "repeatable read",
                        Isolation::Serializable => "serializable",
                    };
                    out.push(("default_transaction_isolation".into(), name.into()));
                }
                if self.read_only {
                    out.push(("default_transaction_read_only".into(), "on".into()));
                }
                if self.deferrable {
                    out.push(("default_transaction_deferrable".into(), "on".into()));
                }
            }
            EngineKind::Mariadb => {
                if let Some(level) = self.isolation {
                    let name = match level {
                        Isolation::Ru => "READ-UNCOMMITTED",
                        Isolation::Rc => "READ-COMMITTED",
                        Isolation::Rr => "REPEATABLE-READ",
                        Isolation::Serializable => "SERIALIZABLE",
                    };
                    out.push(("tx_isolation".into(), name.into()));
                }
                if self.read_only {
                    out.push(("tx_read_only".into(), "1".into()));
                }
                if self.deferrable {
                    return Err(
                        "`deferrable` is a PostgreSQL feature: MariaDB has no deferrable transactions"
                            .into(),
                    );
                }
            }
        }
        Ok(out)
    }
}

/// Adds one row (its values as text, `None` for NULL) to the result set being kept, opening it
/// with `columns` at its first row; past [`MAX_ROWS`] the row is only counted.
pub(crate) fn keep_row(
    kept: &mut Option<ResultSet>,
    columns: impl FnOnce() -> Vec<String>,
    row: impl Iterator<Item = Option<String>>,
) {
    let set = kept.get_or_insert_with(|| ResultSet {
        columns: columns(),
        rows: Vec::new(),
        total: 0,
    });
    set.total += 1;
    if set.rows.len() < MAX_ROWS {
        set.rows.push(row.collect());
    }
}

/// A decoded value as kept text (`None` for NULL or a value that could not be read).
pub(crate) fn kept_text(v: Option<crate::scenario::Value>) -> Option<String> {
    v.as_ref().and_then(crate::scenario::expr::to_text)
}

impl Session {
    /// Runs `sql` as written and keeps what the server answered (see the module doc).
    pub async fn run_written(&mut self, sql: &str) -> Result<Written, DbError> {
        match self {
            Session::Postgres(s) => Ok(s.run_written(sql).await),
            Session::Mariadb(s) => Ok(s.run_written(sql).await),
        }
    }
}
