//! The engines the lab speaks, by name: what each calls its abort codes, whether it has a real
//! READ UNCOMMITTED, how it numbers placeholders, and which engine a URL names.
//!
//! It only names and describes engines; it must not connect to anything.

use std::fmt;
use std::str::FromStr;

use crate::outcome::Abort;

/// The engines the lab speaks.
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    #[default]
    Postgres,
    Mariadb,
}

impl EngineKind {
    pub const ALL: [EngineKind; 2] = [EngineKind::Postgres, EngineKind::Mariadb];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Postgres => "postgres",
            EngineKind::Mariadb => "mariadb",
        }
    }

    /// The name people use for it.
    pub fn title(self) -> &'static str {
        match self {
            EngineKind::Postgres => "PostgreSQL",
            EngineKind::Mariadb => "MariaDB",
        }
    }

    /// The engine's own code for an abort class (the strategy's own conflicts and "other" have
    /// none: their class name stands).
    pub fn abort_code(self, class: Abort) -> &'static str {
        match (self, class) {
            (EngineKind::Postgres, Abort::Serialization) => "40001",
            (EngineKind::Postgres, Abort::Deadlock) => "40P01",
            (EngineKind::Postgres, Abort::LockUnavailable) => "55P03",
            (EngineKind::Mariadb, Abort::Serialization) => "1020",
            (EngineKind::Mariadb, Abort::Deadlock) => "1213",
            (EngineKind::Mariadb, Abort::LockUnavailable) => "1205",
            (_, Abort::Conflict) => "conflict",
            (_, Abort::Other) => "other",
        }
    }

    /// Whether READ UNCOMMITTED is a level of its own (PostgreSQL runs it as READ COMMITTED).
    pub fn has_read_uncommitted(self) -> bool {
        matches!(self, EngineKind::Mariadb)
    }

    /// How statements mark bind parameters: PostgreSQL numbers them (`$1`, a name used twice
    /// is one parameter), MySQL binds each `?` in order.
    /// Private-server settings under which a transaction whose COMMIT returned survives the
    /// server process being killed (a `restart` fault). A private server otherwise
    /// acknowledges a COMMIT before its log is written (PostgreSQL's `synchronous_commit=off`,
    /// InnoDB's `innodb_flush_log_at_trx_commit=0`): a crash loses commits the clients saw.
    /// Neither needs fsync: the machine does not crash, only the server process.
    pub fn crash_safe_settings(self) -> &'static [(&'static str, &'static str)] {
        match self {
            EngineKind::Postgres => &[("synchronous_commit", "on")],
            EngineKind::Mariadb => &[("innodb_flush_log_at_trx_commit", "2")],
        }
    }

    pub fn numbered_placeholders(self) -> bool {
        matches!(self, EngineKind::Postgres)
    }

    /// The engine a `--db` URL points at, from its scheme.
    pub fn of_url(url: &str) -> Option<EngineKind> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(EngineKind::Postgres),
            "mysql" | "mariadb" => Some(EngineKind::Mariadb),
            _ => None,
        }
    }

    /// Parses a comma-separated list; `all` means every engine.
    pub fn parse_list(s: &str) -> Result<Vec<EngineKind>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.eq_ignore_ascii_case("all") {
                out.extend(EngineKind::ALL);
            } else {
                out.push(part.parse()?);
            }
        }
        out.dedup();
        if out.is_empty() {
            return Err("expected an engine".into());
        }
        Ok(out)
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Ok(EngineKind::Postgres),
            "mariadb" | "mysql" => Ok(EngineKind::Mariadb),
            _ => Err(format!(
                "unknown engine `{s}`: expected postgres, mariadb or all"
            )),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
