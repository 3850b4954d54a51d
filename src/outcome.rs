//! How one attempt at an operation can fail: the abort classes the report counts. Expected
//! database outcomes are data, not errors; each engine maps its own error codes onto these
//! classes (`engine`). This module names classes; it must not retry or count (the runner and
//! stats do).

use std::fmt;
use std::str::FromStr;

/// Why an attempt did not commit, as counted in the report.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Abort {
    /// Could not serialize access (40001; MariaDB's 1020).
    Serialization,
    /// Deadlock detected (40P01; MariaDB's 1213).
    Deadlock,
    /// Lock not available: NOWAIT, a lock timeout (55P03; MariaDB's 1205, MySQL's 3572).
    LockUnavailable,
    /// The scenario's own `retry_if` fired (an optimistic check found a concurrent change).
    Conflict,
    /// Any other SQL error raised by a step (constraint violations, statement timeouts, ...).
    Other,
}

impl Abort {
    pub const ALL: [Abort; 5] = [
        Abort::Serialization,
        Abort::Deadlock,
        Abort::LockUnavailable,
        Abort::Conflict,
        Abort::Other,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Abort::Serialization => "serialization",
            Abort::Deadlock => "deadlock",
            Abort::LockUnavailable => "lock-unavailable",
            Abort::Conflict => "conflict",
            Abort::Other => "other",
        }
    }

    /// The retry classes used when a strategy does not say.
    pub fn default_retry() -> Vec<Abort> {
        vec![Abort::Serialization, Abort::Deadlock, Abort::Conflict]
    }
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Abort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Abort::ALL
            .into_iter()
            .find(|a| a.name() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown failure class `{s}`: expected one of serialization, deadlock, lock-unavailable, conflict, other"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Abort::ALL {
            assert_eq!(a.name().parse::<Abort>(), Ok(a));
        }
        assert!("deadlocks".parse::<Abort>().is_err());
    }
}
