//! What every command that talks to a database needs around its work: the server (given, a
//! private ephemeral one, or one in a Docker container), the run's own database, and
//! Ctrl-C/SIGTERM turned into a cancellation. `close` undoes all of it (drops the database
//! unless `--keep`, stops a private server, removes a container) and must be called on every
//! path; this module does no scenario work itself.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use crate::cli::DbArgs;
use crate::engine::{EngineKind, PrivateRedis, RunDatabase, Server, ServerInfo, ServerOptions};
pub use crate::runner::Interrupted;
use crate::runner::nodes::{Target, Targets};
use crate::scenario::{NodeKind, Scenario};

pub struct Workspace {
    pub server: Server,
    pub db: RunDatabase,
    pub info: ServerInfo,
    /// Cancelled by Ctrl-C or SIGTERM.
    pub abort: CancellationToken,
    signals: tokio::task::JoinHandle<()>,
    keep: bool,
    /// The scenario's nodes besides the run database (`[node.*]`), in its order.
    nodes: Vec<NodeSpace>,
}

/// One node besides the run database: its server (or private Redis) and what the run made there.
struct NodeSpace {
    name: String,
    server: Option<Server>,
    db: Option<RunDatabase>,
    redis: Option<PrivateRedis>,
    target: Target,
    /// For people: `bank_b: PostgreSQL 15.19, private ...`.
    description: String,
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
        Workspace::open_with(args, engine, None, &[], label, connections, say).await
    }

    /// Opens the servers `scenario` runs on: the run database (its first node, when it declares
    /// `[node.*]`), then every other node: a `--node NAME=URL` server, or a private one.
    pub async fn for_scenario(
        args: &DbArgs,
        scenario: &Scenario,
        connections: u32,
        say: &mut dyn FnMut(String),
    ) -> anyhow::Result<Workspace> {
        for (name, _) in &args.node {
            if !scenario.nodes.iter().any(|n| &n.name == name) {
                let names: Vec<&str> = scenario.nodes.iter().map(|n| n.name.as_str()).collect();
                anyhow::bail!(
                    "--node {name}=...: {} has {}",
                    scenario.name,
                    if names.is_empty() {
                        "no [node.*] tables (it runs on one database: use --db)".to_string()
                    } else {
                        format!("no node named `{name}`; its nodes are {}", names.join(", "))
                    }
                );
            }
        }
        let url_of = |name: &str| {
            args.node
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, u)| u.clone())
        };
        for i in scenario.restarted_nodes() {
            let name = &scenario.nodes[i].name;
            if url_of(name).is_some() {
                anyhow::bail!(
                    "--node {name}=...: {} restarts node {name}'s server (a step's `restart` fault), and the lab restarts only a private server it started: leave --node {name} out",
                    scenario.name
                );
            }
        }
        let main = scenario.nodes.first();
        let main_url = main.and_then(|n| url_of(&n.name));
        if main_url.is_some() && args.db.is_some() {
            anyhow::bail!(
                "--node {}=...: it is the run database; give --db or --node for it, not both",
                main.map(|n| n.name.as_str()).unwrap_or_default()
            );
        }
        let main_settings = main.map_or(&[][..], |n| &n.server[..]);
        let mut ws = Workspace::open_with(
            args,
            scenario.engine,
            main_url,
            main_settings,
            &scenario.name,
            connections,
            say,
        )
        .await?;
        let restarted = scenario.restarted_nodes();
        for (i, node) in scenario.nodes.iter().enumerate().skip(1) {
            let opened = ws
                .open_node(
                    node,
                    restarted.contains(&i),
                    url_of(&node.name),
                    scenario.engine,
                    &scenario.name,
                    connections,
                    say,
                )
                .await;
            match opened {
                Ok(n) => ws.nodes.push(n),
                Err(e) => return Err(ws.close_after(Some(e), say).await.unwrap_err()),
            }
        }
        Ok(ws)
    }

    /// Opens one node besides the run database.
    /// `restarted`: a fault restarts it, so it keeps every commit it acknowledged through a
    /// crash of its process.
    #[allow(clippy::too_many_arguments)]
    async fn open_node(
        &self,
        node: &crate::scenario::Node,
        restarted: bool,
        url: Option<String>,
        engine: EngineKind,
        label: &str,
        connections: u32,
        say: &mut dyn FnMut(String),
    ) -> anyhow::Result<NodeSpace> {
        let name = node.name.clone();
        if node.kind == NodeKind::Redis {
            // The run's keys start with a prefix of its own: a shared Redis keeps its data.
            let prefix = format!(
                "contention:{}:{:06x}:",
                std::process::id(),
                rand::random::<u32>() & 0xff_ffff
            );
            return Ok(match url {
                Some(url) => NodeSpace {
                    description: format!("node {name}: Redis at {url} (keys {prefix}*)"),
                    target: Target::Redis { url, prefix },
                    name,
                    server: None,
                    db: None,
                    redis: None,
                },
                None => {
                    say(format!("node {name}: starting a private Redis"));
                    let eph = tokio::select! {
                        e = tokio::task::spawn_blocking(PrivateRedis::start) => e??,
                        () = self.abort.cancelled() => return Err(Interrupted("starting a private Redis").into()),
                    };
                    NodeSpace {
                        description: format!(
                            "node {name}: Redis {}, private ({}; removed afterwards)",
                            eph.version(),
                            eph.socket().display()
                        ),
                        target: Target::Redis {
                            url: eph.url(),
                            prefix,
                        },
                        name,
                        server: None,
                        db: None,
                        redis: Some(eph),
                    }
                }
            });
        }
        // An advisory-lock service runs on PostgreSQL whatever the run's engine.
        let advisory = node.kind == NodeKind::Advisory;
        let engine = if advisory {
            EngineKind::Postgres
        } else {
            engine
        };
        let private = url.is_none();
        let mut settings = vec![(
            "max_connections".to_string(),
            (connections + 20).max(300).to_string(),
        )];
        if restarted {
            let safe = engine.crash_safe_settings().iter();
            settings.extend(safe.map(|&(k, v)| (k.to_string(), v.to_string())));
        }
        settings.extend(node.server.iter().cloned());
        let opts = ServerOptions {
            engine,
            url,
            from_env: false,
            ephemeral_settings: settings,
        };
        if private {
            say(format!(
                "node {name}: starting a private {}",
                engine.title()
            ));
        }
        let mut server = tokio::select! {
            s = Server::provision(&opts) => s?,
            () = self.abort.cancelled() => return Err(Interrupted("provisioning a node's server").into()),
        };
        let db = match server.create_database(label).await {
            Ok(db) => db,
            Err(e) => {
                server.shutdown();
                return Err(e.context(format!("node {name}")));
            }
        };
        let description = format!("node {name}: {}", server.description());
        say(format!("{description}, run database {}", db.name()));
        Ok(NodeSpace {
            target: if advisory {
                Target::Advisory(db.clone())
            } else {
                Target::Database(db.clone())
            },
            name,
            server: Some(server),
            db: Some(db),
            redis: None,
            description,
        })
    }

    /// The run's nodes: the run database, then the others in the scenario's order.
    pub fn targets(&self) -> Targets {
        Targets::new(
            &self.db,
            self.nodes
                .iter()
                .map(|n| {
                    let restarter = n.server.as_ref().and_then(|s| s.restarter());
                    (n.target.clone(), restarter)
                })
                .collect(),
        )
    }

    /// Every node's server, for reports (empty for a scenario on one database).
    pub fn node_servers(&self, scenario: &Scenario) -> Vec<crate::report::NodeServer> {
        let Some(main) = scenario.nodes.first() else {
            return Vec::new();
        };
        let mut out = vec![crate::report::NodeServer {
            node: main.name.clone(),
            server: self.server.description().to_string(),
        }];
        out.extend(self.nodes.iter().map(|n| {
            crate::report::NodeServer {
                node: n.name.clone(),
                server: n
                    .description
                    .strip_prefix(&format!("node {}: ", n.name))
                    .unwrap_or(&n.description)
                    .to_string(),
            }
        }));
        out
    }

    async fn open_with(
        args: &DbArgs,
        engine: EngineKind,
        url: Option<String>,
        server_settings: &[(String, String)],
        label: &str,
        connections: u32,
        say: &mut dyn FnMut(String),
    ) -> anyhow::Result<Workspace> {
        let url = url.or_else(|| args.db.clone());
        if args.keep && url.is_none() && !args.db_from_env {
            anyhow::bail!(
                "--keep needs --db URL or --db-from-env: a private ephemeral server is always removed"
            );
        }
        let in_docker = url
            .as_deref()
            .and_then(crate::engine::docker::spec)
            .map(str::to_string);
        if args.keep && in_docker.is_some() {
            anyhow::bail!(
                "--keep needs --db URL or --db-from-env: a --db docker: container is always removed"
            );
        }
        let abort = CancellationToken::new();
        let signals = spawn_signal_handler(abort.clone());
        let mut ephemeral_settings = vec![(
            "max_connections".to_string(),
            (connections + 20).max(300).to_string(),
        )];
        ephemeral_settings.extend(server_settings.iter().cloned());
        let opts = ServerOptions {
            engine,
            url,
            from_env: args.db_from_env,
            ephemeral_settings,
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
                    nodes: Vec::new(),
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
        let mut dropped = if self.keep {
            say(format!("kept database {} (--keep)", self.db.name()));
            Ok(())
        } else {
            self.server.drop_database(&self.db).await
        };
        for node in &mut self.nodes {
            if let (Some(server), Some(db)) = (&mut node.server, &node.db) {
                if self.keep && !server.is_ephemeral() {
                    say(format!(
                        "node {}: kept database {} (--keep)",
                        node.name,
                        db.name()
                    ));
                } else if let Err(e) = server.drop_database(db).await
                    && dropped.is_ok()
                {
                    dropped = Err(e.context(format!("node {}", node.name)));
                }
                server.shutdown();
            }
            if let Some(redis) = &mut node.redis {
                redis.stop();
            } else if let Target::Redis { url, prefix } = &node.target
                && !self.keep
            {
                // A Redis given by URL: delete this run's keys, nothing else.
                let cleared = async {
                    crate::engine::LockService::connect(url, prefix)
                        .await?
                        .clear()
                        .await
                }
                .await;
                if let Err(e) = cleared
                    && dropped.is_ok()
                {
                    dropped = Err(e.context(format!("node {}", node.name)));
                }
            }
        }
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
