//! The replay scheduler: runs a schedule's tokens one by one on the sessions' tasks, watches
//! each sent step from outside until it finishes or waits for a lock (the observer session asks
//! the engine who blocks whom), records what happened as timeline events, lets waiting steps
//! settle, runs what is left after the schedule and retries what the strategy retries. It must
//! not judge outcomes or print.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};

use super::session::{Done, Handle};
use super::{Event, Kind, Options, end_text};
use crate::engine::Session;
use crate::outcome::Abort;
use crate::runner::program::{End, Trace};
use crate::scenario::{Target, Token};

/// How long the scheduler lets a newly waiting session sit before the next step.
const BLOCK_GRACE: Duration = Duration::from_millis(350);
/// Quiet time after the last completion before waiting sessions count as still waiting.
const SETTLE_GRACE: Duration = Duration::from_millis(40);
const POLL: Duration = Duration::from_millis(5);

pub(super) struct Scheduler {
    pub(super) handles: Vec<Handle>,
    pub(super) observer: Session,
    pub(super) events: Vec<Event>,
    pub(super) opts: Options,
    /// Finished steps whose completion is shown only once these sessions' steps complete.
    pub(super) held: Vec<(usize, Done, Vec<usize>)>,
}

impl Scheduler {
    pub(super) async fn token(&mut self, t: &Token) -> anyhow::Result<()> {
        let i = self.index(&t.session)?;
        if self.handles[i].written.is_some() {
            return self.written_token(i, t).await;
        }
        let h = &self.handles[i];
        let target = match &t.target {
            Target::Step(n) => Some(n - 1),
            Target::Commit => Some(h.program.actions() - 1),
            Target::Named(name) => h.program.named(name),
        };
        let waiting = h.in_flight;
        let nothing = h.is_done()
            || target.is_none_or(|t| t >= h.program.actions() || (t < h.next && !waiting));
        if nothing {
            let step = target.map_or(0, |t| t + 1);
            self.push(i, Some(t), step, Kind::Nothing, Trace::default(), None);
            return Ok(());
        }
        let target = target.expect("checked");
        if waiting {
            // Like PostgreSQL's isolation tester, a step of a session that is still waiting
            // cannot run: the token is shown as such and the session resumes when released.
            self.settle().await?;
            if self.handles[i].in_flight {
                let step = self.handles[i].next + 1;
                self.push(i, Some(t), step, Kind::StillWaiting, Trace::default(), None);
                return Ok(());
            }
        }
        while !self.handles[i].is_done() && self.handles[i].next <= target {
            self.run_action(i, Some(t)).await?;
            if self.handles[i].in_flight {
                break;
            }
        }
        Ok(())
    }

    /// A token of a session that runs its steps as written: that step, now (after the
    /// session's waiting step, if any, completes, as the isolation tester does).
    async fn written_token(&mut self, i: usize, t: &Token) -> anyhow::Result<()> {
        let steps = self.handles[i].written.clone().expect("written session");
        let index = match &t.target {
            Target::Step(n) => n - 1,
            Target::Named(name) => steps
                .iter()
                .position(|s| &s.name == name)
                .ok_or_else(|| anyhow!("`{}`: no step named `{name}`", t.text))?,
            Target::Commit => steps.iter().position(|s| s.name == "commit").ok_or_else(|| {
                anyhow!(
                    "`{}`: a session run as written has no commit of its own, and no step named `commit`",
                    t.text
                )
            })?,
        };
        if index >= steps.len() {
            bail!(
                "`{}`: session {} has {} steps",
                t.text,
                t.session,
                steps.len()
            );
        }
        if self.handles[i].in_flight {
            self.await_session(i, &t.text).await?;
        }
        let mut hold = Vec::new();
        let mut forced = false;
        for b in &t.blockers {
            if b == "*" {
                forced = true;
                continue;
            }
            let owner = self.handles.iter().position(|h| {
                h.name == *b
                    || h.written
                        .as_ref()
                        .is_some_and(|w| w.iter().any(|s| s.name == *b))
            });
            hold.extend(owner.filter(|&o| o != i));
        }
        self.handles[i].send_step(index);
        if forced {
            // Shown as waiting at once, whatever the server says; its completion is recorded
            // when it comes.
            self.handles[i].forced = true;
            let trace = Trace {
                sql: Some(steps[index].sql.clone()),
                ..Trace::default()
            };
            self.push(
                i,
                Some(t),
                index + 1,
                Kind::Waits {
                    blockers: vec!["*".into()],
                },
                trace,
                None,
            );
            return self.settle().await;
        }
        self.watch(i, Some(t), index + 1, hold).await
    }

    /// Sends session i's next action and waits until it finishes or waits for a lock.
    async fn run_action(&mut self, i: usize, token: Option<&Token>) -> anyhow::Result<()> {
        let step = self.handles[i].next + 1;
        self.handles[i].send_next();
        self.watch(i, token, step, Vec::new()).await
    }

    /// Waits until session i's action (step `step`) finishes or waits for a lock; a finished
    /// action is held, shown as waiting, while a session in `hold` still waits.
    async fn watch(
        &mut self,
        i: usize,
        token: Option<&Token>,
        step: usize,
        hold: Vec<usize>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(done) = self.handles[i].report_within(POLL).await {
                let waiting: Vec<usize> = hold
                    .iter()
                    .copied()
                    .filter(|&o| self.handles[o].in_flight)
                    .collect();
                if waiting.is_empty() {
                    self.record(i, token, Kind::Ran, done)?;
                } else {
                    let blockers = waiting
                        .iter()
                        .map(|&o| self.handles[o].name.clone())
                        .collect();
                    let trace = Trace {
                        sql: done.trace.sql.clone(),
                        ..Trace::default()
                    };
                    self.push(i, token, step, Kind::Waits { blockers }, trace, None);
                    self.handles[i].in_flight = true;
                    self.handles[i].forced = true;
                    self.held.push((i, done, waiting));
                }
                break;
            }
            let blockers = self.blockers(i).await?;
            if !blockers.is_empty() {
                let trace = Trace {
                    sql: self.handles[i].pending_sql.clone(),
                    ..Trace::default()
                };
                self.push(i, token, step, Kind::Waits { blockers }, trace, None);
                tokio::time::sleep(BLOCK_GRACE).await;
                break;
            }
            if started.elapsed() > self.opts.step_timeout {
                bail!(
                    "session {} step {step} neither finished nor waited for a lock within {:?} (--step-timeout)",
                    self.handles[i].name,
                    self.opts.step_timeout
                );
            }
        }
        self.settle().await
    }

    /// Waits until session i's waiting action finishes (others may finish meanwhile).
    async fn await_session(&mut self, i: usize, token: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.handles[i].in_flight {
            self.settle().await?;
            if !self.handles[i].in_flight {
                break;
            }
            if started.elapsed() > self.opts.step_timeout {
                let blockers = self.blockers(i).await?.join(", ");
                bail!(
                    "the schedule is stuck at `{token}`: session {} still waits for {blockers}, and only a later step could release it (--step-timeout {:?})",
                    self.handles[i].name,
                    self.opts.step_timeout
                );
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Records every waiting action that has finished, until the waiting ones are quiet: all
    /// still blocked, with no completion for a short while. Aborts are recorded before the
    /// completions they allowed.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut last_change = Instant::now();
        loop {
            if !self.handles.iter().any(|h| h.in_flight) {
                return Ok(());
            }
            let mut finished: Vec<(usize, Done)> = Vec::new();
            for (i, h) in self.handles.iter_mut().enumerate() {
                let held = self.held.iter().any(|(h, _, _)| *h == i);
                if h.in_flight
                    && !held
                    && let Some(done) = h.try_report()
                {
                    finished.push((i, done));
                }
            }
            if !finished.is_empty() {
                finished.sort_by_key(|(i, d)| (d.trace.error.is_none(), *i));
                for (i, done) in finished {
                    self.record(i, None, Kind::Resumes, done)?;
                }
                last_change = Instant::now();
            }
            // Held completions whose blockers have all completed.
            while let Some(k) = self
                .held
                .iter()
                .position(|(_, _, on)| on.iter().all(|&o| !self.handles[o].in_flight))
            {
                let (i, done, _) = self.held.remove(k);
                self.handles[i].in_flight = false;
                self.handles[i].forced = false;
                self.record(i, None, Kind::Resumes, done)?;
                last_change = Instant::now();
            }
            let mut running = false;
            for i in 0..self.handles.len() {
                if self.handles[i].in_flight
                    && !self.handles[i].forced
                    && self.blockers(i).await?.is_empty()
                {
                    running = true;
                }
            }
            if !running && last_change.elapsed() >= SETTLE_GRACE {
                return Ok(());
            }
            if started.elapsed() > self.opts.step_timeout {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// After the schedule: runs what is left, the first runnable session first.
    pub(super) async fn finish_all(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.handles.iter().any(|h| !h.is_done()) {
            match self
                .handles
                .iter()
                .position(|h| !h.is_done() && !h.in_flight)
            {
                Some(i) => {
                    self.run_action(i, None).await?;
                }
                None => {
                    self.settle().await?;
                    if started.elapsed() > self.opts.step_timeout {
                        let stuck: Vec<&str> = self
                            .handles
                            .iter()
                            .filter(|h| h.in_flight)
                            .map(|h| h.name.as_str())
                            .collect();
                        bail!(
                            "sessions {} wait for each other after the schedule ended",
                            stuck.join(", ")
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Retries, one session at a time, what the strategy retries.
    pub(super) async fn retries(&mut self, retry: &[Abort]) -> anyhow::Result<()> {
        for i in 0..self.handles.len() {
            while let Some(End::Aborted(class)) = self.handles[i].end {
                if !retry.contains(&class) || self.handles[i].tries >= self.opts.max_tries {
                    break;
                }
                self.handles[i].restart();
                while !self.handles[i].is_done() {
                    self.run_action(i, None).await?;
                    if self.handles[i].in_flight {
                        self.await_session(i, "retry").await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn blockers(&mut self, i: usize) -> anyhow::Result<Vec<String>> {
        let pids = self
            .observer
            .blockers(self.handles[i].pid)
            .await
            .map_err(|e| anyhow!("watching session {}: {e}", self.handles[i].name))?;
        Ok(pids
            .iter()
            .map(|p| {
                self.handles
                    .iter()
                    .find(|h| h.pid == *p)
                    .map_or_else(|| format!("pid {p}"), |h| h.name.clone())
            })
            .collect())
    }

    fn record(
        &mut self,
        i: usize,
        token: Option<&Token>,
        kind: Kind,
        done: Done,
    ) -> anyhow::Result<()> {
        if let Some(f) = done.failure {
            bail!("session {}: {f}", self.handles[i].name);
        }
        let end = done.end.as_ref().map(end_text);
        self.push(i, token, done.index + 1, kind, done.trace, end);
        if let Some(e) = self.events.last_mut() {
            e.outputs = done.outputs;
        }
        Ok(())
    }

    fn push(
        &mut self,
        i: usize,
        token: Option<&Token>,
        step: usize,
        kind: Kind,
        trace: Trace,
        end: Option<String>,
    ) {
        self.events.push(Event {
            session: self.handles[i].name.clone(),
            token: token.map(|t| t.text.clone()),
            step,
            kind,
            attempt: self.handles[i].tries,
            trace,
            end,
            outputs: Vec::new(),
        });
    }

    fn index(&self, session: &str) -> anyhow::Result<usize> {
        self.handles
            .iter()
            .position(|h| h.name == session)
            .ok_or_else(|| anyhow!("no session `{session}` in this scenario"))
    }
}
