//! How one attempt at an operation can fail: the abort classes the report counts, and the
//! classification of PostgreSQL errors by SQLSTATE. Expected database outcomes are data, not
//! errors. This module classifies; it must not retry or count (the runner and stats do).

use std::fmt;
use std::str::FromStr;

use tokio_postgres::error::SqlState;

/// Why an attempt did not commit, as counted in the report.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Abort {
    /// 40001: could not serialize access.
    Serialization,
    /// 40P01: deadlock detected.
    Deadlock,
    /// 55P03: lock not available (NOWAIT, lock_timeout).
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

    /// The SQLSTATE behind the class (the strategy's own conflicts have none).
    pub fn sqlstate(self) -> &'static str {
        match self {
            Abort::Serialization => "40001",
            Abort::Deadlock => "40P01",
            Abort::LockUnavailable => "55P03",
            Abort::Conflict => "conflict",
            Abort::Other => "other",
        }
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

/// What an error from PostgreSQL means for the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// An outcome of concurrency the lab counts.
    Abort(Abort),
    /// The scenario itself is wrong (syntax, missing table, wrong type): stop the run.
    ScenarioBug,
    /// The connection is gone or the server is shutting down: stop the run.
    Connection,
}

/// Classifies an error by its SQLSTATE.
pub fn classify(e: &tokio_postgres::Error) -> ErrorKind {
    let Some(code) = e.code() else {
        return ErrorKind::Connection;
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE {
        ErrorKind::Abort(Abort::Serialization)
    } else if *code == SqlState::T_R_DEADLOCK_DETECTED {
        ErrorKind::Abort(Abort::Deadlock)
    } else if *code == SqlState::LOCK_NOT_AVAILABLE {
        ErrorKind::Abort(Abort::LockUnavailable)
    } else {
        let class = &code.code()[..2];
        match class {
            // syntax / access rule, data exception, undefined objects, feature not supported
            "42" | "22" | "0A" | "26" | "34" | "3F" => ErrorKind::ScenarioBug,
            "08" | "57" if *code != SqlState::QUERY_CANCELED => ErrorKind::Connection,
            _ => ErrorKind::Abort(Abort::Other),
        }
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
