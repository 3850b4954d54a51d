//! One PostgreSQL connection as the lab uses it: statements prepared once, bind values sent as
//! text straight from the client's slots, and a transaction's `BEGIN` and `COMMIT` pipelined
//! with the statement next to them when the caller asks. On a connection of its own the lab
//! speaks the protocol of those exchanges itself ([`super::wire`]); on a pooled one (and one
//! that forwards notices) tokio-postgres does. Also the pool of `--connections`.
//!
//! It sends what it is asked to and reports what came back; it must not decide what to send
//! next, retry or count.

use futures::TryStreamExt;
use tokio_postgres::{Client, Config, Statement};

use super::stream::{Line, Target};
use super::value::{TextParam, column, decode, readable};
use super::wire::Wire;
use super::{begin_sql, db_error, pg_message};
use crate::engine::written::{keep_row, kept_text};
use crate::engine::{Column, DbError, ErrorKind, Exchange, Failed, Phase, Returned};
use crate::scenario::Value;

/// A client's own connection, or one borrowed from the pool.
pub(super) enum Handle {
    Own(Client),
    Pooled(deadpool_postgres::Object),
}

impl Handle {
    pub(super) fn client(&self) -> &Client {
        match self {
            Handle::Own(c) => c,
            Handle::Pooled(o) => o,
        }
    }
}

/// A statement prepared on a session's connection.
struct Prepared {
    /// tokio-postgres's: the types of its parameters and columns (and, pooled, what runs).
    statement: Statement,
    /// Its text and name for the session's [`Wire`], which creates it on the server at its
    /// first exchange (`parsed` from then on).
    text: Option<(String, String)>,
    parsed: bool,
}

/// A connection and the statements prepared on it.
pub struct Session {
    pub(super) handle: Handle,
    /// Where an own connection's socket went: a cancel request opens another one there.
    target: Option<Target>,
    /// An own connection's socket, on which the lab speaks the protocol of its exchanges and
    /// simple queries itself (none: tokio-postgres does, on a pooled connection or one that
    /// forwards notices).
    wire: Option<Wire>,
    statements: Vec<Option<Prepared>>,
    /// The first row of the last exchange's statement, decoded (its captured columns).
    first: Vec<Value>,
    /// The notices the connection forwards (sessions that run steps as written).
    pub(super) notices:
        Option<tokio::sync::mpsc::UnboundedReceiver<crate::engine::written::Output>>,
    /// The rows of the last exchange that asked to keep them.
    pub(crate) kept: Option<crate::engine::written::ResultSet>,
}

/// What each part of an exchange got back: BEGIN's and COMMIT's outcomes if they were sent,
/// and the statement's row count (returned rows when it captures, the command tag's count
/// otherwise), its first row decoded into [`Session::first`] when there was one.
type Framed = (
    Option<Result<(), DbError>>,
    Result<(i64, bool), DbError>,
    Option<Result<(), DbError>>,
);

impl Session {
    pub(super) fn own(client: Client, target: Target, line: Option<Line>) -> Session {
        Session {
            handle: Handle::Own(client),
            target: Some(target),
            wire: line.map(Wire::new),
            statements: Vec::new(),
            first: Vec::new(),
            notices: None,
            kept: None,
        }
    }

    pub async fn describe(&mut self, sql: &str) -> Result<Vec<crate::engine::Column>, DbError> {
        let stmt = self
            .handle
            .client()
            .prepare(sql)
            .await
            .map_err(|e| db_error(&e))?;
        Ok(stmt
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                type_name: c.type_().to_string(),
                readable: readable(c.type_()),
            })
            .collect())
    }

    pub async fn prepare(&mut self, sql: Option<&str>) -> Result<(), DbError> {
        let prepared = match sql {
            None => None,
            Some(sql) => Some(Prepared {
                statement: match &self.handle {
                    Handle::Own(c) => c.prepare(sql).await,
                    Handle::Pooled(o) => o.prepare_cached(sql).await,
                }
                .map_err(|e| db_error(&e))?,
                // Not tokio-postgres's names (`s0`, `s1`, ...).
                text: self.wire.as_ref().map(|_| {
                    (
                        sql.to_string(),
                        format!("contention{}", self.statements.len()),
                    )
                }),
                parsed: false,
            }),
        };
        self.statements.push(prepared);
        Ok(())
    }

    pub async fn exchange(
        &mut self,
        x: Exchange<'_>,
        values: &mut [Option<Value>],
    ) -> Result<Returned, Failed> {
        // BEGIN, the statement and COMMIT go out together, in order, each its own request (its
        // own Sync): they reach the server as they would one by one. BEGIN only fails when the
        // connection does; a COMMIT after a failed statement ends the transaction as a
        // ROLLBACK. An interrupt that abandons this future after the COMMIT went out leaves
        // that transaction to commit uncounted (the report says it was interrupted).
        self.kept = None;
        let (began, result, committed) = if self.wire.is_some() {
            self.exchange_wire(&x, values).await
        } else {
            // Boxed: tokio-postgres's futures (twice the wire's) stay out of the state of
            // every exchange on an own connection.
            Box::pin(self.exchange_client(&x, values)).await
        };
        let failed = |phase, error, in_transaction| Failed {
            phase,
            error,
            in_transaction,
        };
        if let Some(Err(e)) = began {
            return Err(failed(Phase::Begin, e, false));
        }
        let (n, rows) = result.map_err(|e| failed(Phase::Statement, e, !x.commit))?;
        if let Some(Err(e)) = committed {
            return Err(failed(Phase::Commit, e, false));
        }
        if !rows {
            return Ok(Returned::Affected(n));
        }
        // Only the first row is kept (it is all a step captures): no per-statement vectors.
        let mut first = self.first.drain(..);
        for &slot in x.captures {
            values[slot] = if n > 0 { first.next() } else { None };
        }
        Ok(Returned::Rows(n))
    }

    /// An exchange on the session's own socket, in one write; see [`super::wire`].
    async fn exchange_wire(&mut self, x: &Exchange<'_>, values: &[Option<Value>]) -> Framed {
        let Session {
            wire,
            statements,
            first,
            kept,
            ..
        } = self;
        let wire = wire.as_mut().expect("an exchange on the wire without one");
        let prepared = statements[x.statement]
            .as_mut()
            .expect("exchange of a step without SQL");
        let (text, name) = prepared.text.as_ref().expect("prepared for the wire");
        let queued = (|| {
            if let Some(level) = x.begin {
                wire.query(begin_sql(level))?;
            }
            wire.statement(
                (!prepared.parsed).then_some(text.as_str()),
                name,
                x.params.iter().map(|&s| values[s].as_ref()),
            )?;
            if x.commit {
                wire.query("COMMIT")?;
            }
            Ok(())
        })();
        if let Err(e) = queued {
            // Nothing went out.
            return (None, Err(e), None);
        }
        let at = usize::from(x.begin.is_some());
        let capturing = !x.captures.is_empty();
        let columns = prepared.statement.columns();
        let mut n = 0i64;
        let outcomes = wire
            .exchange(|request, row| {
                if request != at || !capturing {
                    return Ok(());
                }
                n += 1;
                let names = || columns.iter().map(|c| c.name().to_string()).collect();
                let decoded = row.columns().zip(columns).map(|(raw, c)| {
                    decode(c.type_(), raw)
                        .map_err(|e| format!("cannot read column `{}`: {e}", c.name()))
                });
                take_row(x, n, first, kept, names, decoded)
            })
            .await;
        if wire.parsed() {
            prepared.parsed = true;
        }
        // The outcomes in the order the requests went: BEGIN if sent, the statement, COMMIT if
        // sent.
        let mut outcomes = outcomes.into_iter();
        let began = x
            .begin
            .map(|_| outcomes.next().expect("BEGIN's outcome").map(drop));
        let statement = outcomes.next().expect("the statement's outcome");
        let committed = x
            .commit
            .then(|| outcomes.next().expect("COMMIT's outcome").map(drop));
        (
            began,
            statement.map(|tag| (if capturing { n } else { tag as i64 }, capturing)),
            committed,
        )
    }

    /// An exchange through tokio-postgres's client (a pooled connection's).
    async fn exchange_client(&mut self, x: &Exchange<'_>, values: &[Option<Value>]) -> Framed {
        let client = self.handle.client();
        let stmt = &self.statements[x.statement]
            .as_ref()
            .expect("exchange of a step without SQL")
            .statement;
        let (first, kept) = (&mut self.first, &mut self.kept);
        // Requests polled together go out together, in order (tokio-postgres queues each on its
        // first poll). Bind values go straight from the slots into the message.
        let args = x.params.iter().map(|&s| TextParam(values[s].as_ref()));
        let statement = async {
            if x.captures.is_empty() {
                return client
                    .execute_raw(stmt, args)
                    .await
                    .map(|n| (n as i64, false))
                    .map_err(|e| db_error(&e));
            }
            let rows = client
                .query_raw(stmt, args)
                .await
                .map_err(|e| db_error(&e))?;
            futures::pin_mut!(rows);
            let mut n = 0;
            while let Some(row) = rows.try_next().await.map_err(|e| db_error(&e))? {
                n += 1;
                let names = || row.columns().iter().map(|c| c.name().to_string()).collect();
                let decoded = (0..row.len()).map(|i| column(&row, i).map_err(|e| pg_message(&e)));
                take_row(x, n, first, kept, names, decoded)?;
            }
            Ok((n, true))
        };
        if x.begin.is_none() && !x.commit {
            // The statement alone: no join to poll around it.
            return (None, statement.await, None);
        }
        futures::join!(
            async {
                match x.begin {
                    Some(level) => Some(
                        client
                            .batch_execute(begin_sql(level))
                            .await
                            .map_err(|e| db_error(&e)),
                    ),
                    None => None,
                }
            },
            statement,
            async {
                if x.commit {
                    Some(
                        client
                            .batch_execute("COMMIT")
                            .await
                            .map_err(|e| db_error(&e)),
                    )
                } else {
                    None
                }
            },
        )
    }

    pub async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        if let Some(wire) = &mut self.wire {
            wire.query(sql)?;
            let [out, ..] = wire.exchange(|_, _| Ok(())).await;
            return out.map(drop);
        }
        self.handle
            .client()
            .batch_execute(sql)
            .await
            .map_err(|e| db_error(&e))
    }

    pub async fn scalar(&mut self, sql: &str) -> Result<Option<Value>, DbError> {
        let row = self
            .handle
            .client()
            .query_opt(sql, &[])
            .await
            .map_err(|e| db_error(&e))?;
        match row {
            Some(r) if !r.is_empty() => column(&r, 0).map(Some).map_err(|e| DbError {
                kind: ErrorKind::ScenarioBug,
                ..db_error(&e)
            }),
            _ => Ok(None),
        }
    }

    pub async fn cancel(&self) -> Result<(), DbError> {
        let token = self.handle.client().cancel_token();
        match &self.target {
            // An own connection was made on a stream of the lab's: so is its cancel request.
            Some(target) => {
                let stream = target.open().await.map_err(|e| DbError {
                    kind: ErrorKind::Connection,
                    code: String::new(),
                    message: format!("opening a connection for the cancel request: {e}"),
                    position: None,
                })?;
                token.cancel_query_raw(stream, tokio_postgres::NoTls).await
            }
            None => token.cancel_query(tokio_postgres::NoTls).await,
        }
        .map_err(|e| db_error(&e))
    }

    pub async fn server_id(&mut self) -> Result<i64, DbError> {
        let row = self
            .handle
            .client()
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| db_error(&e))?;
        Ok(i64::from(row.get::<_, i32>(0)))
    }

    pub async fn blockers(&mut self, id: i64) -> Result<Vec<i64>, DbError> {
        let pid = i32::try_from(id).unwrap_or(i32::MAX);
        let row = self
            .handle
            .client()
            .query_one("SELECT pg_blocking_pids($1)", &[&pid])
            .await
            .map_err(|e| db_error(&e))?;
        Ok(row
            .get::<_, Vec<i32>>(0)
            .into_iter()
            .map(i64::from)
            .collect())
    }
}

/// `--connections N`: deadpool-postgres, statements cached per pooled connection.
#[derive(Clone)]
pub struct Pool(deadpool_postgres::Pool);

impl Pool {
    pub(super) fn new(config: Config, size: usize) -> anyhow::Result<Pool> {
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        // Opening a pooled connection (socket and start-up exchange) is bounded like every other
        // connection; waiting for a free one is not: with many clients per connection that is
        // the contention being measured, and the client loop releases it at the deadline or on
        // an interrupt.
        let connect = super::server::CONNECT_TIMEOUT;
        deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(connect))
            .recycle_timeout(Some(connect))
            .build()
            .map(Pool)
            .map_err(|e| anyhow::anyhow!("--connections {size}: cannot build the pool: {e}"))
    }

    pub async fn session<'t>(
        &self,
        texts: impl Iterator<Item = Option<&'t str>>,
    ) -> anyhow::Result<Session> {
        let object = self
            .0
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("cannot get a pooled connection: {e}"))?;
        let mut session = Session {
            handle: Handle::Pooled(object),
            target: None,
            wire: None,
            statements: Vec::new(),
            first: Vec::new(),
            notices: None,
            kept: None,
        };
        for text in texts {
            session.prepare(text).await?;
        }
        Ok(session)
    }
}

/// Row `n` (1-based) of a statement that captures: kept as text for a timeline when the
/// exchange asks, and, the first, decoded into `first` for the step's captures. `columns` are
/// the row's values, or why one cannot be read (a broken scenario).
fn take_row(
    x: &Exchange<'_>,
    n: i64,
    first: &mut Vec<Value>,
    kept: &mut Option<crate::engine::written::ResultSet>,
    names: impl FnOnce() -> Vec<String>,
    columns: impl Iterator<Item = Result<Value, String>> + Clone,
) -> Result<(), DbError> {
    if x.keep {
        keep_row(kept, names, columns.clone().map(|v| kept_text(v.ok())));
    }
    if n > 1 {
        return Ok(());
    }
    let bug = |message| DbError {
        kind: ErrorKind::ScenarioBug,
        code: String::new(),
        message,
        position: None,
    };
    first.clear();
    for value in columns.take(x.captures.len()) {
        first.push(value.map_err(bug)?);
    }
    if first.len() < x.captures.len() {
        return Err(bug(format!(
            "the statement returned {} columns and the step captures {}",
            first.len(),
            x.captures.len()
        )));
    }
    Ok(())
}
