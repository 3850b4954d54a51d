//! The PostgreSQL server a run uses and the database it creates there.
//!
//! Order: `--db URL` (or `DATABASE_URL`), then the libpq variables with `--db-from-env`, else a
//! private ephemeral cluster. On a server it did not start, the lab only ever creates and drops
//! its own database (`contention_<scenario>_<pid>_<random>`); it never alters anything else.
//! Connection strings are never shown with their password.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use super::ephemeral::Ephemeral;
use super::session::{Pool, Session};
use super::stream::{Line, ReadStream, Target};
use super::{db_error, pg_message, quote_ident};
use crate::engine::docker::Container;
use crate::engine::local::Started;
use crate::engine::{DbError, Endpoint, ServerInfo, ServerOptions, run_database_name};

/// A server the run can use; stops the ephemeral cluster (if any) when shut down or dropped.
pub struct Server {
    admin: Config,
    /// For people: where the server is, without password.
    pub description: String,
    /// The private server or container the lab started for it, if any.
    started: Started,
}

/// The database one run works in.
#[derive(Debug, Clone)]
pub struct RunDatabase {
    pub name: String,
    config: Config,
}

impl Server {
    pub async fn provision(opts: &ServerOptions) -> anyhow::Result<Server> {
        if let Some(url) = &opts.url {
            let admin = Config::from_str(url)
                .map_err(|e| anyhow::anyhow!("--db: cannot parse the connection string: {e}"))?;
            let description = describe(&admin);
            check_reachable(&admin, &description).await?;
            return Ok(Server {
                admin,
                description,
                started: Started::default(),
            });
        }
        if opts.from_env {
            let admin = from_libpq_env();
            let description = describe(&admin);
            check_reachable(&admin, &description).await?;
            return Ok(Server {
                admin,
                description,
                started: Started::default(),
            });
        }
        let settings = opts.ephemeral_settings.clone();
        let eph = tokio::task::spawn_blocking(move || Ephemeral::start(&settings))
            .await?
            .map_err(|e| anyhow::anyhow!("{e}\n(no --db URL, DATABASE_URL or --db-from-env was given, so a private PostgreSQL was tried)"))?;
        let admin = eph.config();
        let description = format!(
            "private PostgreSQL {} (ephemeral, {}{})",
            eph.major_version(),
            eph.data_dir().display(),
            if eph.from_template() {
                ", copied from the cached initdb template"
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

    /// A connection to the maintenance database.
    pub async fn admin(&self) -> anyhow::Result<Client> {
        connect(&self.admin).await
    }

    pub async fn info(&self) -> anyhow::Result<ServerInfo> {
        let c = self.admin().await?;
        let version: String = c.query_one("SELECT version()", &[]).await?.get(0);
        let num: String = c.query_one("SHOW server_version_num", &[]).await?.get(0);
        let names = [
            "deadlock_timeout",
            "default_transaction_isolation",
            "max_connections",
            "superuser_reserved_connections",
            "reserved_connections",
            "lock_timeout",
            "statement_timeout",
            "max_prepared_transactions",
            "fsync",
            "synchronous_commit",
            "shared_buffers",
        ];
        let rows = c
            .query(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY($1)",
                &[&&names[..]],
            )
            .await?;
        Ok(ServerInfo {
            engine: crate::engine::EngineKind::Postgres,
            version,
            version_num: num.parse().unwrap_or(0),
            ephemeral: self.is_ephemeral(),
            settings: rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        })
    }

    /// Creates the run's own database.
    pub async fn create_database(&self, label: &str) -> anyhow::Result<RunDatabase> {
        let name = run_database_name(label);
        let c = self.admin().await?;
        c.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot create the run database `{name}` on {}: {}",
                    self.description,
                    pg_message(&e)
                )
            })?;
        let mut config = self.admin.clone();
        config.dbname(&name);
        Ok(RunDatabase { name, config })
    }

    /// Drops a database this run created (and only such a database), ending its sessions and
    /// rolling back the transactions prepared in it (which would keep it from being dropped).
    pub async fn drop_database(&self, db: &RunDatabase) -> anyhow::Result<()> {
        // The DROP is tried even when that fails: its own error then says what is left.
        let mut prepared_error = None;
        if let Ok(c) = connect(&db.config).await
            && let Err(e) = rollback_prepared(&c).await
        {
            prepared_error = Some(format!(
                "rolling back the transactions prepared in `{}`: {}",
                db.name,
                pg_message(&e)
            ));
        }
        let c = self.admin().await?;
        c.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&db.name)
        ))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot drop the run database `{}`: {}{}",
                db.name,
                pg_message(&e),
                prepared_error
                    .as_deref()
                    .map(|p| format!(" (after an error {p})"))
                    .unwrap_or_default()
            )
        })
    }

    /// Stops the ephemeral cluster, if this server is one. Idempotent.
    pub fn shutdown(&mut self) {
        self.started.shutdown();
    }
}

impl RunDatabase {
    /// Where the database is, for external clients such as pgbench.
    pub fn endpoint(&self) -> Endpoint {
        let c = &self.config;
        let (host, socket) = match c.get_hosts().first() {
            Some(Host::Tcp(h)) => (h.clone(), false),
            Some(Host::Unix(p)) => (p.display().to_string(), true),
            None => ("localhost".into(), false),
        };
        Endpoint {
            host,
            socket,
            port: c.get_ports().first().copied().unwrap_or(5432),
            user: c.get_user().unwrap_or("postgres").to_string(),
            password: c
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            database: self.name.clone(),
        }
    }

    /// Connection settings for a client, with session settings passed as startup options.
    pub fn client_config(&self, settings: &[(String, String)]) -> Config {
        let mut c = self.config.clone();
        c.application_name("contention");
        if c.get_connect_timeout().is_none() {
            c.connect_timeout(CONNECT_TIMEOUT);
        }
        if !settings.is_empty() {
            let opts: Vec<String> = settings
                .iter()
                .map(|(k, v)| format!("-c {k}={}", v.replace('\\', "\\\\").replace(' ', "\\ ")))
                .collect();
            c.options(opts.join(" "));
        }
        c
    }

    /// Drops and recreates the `public` schema: everything a cell made is gone.
    pub async fn reset(&self) -> Result<Session, DbError> {
        let session = own_session(&self.client_config(&[]))
            .await
            .map_err(|e| DbError {
                kind: crate::engine::ErrorKind::Connection,
                code: String::new(),
                message: format!("{e:#}"),
                position: None,
            })?;
        let client = session.handle.client();
        rollback_prepared(client).await.map_err(|e| db_error(&e))?;
        client
            .batch_execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
            .await
            .map_err(|e| db_error(&e))?;
        Ok(session)
    }

    pub async fn session(&self, settings: &[(String, String)]) -> anyhow::Result<Session> {
        own_session(&self.client_config(settings)).await
    }

    /// A session whose connection forwards the server's notices, for steps run as written.
    pub async fn session_with_notices(
        &self,
        settings: &[(String, String)],
    ) -> anyhow::Result<Session> {
        let (client, conn, target, _) = connect_raw(&self.client_config(settings)).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(super::written::drive_with_notices(conn, tx));
        // Without a wire: its notices come through the driver.
        let mut s = Session::own(client, target, None);
        s.notices = Some(rx);
        Ok(s)
    }

    /// Connects, and leaves driving the connection to the caller: the returned future does the
    /// socket I/O and ends when the client is dropped.
    pub async fn session_undriven(
        &self,
        settings: &[(String, String)],
    ) -> anyhow::Result<(Session, impl Future<Output = ()> + Send + 'static)> {
        let config = self.client_config(settings);
        let (client, conn, target, line) = connect_raw(&config).await?;
        Ok((Session::own(client, target, Some(line)), async move {
            let _ = conn.await;
        }))
    }

    /// `deadlock_timeout`, which only a superuser may set (elsewhere the server's own value
    /// stands, and a deadlock's victim then depends on timing when it is short).
    pub async fn deadlock_timeout_setting(
        &self,
        wait: Duration,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let probe = connect(&self.client_config(&[])).await?;
        let superuser: String = probe
            .query_one("SELECT current_setting('is_superuser')", &[])
            .await
            .map_err(|e| anyhow::anyhow!("{}", pg_message(&e)))?
            .get(0);
        Ok(if superuser == "on" {
            vec![("deadlock_timeout".into(), format!("{}ms", wait.as_millis()))]
        } else {
            Vec::new()
        })
    }

    pub fn pool(&self, settings: &[(String, String)], size: usize) -> anyhow::Result<Pool> {
        Pool::new(self.client_config(settings), size)
    }
}

/// How long connecting may take when the URL sets no `connect_timeout`: the TCP connection and
/// the whole start-up exchange (a port that accepts and never replies must not hang the lab).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to drive: its socket is a [`ReadStream`].
pub type Connection = tokio_postgres::Connection<ReadStream, tokio_postgres::tls::NoTlsStream>;

/// Connects within the config's `connect_timeout` (else [`CONNECT_TIMEOUT`]), start-up exchange
/// included, trying the config's hosts in order; returns where the socket went too, for cancel
/// requests, and the session's side of the socket, for its exchanges.
pub async fn connect_raw(config: &Config) -> anyhow::Result<(Client, Connection, Target, Line)> {
    let limit = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let attempt = async {
        let mut last = None;
        for target in Target::all(config) {
            match target.open().await {
                Ok(stream) => {
                    let line = stream.line();
                    match config.connect_raw(stream, NoTls).await {
                        Ok((client, conn)) => return Ok((client, conn, target, line)),
                        Err(e) => last = Some(pg_message(&e)),
                    }
                }
                Err(e) => last = Some(e.to_string()),
            }
        }
        Err(last.unwrap_or_else(|| "the connection string names no host".into()))
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(three)) => Ok(three),
        Ok(Err(e)) => Err(anyhow::anyhow!(
            "cannot connect to {}: {e}",
            describe(config)
        )),
        Err(_) => Err(anyhow::anyhow!(
            "cannot connect to {}: the server did not complete the connection within {} s (connect_timeout{}; set ?connect_timeout=N in the URL to change it)",
            describe(config),
            limit.as_secs_f64(),
            if config.get_connect_timeout().is_some() {
                " from the URL"
            } else {
                ", the default"
            }
        )),
    }
}

/// A session on its own connection, driven on the runtime.
async fn own_session(config: &Config) -> anyhow::Result<Session> {
    let (client, conn, target, line) = connect_raw(config).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Session::own(client, target, Some(line)))
}

/// Connects and drives the connection on the runtime.
pub async fn connect(config: &Config) -> anyhow::Result<Client> {
    let (client, conn, _, _) = connect_raw(config).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn check_reachable(config: &Config, description: &str) -> anyhow::Result<()> {
    connect(config)
        .await
        .map(drop)
        .map_err(|e| anyhow::anyhow!("{e}\n(tried {description})"))
}

fn from_libpq_env() -> Config {
    let mut c = Config::new();
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match var("PGHOST") {
        Some(h) if h.starts_with('/') => c.host_path(h),
        Some(h) => c.host(&h),
        None => c.host("localhost"),
    };
    c.port(var("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432));
    let user = var("PGUSER")
        .or_else(|| var("USER"))
        .unwrap_or_else(|| "postgres".into());
    c.user(&user);
    c.dbname(var("PGDATABASE").unwrap_or(user));
    if let Some(p) = var("PGPASSWORD") {
        c.password(p);
    }
    c
}

/// `user@host:port/db`, never the password.
pub fn describe(c: &Config) -> String {
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgresql://{}@{host}:{port}/{}",
        c.get_user().unwrap_or("?"),
        c.get_dbname().unwrap_or("")
    )
}

/// Rolls back every transaction prepared in the database `client` is connected to (a scenario's
/// two-phase commits that a crash left in doubt): they hold locks that would block a reset, and
/// keep the database from being dropped. Only the run's own database is ever given here.
async fn rollback_prepared(client: &Client) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
            &[],
        )
        .await?;
    for row in rows {
        let gid: String = row.get(0);
        client
            .batch_execute(&format!("ROLLBACK PREPARED '{}'", gid.replace('\'', "''")))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_hides_the_password() {
        let c = Config::from_str("postgresql://bob:secret@db.example:6543/app").unwrap();
        let d = describe(&c);
        assert_eq!(d, "postgresql://bob@db.example:6543/app");
        assert!(!d.contains("secret"));
    }

    #[test]
    fn settings_become_startup_options() {
        let db = RunDatabase {
            name: "x".into(),
            config: Config::new(),
        };
        let c = db.client_config(&[("deadlock_timeout".into(), "100ms".into())]);
        assert_eq!(c.get_options(), Some("-c deadlock_timeout=100ms"));
    }
}
