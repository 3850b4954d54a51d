//! What every command that talks to a database needs around its work: the server (given, a
//! private ephemeral one, or one in a Docker container), the run's own database, and
//! Ctrl-C/SIGTERM turned into a cancellation. `close` undoes all of it (drops the database
//! unless `--keep`, stops a private server, removes a container) and must be called on every
//! path; this module does no scenario work itself.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use crate::cli::DbArgs;
use crate::engine::{EngineKind, RunDatabase, Server, ServerInfo, ServerOptions};
pub use crate::runner::Interrupted;

pub struct Workspace {
    pub server: Server,
    pub db: RunDatabase,
    pub info: ServerInfo,
    /// Cancelled by Ctrl-C or SIGTERM.
    pub abort: CancellationToken,
    signals: tokio::task::JoinHandle<()>,
    keep: bool,
}

impl Workspace {
    /// Provisions the server and creates the run database `contention_<label>_...`.
    /// `connections` is how many sessions the work opens at most (sizes a private server).
    pub async fn open(
        args: &DbArgs,
        engine: EngineKind,
        label: &str,
        connections: u32,
        say: &mut dyn FnMut(String),
    ) -> anyhow::Result<Workspace> {
        if args.keep && args.db.is_none() && !args.db_from_env {
            anyhow::bail!(
                "--keep needs --db URL or --db-from-env: a private ephemeral server is always removed"
            );
        }
        let in_docker = args.db.as_deref().and_then(crate::engine::docker::spec);
        if args.keep && in_docker.is_some() {
            anyhow::bail!(
                "--keep needs --db URL or --db-from-env: a --db docker: container is always removed"
            );
        }
        let abort = CancellationToken::new();
        let signals = spawn_signal_handler(abort.clone());
        let opts = ServerOptions {
            engine,
            url: args.db.clone(),
            from_env: args.db_from_env,
            ephemeral_settings: vec![(
                "max_connections".into(),
                (connections + 20).max(300).to_string(),
            )],
        };
        if let Some(image) = in_docker {
            say(format!(
                "starting {image} in a Docker container (--db docker:; the first start pulls the image)"
            ));
        } else if opts.url.is_none() && !opts.from_env {
            say(format!(
                "starting a private {} (no --db given)",
                opts.engine.title()
            ));
        }
        // A private server's start gives up on the interrupt itself (and removes what it made);
        // a connection attempt is dropped.
        let provisioned = tokio::select! {
            s = Server::provision(&opts) => s,
            () = abort.cancelled() => Err(Interrupted("provisioning the server").into()),
        };
        let mut server = match provisioned {
            Ok(s) => s,
            Err(e) => {
                signals.abort();
                return Err(e);
            }
        };
        say(format!("using {}", server.description()));
        let made = async {
            let info = tokio::select! {
                info = server.info() => info?,
                () = abort.cancelled() => return Err(Interrupted("asking the server its version").into()),
            };
            if abort.is_cancelled() {
                return Err(Interrupted("creating the run database").into());
            }
            // Bounded by the connect timeout; not abandoned half-way, so that a database it
            // creates is known and dropped.
            let db = server.create_database(label).await?;
            anyhow::Ok((info, db))
        }
        .await;
        match made {
            Ok((info, db)) => {
                say(format!("run database {}", db.name()));
                Ok(Workspace {
                    server,
                    db,
                    info,
                    abort,
                    signals,
                    keep: args.keep,
                })
            }
            Err(e) => {
                server.shutdown();
                signals.abort();
                // An error that the interrupt caused is the interrupt.
                if abort.is_cancelled() && e.downcast_ref::<Interrupted>().is_none() {
                    return Err(Interrupted("connecting to the server").into());
                }
                Err(e)
            }
        }
    }

    /// Closes after work that may have failed: the work's error wins over the clean-up's,
    /// which is still said.
    pub async fn close_after(
        self,
        failure: Option<anyhow::Error>,
        say: &mut dyn FnMut(String),
    ) -> anyhow::Result<()> {
        let closed = self.close(say).await;
        match failure {
            Some(e) => {
                if let Err(c) = closed {
                    say(format!("also: {c:#}"));
                }
                Err(e)
            }
            None => closed,
        }
    }

    /// Drops the run database (unless `--keep`) and stops a private server.
    pub async fn close(mut self, say: &mut dyn FnMut(String)) -> anyhow::Result<()> {
        let dropped = if self.keep {
            say(format!("kept database {} (--keep)", self.db.name()));
            Ok(())
        } else {
            self.server.drop_database(&self.db).await
        };
        self.server.shutdown();
        self.signals.abort();
        dropped
    }
}

/// Set when SIGTERM (rather than SIGINT) stopped the run: the exit is then 143, not 130.
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Whether SIGTERM stopped the run.
pub fn terminated() -> bool {
    TERMINATED.load(Ordering::Relaxed)
}

/// Set on Ctrl-C or SIGTERM, for blocking code that cannot await the abort token (a peer
/// benchmark program waited for on a blocking thread).
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C or SIGTERM arrived.
pub fn signalled() -> bool {
    SIGNALLED.load(Ordering::Relaxed)
}

/// Cancels `abort` on Ctrl-C or SIGTERM (and remembers which).
fn spawn_signal_handler(abort: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => TERMINATED.store(true, Ordering::Relaxed),
        }
        SIGNALLED.store(true, Ordering::Relaxed);
        crate::engine::local::interrupt_starts();
        abort.cancel();
    })
}
