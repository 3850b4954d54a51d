//! Running one cell (one strategy at one isolation level): reset the run database, connect the
//! clients (and auditors), release them together at a start barrier, stop them at the deadline,
//! the operation budget or an interrupt, and merge their statistics.
//!
//! It must not judge the outcome (that is `check`) nor print anything.

pub mod client;
pub mod draws;
pub mod nodes;
pub mod program;
pub mod race;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use futures::future::try_join_all;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::alarm::Alarm;
use crate::engine::Driver;
use crate::isolation::Isolation;
use crate::scenario::{Scenario, Strategy};
use crate::stats::{SharedLatency, Stats};
use client::{Conn, Role, Shared};
use draws::Draws;
use nodes::{Others, Targets};
use program::{Framing, Pipeline, Program};

/// Everything that shapes one cell's run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub clients: u32,
    #[serde(with = "duration_text")]
    pub duration: Duration,
    pub operations: Option<u64>,
    /// A deadline for a cell that runs `operations` (`--timeout`): past it, the cell ends as a
    /// `duration` cell does at its own. None: it runs until its operations are done.
    #[serde(
        default,
        with = "duration_opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    #[serde(with = "duration_text")]
    pub think: Duration,
    pub max_tries: u32,
    pub seed: u64,
    /// Share a pool of this many connections among the clients.
    pub connections: Option<usize>,
    /// Send BEGIN and COMMIT with the neighbouring statement where nothing comes in between
    /// (see [`Pipeline::Full`]); off: every statement in its own round trip.
    pub pipeline: bool,
    /// Live counters for progress displays (not part of the results).
    #[serde(skip)]
    pub live: Option<Arc<Live>>,
    /// `--history FILE.jsonl`: record each cell's history (written next to it, one file per
    /// cell, see [`crate::history::cell_path`]).
    #[serde(skip)]
    pub history: Option<std::path::PathBuf>,
}

/// Commits and aborted attempts so far, updated by the writers as they go (relaxed atomics:
/// one add per operation, read only by a progress display).
#[derive(Debug, Default)]
pub struct Live {
    pub committed: AtomicU64,
    pub aborts: AtomicU64,
}

/// What one cell produced, before invariants are checked.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    pub auditors: Vec<(String, Stats)>,
    /// From the reset database to the start barrier's release: compiling the statements,
    /// connecting (or pooling) the clients and starting their tasks.
    pub startup: Duration,
    pub elapsed: Duration,
    pub interrupted: bool,
    /// The clients' history logs, when recorded.
    pub history: Option<Arc<crate::history::Sink>>,
}

/// A wait that an interrupt (SIGINT, SIGTERM) ended, and what it was doing.
#[derive(Debug)]
pub struct Interrupted(pub &'static str);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted while {}", self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Drops and recreates the run database's `public` schema and runs the setup scripts: the
/// scenario's, the run database's node's own, then the strategy's; then resets the other nodes
/// (see [`Targets::reset_others`]). `abort` ends it at once: a setup statement in flight is
/// cancelled on the server, and the error is [`Interrupted`].
pub async fn reset(
    targets: &Targets,
    scenario: &Scenario,
    strategy: Option<&Strategy>,
    abort: &CancellationToken,
) -> anyhow::Result<()> {
    let db = targets.main();
    let mut admin = tokio::select! {
        admin = db.reset() => admin.map_err(|e| anyhow!("resetting the run database: {e}"))?,
        () = abort.cancelled() => return Err(Interrupted("resetting the run database").into()),
    };
    let own = strategy.map_or(&[][..], |s| &s.setup[..]);
    let node = scenario.nodes.first().map_or(&[][..], |n| &n.setup[..]);
    for (label, sql) in scenario.setup.iter().chain(node).chain(own) {
        let ran = tokio::select! {
            ran = admin.batch(sql) => Some(ran),
            () = abort.cancelled() => None,
        };
        match ran {
            Some(ran) => ran.map_err(|e| {
                let at = e
                    .line_in(sql)
                    .map(|n| format!(", line {n} of its SQL"))
                    .unwrap_or_default();
                anyhow!(
                    "{}: setup `{label}`{at}: {}: {e}",
                    scenario.file.display(),
                    db.kind().title()
                )
            })?,
            None => {
                // Bounded: the server may be the very thing that does not answer.
                let _ = tokio::time::timeout(Duration::from_secs(1), admin.cancel()).await;
                return Err(Interrupted("running the setup").into());
            }
        }
    }
    tokio::select! {
        reset = targets.reset_others(scenario) => reset,
        () = abort.cancelled() => Err(Interrupted("resetting the other nodes").into()),
    }
}

/// Runs one cell on a freshly reset database.
pub async fn run_cell(
    targets: &Targets,
    scenario: &Scenario,
    strategy: &Strategy,
    isolation: Isolation,
    settings: &Settings,
    abort: &CancellationToken,
) -> anyhow::Result<Outcome> {
    targets.fit(scenario)?;
    let several = targets.len() > 1;
    if several && settings.connections.is_some() {
        return Err(anyhow!(
            "--connections: {} spans several servers, and its clients keep a connection to each; a shared pool is for one database",
            scenario.name
        ));
    }
    let db = targets.main();
    reset(targets, scenario, Some(strategy), abort).await?;
    let connecting = Instant::now();
    // The scenario's session settings, then the strategy's own.
    let session: Vec<(String, String)> = scenario
        .settings
        .iter()
        .chain(&strategy.settings)
        .cloned()
        .collect();
    let session = &session;

    // Learn every statement's columns once, then resolve names to slots.
    // The first session carries the session settings: a value the server refuses is the
    // scenario's (or --set's) fault, and named as such.
    let mut first = db.session(session).await.map_err(|e| {
        if session.is_empty() {
            return e;
        }
        let list: Vec<String> = session.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        anyhow!(
            "{}: [settings] (with the strategy's and --set): the server refused a session setting ({}): {e:#}",
            scenario.file.display(),
            list.join(", ")
        )
    })?;
    let mut roles: Vec<&[crate::scenario::Step]> = vec![&strategy.steps];
    roles.extend(scenario.auditors.iter().map(|a| a.steps.as_slice()));
    let session_shared: Arc<[(String, String)]> = session.clone().into();
    let (programs, slots) = Program::compile(
        &mut first,
        &mut Others::new(targets, session_shared.clone()),
        scenario,
        &roles,
        &[],
    )
    .await?;
    let mut programs = programs.into_iter();
    let writer_program = Arc::new(
        programs
            .next()
            .expect("the strategy's program")
            .with_on_error(&strategy.on_error),
    );
    let programs = programs.map(Arc::new);
    let draws = Arc::new(Draws::new(scenario, &slots)?);
    let params = scenario
        .params
        .iter()
        .map(|(n, p)| (slots.get(n).expect("param slot"), p.value.clone()))
        .collect();

    let auditor_clients: u32 = scenario
        .auditors
        .iter()
        .filter(|a| !a.after)
        .map(|a| a.clients)
        .sum();
    let barrier = Arc::new(Barrier::new(
        (settings.clients + auditor_clients) as usize + 1,
    ));
    // Cancelled by an interrupt, or a grace after the deadline: clients abandon (and cut) the
    // attempt in flight.
    let halt = abort.child_token();
    let history = settings
        .history
        .as_ref()
        .and(scenario.history)
        .map(|m| Arc::new(crate::history::Sink::new(m)));
    let shared = Arc::new(Shared {
        slots,
        draws,
        params,
        seed: settings.seed,
        barrier: barrier.clone(),
        abort: halt.clone(),
        interrupt: abort.clone(),
        history: history.clone(),
        targets: targets.clone(),
        session: session_shared.clone(),
    });

    let framing = Framing {
        isolation,
        think: settings.think,
        pipeline: if settings.pipeline {
            Pipeline::Full
        } else {
            Pipeline::Off
        },
    };
    let writers_stop = CancellationToken::new();
    let auditors_stop = CancellationToken::new();
    let writer = Arc::new(Role {
        program: writer_program.clone(),
        retry: strategy.retry.clone(),
        max_tries: settings.max_tries,
        framing,
        budget: settings.operations.map(|n| Arc::new(AtomicU64::new(n))),
        stop: writers_stop.clone(),
        live: settings.live.clone(),
        latency: SharedLatency::new(settings.clients),
        until_rejected: false,
    });

    // Connections: one per client, or a shared pool.
    let pool = match settings.connections {
        Some(n) => Some(db.pool(session, n)?),
        None => None,
    };
    // Each own connection comes with the future that drives it; the client's task polls both.
    // A scenario that spans several servers reconnects after a crash or a lost COMMIT: its
    // connections are driven on the runtime, so that a new one needs no task of its own.
    let own = |program: Arc<Program>| {
        let session = session.clone();
        async move {
            let (mut conn, mut driver) = if several {
                (db.session(&session).await?, None)
            } else {
                db.session_undriven(&session).await?
            };
            match &mut driver {
                Some(d) => tokio::select! {
                    prepared = program.prepare(&mut conn) => prepared?,
                    () = d => return Err(anyhow!("the connection closed while preparing")),
                },
                None => program.prepare(&mut conn).await?,
            }
            anyhow::Ok((Conn::Own(conn), driver))
        }
    };
    let writer_conns: Vec<(Conn, Option<Driver>)> = match &pool {
        Some(p) => (0..settings.clients)
            .map(|_| (Conn::Pool(p.clone()), None))
            .collect(),
        None => try_join_all((0..settings.clients).map(|_| own(writer_program.clone()))).await?,
    };
    drop(first);

    let mut writers = JoinSet::new();
    for (i, (conn, driver)) in writer_conns.into_iter().enumerate() {
        writers.spawn(client::run(
            conn,
            driver,
            writer.clone(),
            shared.clone(),
            i as u32,
            1,
        ));
    }
    let mut auditors = JoinSet::new();
    let mut auditor_roles = Vec::new();
    // `after` auditors start when the writers stop, with a start barrier of their own.
    let mut later = Vec::new();
    let after_clients: u32 = scenario
        .auditors
        .iter()
        .filter(|a| a.after)
        .map(|a| a.clients)
        .sum();
    let after_abort = abort.child_token();
    let after_shared = Arc::new(Shared {
        slots: shared.slots.clone(),
        draws: shared.draws.clone(),
        params: shared.params.clone(),
        seed: shared.seed,
        barrier: Arc::new(Barrier::new(after_clients as usize)),
        // Not the cell's halt (it fires a grace after the deadline, before this pass starts):
        // an interrupt, or the pass's own limit, ends it.
        abort: after_abort.clone(),
        interrupt: abort.clone(),
        history: history.clone(),
        targets: targets.clone(),
        session: session_shared.clone(),
    });
    let after_stop = CancellationToken::new();
    for (a_index, (auditor, program)) in scenario.auditors.iter().zip(programs).enumerate() {
        let role = Arc::new(Role {
            program: program.clone(),
            retry: Vec::new(),
            max_tries: 1,
            framing,
            budget: None,
            stop: if auditor.after {
                after_stop.clone()
            } else {
                auditors_stop.clone()
            },
            live: None,
            latency: SharedLatency::new(auditor.clients),
            until_rejected: auditor.after,
        });
        auditor_roles.push((auditor.name.clone(), role.clone()));
        if auditor.after {
            for i in 0..auditor.clients {
                later.push((
                    auditor.name.clone(),
                    role.clone(),
                    program.clone(),
                    i,
                    a_index,
                ));
            }
            continue;
        }
        for i in 0..auditor.clients {
            let (conn, driver) = own(program.clone()).await?;
            let fut = client::run(
                conn,
                driver,
                role.clone(),
                shared.clone(),
                i,
                1000 + a_index as u64,
            );
            let name = auditor.name.clone();
            auditors.spawn(async move { fut.await.map(|s| (name, s)) });
        }
    }

    barrier.wait().await;
    let start = Instant::now();
    let startup = start - connecting;
    // The deadline stops new operations; a grace later, what is still in flight is cut. The
    // timer ends with the cell (the guard cancels it), so a cell that finished early never
    // halts the next one's clients.
    let deadline = match settings.operations {
        None => Some(settings.duration),
        Some(_) => settings.timeout,
    };
    // Off the runtime (see `alarm`): a timer in its wheel would cost every round trip.
    let _timer = deadline.map(|duration| cut_after(duration, &writers_stop, &halt));

    let mut stats = Stats::default();
    let mut first_error = None;
    while let Some(res) = writers.join_next().await {
        match res.context("a client task panicked")? {
            Ok(s) => stats += &s,
            Err(e) => {
                // One broken client stops the cell: the others would only repeat the error.
                writers_stop.cancel();
                first_error.get_or_insert(e);
            }
        }
    }
    let elapsed = start.elapsed();
    stats.latency.add(&writer.latency.take());
    writers_stop.cancel();
    auditors_stop.cancel();
    let mut auditor_stats: Vec<(String, Stats)> = scenario
        .auditors
        .iter()
        .map(|a| (a.name.clone(), Stats::default()))
        .collect();
    // First the auditors that ran beside the writers finish the operation they have in flight;
    // then the recovery pass (`after` auditors) starts, bounded: a pass that never runs out of
    // work is the scenario's bug, and one stuck in a statement is cut like a cell's clients.
    // A node restarted by a fault is back before the recovery pass and the checks read it.
    if let Err(e) = targets.settle().await {
        first_error.get_or_insert(e);
    }
    let mut later = Some(later);
    let mut _limit = None;
    loop {
        while let Some(res) = auditors.join_next().await {
            match res.context("an auditor task panicked")? {
                Ok((name, s)) => {
                    if let Some((_, total)) = auditor_stats.iter_mut().find(|(n, _)| *n == name) {
                        *total += &s;
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some(pass) = later
            .take()
            .filter(|l| !l.is_empty() && first_error.is_none() && !abort.is_cancelled())
        else {
            break;
        };
        for (name, role, program, i, a_index) in pass {
            let (conn, driver) = own(program).await?;
            let fut = client::run(
                conn,
                driver,
                role,
                after_shared.clone(),
                i,
                1000 + a_index as u64,
            );
            auditors.spawn(async move { fut.await.map(|s| (name, s)) });
        }
        _limit = Some(cut_after(AFTER_LIMIT, &after_stop, &after_abort));
    }
    for (name, role) in &auditor_roles {
        if let Some((_, total)) = auditor_stats.iter_mut().find(|(n, _)| n == name) {
            total.latency.add(&role.latency.take());
        }
    }
    if let Err(e) = targets.settle().await {
        first_error.get_or_insert(e);
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(Outcome {
        stats,
        auditors: auditor_stats,
        startup,
        elapsed,
        interrupted: abort.is_cancelled(),
        history,
    })
}

/// How long an `after` auditor (a recovery pass) may run before it is stopped.
const AFTER_LIMIT: Duration = Duration::from_secs(30);

/// Stops new operations `after` from now (`stop`), and cuts what is still in flight a
/// [`client::CUT_GRACE`] later (`cut`); dropped first (the cell ended), it does neither, so a
/// cell that finished early never halts the next one's clients.
fn cut_after(after: Duration, stop: &CancellationToken, cut: &CancellationToken) -> Alarm {
    let (stop, cut) = (stop.clone(), cut.clone());
    Alarm::after(vec![
        (after, Box::new(move || stop.cancel())),
        (client::CUT_GRACE, Box::new(move || cut.cancel())),
    ])
}

mod duration_opt_text {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        use serde::Deserialize;
        Option::<String>::deserialize(d)?
            .map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod duration_text {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
