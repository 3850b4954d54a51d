//! Deterministic replays: named sessions run their steps in the order a schedule gives, like
//! PostgreSQL's own isolation tester. A step that waits for a lock is seen from outside
//! (the engine's view of who blocks the session's connection: `pg_blocking_pids` on PostgreSQL) and shown as waiting; the schedule moves on,
//! and the waiting step's result is recorded where it finished. After the schedule, whatever is
//! left runs session by session, then retryable aborts are retried one at a time; finally the
//! invariants are measured and the outcome is judged.
//!
//! Deadlocks: every session runs with `deadlock_timeout` = [`DEADLOCK_TIMEOUT`] (when the user may
//! set it: a superuser, as on the private server), and after a
//! session starts waiting the scheduler pauses longer than that, so the waiter's one deadlock
//! check has run before the next step: the session that closes a cycle is always the victim.
//!
//! Sessions whose steps run as written (`written`) take any of their steps in any order, as
//! often as the schedule names them; a token may mark its step as waiting whatever the server
//! says (`(*)`) or hold its completion until other sessions' steps complete (`(s1)`), like
//! the isolation tester's annotations.
//!
//! The step-by-step machinery is `scheduler`; the sessions' tasks are `session` and `written`.
//! This module runs and records; it must not print (see `timeline`) or decide exit codes.

mod scheduler;
pub mod session;
pub mod timeline;
pub mod written;

use std::time::Duration;

use anyhow::{anyhow, bail};
use evalexpr::{ContextWithMutableVariables, HashMapContext};
use serde::{Deserialize, Serialize};

use crate::check::{self, Measured, Sources};
use crate::isolation::Isolation;
use crate::outcome::Abort;
use crate::runner::program::{End, Program, Trace};
use crate::scenario::{Scenario, Schedule, Side, Step, Strategy, Value};
use scheduler::Scheduler;
use session::{Handle, Setup};

/// The server's wait before it looks for a deadlock, in replay sessions.
pub const DEADLOCK_TIMEOUT: Duration = Duration::from_millis(200);

/// Knobs of a replay.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// A step that neither finishes nor waits for a lock within this is an error.
    pub step_timeout: Duration,
    pub max_tries: u32,
    /// Record the sessions' history (`--history`; the scenario declares `[history] model`).
    pub history: bool,
    /// Called before each token with the timeline so far and the token about to run
    /// (`--step`); it may block (it runs outside the runtime's workers).
    pub pause: Option<Pause>,
}

/// What `--step` does before each token: show the timeline so far, wait for the user.
#[derive(Clone)]
pub struct Pause(pub std::sync::Arc<PauseFn>);

/// The timeline so far and the token about to run.
pub type PauseFn = dyn Fn(&Replay, &str) -> anyhow::Result<()> + Send + Sync;

impl std::fmt::Debug for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pause")
    }
}

/// One row of a timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub session: String,
    /// The schedule token that ran it (none after the schedule).
    pub token: Option<String>,
    /// The action, from 1 (one past the last step = the final commit).
    pub step: usize,
    pub kind: Kind,
    /// The attempt (1, then 2... for retries).
    #[serde(rename = "try")]
    pub attempt: u32,
    #[serde(flatten)]
    pub trace: Trace,
    /// How the session's attempt ended, when this action ended it.
    pub end: Option<String>,
    /// Everything the server answered, in order (steps run as written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<crate::engine::written::Output>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Ran,
    /// Sent, and waiting for a lock held by these sessions.
    Waits {
        blockers: Vec<String>,
    },
    /// A waiting statement finished here.
    Resumes,
    /// A token for a session whose earlier step still waits for a lock.
    StillWaiting,
    /// A token that had nothing to do (session finished, or past that step, or no such step in
    /// this strategy).
    Nothing,
}

/// How the anomaly fared. Serialized as its label: "possible", "prevented",
/// "prevented by abort (40001)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The invariants show the anomaly.
    Possible,
    /// No anomaly, and no session was aborted by the server.
    Prevented,
    /// No anomaly because the server aborted a session (SQLSTATE).
    PreventedByAbort(String),
    /// The scenario declares no invariant: nothing to judge (isolation-tester specs).
    Unjudged,
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        let label = String::deserialize(d)?;
        match label.as_str() {
            "possible" => Ok(Verdict::Possible),
            "prevented" => Ok(Verdict::Prevented),
            "not judged" => Ok(Verdict::Unjudged),
            other => other
                .strip_prefix("prevented by abort (")
                .and_then(|rest| rest.strip_suffix(')'))
                .map(|code| Verdict::PreventedByAbort(code.to_string()))
                .ok_or_else(|| serde::de::Error::custom(format!("unknown verdict `{other}`"))),
        }
    }
}

impl Verdict {
    pub fn is_prevented(&self) -> bool {
        !matches!(self, Verdict::Possible)
    }

    pub fn label(&self) -> String {
        match self {
            Verdict::Possible => "possible".into(),
            Verdict::Prevented => "prevented".into(),
            Verdict::PreventedByAbort(code) => format!("prevented by abort ({code})"),
            Verdict::Unjudged => "not judged".into(),
        }
    }
}

/// How each session's operation ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionEnd {
    pub session: String,
    pub end: String,
    pub tries: u32,
}

/// `b committed after 2 tries`, as timelines and reports show a session's end.
impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.session, self.end)?;
        if self.tries > 1 {
            write!(f, " after {} tries", self.tries)?;
        }
        Ok(())
    }
}

/// A finished replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replay {
    /// The engine it ran on (files written before engines existed: postgres).
    #[serde(default)]
    pub engine: crate::engine::EngineKind,
    pub scenario: String,
    pub strategy: Option<String>,
    pub isolation: Isolation,
    pub schedule: String,
    pub tokens: Vec<String>,
    pub sessions: Vec<String>,
    pub events: Vec<Event>,
    /// Index into `events` where the part after the schedule starts.
    pub schedule_ends_at: usize,
    pub ends: Vec<SessionEnd>,
    pub invariants: Vec<Measured>,
    pub verdict: Verdict,
    /// Every session ran its steps as written: no level was imposed by the replay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub as_written: bool,
    /// What sessions' setups returned, by session (sessions run as written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup_outputs: Vec<(String, Vec<crate::engine::written::Output>)>,
    /// The sessions' history log, when recorded (written by the command, not part of the
    /// document).
    #[serde(skip)]
    pub history: Option<std::sync::Arc<crate::history::Sink>>,
}

/// Runs one schedule on a freshly reset run database.
pub async fn replay(
    targets: &crate::runner::nodes::Targets,
    scenario: &Scenario,
    strategy: Option<&Strategy>,
    isolation: Isolation,
    schedule: &Schedule,
    opts: &Options,
) -> anyhow::Result<Replay> {
    let db = targets.main();
    targets.fit(scenario)?;
    // The caller ends a replay on an interrupt by dropping it (and the run database with it).
    crate::runner::reset(
        targets,
        scenario,
        strategy,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await?;
    let mut settings = scenario.settings.clone();
    settings.extend(strategy.iter().flat_map(|s| s.settings.iter().cloned()));
    // Only a superuser may set deadlock_timeout; elsewhere the server's own value stands (and a
    // deadlock's victim then depends on timing when it is short).
    settings.extend(db.deadlock_timeout_setting(DEADLOCK_TIMEOUT).await?);

    let mut roles: Vec<&[Step]> = Vec::new();
    for s in &scenario.sessions {
        if s.written.is_some() {
            roles.push(&[]);
            continue;
        }
        match (&s.steps, strategy) {
            (Some(own), _) => roles.push(own),
            (None, Some(st)) => roles.push(&st.steps),
            (None, None) => bail!(
                "session {} runs the strategy under test: name one with --strategy",
                s.name
            ),
        }
    }
    let extra: Vec<&str> = scenario
        .sessions
        .iter()
        .flat_map(|s| s.bind.iter().map(|(n, _)| n.as_str()))
        .collect();
    let mut first = db.session(&settings).await?;
    let shared_settings: std::sync::Arc<[(String, String)]> = settings.clone().into();
    let (programs, slots) = Program::compile(
        &mut first,
        &mut crate::runner::nodes::Others::new(targets, shared_settings.clone()),
        scenario,
        &roles,
        &extra,
    )
    .await?;
    drop(first);
    let level = strategy.and_then(|s| s.isolation).unwrap_or(isolation);
    let history = scenario
        .history
        .filter(|_| opts.history)
        .map(|m| std::sync::Arc::new(crate::history::Sink::new(m)));
    let mut handles = Vec::new();
    for (index, (session, program)) in scenario.sessions.iter().zip(programs).enumerate() {
        let mut own = settings.clone();
        own.extend(
            session
                .characteristics
                .settings(db.kind())
                .map_err(|m| anyhow!("session {}: {m}", session.name))?,
        );
        if session.written.is_some() {
            let conn = db.written_session(&own).await?;
            handles.push(written::start(conn, session, std::sync::Arc::new(program)).await?);
            continue;
        }
        // With its notices kept for the timeline (PostgreSQL).
        let mut conn = db.written_session(&own).await?;
        if let Some(sql) = &session.setup {
            // Session-level state (settings, advisory locks) that outlives its transactions.
            conn.batch(sql)
                .await
                .map_err(|e| anyhow!("session {}: setup: {e}", session.name))?;
            // Its notices are the setup's, not the first step's.
            conn.take_notices();
        }
        let setup = Setup {
            scenario,
            session,
            index,
            // A session that runs the strategy's steps makes of errors what the strategy does.
            program: std::sync::Arc::new(match (&session.steps, strategy) {
                (None, Some(st)) => program.with_on_error(&st.on_error),
                _ => program,
            }),
            slots: slots.clone(),
            seed: opts.seed,
            isolation: session.characteristics.isolation.unwrap_or(level),
            history: history.clone(),
            others: crate::runner::nodes::Others::new(targets, shared_settings.clone()),
        };
        handles.push(Handle::start(conn, setup).await?);
    }
    let observer = db.session(&[]).await?;
    let setup_outputs: Vec<(String, Vec<crate::engine::written::Output>)> = handles
        .iter()
        .filter(|h| !h.setup_outputs.is_empty())
        .map(|h| (h.name.clone(), h.setup_outputs.clone()))
        .collect();
    let mut s = Scheduler {
        handles,
        observer,
        events: Vec::new(),
        opts: opts.clone(),
        held: Vec::new(),
    };

    let as_written =
        !scenario.sessions.is_empty() && scenario.sessions.iter().all(|s| s.written.is_some());
    for token in &schedule.tokens {
        if let Some(pause) = &opts.pause {
            let so_far = Replay {
                engine: db.kind(),
                scenario: scenario.name.clone(),
                strategy: strategy.map(|s| s.name.clone()),
                isolation: level,
                schedule: schedule.name.clone(),
                tokens: schedule.tokens.iter().map(|t| t.text.clone()).collect(),
                sessions: scenario.sessions.iter().map(|s| s.name.clone()).collect(),
                events: s.events.clone(),
                schedule_ends_at: s.events.len(),
                ends: Vec::new(),
                invariants: Vec::new(),
                verdict: Verdict::Unjudged,
                as_written,
                setup_outputs: setup_outputs.clone(),
                history: None,
            };
            // The pause waits for the person at the terminal: on a thread of its own.
            let (pause, next) = (pause.0.clone(), token.text.clone());
            tokio::task::spawn_blocking(move || pause(&so_far, &next)).await??;
        }
        s.token(token).await?;
    }
    let schedule_ends_at = s.events.len();
    s.finish_all().await?;
    let retry = strategy.map(|st| st.retry.clone()).unwrap_or_default();
    s.retries(&retry).await?;

    // What the sessions saw, as `session.variable`, for `expr` invariants.
    let mut seen = HashMapContext::new();
    let mut ends = Vec::new();
    // The first abort the server imposed (a retry may have ended the session differently).
    let aborted_by = s.events.iter().find_map(|e| {
        let class = e.trace.aborted?;
        [
            Abort::Serialization,
            Abort::Deadlock,
            Abort::LockUnavailable,
        ]
        .contains(&class)
        .then(|| e.trace.error.as_ref().map(|(code, _)| code.clone()))
        .flatten()
    });
    for h in s.handles {
        let name = h.name.clone();
        if h.written.is_some() {
            let ran = s
                .events
                .iter()
                .filter(|e| e.session == name && matches!(e.kind, Kind::Ran | Kind::Resumes))
                .count();
            ends.push(SessionEnd {
                session: name.clone(),
                end: format!(
                    "ran {ran} step{} as written",
                    if ran == 1 { "" } else { "s" }
                ),
                tries: 1,
            });
            for (var, v) in h.finish().await?.vars {
                seen.set_value(format!("{name}.{var}"), v)
                    .expect("plain variables");
            }
            continue;
        }
        let end = h.end.clone().unwrap_or(End::Committed);
        ends.push(SessionEnd {
            session: name.clone(),
            end: end_text(&end),
            tries: h.tries,
        });
        let observed = h.finish().await?;
        for (var, v) in observed.vars {
            seen.set_value(format!("{name}.{var}"), v)
                .expect("plain variables");
        }
        for (flag, on) in [
            ("committed", end == End::Committed),
            ("aborted", matches!(end, End::Aborted(_))),
            ("rejected", matches!(end, End::Rejected(_))),
        ] {
            seen.set_value(format!("{name}.{flag}"), Value::Boolean(on))
                .expect("plain variables");
        }
    }
    // A node restarted by a fault is back before the checks read it.
    targets.settle().await?;
    let invariants = check::measure(
        targets,
        scenario,
        Sources {
            auditors: &[],
            sessions: Some(&seen),
        },
    )
    .await?;
    let anomaly = invariants
        .iter()
        .any(|m| m.side == Side::Writer && m.value != 0);
    let verdict = match (anomaly, aborted_by) {
        _ if scenario.invariants.is_empty() => Verdict::Unjudged,
        (true, _) => Verdict::Possible,
        (false, Some(code)) => Verdict::PreventedByAbort(code),
        (false, None) => Verdict::Prevented,
    };
    Ok(Replay {
        engine: db.kind(),
        scenario: scenario.name.clone(),
        strategy: strategy.map(|s| s.name.clone()),
        isolation: level,
        schedule: schedule.name.clone(),
        tokens: schedule.tokens.iter().map(|t| t.text.clone()).collect(),
        sessions: scenario.sessions.iter().map(|s| s.name.clone()).collect(),
        events: s.events,
        schedule_ends_at,
        ends,
        invariants,
        verdict,
        as_written,
        setup_outputs,
        history,
    })
}

pub fn end_text(end: &End) -> String {
    match end {
        End::Committed => "committed".into(),
        End::Rejected(outcome) => format!("rejected: {outcome}"),
        End::Aborted(a) => format!("aborted: {}", a.name()),
        End::Unknown => "unknown: the connection was lost during COMMIT".into(),
        End::Crashed => "crashed (connections dropped without a commit)".into(),
        End::Partial => "partly committed: a later node's COMMIT failed".into(),
        End::Lost => {
            "lost: a connection went (or a node could not be reached) before COMMIT".into()
        }
    }
}
