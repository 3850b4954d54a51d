//! The engine boundary: everything that knows which database server the lab talks to.
//!
//! Each engine (PostgreSQL through tokio-postgres, MariaDB/MySQL through sqlx) lives in its own
//! submodule; this module puts them behind enums with one variant per engine, so the hot path
//! keeps static dispatch (a `match` per call, no boxing, no allocation added). Its vocabulary:
//! - [`Server`]: provisioning (a URL, the libpq environment, a private server from the local
//!   binaries, a Docker container: [`docker`]), identity ([`ServerInfo`]), the run's own database (create, drop);
//! - [`RunDatabase`]: one run's database: reset it, open [`Session`]s and a [`Pool`];
//! - [`Session`]: one connection: describe and prepare statements, send a statement with its
//!   transaction framing ([`Exchange`]), begin/commit/rollback, run setup batches and scalar
//!   queries, its server-side id and, for replays, who blocks a session, and SQL run as
//!   written with every result set and notice kept ([`written`]);
//! - [`DbError`]: an error classified into the lab's classes ([`ErrorKind`]) with the engine's own
//!   code beside it (`error`); [`EngineKind`]: the engines by name (`kind`);
//! - [`redis`]: a private Redis and the lock service with fencing tokens that distributed
//!   scenarios will build on.
//!
//! Nothing outside `engine` names a driver crate. This module must not know about scenarios'
//! meaning, statistics or reports.

mod beside;
pub mod docker;
mod error;
mod kind;
pub mod local;
pub mod mariadb;
pub mod postgres;
pub mod redis;
pub mod written;

use std::future::Future;
use std::pin::Pin;

use crate::isolation::Isolation;
use crate::scenario::Value;

pub use beside::run_beside;
pub use error::{DbError, ErrorKind};
pub use kind::EngineKind;
pub use local::Restarter;
pub use postgres::ephemeral::find_bindir;
/// The lock service and a private Redis, for scenarios with a `redis` node.
pub use redis::{ephemeral::Ephemeral as PrivateRedis, lock::LockService};

/// Where to find a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub engine: EngineKind,
    /// `--db URL` or `DATABASE_URL`; `docker:IMAGE[:TAG]` starts the image in a container.
    pub url: Option<String>,
    /// `--db-from-env`: the engine's client environment variables (PGHOST, ...).
    pub from_env: bool,
    /// Extra server settings for a private server (`name`, `value`).
    pub ephemeral_settings: Vec<(String, String)>,
}

/// How long a started container's server has to answer (after the image is pulled).
const CONTAINER_READY: std::time::Duration = std::time::Duration::from_secs(120);

/// Version and settings recorded in every report.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    /// Which engine the server is (files written before engines existed: postgres).
    #[serde(default)]
    pub engine: EngineKind,
    pub version: String,
    pub version_num: i64,
    pub ephemeral: bool,
    pub settings: std::collections::BTreeMap<String, String>,
}

/// How an external client reaches a run database (pgbench, sysbench). Never printed with the
/// password.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// A host name, or the directory of a Unix socket (PostgreSQL) / the socket file (MySQL).
    pub host: String,
    pub socket: bool,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
}

/// A server the run can use; a private one is stopped when shut down or dropped.
pub enum Server {
    Postgres(postgres::Server),
    Mariadb(mariadb::Server),
}

impl Server {
    pub async fn provision(opts: &ServerOptions) -> anyhow::Result<Server> {
        if let Some(spec) = opts.url.as_deref().and_then(docker::spec) {
            return Server::in_container(spec, opts).await;
        }
        match opts.engine {
            EngineKind::Postgres => postgres::Server::provision(opts)
                .await
                .map(Server::Postgres),
            EngineKind::Mariadb => mariadb::Server::provision(opts).await.map(Server::Mariadb),
        }
    }

    /// `--db docker:IMAGE`: starts the image and connects to its mapped port as to a `--db`
    /// URL (the image's superuser, no password), until the server answers.
    async fn in_container(spec: &str, opts: &ServerOptions) -> anyhow::Result<Server> {
        let shown = format!("--db {}{spec}", docker::PREFIX);
        let (image, engine) = docker::resolve(spec, Some(opts.engine))
            .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        let mut container = docker::Container::start(&image, engine, &opts.ephemeral_settings)
            .await
            .map_err(|e| anyhow::anyhow!("{shown}: {e:#}"))?;
        let url = match engine {
            EngineKind::Postgres => format!(
                "postgresql://postgres@{}:{}/postgres",
                container.host, container.port
            ),
            EngineKind::Mariadb => format!("mysql://root@{}:{}/", container.host, container.port),
        };
        let direct = ServerOptions {
            engine,
            url: Some(url),
            from_env: false,
            ephemeral_settings: Vec::new(),
        };
        // The image initialises its data directory first (behind a server that does not listen
        // on TCP): connect until the real server answers, the container stops, or time is up.
        let deadline = std::time::Instant::now() + CONTAINER_READY;
        let mut server = loop {
            let tried = match engine {
                EngineKind::Postgres => postgres::Server::provision(&direct)
                    .await
                    .map(Server::Postgres),
                EngineKind::Mariadb => mariadb::Server::provision(&direct)
                    .await
                    .map(Server::Mariadb),
            };
            match tried {
                Ok(s) => break s,
                Err(e) => {
                    let stopped = !container.is_running().await;
                    if stopped || std::time::Instant::now() >= deadline {
                        let log = container.log_tail(20).await;
                        let why = if stopped {
                            "the container stopped".to_string()
                        } else {
                            format!("not ready after {}s", CONTAINER_READY.as_secs())
                        };
                        container.remove();
                        anyhow::bail!(
                            "{shown}: {why}: {e:#}\n(the container's last lines:)\n{log}"
                        );
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
            }
        };
        let description = format!(
            "{} in a Docker container ({image}, id {}, {}:{}; removed afterwards)",
            engine.title(),
            container.id(),
            container.host,
            container.port
        );
        match &mut server {
            Server::Postgres(s) => s.attach_container(container, description),
            Server::Mariadb(s) => s.attach_container(container, description),
        }
        Ok(server)
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            Server::Postgres(_) => EngineKind::Postgres,
            Server::Mariadb(_) => EngineKind::Mariadb,
        }
    }

    /// For people: where the server is, without password.
    pub fn description(&self) -> &str {
        match self {
            Server::Postgres(s) => &s.description,
            Server::Mariadb(s) => &s.description,
        }
    }

    /// A handle that restarts the server as a fault: a private one the lab started (a
    /// container's restart is refused when asked for).
    pub fn restarter(&self) -> Option<local::Restarter> {
        match self {
            Server::Postgres(s) => s.restarter(),
            Server::Mariadb(s) => s.restarter(),
        }
    }

    pub fn is_ephemeral(&self) -> bool {
        match self {
            Server::Postgres(s) => s.is_ephemeral(),
            Server::Mariadb(s) => s.is_ephemeral(),
        }
    }

    pub async fn info(&self) -> anyhow::Result<ServerInfo> {
        match self {
            Server::Postgres(s) => s.info().await,
            Server::Mariadb(s) => s.info().await,
        }
    }

    /// Creates the run's own database, `contention_<label>_<pid>_<random>`.
    pub async fn create_database(&self, label: &str) -> anyhow::Result<RunDatabase> {
        match self {
            Server::Postgres(s) => s.create_database(label).await.map(RunDatabase::Postgres),
            Server::Mariadb(s) => s.create_database(label).await.map(RunDatabase::Mariadb),
        }
    }

    /// Drops a database this run created (and only such a database), ending its sessions.
    pub async fn drop_database(&self, db: &RunDatabase) -> anyhow::Result<()> {
        match (self, db) {
            (Server::Postgres(s), RunDatabase::Postgres(d)) => s.drop_database(d).await,
            (Server::Mariadb(s), RunDatabase::Mariadb(d)) => s.drop_database(d).await,
            _ => anyhow::bail!("the run database `{}` is not on this server", db.name()),
        }
    }

    /// Stops a private server, if this is one. Idempotent.
    pub fn shutdown(&mut self) {
        match self {
            Server::Postgres(s) => s.shutdown(),
            Server::Mariadb(s) => s.shutdown(),
        }
    }
}

/// A time's text with its fraction trimmed as the servers print it: `12:00:00.250000` ->
/// `12:00:00.25`, `12:00:00.000000` -> `12:00:00`.
pub(crate) fn trim_fraction(s: String) -> String {
    match s.rsplit_once('.') {
        Some((whole, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                whole.to_string()
            } else {
                format!("{whole}.{frac}")
            }
        }
        None => s,
    }
}

/// Integral decimals become integers (so `sum(balance) != 1000` compares like with like).
pub(crate) fn decimal_value(d: rust_decimal::Decimal) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    if d.fract().is_zero()
        && let Some(i) = d.to_i64()
    {
        return Value::Int(i);
    }
    Value::Float(d.to_f64().unwrap_or(f64::NAN))
}

/// The name a run database gets: recognisable, and unique to this process.
pub(crate) fn run_database_name(label: &str) -> String {
    let slug: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    format!(
        "contention_{slug}_{}_{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// The database one run works in.
#[derive(Debug, Clone)]
pub enum RunDatabase {
    Postgres(postgres::RunDatabase),
    Mariadb(mariadb::RunDatabase),
}

/// The future that does a connection's socket I/O, for engines whose driver needs one polled
/// beside the client (see [`RunDatabase::session_undriven`]).
pub type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

impl RunDatabase {
    pub fn name(&self) -> &str {
        match self {
            RunDatabase::Postgres(d) => &d.name,
            RunDatabase::Mariadb(d) => &d.name,
        }
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            RunDatabase::Postgres(_) => EngineKind::Postgres,
            RunDatabase::Mariadb(_) => EngineKind::Mariadb,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        match self {
            RunDatabase::Postgres(d) => d.endpoint(),
            RunDatabase::Mariadb(d) => d.endpoint(),
        }
    }

    /// A shell command that drops this database by hand (when the lab could not).
    pub fn drop_command(&self) -> String {
        let e = self.endpoint();
        let name = self.name();
        match self {
            RunDatabase::Postgres(_) => format!(
                "psql -h {} -p {} -U {} -d postgres -c 'DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)'",
                e.host, e.port, e.user
            ),
            RunDatabase::Mariadb(_) => {
                let at = if e.socket {
                    format!("--socket={}", e.host)
                } else {
                    format!("-h {} -P {}", e.host, e.port)
                };
                format!(
                    "mariadb {at} -u {} -e 'DROP DATABASE IF EXISTS `{name}`'",
                    e.user
                )
            }
        }
    }

    /// Empties the run database (everything the last cell made is gone) and returns a session
    /// on it for the setup.
    pub async fn reset(&self) -> Result<Session, DbError> {
        match self {
            RunDatabase::Postgres(d) => d.reset().await.map(Session::Postgres),
            RunDatabase::Mariadb(d) => d.reset().await.map(Session::Mariadb),
        }
    }

    /// A session whose connection is driven on the runtime (setup, checks, replays).
    pub async fn session(&self, settings: &[(String, String)]) -> anyhow::Result<Session> {
        match self {
            RunDatabase::Postgres(d) => d.session(settings).await.map(Session::Postgres),
            RunDatabase::Mariadb(d) => d.session(settings).await.map(Session::Mariadb),
        }
    }

    /// A session for steps run as written: it keeps the server's notices where the engine
    /// delivers them (see [`written`]).
    pub async fn written_session(&self, settings: &[(String, String)]) -> anyhow::Result<Session> {
        match self {
            RunDatabase::Postgres(d) => d
                .session_with_notices(settings)
                .await
                .map(Session::Postgres),
            RunDatabase::Mariadb(d) => d.session(settings).await.map(Session::Mariadb),
        }
    }

    /// A session and, where the engine has one, the future that drives its connection: a load
    /// client polls it in its own task, so a reply passes no other task on its way.
    pub async fn session_undriven(
        &self,
        settings: &[(String, String)],
    ) -> anyhow::Result<(Session, Option<Driver>)> {
        match self {
            RunDatabase::Postgres(d) => {
                let (s, driver) = d.session_undriven(settings).await?;
                Ok((Session::Postgres(s), Some(Box::pin(driver))))
            }
            // sqlx drives a MySQL connection inside each call: nothing to poll beside it.
            RunDatabase::Mariadb(d) => Ok((Session::Mariadb(d.session(settings).await?), None)),
        }
    }

    /// Session settings that make the server look for deadlocks after `wait` (replays use it so
    /// that the session closing a cycle is always the victim); empty where the user may not
    /// change it, or the engine detects deadlocks at once.
    pub async fn deadlock_timeout_setting(
        &self,
        wait: std::time::Duration,
    ) -> anyhow::Result<Vec<(String, String)>> {
        match self {
            RunDatabase::Postgres(d) => d.deadlock_timeout_setting(wait).await,
            RunDatabase::Mariadb(d) => d.deadlock_timeout_setting(wait).await,
        }
    }

    /// A pool of `size` connections shared by many clients (`--connections`).
    pub fn pool(&self, settings: &[(String, String)], size: usize) -> anyhow::Result<Pool> {
        match self {
            RunDatabase::Postgres(d) => d.pool(settings, size).map(EnginePool::Postgres),
            RunDatabase::Mariadb(d) => d.pool(settings, size).map(EnginePool::Mariadb),
        }
        .map(|engine| Pool::new(engine, size))
    }
}

/// Connections shared by many clients; each attempt borrows one.
#[derive(Clone)]
pub struct Pool {
    engine: EnginePool,
    /// One turn per connection. A client waits for its turn here, in a future of a few dozen
    /// bytes, and only then asks the engine's pool, whose wait (with the connect it may make) is
    /// about 2 KiB: with 10,000 clients waiting on 50 connections, 20 MB (massif,
    /// `run tpcb --clients 10000 --connections 50`).
    turns: std::sync::Arc<tokio::sync::Semaphore>,
}

#[derive(Clone)]
enum EnginePool {
    Postgres(postgres::Pool),
    Mariadb(mariadb::Pool),
}

/// A borrowed connection: its session, and the turn that keeps it the client's. Dropping it
/// gives the connection back to the pool, then the turn to the next client.
pub struct Pooled {
    session: Session,
    _turn: tokio::sync::OwnedSemaphorePermit,
}

impl std::ops::Deref for Pooled {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

impl Pool {
    fn new(engine: EnginePool, size: usize) -> Pool {
        Pool {
            engine,
            turns: std::sync::Arc::new(tokio::sync::Semaphore::new(size)),
        }
    }

    /// Borrows a connection, with `texts` prepared on it (cached per connection).
    ///
    /// Each engine's part is boxed: the client holds only its own engine's future, and only
    /// while its turn has come (sqlx's acquire is several KiB).
    pub async fn session<'t>(
        &self,
        texts: impl Iterator<Item = Option<&'t str>>,
    ) -> anyhow::Result<Pooled> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .expect("the pool's turns are never closed");
        let session = match &self.engine {
            EnginePool::Postgres(p) => Box::pin(p.session(texts)).await.map(Session::Postgres),
            EnginePool::Mariadb(p) => Box::pin(p.session(texts)).await.map(Session::Mariadb),
        }?;
        Ok(Pooled {
            session,
            _turn: turn,
        })
    }
}

/// A result column of a described statement.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// The engine's name of its type.
    pub type_name: String,
    /// Whether the lab can read it into a [`Value`].
    pub readable: bool,
}

/// One statement sent with its transaction framing: the `BEGIN` that opens the transaction
/// before it, and the `COMMIT` after it, when the caller wants them in the same exchange. An
/// engine that can pipelines them (PostgreSQL sends all three at once, each with its own Sync);
/// the others send them one after the other. The server sees the same statements either way.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The prepared statement (its index in the session's prepared list).
    pub statement: usize,
    /// Open a transaction at this level first.
    pub begin: Option<Isolation>,
    /// Commit right after the statement.
    pub commit: bool,
    /// The bind parameters' slots, in placeholder order.
    pub params: &'a [usize],
    /// The slots that receive the first row's columns (empty: the statement returns no rows).
    pub captures: &'a [usize],
    /// Also keep every row as text (bounded), for timelines: read it with
    /// [`Session::take_kept`]. Replays ask for it; load runs never do.
    pub keep: bool,
}

/// What a statement returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Rows affected (a statement without result columns).
    Affected(i64),
    /// Rows returned; the first row's columns went into the capture slots (all `None` when
    /// there was no row).
    Rows(i64),
}

/// Which part of an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Begin,
    Statement,
    Commit,
}

/// An exchange that failed: where, why, and whether a transaction is still open.
#[derive(Debug)]
pub struct Failed {
    pub phase: Phase,
    pub error: DbError,
    /// A transaction is open and must be rolled back.
    pub in_transaction: bool,
}

/// One connection to a run database.
pub enum Session {
    Postgres(postgres::Session),
    Mariadb(mariadb::Session),
}

impl Session {
    pub fn kind(&self) -> EngineKind {
        match self {
            Session::Postgres(_) => EngineKind::Postgres,
            Session::Mariadb(_) => EngineKind::Mariadb,
        }
    }

    /// Prepares `sql` to learn its result columns (nothing is kept).
    pub async fn describe(&mut self, sql: &str) -> Result<Vec<Column>, DbError> {
        match self {
            Session::Postgres(s) => s.describe(sql).await,
            Session::Mariadb(s) => s.describe(sql).await,
        }
    }

    /// Prepares a statement and keeps it: exchanges name it by its index in this list.
    /// `None` keeps an empty place (a step without SQL).
    pub async fn prepare(&mut self, sql: Option<&str>) -> Result<(), DbError> {
        match self {
            Session::Postgres(s) => s.prepare(sql).await,
            Session::Mariadb(s) => s.prepare(sql).await,
        }
    }

    /// Sends one prepared statement, with the framing asked for; binds from `values` and writes
    /// the captured columns back into them.
    pub async fn exchange(
        &mut self,
        x: Exchange<'_>,
        values: &mut [Option<Value>],
    ) -> Result<Returned, Failed> {
        match self {
            Session::Postgres(s) => s.exchange(x, values).await,
            Session::Mariadb(s) => s.exchange(x, values).await,
        }
    }

    /// The rows the last exchange with `keep` returned, as the server named their columns.
    pub fn take_kept(&mut self) -> Option<written::ResultSet> {
        match self {
            Session::Postgres(s) => s.kept.take(),
            Session::Mariadb(s) => s.kept.take(),
        }
    }

    /// The notices the server sent since the last call, for a session opened with
    /// [`RunDatabase::written_session`] (none otherwise, and none on MariaDB).
    pub fn take_notices(&mut self) -> Vec<written::Output> {
        match self {
            Session::Postgres(s) => s.take_notices(),
            Session::Mariadb(_) => Vec::new(),
        }
    }

    /// Opens a transaction at `isolation`.
    pub async fn begin(&mut self, isolation: Isolation) -> Result<(), DbError> {
        match self {
            Session::Postgres(s) => s.batch(postgres::begin_sql(isolation)).await,
            Session::Mariadb(s) => s.batch(mariadb::begin_sql(isolation)).await,
        }
    }

    pub async fn commit(&mut self) -> Result<(), DbError> {
        match self {
            Session::Postgres(s) => s.batch("COMMIT").await,
            Session::Mariadb(s) => s.batch("COMMIT").await,
        }
    }

    /// A two-phase-commit action on transaction `id`: `PREPARE TRANSACTION` ends the open
    /// transaction (it survives the session); `COMMIT PREPARED` and `ROLLBACK PREPARED` run
    /// outside any. Returns false when COMMIT or ROLLBACK PREPARED found no such transaction
    /// (another session, a recovery, ended it first). PostgreSQL only (scenarios are refused on
    /// other engines when loaded).
    pub async fn two_phase(
        &mut self,
        action: crate::scenario::TwoPhase,
        id: &str,
    ) -> Result<bool, DbError> {
        use crate::scenario::TwoPhase;
        let verb = match action {
            TwoPhase::Prepare => "PREPARE TRANSACTION",
            TwoPhase::CommitPrepared => "COMMIT PREPARED",
            TwoPhase::RollbackPrepared => "ROLLBACK PREPARED",
        };
        match self {
            Session::Postgres(s) => {
                match s
                    .batch(&format!("{verb} '{}'", id.replace('\'', "''")))
                    .await
                {
                    Ok(()) => Ok(true),
                    // undefined_object: "prepared transaction with identifier ... does not exist"
                    Err(e) if e.code == "42704" && action != TwoPhase::Prepare => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Session::Mariadb(_) => Err(DbError {
                kind: ErrorKind::ScenarioBug,
                code: String::new(),
                message: format!("{verb}: two-phase commit steps need PostgreSQL"),
                position: None,
            }),
        }
    }

    pub async fn rollback(&mut self) -> Result<(), DbError> {
        match self {
            Session::Postgres(s) => s.batch("ROLLBACK").await,
            Session::Mariadb(s) => s.batch("ROLLBACK").await,
        }
    }

    /// The session as a lock service's: PostgreSQL's, whose advisory locks serve as one
    /// ([`postgres::advisory`]). A node of that kind always runs PostgreSQL, whatever the run's
    /// engine.
    pub fn advisory(&mut self) -> Result<&mut postgres::Session, DbError> {
        match self {
            Session::Postgres(s) => Ok(s),
            Session::Mariadb(_) => Err(DbError {
                kind: ErrorKind::ScenarioBug,
                code: String::new(),
                message: "advisory locks are PostgreSQL's: this session is MariaDB's".into(),
                position: None,
            }),
        }
    }

    /// Runs SQL text that may hold several statements (setup), without parameters.
    pub async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Session::Postgres(s) => s.batch(sql).await,
            Session::Mariadb(s) => s.batch(sql).await,
        }
    }

    /// The first column of the first row of `sql` (`None`: no row).
    pub async fn scalar(&mut self, sql: &str) -> Result<Option<Value>, DbError> {
        match self {
            Session::Postgres(s) => s.scalar(sql).await,
            Session::Mariadb(s) => s.scalar(sql).await,
        }
    }

    /// Asks the server to cancel the statement this session is running, from outside the
    /// session (PostgreSQL's cancel request; MySQL's `KILL QUERY` on a connection of its own).
    /// The session's own future must have been dropped; the session is not used afterwards.
    pub async fn cancel(&self) -> Result<(), DbError> {
        match self {
            Session::Postgres(s) => s.cancel().await,
            Session::Mariadb(s) => s.cancel().await,
        }
    }

    /// The server's id for this session (PostgreSQL's backend pid, MySQL's connection id).
    pub async fn server_id(&mut self) -> Result<i64, DbError> {
        match self {
            Session::Postgres(s) => s.server_id().await,
            Session::Mariadb(s) => s.server_id().await,
        }
    }

    /// The server ids of the sessions that `id` waits for (empty: it is not waiting on a lock).
    pub async fn blockers(&mut self, id: i64) -> Result<Vec<i64>, DbError> {
        match self {
            Session::Postgres(s) => s.blockers(id).await,
            Session::Mariadb(s) => s.blockers(id).await,
        }
    }
}
