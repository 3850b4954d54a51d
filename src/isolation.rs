//! SQL isolation levels: the names accepted on the command line and in scenario files. What
//! each level means on an engine, and the statements that open a transaction at it, belong to
//! `engine`; this module must not know about engines.

use std::fmt;
use std::str::FromStr;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// READ UNCOMMITTED (PostgreSQL runs it as READ COMMITTED; MariaDB's is real).
    Ru,
    /// READ COMMITTED.
    Rc,
    /// REPEATABLE READ.
    Rr,
    /// SERIALIZABLE.
    Serializable,
}

impl Isolation {
    /// The levels `--isolation all` means on every engine (READ UNCOMMITTED is added where it is
    /// a level of its own: `cli::Levels::on`).
    pub const ALL: [Isolation; 3] = [Isolation::Rc, Isolation::Rr, Isolation::Serializable];

    pub fn short(self) -> &'static str {
        match self {
            Isolation::Ru => "ru",
            Isolation::Rc => "rc",
            Isolation::Rr => "rr",
            Isolation::Serializable => "serializable",
        }
    }

    /// Parses a comma-separated list; `all` expands to rc, rr, serializable.
    pub fn parse_list(s: &str) -> Result<Vec<Isolation>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.eq_ignore_ascii_case("all") {
                out.extend(Isolation::ALL);
            } else {
                out.push(part.parse()?);
            }
        }
        out.dedup();
        if out.is_empty() {
            return Err("expected an isolation level".into());
        }
        Ok(out)
    }
}

impl FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        Ok(match norm.as_str() {
            "ru" | "read-uncommitted" => Isolation::Ru,
            "rc" | "read-committed" => Isolation::Rc,
            "rr" | "repeatable-read" | "si" | "snapshot" => Isolation::Rr,
            "s" | "ser" | "serializable" => Isolation::Serializable,
            _ => {
                return Err(format!(
                    "unknown isolation level `{s}`: expected rc, rr, serializable, ru or all"
                ));
            }
        })
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_long_names() {
        assert_eq!("RC".parse::<Isolation>(), Ok(Isolation::Rc));
        assert_eq!("repeatable read".parse::<Isolation>(), Ok(Isolation::Rr));
        assert_eq!(
            Isolation::parse_list("all").unwrap(),
            Isolation::ALL.to_vec()
        );
        assert!("snapshotty".parse::<Isolation>().is_err());
    }
}
