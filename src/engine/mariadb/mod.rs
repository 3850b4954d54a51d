//! MariaDB (and MySQL) through sqlx: provisioning (`server`, `ephemeral`), sessions whose
//! transaction framing goes statement by statement (`session`), value conversion (`value`) and
//! the classification of errors by MySQL error number. Everything here is reached through the
//! enums in `engine`; it must not know about scenarios' meaning, statistics or reports.

pub mod ephemeral;
pub mod server;
pub mod session;
pub mod value;
pub mod written;

pub use server::{RunDatabase, Server};
pub use session::{Pool, Session};

use crate::engine::{DbError, ErrorKind};
use crate::isolation::Isolation;
use crate::outcome::Abort;

/// The statements that open a transaction at `isolation`. The level is set for each
/// transaction (`SET TRANSACTION` applies to the next one only), in the same round trip.
pub fn begin_sql(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Ru => "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; START TRANSACTION",
        Isolation::Rc => "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION",
        Isolation::Rr => "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION",
        Isolation::Serializable => {
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; START TRANSACTION"
        }
    }
}

/// Classifies a MySQL error number.
pub fn classify_number(number: u16) -> ErrorKind {
    match number {
        // ER_LOCK_DEADLOCK
        1213 => ErrorKind::Abort(Abort::Deadlock),
        // ER_LOCK_WAIT_TIMEOUT (also MariaDB's NOWAIT), ER_LOCK_NOWAIT (MySQL 8)
        1205 | 3572 => ErrorKind::Abort(Abort::LockUnavailable),
        // ER_CHECKREAD: "Record has changed since last read" (innodb_snapshot_isolation)
        1020 => ErrorKind::Abort(Abort::Serialization),
        // syntax, unknown table/column/database/function, wrong argument counts and types
        1046 | 1049 | 1050 | 1051 | 1054 | 1060 | 1064 | 1091 | 1110 | 1136 | 1146 | 1149
        | 1193 | 1210 | 1222 | 1231 | 1232 | 1241 | 1242 | 1305 | 1582 | 1583 | 1630 => {
            ErrorKind::ScenarioBug
        }
        // server gone, shutting down, connection killed
        1053 | 1077 | 1078 | 1079 | 1080 | 1152 | 1153 | 1158..=1161 | 1927 | 2006 | 2013 => {
            ErrorKind::Connection
        }
        _ => ErrorKind::Abort(Abort::Other),
    }
}

/// The error, classified, with its error number as the code and the server's message (or the
/// driver's chain).
pub fn db_error(e: &sqlx::Error) -> DbError {
    if let sqlx::Error::Database(d) = e
        && let Some(my) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
    {
        return DbError {
            kind: classify_number(my.number()),
            code: my.number().to_string(),
            message: my.message().to_string(),
            position: None,
        };
    }
    let kind = match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Connection,
        _ => ErrorKind::ScenarioBug,
    };
    let mut message = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        message.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    DbError {
        kind,
        code: String::new(),
        message,
        position: None,
    }
}

/// A MySQL identifier in backticks.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}
