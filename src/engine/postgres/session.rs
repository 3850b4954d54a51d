//! One PostgreSQL connection as the lab uses it: statements prepared once, bind values sent as
//! text straight from the client's slots, and a transaction's `BEGIN` and `COMMIT` pipelined
//! with the statement next to them when the caller asks. Also the pool of `--connections`.
//!
//! It sends what it is asked to and reports what came back; it must not decide what to send
//! next, retry or count.

use futures::TryStreamExt;
use tokio_postgres::{Client, Config, Statement};

use super::stream::Target;
use super::value::{TextParam, column, readable};
use super::{begin_sql, db_error};
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

/// A connection and the statements prepared on it.
pub struct Session {
    pub(super) handle: Handle,
    /// Where an own connection's socket went: a cancel request opens another one there.
    target: Option<Target>,
    statements: Vec<Option<Statement>>,
    /// The notices the connection forwards (sessions that run steps as written).
    pub(super) notices:
        Option<tokio::sync::mpsc::UnboundedReceiver<crate::engine::written::Output>>,
    /// The rows of the last exchange that asked to keep them.
    pub(crate) kept: Option<crate::engine::written::ResultSet>,
}

impl Session {
    pub(super) fn own(client: Client, target: Target) -> Session {
        Session {
            handle: Handle::Own(client),
            target: Some(target),
            statements: Vec::new(),
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
        let stmt = match sql {
            None => None,
            Some(sql) => Some(
                match &self.handle {
                    Handle::Own(c) => c.prepare(sql).await,
                    Handle::Pooled(o) => o.prepare_cached(sql).await,
                }
                .map_err(|e| db_error(&e))?,
            ),
        };
        self.statements.push(stmt);
        Ok(())
    }

    pub async fn exchange(
        &mut self,
        x: Exchange<'_>,
        values: &mut [Option<Value>],
    ) -> Result<Returned, Failed> {
        let client = self.handle.client();
        let stmt = self.statements[x.statement]
            .as_ref()
            .expect("exchange of a step without SQL");
        // Requests polled together go out together, in order (tokio-postgres queues each on its
        // first poll), and each is its own Sync: BEGIN, the statement and COMMIT reach the
        // server as they would one by one. BEGIN only fails when the connection does; a COMMIT
        // after a failed statement ends the transaction as a ROLLBACK. An interrupt that
        // abandons this future after the COMMIT went out leaves that transaction to commit
        // uncounted (the report says it was interrupted).
        // Bind values go straight from the slots into the message, and only the first row is
        // kept (it is all a step captures): no per-statement vectors.
        let mut kept = None;
        let (began, result, committed) = {
            let bound = &*values;
            let args = x.params.iter().map(|&s| TextParam(bound[s].as_ref()));
            let statement = async {
                if x.captures.is_empty() {
                    return client
                        .execute_raw(stmt, args)
                        .await
                        .map(|n| (n as i64, None));
                }
                let rows = client.query_raw(stmt, args).await?;
                futures::pin_mut!(rows);
                let (mut n, mut first) = (0, None);
                while let Some(row) = rows.try_next().await? {
                    n += 1;
                    if x.keep {
                        keep_row(
                            &mut kept,
                            || row.columns().iter().map(|c| c.name().to_string()).collect(),
                            (0..row.len()).map(|i| kept_text(column(&row, i).ok())),
                        );
                    }
                    first.get_or_insert(row);
                }
                Ok((n, Some(first)))
            };
            if x.begin.is_none() && !x.commit {
                // The statement alone (every one with --no-pipeline): no join to poll around it.
                (None, statement.await, None)
            } else {
                futures::join!(
                    async {
                        match x.begin {
                            Some(level) => Some(client.batch_execute(begin_sql(level)).await),
                            None => None,
                        }
                    },
                    statement,
                    async {
                        if x.commit {
                            Some(client.batch_execute("COMMIT").await)
                        } else {
                            None
                        }
                    },
                )
            }
        };
        self.kept = kept;
        let failed = |phase, e: &tokio_postgres::Error, in_transaction| Failed {
            phase,
            error: db_error(e),
            in_transaction,
        };
        if let Some(Err(e)) = began {
            return Err(failed(Phase::Begin, &e, false));
        }
        let (n, rows) = match result {
            Ok(r) => r,
            Err(e) => return Err(failed(Phase::Statement, &e, !x.commit)),
        };
        if let Some(Err(e)) = committed {
            return Err(failed(Phase::Commit, &e, false));
        }
        match rows {
            None => Ok(Returned::Affected(n)),
            Some(first) => {
                for (i, &slot) in x.captures.iter().enumerate() {
                    values[slot] = match &first {
                        Some(row) => Some(column(row, i).map_err(|e| Failed {
                            phase: Phase::Statement,
                            error: DbError {
                                kind: ErrorKind::ScenarioBug,
                                ..db_error(&e)
                            },
                            in_transaction: !x.commit,
                        })?),
                        None => None,
                    };
                }
                Ok(Returned::Rows(n))
            }
        }
    }

    pub async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
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
            statements: Vec::new(),
            notices: None,
            kept: None,
        };
        for text in texts {
            session.prepare(text).await?;
        }
        Ok(session)
    }
}
