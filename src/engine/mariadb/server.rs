//! The MariaDB/MySQL server a run uses and the database it creates there.
//!
//! `--db mysql://…` (or `mariadb://…`) uses an existing server; without `--db`, a private
//! server from the local binaries (`ephemeral`). On a server it did not start, the lab only
//! ever creates and drops its own database (`contention_<label>_<pid>_<random>`); it never
//! alters anything else. Connection strings are never shown with their password.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Executor as _};

use super::ephemeral::Ephemeral;
use super::session::{Pool, Session};
use super::{db_error, quote_ident};
use crate::engine::docker::Container;
use crate::engine::local::Started;
use crate::engine::{DbError, Endpoint, ServerInfo, ServerOptions, run_database_name};

/// A server the run can use; stops the private server (if any) when shut down or dropped.
pub struct Server {
    admin: MySqlConnectOptions,
    /// For people: where the server is, without password.
    pub description: String,
    /// The private server or container the lab started for it, if any.
    started: Started,
}

/// The database one run works in.
#[derive(Debug, Clone)]
pub struct RunDatabase {
    pub name: String,
    options: MySqlConnectOptions,
}

/// Parses `mysql://` and `mariadb://` URLs.
pub fn parse_url(url: &str) -> anyhow::Result<MySqlConnectOptions> {
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_string(),
    };
    MySqlConnectOptions::from_str(&url)
        .map_err(|e| anyhow::anyhow!("--db: cannot parse the connection string: {e}"))
}

impl Server {
    pub async fn provision(opts: &ServerOptions) -> anyhow::Result<Server> {
        if let Some(url) = &opts.url {
            let admin = parse_url(url)?;
            let description = describe(&admin);
            connect(&admin)
                .await
                .map_err(|e| anyhow::anyhow!("{e}\n(tried {description})"))?;
            return Ok(Server {
                admin,
                description,
                started: Started::default(),
            });
        }
        if opts.from_env {
            anyhow::bail!(
                "--db-from-env reads the libpq variables, which are PostgreSQL's: for MariaDB give --db mysql://user@host:port/"
            );
        }
        let settings = opts.ephemeral_settings.clone();
        let eph = tokio::task::spawn_blocking(move || Ephemeral::start(&settings))
            .await?
            .map_err(|e| {
                anyhow::anyhow!("{e}\n(no --db URL was given, so a private MariaDB was tried)")
            })?;
        let admin = MySqlConnectOptions::new()
            .socket(eph.socket())
            .username("root");
        let description = format!(
            "private MariaDB {} (ephemeral, {}{})",
            eph.version(),
            eph.data_dir().display(),
            if eph.from_template() {
                ", copied from the cached template"
            } else {
                ""
            }
        );
        Ok(Server {
            admin,
            description,
            started: Started::new(eph),
        })
    }

    /// A handle that restarts the server (a fault), when the lab started it.
    pub fn restarter(&self) -> Option<crate::engine::local::Restarter> {
        self.started.restarter()
    }

    /// A throw-away server the lab started: private, or in a Docker container.
    pub fn is_ephemeral(&self) -> bool {
        self.started.is_some()
    }

    /// Hands the server the container it runs in: removed when the server is shut down.
    pub fn attach_container(&mut self, container: Container, description: String) {
        self.started = Started::new(container);
        self.description = description;
    }

    pub async fn info(&self) -> anyhow::Result<ServerInfo> {
        let mut c = connect(&self.admin).await?;
        let version: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&mut c)
            .await
            .map_err(|e| anyhow::anyhow!("{}", db_error(&e)))?;
        let names = [
            "innodb_lock_wait_timeout",
            "innodb_deadlock_detect",
            "transaction_isolation",
            "tx_isolation",
            "max_connections",
            "innodb_snapshot_isolation",
            "innodb_flush_log_at_trx_commit",
            "innodb_buffer_pool_size",
            "innodb_rollback_on_timeout",
        ];
        let list = names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE LOWER(VARIABLE_NAME) IN ({list})"
        )))
        .fetch_all(&mut c)
        .await
        .map_err(|e| anyhow::anyhow!("{}", db_error(&e)))?;
        let num = version_num(&version);
        Ok(ServerInfo {
            engine: crate::engine::EngineKind::Mariadb,
            version: format!("MariaDB {version}").replace("MariaDB MariaDB", "MariaDB"),
            version_num: num,
            ephemeral: self.is_ephemeral(),
            settings: rows.into_iter().collect(),
        })
    }

    pub async fn create_database(&self, label: &str) -> anyhow::Result<RunDatabase> {
        let name = run_database_name(label);
        let mut c = connect(&self.admin).await?;
        c.execute(AssertSqlSafe(format!(
            "CREATE DATABASE {}",
            quote_ident(&name)
        )))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create the run database `{name}` on {}: {}",
                self.description,
                db_error(&e)
            )
        })?;
        Ok(RunDatabase {
            options: self.admin.clone().database(&name),
            name,
        })
    }

    /// Drops a database this run created (and only such a database), ending its sessions.
    pub async fn drop_database(&self, db: &RunDatabase) -> anyhow::Result<()> {
        let mut c = connect(&self.admin).await?;
        drop_run_database(&mut c, &db.name)
            .await
            .map_err(|e| anyhow::anyhow!("cannot drop the run database `{}`: {e}", db.name))
    }

    pub fn shutdown(&mut self) {
        self.started.shutdown();
    }
}

/// Ends the sessions in the database (their locks would hold up `DROP DATABASE`), then drops it.
async fn drop_run_database(c: &mut MySqlConnection, name: &str) -> Result<(), DbError> {
    // PROCESSLIST.ID is a signed BIGINT on MariaDB 10.11.
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
    )
    .bind(name)
    .fetch_all(&mut *c)
    .await
    .map_err(|e| db_error(&e))?;
    for id in ids {
        // The session may have ended meanwhile.
        let _ = c.execute(AssertSqlSafe(format!("KILL {id}"))).await;
    }
    c.execute(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {}",
        quote_ident(name)
    )))
    .await
    .map(drop)
    .map_err(|e| db_error(&e))
}

/// `10.11.9-MariaDB-…` as 101109.
fn version_num(v: &str) -> i64 {
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<i64>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    a * 10000 + b * 100 + c
}

impl RunDatabase {
    pub fn endpoint(&self) -> Endpoint {
        let o = &self.options;
        let (host, socket) = match o.get_socket() {
            Some(p) => (p.display().to_string(), true),
            None => (o.get_host().to_string(), false),
        };
        Endpoint {
            host,
            socket,
            port: o.get_port(),
            user: o.get_username().to_string(),
            password: None,
            database: self.name.clone(),
        }
    }

    /// Drops and recreates the run database (MySQL's database is PostgreSQL's schema).
    pub async fn reset(&self) -> Result<Session, DbError> {
        let admin = self.options.clone().database("");
        let mut c = open(&admin).await?;
        drop_run_database(&mut c, &self.name).await?;
        c.execute(AssertSqlSafe(format!(
            "CREATE DATABASE {}",
            quote_ident(&self.name)
        )))
        .await
        .map_err(|e| db_error(&e))?;
        drop(c);
        Session::connect(&self.options, &[]).await
    }

    pub async fn session(&self, settings: &[(String, String)]) -> anyhow::Result<Session> {
        Session::connect(&self.options, settings)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", describe(&self.options)))
    }

    /// MariaDB looks for deadlocks at once (innodb_deadlock_detect): nothing to set.
    pub async fn deadlock_timeout_setting(
        &self,
        _wait: Duration,
    ) -> anyhow::Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    pub fn pool(&self, settings: &[(String, String)], size: usize) -> anyhow::Result<Pool> {
        Pool::new(self.options.clone(), settings, size)
    }
}

/// How long connecting may take, the handshake included (a port that accepts and never replies
/// must not hang the lab).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects within [`CONNECT_TIMEOUT`].
pub(super) async fn open(options: &MySqlConnectOptions) -> Result<MySqlConnection, DbError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(r) => r.map_err(|e| db_error(&e)),
        Err(_) => Err(DbError {
            kind: crate::engine::ErrorKind::Connection,
            code: String::new(),
            message: format!(
                "the server did not complete the connection within {} s (the connect timeout)",
                CONNECT_TIMEOUT.as_secs()
            ),
            position: None,
        }),
    }
}

async fn connect(options: &MySqlConnectOptions) -> anyhow::Result<MySqlConnection> {
    open(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", describe(options)))
}

/// `mysql://user@host:port/db` (or the socket path), never the password.
pub fn describe(o: &MySqlConnectOptions) -> String {
    let db = o.get_database().unwrap_or("");
    match o.get_socket() {
        Some(p) => format!("mysql://{}@{}/{db}", o.get_username(), p.display()),
        None => format!(
            "mysql://{}@{}:{}/{db}",
            o.get_username(),
            o.get_host(),
            o.get_port()
        ),
    }
}
