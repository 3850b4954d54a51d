//! The protocol of a client's exchanges on its own PostgreSQL connection, spoken by the lab:
//! a step's `BEGIN`, statement and `COMMIT` written as protocol messages in one write on the
//! connection's socket, and their replies read and parsed in the client's own task.
//!
//! Why: through tokio-postgres's `Client`, every request went to the connection's driver through
//! a channel (one allocated per request), was framed and written there, and every reply was
//! parsed and routed back through another channel: about 56,000 of the lab's 81,700
//! instructions per `--no-pipeline` TPC-B transaction (callgrind; pgbench's whole transaction
//! is 29,200). Here a round trip is a buffer filled by `postgres-protocol`'s encoders, one
//! `send`, and the replies parsed from the bytes one `recv` brought.
//!
//! tokio-postgres keeps the rest of the connection's life: start-up and authentication,
//! preparing (which gives the types of parameters and columns), and every other query. Between
//! exchanges its driver has the socket; an exchange borrows it ([`Line::lend`]) once the driver
//! has read the answers to all it sent (a query's caller gets its rows before the driver has
//! read the `ReadyForQuery` after them). An exchange abandoned half-way (an interrupt) leaves
//! the connection broken, so the driver ends it rather than read replies it does not expect.
//!
//! It encodes, sends and reports what came back for each request; it must not decide what to
//! send, decode values (the session does, with `value`), retry or count.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{DataRowBody, ErrorResponseBody, Message};
use postgres_protocol::message::frontend;

use super::server_error;
use super::stream::Line;
use super::value::write_text;
use crate::engine::{DbError, ErrorKind};
use crate::scenario::Value;

/// The most requests one exchange sends: BEGIN, the statement and COMMIT.
pub const MOST: usize = 3;

/// What each request of an exchange got back, in order: the row count of its (last) command
/// tag, or its error. Requests past those sent are `Ok(0)`.
pub type Outcomes = [Result<u64, DbError>; MOST];

/// A connection's socket as its session's exchanges use it, with their buffers.
pub struct Wire {
    line: Line,
    /// Replies read and not yet parsed.
    read: BytesMut,
    /// Requests queued for the next exchange.
    write: BytesMut,
    /// The requests queued.
    queued: usize,
    /// The last exchange created a prepared statement (the server answered a Parse).
    parsed: bool,
}

impl Wire {
    pub fn new(line: Line) -> Wire {
        Wire {
            line,
            read: BytesMut::new(),
            write: BytesMut::new(),
            queued: 0,
            parsed: false,
        }
    }

    /// Queues a simple query: `BEGIN`, `COMMIT`, a setup script of several statements.
    pub fn query(&mut self, sql: &str) -> Result<(), DbError> {
        self.queue(|buf| frontend::query(sql, buf))
    }

    /// Queues the execution of prepared statement `name` with `params` sent as text, its rows
    /// asked for in binary. With `parse`, the statement is created under `name` first, from
    /// that text, with the types the server infers (as tokio-postgres prepares it).
    pub fn statement<'v>(
        &mut self,
        parse: Option<&str>,
        name: &str,
        params: impl Iterator<Item = Option<&'v Value>>,
    ) -> Result<(), DbError> {
        self.queue(|buf| {
            if let Some(sql) = parse {
                frontend::parse(name, sql, std::iter::empty(), buf)?;
            }
            frontend::bind(
                "",
                name,
                Some(0),
                params,
                |v, buf| {
                    Ok(match write_text(v, buf) {
                        tokio_postgres::types::IsNull::Yes => postgres_protocol::IsNull::Yes,
                        tokio_postgres::types::IsNull::No => postgres_protocol::IsNull::No,
                    })
                },
                Some(1),
                buf,
            )
            .map_err(|e| match e {
                frontend::BindError::Conversion(e) => std::io::Error::other(e),
                frontend::BindError::Serialization(e) => e,
            })?;
            frontend::execute("", 0, buf)?;
            frontend::sync(buf);
            Ok(())
        })
    }

    fn queue(
        &mut self,
        encode: impl FnOnce(&mut BytesMut) -> std::io::Result<()>,
    ) -> Result<(), DbError> {
        assert!(
            self.queued < MOST,
            "more than {MOST} requests in one exchange"
        );
        let mark = self.write.len();
        match encode(&mut self.write) {
            Ok(()) => {
                self.queued += 1;
                Ok(())
            }
            Err(e) => {
                self.write.truncate(mark);
                Err(DbError {
                    kind: ErrorKind::ScenarioBug,
                    code: String::new(),
                    message: format!("cannot encode the request: {e}"),
                    position: None,
                })
            }
        }
    }

    /// Whether the last exchange created a prepared statement.
    pub fn parsed(&self) -> bool {
        self.parsed
    }

    /// Sends the queued requests in one write and reads the replies to all of them. Each row
    /// goes to `on_row` with its request's index; an error it returns becomes that request's
    /// (the rest of its rows are read and dropped).
    pub async fn exchange(
        &mut self,
        mut on_row: impl FnMut(usize, &DataRowBody) -> Result<(), DbError>,
    ) -> Outcomes {
        let mut out: Outcomes = std::array::from_fn(|_| Ok(0));
        let requests = std::mem::take(&mut self.queued);
        let Wire {
            line,
            read,
            write,
            parsed,
            queued: _,
        } = self;
        *parsed = false;
        let mut lease = line.lend().await;
        if !lease.lent() {
            write.clear();
            fail_from(&mut out, 0, requests, &lost("connection closed"));
            return out;
        }
        let sent = lease.write_all(write).await;
        write.clear();
        if let Err(e) = sent {
            fail_from(&mut out, 0, requests, &lost(&e.to_string()));
            return out;
        }
        let mut at = 0;
        while at < requests {
            let message = match Message::parse(read) {
                Ok(Some(message)) => message,
                Ok(None) => {
                    match lease.read(read).await {
                        Ok(0) => fail_from(&mut out, at, requests, &lost("connection closed")),
                        Ok(_) => continue,
                        Err(e) => fail_from(&mut out, at, requests, &lost(&e.to_string())),
                    }
                    return out;
                }
                Err(e) => {
                    fail_from(&mut out, at, requests, &protocol(&e.to_string()));
                    return out;
                }
            };
            match message {
                Message::ReadyForQuery(_) => at += 1,
                Message::CommandComplete(body) => {
                    if let Ok(n) = &mut out[at] {
                        *n = body
                            .tag()
                            .ok()
                            .and_then(|tag| tag.rsplit(' ').next())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                    }
                }
                Message::DataRow(row) => {
                    if out[at].is_ok()
                        && let Err(e) = on_row(at, &row)
                    {
                        out[at] = Err(e);
                    }
                }
                Message::ErrorResponse(body) => {
                    let (error, fatal) = error(&body);
                    out[at] = Err(error);
                    if fatal {
                        // The server closes the connection after it: nothing more comes.
                        fail_from(&mut out, at + 1, requests, &lost("connection closed"));
                        return out;
                    }
                }
                Message::ParseComplete => *parsed = true,
                Message::BindComplete
                | Message::NoData
                | Message::EmptyQueryResponse
                | Message::RowDescription(_)
                | Message::NoticeResponse(_)
                | Message::ParameterStatus(_)
                | Message::NotificationResponse(_)
                | Message::CloseComplete
                | Message::PortalSuspended => {}
                _ => {
                    fail_from(
                        &mut out,
                        at,
                        requests,
                        &protocol(
                            "the server answered with a message the lab does not handle here (COPY?)",
                        ),
                    );
                    return out;
                }
            }
        }
        lease.done();
        out
    }
}

/// Sets the outcome of requests `from..to` that have none yet (an error already there stays:
/// it came first).
fn fail_from(out: &mut Outcomes, from: usize, to: usize, error: &DbError) {
    for o in &mut out[from.min(to)..to] {
        if o.is_ok() {
            *o = Err(error.clone());
        }
    }
}

/// The connection went: nothing was answered past this point.
fn lost(why: &str) -> DbError {
    DbError {
        kind: ErrorKind::Connection,
        code: String::new(),
        message: why.to_string(),
        position: None,
    }
}

/// The replies could not be followed: the connection is given up.
fn protocol(why: &str) -> DbError {
    lost(&format!("protocol error: {why}"))
}

/// The server's error, and whether it ends the session (FATAL or PANIC).
fn error(body: &ErrorResponseBody) -> (DbError, bool) {
    let (mut code, mut message, mut position, mut fatal) =
        (String::new(), String::new(), None, false);
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        let value = field.value_bytes();
        match field.type_() {
            b'C' => code = String::from_utf8_lossy(value).into_owned(),
            b'M' => message = String::from_utf8_lossy(value).into_owned(),
            b'P' => position = std::str::from_utf8(value).ok().and_then(|p| p.parse().ok()),
            b'V' => fatal = matches!(value, b"FATAL" | b"PANIC"),
            _ => {}
        }
    }
    (server_error(&code, message, position), fatal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_the_first_error_and_fills_the_rest() {
        let mut out: Outcomes = std::array::from_fn(|_| Ok(0));
        out[1] = Err(server_error("40001", "could not serialize".into(), None));
        fail_from(&mut out, 1, 3, &lost("connection closed"));
        assert!(out[0].is_ok());
        assert_eq!(out[1].as_ref().unwrap_err().code, "40001");
        let third = out[2].as_ref().unwrap_err();
        assert_eq!(third.kind, ErrorKind::Connection);
        assert_eq!(third.message, "connection closed");
    }
}
