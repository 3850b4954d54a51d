//! One MariaDB/MySQL connection as the lab uses it: statements prepared once (sqlx keeps them
//! in the connection's statement cache, keyed by their text), bind values sent typed from the
//! client's slots, and a transaction's framing sent statement by statement (the MySQL protocol
//! has no pipelining): `SET TRANSACTION ISOLATION LEVEL ...; START TRANSACTION` in one round
//! trip, then the statement, then `COMMIT`. Also the pool of `--connections`.
//!
//! It sends what it is asked to and reports what came back; it must not decide what to send
//! next, retry or count.

use futures::TryStreamExt;
use sqlx::mysql::{MySql, MySqlArguments, MySqlConnectOptions, MySqlConnection};
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Executor as _, SqlSafeStr as _, SqlStr, Statement as _};

use super::value::{bind, column, readable};
use super::{begin_sql, db_error};
use crate::engine::{Column, DbError, ErrorKind, Exchange, Failed, Phase, Returned};
use crate::scenario::Value;

/// A client's own connection, or one borrowed from the pool.
pub(super) enum Handle {
    Own(MySqlConnection),
    Pooled(PoolConnection<MySql>),
}

impl Handle {
    pub(super) fn conn(&mut self) -> &mut MySqlConnection {
        match self {
            Handle::Own(c) => c,
            Handle::Pooled(p) => p,
        }
    }
}

/// A connection and the statements prepared on it.
pub struct Session {
    pub(super) handle: Handle,
    /// How to reach the server from outside, and this connection's id: to cancel its
    /// statement with `KILL QUERY`.
    killer: Option<(MySqlConnectOptions, u64)>,
    statements: Vec<Option<SqlStr>>,
    /// The rows of the last exchange that asked to keep them.
    pub(crate) kept: Option<crate::engine::written::ResultSet>,
    /// When this session last read InnoDB's lock tables (see [`Session::blockers`]).
    last_lock_read: Option<std::time::Instant>,
}

/// InnoDB refreshes the cache behind `INNODB_TRX` and `INNODB_LOCK_WAITS` only when it has not
/// been read for 0.1 s: a watcher that polls faster reads the same stale snapshot forever.
const LOCK_TABLES_IDLE: std::time::Duration = std::time::Duration::from_millis(110);

/// Applies session settings (`SET SESSION name = value`) on a new connection.
pub(super) async fn apply_settings(
    conn: &mut MySqlConnection,
    settings: &[(String, String)],
) -> Result<(), DbError> {
    for (name, value) in settings {
        let literal = if value.parse::<f64>().is_ok()
            || value.eq_ignore_ascii_case("on")
            || value.eq_ignore_ascii_case("off")
        {
            value.clone()
        } else {
            format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
        };
        let sql = format!("SET SESSION {name} = {literal}");
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                let mut e = db_error(&e);
                e.message = format!("setting {name} = {value}: {}", e.message);
                e
            })?;
    }
    Ok(())
}

impl Session {
    pub(super) async fn connect(
        options: &MySqlConnectOptions,
        settings: &[(String, String)],
    ) -> Result<Session, DbError> {
        let mut conn = super::server::open(options).await?;
        apply_settings(&mut conn, settings).await?;
        let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error(&e))?;
        Ok(Session {
            handle: Handle::Own(conn),
            killer: Some((options.clone(), id)),
            statements: Vec::new(),
            last_lock_read: None,
            kept: None,
        })
    }

    pub async fn describe(&mut self, sql: &str) -> Result<Vec<Column>, DbError> {
        let stmt = self
            .handle
            .conn()
            .prepare(AssertSqlSafe(sql).into_sql_str())
            .await
            .map_err(|e| db_error(&e))?;
        Ok(stmt
            .columns()
            .iter()
            .map(|c| {
                use sqlx::{Column as _, TypeInfo as _};
                let type_name = c.type_info().name().to_string();
                Column {
                    name: c.name().to_string(),
                    readable: readable(&type_name),
                    type_name,
                }
            })
            .collect())
    }

    pub async fn prepare(&mut self, sql: Option<&str>) -> Result<(), DbError> {
        let stmt = match sql {
            None => None,
            Some(sql) => {
                let stmt = self
                    .handle
                    .conn()
                    .prepare(AssertSqlSafe(sql).into_sql_str())
                    .await
                    .map_err(|e| db_error(&e))?;
                Some(stmt.sql().clone())
            }
        };
        self.statements.push(stmt);
        Ok(())
    }

    pub async fn exchange(
        &mut self,
        x: Exchange<'_>,
        values: &mut [Option<Value>],
    ) -> Result<Returned, Failed> {
        let failed = |phase, error, in_transaction| Failed {
            phase,
            error,
            in_transaction,
        };
        if let Some(level) = x.begin {
            self.batch(begin_sql(level))
                .await
                .map_err(|e| failed(Phase::Begin, e, false))?;
        }
        let sql = self.statements[x.statement]
            .clone()
            .expect("exchange of a step without SQL");
        let mut args = MySqlArguments::default();
        for &slot in x.params {
            bind(&mut args, values[slot].as_ref()).map_err(|e| {
                failed(
                    Phase::Statement,
                    DbError {
                        kind: ErrorKind::ScenarioBug,
                        code: String::new(),
                        message: format!("cannot bind a parameter: {e}"),
                        position: None,
                    },
                    true,
                )
            })?;
        }
        let query = sqlx::query_with(sql, args);
        self.kept = None;
        let conn = self.handle.conn();
        let returned = if x.captures.is_empty() {
            query
                .execute(&mut *conn)
                .await
                .map(|r| Returned::Affected(r.rows_affected() as i64))
                .map_err(|e| failed(Phase::Statement, db_error(&e), true))?
        } else {
            let mut kept = None;
            let mut rows = query.fetch(&mut *conn);
            let (mut n, mut first) = (0, None);
            loop {
                match rows.try_next().await {
                    Ok(Some(row)) => {
                        n += 1;
                        if x.keep {
                            crate::engine::written::keep_row(
                                &mut kept,
                                || {
                                    use sqlx::{Column as _, Row as _};
                                    row.columns().iter().map(|c| c.name().to_string()).collect()
                                },
                                (0..x.captures.len()).map(|i| {
                                    crate::engine::written::kept_text(column(&row, i).ok())
                                }),
                            );
                        }
                        first.get_or_insert(row);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        drop(rows);
                        return Err(failed(Phase::Statement, db_error(&e), true));
                    }
                }
            }
            drop(rows);
            self.kept = kept;
            for (i, &slot) in x.captures.iter().enumerate() {
                values[slot] = match &first {
                    Some(row) => Some(column(row, i).map_err(|e| {
                        failed(
                            Phase::Statement,
                            DbError {
                                kind: ErrorKind::ScenarioBug,
                                code: String::new(),
                                message: e.to_string(),
                                position: None,
                            },
                            true,
                        )
                    })?),
                    None => None,
                };
            }
            Returned::Rows(n)
        };
        if x.commit {
            self.batch("COMMIT")
                .await
                .map_err(|e| failed(Phase::Commit, e, false))?;
        }
        Ok(returned)
    }

    pub async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(self.handle.conn())
            .await
            .map(drop)
            .map_err(|e| db_error(&e))
    }

    pub async fn scalar(&mut self, sql: &str) -> Result<Option<Value>, DbError> {
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_optional(self.handle.conn())
            .await
            .map_err(|e| db_error(&e))?;
        match row {
            Some(r) if !sqlx::Row::is_empty(&r) => column(&r, 0).map(Some).map_err(|e| DbError {
                kind: ErrorKind::ScenarioBug,
                code: String::new(),
                message: e.to_string(),
                position: None,
            }),
            _ => Ok(None),
        }
    }

    pub async fn cancel(&self) -> Result<(), DbError> {
        let Some((options, id)) = &self.killer else {
            // A pooled connection: the pool closes it with the cell.
            return Ok(());
        };
        let mut c = super::server::open(&options.clone().database("")).await?;
        c.execute(AssertSqlSafe(format!("KILL QUERY {id}")))
            .await
            .map(drop)
            .map_err(|e| db_error(&e))
    }

    pub async fn server_id(&mut self) -> Result<i64, DbError> {
        match self.scalar("SELECT CONNECTION_ID()").await? {
            Some(Value::Int(i)) => Ok(i),
            other => Err(DbError {
                kind: ErrorKind::Connection,
                code: String::new(),
                message: format!("CONNECTION_ID() returned {other:?}"),
                position: None,
            }),
        }
    }

    /// The connections whose transactions hold the locks `id`'s transaction waits for
    /// (`information_schema.INNODB_LOCK_WAITS`). Reads are spaced by [`LOCK_TABLES_IDLE`], so
    /// that each one sees a fresh snapshot of InnoDB's lock tables.
    pub async fn blockers(&mut self, id: i64) -> Result<Vec<i64>, DbError> {
        if let Some(last) = self.last_lock_read {
            tokio::time::sleep_until((last + LOCK_TABLES_IDLE).into()).await;
        }
        let sql = "SELECT DISTINCT b.trx_mysql_thread_id \
                   FROM information_schema.INNODB_LOCK_WAITS w \
                   JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id \
                   JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id \
                   WHERE r.trx_mysql_thread_id = ?";
        let rows = sqlx::query(sql)
            .bind(id)
            .fetch_all(self.handle.conn())
            .await
            .map_err(|e| db_error(&e));
        self.last_lock_read = Some(std::time::Instant::now());
        let rows = rows?;
        rows.iter()
            .map(|r| {
                column(r, 0)
                    .map_err(|e| DbError {
                        kind: ErrorKind::ScenarioBug,
                        code: String::new(),
                        message: e.to_string(),
                        position: None,
                    })
                    .map(|v| match v {
                        Value::Int(i) => i,
                        _ => -1,
                    })
            })
            .collect()
    }
}

/// `--connections N`: sqlx's pool; each pooled connection caches its prepared statements.
#[derive(Clone)]
pub struct Pool(sqlx::Pool<MySql>);

impl Pool {
    pub(super) fn new(
        options: MySqlConnectOptions,
        settings: &[(String, String)],
        size: usize,
    ) -> anyhow::Result<Pool> {
        let settings = std::sync::Arc::new(settings.to_vec());
        let pool = sqlx::pool::PoolOptions::<MySql>::new()
            .max_connections(u32::try_from(size).unwrap_or(u32::MAX))
            // sqlx bounds a whole acquire (waiting for a free connection, or opening one) with
            // one timeout. Waiting is the contention being measured (many clients per
            // connection) and the client loop releases it at the deadline or on an interrupt,
            // so the bound is only a backstop against a server that went silent in a run
            // without a deadline (`--operations`).
            .acquire_timeout(std::time::Duration::from_secs(3600))
            .after_connect(move |conn, _| {
                let settings = settings.clone();
                Box::pin(async move {
                    apply_settings(conn, &settings)
                        .await
                        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))
                })
            })
            .connect_lazy_with(options);
        Ok(Pool(pool))
    }

    pub async fn session<'t>(
        &self,
        texts: impl Iterator<Item = Option<&'t str>>,
    ) -> anyhow::Result<Session> {
        let conn = self
            .0
            .acquire()
            .await
            .map_err(|e| anyhow::anyhow!("cannot get a pooled connection: {}", db_error(&e)))?;
        let mut session = Session {
            handle: Handle::Pooled(conn),
            killer: None,
            statements: Vec::new(),
            last_lock_read: None,
            kept: None,
        };
        for text in texts {
            session.prepare(text).await?;
        }
        Ok(session)
    }
}
