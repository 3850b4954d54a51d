//! An error from a server (or its driver), classified once where it arises: an outcome of
//! concurrency the lab counts, a broken scenario, or a lost connection, with the engine's own
//! code, message and position.
//!
//! It classifies and locates; it must not retry or count (the runner does).

use std::fmt;

use crate::outcome::Abort;

/// What an error from the server means for the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An outcome of concurrency the lab counts.
    Abort(Abort),
    /// The scenario itself is wrong (syntax, missing table, wrong type): stop the run.
    ScenarioBug,
    /// The connection is gone or the server is shutting down: stop the run.
    Connection,
}

/// An error from the server (or the driver), classified.
#[derive(Debug, Clone)]
pub struct DbError {
    pub kind: ErrorKind,
    /// The engine's own code: a SQLSTATE for PostgreSQL, an error number for MySQL; empty when
    /// the driver failed.
    pub code: String,
    /// The server's message, or the driver's error chain.
    pub message: String,
    /// Where in the statement text the server places the error: PostgreSQL's error position,
    /// 1-based, in characters. Read by [`DbError::line_in`]; the hot path never looks at it.
    pub position: Option<usize>,
}

impl DbError {
    /// The 1-based line of `sql` (the text that was sent) where the error is: PostgreSQL's
    /// position, or MariaDB's `near '...' at line N` (the quoted text found in `sql`, else N).
    pub fn line_in(&self, sql: &str) -> Option<usize> {
        if let Some(pos) = self.position {
            let before = sql.chars().take(pos.saturating_sub(1));
            return Some(before.filter(|&c| c == '\n').count() + 1);
        }
        let (head, tail) = self.message.rsplit_once(" at line ")?;
        let n: usize = tail
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()?;
        let near = head
            .rsplit_once("near '")
            .map(|(_, near)| near.strip_suffix('\'').unwrap_or(near))
            .filter(|near| !near.is_empty());
        match near.and_then(|near| sql.find(near)) {
            Some(at) => Some(sql[..at].matches('\n').count() + 1),
            None => Some(n),
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{} ({})", self.message, self.code)
        }
    }
}

impl std::error::Error for DbError {}
