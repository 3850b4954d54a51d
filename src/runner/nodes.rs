//! The servers of a scenario that spans several ([`Targets`], one per `[node.*]`, the run
//! database first), and a client's own connections to the nodes besides the run database
//! ([`Others`]: opened on first use, dropped together when the client crashes).
//!
//! It connects, resets, hands out connections and restarts a node's private server when a
//! step's fault asks; it must not run steps (that is `program`) nor provision servers (the
//! command's workspace does).

use std::sync::Arc;

use anyhow::anyhow;

use std::sync::Mutex;
use std::time::Duration;

use crate::engine::{DbError, ErrorKind, LockService, Restarter, RunDatabase, Session};
use crate::scenario::{NodeKind, Scenario};

/// Where one node is. One per node, built once per run: the variants' sizes do not matter.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Target {
    Database(RunDatabase),
    /// A lock service: the Redis URL (`redis+unix:///...`) and the prefix of the run's keys.
    Redis {
        url: String,
        prefix: String,
    },
    /// A lock service on PostgreSQL's advisory locks: the run's own database on that server.
    Advisory(RunDatabase),
}

/// The nodes of a run, by the scenario's node index; index 0 is the run database.
#[derive(Debug, Clone)]
pub struct Targets {
    nodes: Arc<[Target]>,
    /// Per node: what restarts its server (a private server the lab started), for faults.
    restarters: Arc<[Option<Restarter>]>,
    /// The first restart that failed (its server did not come back), reported after the cell.
    restart_failed: Arc<Mutex<Option<String>>>,
}

impl Targets {
    /// One database: a scenario without `[node.*]`.
    pub fn one(db: &RunDatabase) -> Targets {
        Targets::new(db, Vec::new())
    }

    /// The run database first, then every other node in the scenario's order, each with what
    /// restarts its server when the lab started it.
    pub fn new(main: &RunDatabase, others: Vec<(Target, Option<Restarter>)>) -> Targets {
        let mut nodes = vec![Target::Database(main.clone())];
        let mut restarters = vec![None];
        for (t, r) in others {
            nodes.push(t);
            restarters.push(r);
        }
        Targets {
            nodes: nodes.into(),
            restarters: restarters.into(),
            restart_failed: Arc::default(),
        }
    }

    /// A restart fault: stops node `node`'s server at once and returns when it is down; it
    /// starts again `down` later, in the background. `Ok(false)` when a restart of it is
    /// already under way (none is made). An error when the lab did not start that server.
    pub async fn restart(&self, node: usize, down: Duration) -> anyhow::Result<bool> {
        let Some(Some(restarter)) = self.restarters.get(node).cloned() else {
            return Err(anyhow!(
                "node {node}'s server was given (--node): the lab restarts only a private server it started"
            ));
        };
        let (stopped, is_down) = tokio::sync::oneshot::channel();
        let failed = self.restart_failed.clone();
        tokio::task::spawn_blocking(move || {
            let mut stopped = Some(stopped);
            let done = restarter.restart(down, &mut || {
                if let Some(s) = stopped.take() {
                    let _ = s.send(());
                }
            });
            if let Err(e) = &done {
                let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                f.get_or_insert_with(|| format!("node {node}: restarting its server: {e:#}"));
            }
            done
        });
        // The sender is dropped without a send when no restart was made.
        Ok(is_down.await.is_ok())
    }

    /// Waits for every restart under way to end; an error if one failed.
    pub async fn settle(&self) -> anyhow::Result<()> {
        for r in self.restarters.iter().flatten() {
            let r = r.clone();
            tokio::task::spawn_blocking(move || r.settle()).await?;
        }
        match self
            .restart_failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(e) => Err(anyhow!(e)),
            None => Ok(()),
        }
    }

    /// The run database (node 0).
    pub fn main(&self) -> &RunDatabase {
        match &self.nodes[0] {
            Target::Database(db) => db,
            Target::Redis { .. } | Target::Advisory(_) => unreachable!("node 0 is a database"),
        }
    }

    pub fn get(&self, node: usize) -> Option<&Target> {
        self.nodes.get(node)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether these are the nodes `scenario` declares (one database when it declares none).
    pub fn fit(&self, scenario: &Scenario) -> anyhow::Result<()> {
        let wanted = scenario.nodes.len().max(1);
        if self.nodes.len() != wanted {
            return Err(anyhow!(
                "{}: the scenario has {wanted} node(s) but the run has {} server(s)",
                scenario.file.display(),
                self.nodes.len()
            ));
        }
        for (n, t) in scenario.nodes.iter().zip(self.nodes.iter()) {
            let ok = matches!(
                (n.kind, t),
                (NodeKind::Database, Target::Database(_))
                    | (NodeKind::Redis, Target::Redis { .. })
                    | (NodeKind::Advisory, Target::Advisory(_))
            );
            if !ok {
                return Err(anyhow!(
                    "node {}: the server given is of another kind",
                    n.name
                ));
            }
        }
        Ok(())
    }

    /// A connection to database node `node` (not the run database's pool).
    pub async fn session(
        &self,
        node: usize,
        settings: &[(String, String)],
    ) -> anyhow::Result<Session> {
        match self.nodes.get(node) {
            Some(Target::Database(db)) => db.session(settings).await,
            _ => Err(anyhow!("node {node} is not a database")),
        }
    }

    /// A connection to Redis lock-service node `node`.
    pub async fn locks(&self, node: usize) -> anyhow::Result<LockService> {
        match self.nodes.get(node) {
            Some(Target::Redis { url, prefix }) => LockService::connect(url, prefix).await,
            _ => Err(anyhow!("node {node} is not a Redis lock service")),
        }
    }

    /// A connection to advisory-lock node `node` (no session settings: it runs no steps' SQL).
    async fn advisory(&self, node: usize) -> anyhow::Result<Session> {
        match self.nodes.get(node) {
            Some(Target::Advisory(db)) => db.session(&[]).await,
            _ => Err(anyhow!("node {node} is not an advisory-lock service")),
        }
    }

    /// Empties the nodes besides the run database for a new cell: each database node is reset
    /// and runs the scenario's setup, then its own (a strategy's setup is the run database's
    /// alone); each lock service's keys of this run are deleted.
    pub async fn reset_others(&self, scenario: &Scenario) -> anyhow::Result<()> {
        for (i, target) in self.nodes.iter().enumerate().skip(1) {
            let node = &scenario.nodes[i];
            match target {
                Target::Database(db) => {
                    let mut admin = db
                        .reset()
                        .await
                        .map_err(|e| anyhow!("node {}: resetting its database: {e}", node.name))?;
                    for (label, sql) in scenario.setup.iter().chain(&node.setup) {
                        admin.batch(sql).await.map_err(|e| {
                            let at = e
                                .line_in(sql)
                                .map(|n| format!(", line {n} of its SQL"))
                                .unwrap_or_default();
                            anyhow!(
                                "{}: node {}: setup `{label}`{at}: {}: {e}",
                                scenario.file.display(),
                                node.name,
                                db.kind().title()
                            )
                        })?;
                    }
                }
                Target::Redis { .. } => {
                    self.locks(i)
                        .await?
                        .clear()
                        .await
                        .map_err(|e| anyhow!("node {}: {e:#}", node.name))?;
                }
                Target::Advisory(db) => {
                    let reset = async {
                        let mut admin = db.reset().await?;
                        crate::engine::postgres::advisory::setup(admin.advisory()?).await
                    };
                    reset
                        .await
                        .map_err(|e| anyhow!("node {}: resetting its database: {e}", node.name))?;
                }
            }
        }
        Ok(())
    }
}

/// A client's connections to the nodes besides the run database, opened on first use.
pub struct Others {
    targets: Option<Targets>,
    /// Session settings for the database nodes' connections.
    settings: Arc<[(String, String)]>,
    conns: Vec<Option<Other>>,
}

#[allow(clippy::large_enum_variant)]
enum Other {
    Database(Session),
    Locks(LockService),
    /// A session on an advisory-lock node.
    Advisory(AdvisorySession),
}

/// A client's session on an advisory-lock node, with what it holds, so that an acquire is one
/// round trip unless the lease changes or an earlier attempt left a lock behind.
struct AdvisorySession {
    session: Session,
    /// The `idle_session_timeout` set on the session (none yet: the server's default).
    lease: Option<Duration>,
    /// The attempt (holder token) that took the locks the session holds, and how many.
    holder: Option<String>,
    held: u32,
}

impl Others {
    /// No other node: a scenario on one database.
    pub fn none() -> Others {
        Others {
            targets: None,
            settings: Arc::new([]),
            conns: Vec::new(),
        }
    }

    pub fn new(targets: &Targets, settings: Arc<[(String, String)]>) -> Others {
        // Slots are made on first use: a client of a one-node run (10,000 of them, pooled)
        // keeps no slot for a connection it never opens.
        Others {
            targets: (targets.len() > 1).then(|| targets.clone()),
            settings,
            conns: Vec::new(),
        }
    }

    /// Node `node`'s slot, made if it is not there yet.
    fn slot(&mut self, node: usize) -> &mut Option<Other> {
        if self.conns.len() <= node {
            self.conns.resize_with(node + 1, || None);
        }
        &mut self.conns[node]
    }

    /// The connection to database node `node`, opened (and given `prepare`) on first use. A
    /// server that cannot be reached (down, restarting) is the inner error, of kind
    /// `Connection`: a lost connection for the attempt, not a broken run.
    pub async fn database<F>(
        &mut self,
        node: usize,
        prepare: F,
    ) -> anyhow::Result<Result<&mut Session, DbError>>
    where
        F: AsyncFnOnce(&mut Session) -> anyhow::Result<()>,
    {
        if self.conns.get(node).is_none_or(Option::is_none) {
            let targets = self
                .targets
                .as_ref()
                .ok_or_else(|| anyhow!("node {node}: the run has one database only"))?;
            let mut s = match targets.session(node, &self.settings).await {
                Ok(s) => s,
                Err(e) => {
                    return Ok(Err(DbError {
                        kind: ErrorKind::Connection,
                        code: String::new(),
                        message: format!("cannot connect: {e:#}"),
                        position: None,
                    }));
                }
            };
            if let Err(e) = prepare(&mut s).await {
                // The server went down between the connect and the prepare: as unreachable.
                return match e.downcast::<DbError>() {
                    Ok(lost) if lost.kind == ErrorKind::Connection => Ok(Err(lost)),
                    Ok(other) => Err(other.into()),
                    Err(e) => Err(e),
                };
            }
            self.slot(node).replace(Other::Database(s));
        }
        match &mut self.conns[node] {
            Some(Other::Database(s)) => Ok(Ok(s)),
            _ => Err(anyhow!("node {node} is not a database")),
        }
    }

    /// The run's nodes, when it has several.
    pub fn targets(&self) -> Option<&Targets> {
        self.targets.as_ref()
    }

    /// Drops the connection to `node` (it was lost): the next use opens a new one.
    pub fn forget(&mut self, node: usize) {
        if let Some(c) = self.conns.get_mut(node) {
            *c = None;
        }
    }

    /// Takes lock `key` on lock-service node `node` for `ttl`, as `holder` (unique to the
    /// attempt): the fencing token, or `None` when another holder has it. On an advisory-lock
    /// node, a session that the server ended (its lease ran out while it sat idle) is replaced
    /// once.
    pub async fn lock_acquire(
        &mut self,
        node: usize,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> anyhow::Result<Option<i64>> {
        use crate::engine::postgres::advisory;
        for first in [true, false] {
            match self.lock_service(node).await? {
                Other::Locks(l) => {
                    return Ok(l.acquire(key, holder, ttl).await?.map(|t| t as i64));
                }
                Other::Advisory(a) => {
                    let lease = (a.lease != Some(ttl)).then_some(ttl);
                    // Advisory locks stack within a session: what an attempt that is over left
                    // would otherwise stay held after this attempt's release.
                    let leftover = a.held > 0 && a.holder.as_deref() != Some(holder);
                    match advisory::acquire(a.session.advisory()?, key, lease, leftover).await {
                        Ok(token) => {
                            a.lease = Some(ttl);
                            if leftover {
                                a.held = 0;
                            }
                            if token.is_some() {
                                a.holder = Some(holder.to_string());
                                a.held += 1;
                            }
                            return Ok(token);
                        }
                        Err(e) if e.kind == ErrorKind::Connection && first => self.forget(node),
                        Err(e) => return Err(anyhow!("acquiring lock `{key}`: {e}")),
                    }
                }
                Other::Database(_) => break,
            }
        }
        Err(anyhow!("node {node} is not a lock service"))
    }

    /// Releases lock `key` on lock-service node `node` if `holder` still holds it (true).
    /// On an advisory-lock node whose session the server ended, the lock is long gone: false.
    pub async fn lock_release(
        &mut self,
        node: usize,
        key: &str,
        holder: &str,
    ) -> anyhow::Result<bool> {
        use crate::engine::postgres::advisory;
        match self.lock_service(node).await? {
            Other::Locks(l) => l.release(key, holder).await,
            Other::Advisory(a) => {
                if a.held == 0 || a.holder.as_deref() != Some(holder) {
                    return Ok(false);
                }
                match advisory::release(a.session.advisory()?, key).await {
                    Ok(done) => {
                        a.held -= u32::from(done);
                        Ok(done)
                    }
                    Err(e) if e.kind == ErrorKind::Connection => {
                        self.forget(node);
                        Ok(false)
                    }
                    Err(e) => Err(anyhow!("releasing lock `{key}`: {e}")),
                }
            }
            Other::Database(_) => Err(anyhow!("node {node} is not a lock service")),
        }
    }

    /// The connection to lock-service node `node`, opened on first use.
    async fn lock_service(&mut self, node: usize) -> anyhow::Result<&mut Other> {
        if self.conns.get(node).is_none_or(Option::is_none) {
            let targets = self
                .targets
                .as_ref()
                .ok_or_else(|| anyhow!("node {node}: the run has one database only"))?;
            let other = match targets.get(node) {
                Some(Target::Advisory(_)) => Other::Advisory(AdvisorySession {
                    session: targets.advisory(node).await?,
                    lease: None,
                    holder: None,
                    held: 0,
                }),
                _ => Other::Locks(targets.locks(node).await?),
            };
            self.slot(node).replace(other);
        }
        Ok(self.conns[node].as_mut().expect("opened above"))
    }

    /// The open database connection to `node`, if there is one.
    pub fn opened(&mut self, node: usize) -> Option<&mut Session> {
        match self.conns.get_mut(node) {
            Some(Some(Other::Database(s))) => Some(s),
            _ => None,
        }
    }

    /// Drops every connection (a crash): the servers roll back what was open.
    pub fn drop_all(&mut self) {
        for c in &mut self.conns {
            *c = None;
        }
    }
}
