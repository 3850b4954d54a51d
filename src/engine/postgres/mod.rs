//! PostgreSQL through tokio-postgres: provisioning (`server`, `ephemeral`), sessions with
//! pipelined transaction framing (`session`), the protocol of their exchanges on the client's
//! own socket (`wire`, `stream`), advisory locks as a lock service (`advisory`), SQL run as written with its notices (`written`),
//! value conversion (`value`) and the classification
//! of errors by SQLSTATE. Everything here is reached through the enums in `engine`; it must not
//! know about scenarios' meaning, statistics or reports.

pub mod advisory;
pub mod ephemeral;
pub mod server;
pub mod session;
pub mod stream;
pub mod value;
pub mod wire;
pub mod written;

pub use server::{RunDatabase, Server};
pub use session::{Pool, Session};

use tokio_postgres::error::SqlState;

use crate::engine::{DbError, ErrorKind};
use crate::isolation::Isolation;
use crate::outcome::Abort;

/// The statement that opens a transaction at `isolation` (PostgreSQL runs READ UNCOMMITTED as
/// READ COMMITTED).
pub fn begin_sql(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Ru => "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
        Isolation::Rc => "BEGIN ISOLATION LEVEL READ COMMITTED",
        Isolation::Rr => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
    }
}

/// Classifies an error by its SQLSTATE.
pub fn classify(e: &tokio_postgres::Error) -> ErrorKind {
    classify_state(e.code())
}

/// Classifies a SQLSTATE; none (the driver's own error) is a lost connection.
fn classify_state(code: Option<&SqlState>) -> ErrorKind {
    let Some(code) = code else {
        return ErrorKind::Connection;
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE {
        ErrorKind::Abort(Abort::Serialization)
    } else if *code == SqlState::T_R_DEADLOCK_DETECTED {
        ErrorKind::Abort(Abort::Deadlock)
    } else if *code == SqlState::LOCK_NOT_AVAILABLE {
        ErrorKind::Abort(Abort::LockUnavailable)
    } else {
        match &code.code()[..2] {
            // syntax / access rule, data exception, undefined objects, feature not supported
            "42" | "22" | "0A" | "26" | "34" | "3F" => ErrorKind::ScenarioBug,
            "08" | "57" if *code != SqlState::QUERY_CANCELED => ErrorKind::Connection,
            _ => ErrorKind::Abort(Abort::Other),
        }
    }
}

/// The error, classified, with its SQLSTATE and the server's message (or the driver's chain).
pub fn db_error(e: &tokio_postgres::Error) -> DbError {
    DbError {
        kind: classify(e),
        code: e.code().map(|c| c.code().to_string()).unwrap_or_default(),
        message: match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => pg_message(e),
        },
        position: match e.as_db_error().and_then(|db| db.position()) {
            Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
            _ => None,
        },
    }
}

/// An error the server sent (an `ErrorResponse`), classified by its SQLSTATE.
pub fn server_error(code: &str, message: String, position: Option<usize>) -> DbError {
    DbError {
        kind: classify_state(Some(&SqlState::from_code(code))),
        code: code.to_string(),
        message,
        position,
    }
}

/// The server's message for an error with its SQLSTATE, or the driver's error chain.
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    }
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
