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

use bytes::{Buf, BytesMut};
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
        mut on_row: impl FnMut(usize, Row<'_>) -> Result<(), DbError>,
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
        // Messages are parsed in place; `done` bytes of `read` are parsed.
        let (mut at, mut done) = (0, 0);
        while at < requests {
            let (kind, body) = match frame(&read[done..]) {
                Ok(Some((kind, len))) => {
                    let body = done + 5..done + 1 + len;
                    done = body.end;
                    (kind, body)
                }
                Ok(None) => {
                    read.advance(done);
                    done = 0;
                    match lease.read(read).await {
                        Ok(0) => fail_from(&mut out, at, requests, &lost("connection closed")),
                        Ok(_) => continue,
                        Err(e) => fail_from(&mut out, at, requests, &lost(&e.to_string())),
                    }
                    return out;
                }
                Err(e) => {
                    fail_from(&mut out, at, requests, &e);
                    return out;
                }
            };
            let body = &read[body];
            match kind {
                // ReadyForQuery: the request is answered.
                b'Z' => at += 1,
                // CommandComplete
                b'C' => {
                    if let Ok(n) = &mut out[at] {
                        *n = tag_rows(body);
                    }
                }
                // DataRow
                b'D' => {
                    if out[at].is_ok()
                        && let Err(e) = on_row(at, Row(body))
                    {
                        out[at] = Err(e);
                    }
                }
                // ErrorResponse
                b'E' => {
                    let (error, fatal) = error(body);
                    out[at] = Err(error);
                    if fatal {
                        // The server closes the connection after it: nothing more comes.
                        fail_from(&mut out, at + 1, requests, &lost("connection closed"));
                        return out;
                    }
                }
                // ParseComplete
                b'1' => *parsed = true,
                // BindComplete, CloseComplete, NoData, EmptyQueryResponse, NoticeResponse,
                // ParameterStatus, NotificationResponse, RowDescription, PortalSuspended
                b'2' | b'3' | b'n' | b'I' | b'N' | b'S' | b'A' | b'T' | b's' => {}
                other => {
                    fail_from(
                        &mut out,
                        at,
                        requests,
                        &protocol(&format!(
                            "the server answered with a message the lab does not handle here ({:?})",
                            char::from(other)
                        )),
                    );
                    return out;
                }
            }
        }
        read.advance(done);
        lease.done();
        out
    }
}

/// A row as the server sent it (the body of a `DataRow`).
#[derive(Clone, Copy)]
pub struct Row<'a>(&'a [u8]);

impl<'a> Row<'a> {
    /// Its columns' values in binary (`None`: NULL); a malformed row ends early.
    pub fn columns(self) -> impl Iterator<Item = Option<&'a [u8]>> + Clone {
        let mut rest = self.0.get(2..).unwrap_or_default();
        let count = self
            .0
            .get(..2)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
        (0..count).map_while(move |_| {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = i32::from_be_bytes(*len);
            if len < 0 {
                rest = tail;
                return Some(None);
            }
            let (value, tail) = tail.split_at_checked(len as usize)?;
            rest = tail;
            Some(Some(value))
        })
    }
}

/// The first whole message in `bytes`: its type byte and length (which counts the four bytes
/// of the length itself); `None` until one is whole.
fn frame(bytes: &[u8]) -> Result<Option<(u8, usize)>, DbError> {
    let Some((kind, rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let Some(len) = rest.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*len) as usize;
    if len < 4 {
        return Err(protocol("a message shorter than its header"));
    }
    Ok((rest.len() >= len).then_some((*kind, len)))
}

/// The row count at the end of a command tag (`UPDATE 3`, `INSERT 0 1`; 0 for `BEGIN`), as
/// tokio-postgres reads it.
fn tag_rows(tag: &[u8]) -> u64 {
    let tag = tag.strip_suffix(b"\0").unwrap_or(tag);
    let digits = tag.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == tag.len() || tag[tag.len() - digits - 1] != b' ' {
        return 0;
    }
    tag[tag.len() - digits..]
        .iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(0)
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

/// The server's error (the body of an `ErrorResponse`: fields of a type byte and a
/// NUL-terminated text, then a NUL), and whether it ends the session (FATAL or PANIC).
fn error(body: &[u8]) -> (DbError, bool) {
    let (mut code, mut message, mut position, mut fatal) = ("", String::new(), None, false);
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first()
        && kind != 0
    {
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        let value = &tail[..end];
        rest = tail.get(end + 1..).unwrap_or_default();
        match kind {
            b'C' => code = std::str::from_utf8(value).unwrap_or(""),
            b'M' => message = String::from_utf8_lossy(value).into_owned(),
            b'P' => position = std::str::from_utf8(value).ok().and_then(|p| p.parse().ok()),
            b'V' => fatal = matches!(value, b"FATAL" | b"PANIC"),
            _ => {}
        }
    }
    (server_error(code, message, position), fatal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tags_give_their_row_counts() {
        for (tag, n) in [
            (&b"UPDATE 3\0"[..], 3),
            (b"INSERT 0 12\0", 12),
            (b"SELECT 0\0", 0),
            (b"BEGIN\0", 0),
            (b"\0", 0),
            (b"X5\0", 0),
        ] {
            assert_eq!(tag_rows(tag), n, "{:?}", String::from_utf8_lossy(tag));
        }
    }

    #[test]
    fn rows_and_errors_are_read_from_their_bodies() {
        // Three columns: 2 bytes, NULL, empty.
        let row = [0, 3, 0, 0, 0, 2, b'h', b'i', 255, 255, 255, 255, 0, 0, 0, 0];
        let columns: Vec<_> = Row(&row).columns().collect();
        assert_eq!(columns, [Some(&b"hi"[..]), None, Some(&b""[..])]);
        // Cut short: what is whole is read.
        assert_eq!(Row(&row[..9]).columns().count(), 1);

        let body = b"SERROR\0VFATAL\0C57P01\0Mterminating\0P7\0\0";
        let (e, fatal) = error(body);
        assert!(fatal);
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.position, e.kind),
            ("57P01", "terminating", Some(7), ErrorKind::Connection)
        );
        assert_eq!(frame(b"Z\0\0\0\x05").unwrap(), None);
        assert_eq!(frame(b"Z\0\0\0\x05I").unwrap(), Some((b'Z', 5)));
        assert!(frame(b"Z\0\0\0\x02").is_err());
    }

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
