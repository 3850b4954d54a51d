//! One replay session: a task that owns a connection and runs its program one action at a time
//! when the scheduler says so, reporting each action's trace. The task itself never decides
//! what runs next; the scheduler (`replay`) watches it from outside (blocked or not) through
//! the session's server-side id.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc;

use crate::engine;
use crate::isolation::Isolation;
use crate::runner::draws::Draws;
use crate::runner::program::{Cursor, End, Framing, Pipeline, Program, Slots, Trace, Vars};
use crate::scenario::{Scenario, Session, Value};
use crate::stats::Stats;

/// What the scheduler asks of a session.
#[derive(Debug)]
pub(super) enum Command {
    /// Run the next action.
    Next,
    /// Start the operation over (a retry), keeping the session's draws.
    Restart,
    /// Run this step as written (sessions whose steps run as written).
    Run(usize),
}

/// What a session tells the scheduler.
#[derive(Debug)]
pub(super) enum Report {
    /// About to send this statement (it may block).
    Starting(String),
    Done(Box<Done>),
}

/// What a session reports after an action.
#[derive(Debug)]
pub struct Done {
    /// The action's index (0-based; `steps` = the final commit).
    pub index: usize,
    pub trace: Trace,
    /// How the attempt ended, if this action ended it.
    pub end: Option<End>,
    /// The scenario or the connection is broken.
    pub failure: Option<String>,
    /// Everything the server answered, for steps run as written.
    pub outputs: Vec<crate::engine::written::Output>,
}

/// The scheduler's side of a session.
pub struct Handle {
    pub name: String,
    /// The session's id on the server (PostgreSQL's backend pid).
    pub pid: i64,
    pub program: Arc<Program>,
    commands: mpsc::UnboundedSender<Command>,
    reports: mpsc::UnboundedReceiver<Report>,
    /// The statement of the action in flight, once the session has said it.
    pub pending_sql: Option<String>,
    /// The next action the session will run (mirrors the task's cursor).
    pub next: usize,
    pub end: Option<End>,
    /// An action was sent and has not reported yet.
    pub in_flight: bool,
    pub tries: u32,
    /// The steps, for a session that runs them as written.
    pub written: Option<Arc<Vec<crate::scenario::WrittenStep>>>,
    /// The action in flight counts as waiting whatever the server says: a `(*)` step, or one
    /// held until its blockers complete.
    pub forced: bool,
    /// What the session's setup returned (sessions run as written).
    pub setup_outputs: Vec<crate::engine::written::Output>,
    task: tokio::task::JoinHandle<Observed>,
}

/// What a session saw, for the invariants: its variables when it finished (never set = Empty,
/// so an oracle can compare a read that did not happen).
pub struct Observed {
    pub vars: Vec<(String, Value)>,
}

/// Everything a session task needs besides its connection.
pub struct Setup<'a> {
    pub scenario: &'a Scenario,
    pub session: &'a Session,
    pub index: usize,
    pub program: Arc<Program>,
    pub slots: Arc<Slots>,
    pub seed: u64,
    pub isolation: Isolation,
    /// Where the session's history log goes (`--history`).
    pub history: Option<Arc<crate::history::Sink>>,
    /// Its connections to the scenario's other nodes (opened when a step first needs one).
    pub others: crate::runner::nodes::Others,
}

impl Handle {
    /// Starts the session's task on its own connection.
    pub async fn start(mut conn: engine::Session, s: Setup<'_>) -> anyhow::Result<Handle> {
        let pid = conn.server_id().await?;
        s.program.prepare(&mut conn).await?;
        let mut vars = Vars::new(s.slots.clone());
        for (name, p) in &s.scenario.params {
            if let Some(slot) = s.slots.get(name) {
                vars.set(slot, p.value.clone());
            }
        }
        let draws = Draws::new(s.scenario, &s.slots)?;
        let mut rng = StdRng::seed_from_u64(s.seed.wrapping_add(s.index as u64 * 7919));
        draws.draw(&mut rng, &mut vars)?;
        // As in load runs, clients are numbered from 0 and the operation from 1; binds win.
        for (name, v) in [("client", s.index as i64), ("op", 1), ("try", 1)] {
            vars.set(s.slots.get(name).expect("built-in slot"), Value::Int(v));
        }
        for (name, v) in &s.session.bind {
            if let Some(slot) = s.slots.get(name) {
                vars.set(slot, v.clone());
            }
        }
        vars.history = s.history.as_ref().map(|h| h.recorder(Some(s.index as u32)));
        vars.who = s.session.name.clone();
        let mut others = s.others;
        let (commands, mut inbox) = mpsc::unbounded_channel();
        let (outbox, reports) = mpsc::unbounded_channel();
        let program = s.program.clone();
        // A replay's schedule places each COMMIT, so only BEGIN rides with a statement.
        let framing = Framing {
            isolation: s.isolation,
            think: std::time::Duration::ZERO,
            pipeline: Pipeline::Begin,
        };
        let names = s.slots.names();
        let try_slot = s.slots.get("try").expect("built-in slot");
        let task = tokio::spawn(async move {
            let mut cursor = Cursor::default();
            let mut stats = Stats::default();
            let mut tries = 1;
            while let Some(cmd) = inbox.recv().await {
                if let Command::Restart = cmd {
                    cursor = Cursor::default();
                    tries += 1;
                    vars.set(try_slot, Value::Int(tries));
                    continue;
                }
                if let Command::Run(_) = cmd {
                    let _ = outbox.send(Report::Done(Box::new(Done {
                        index: cursor.next,
                        trace: Trace::default(),
                        end: None,
                        failure: Some("this session's steps are not run as written".into()),
                        outputs: Vec::new(),
                    })));
                    continue;
                }
                let index = cursor.next;
                if index == 0
                    && let Some(h) = &mut vars.history
                {
                    h.invoke();
                }
                if let Some(sql) = program.preview(index, &vars) {
                    let _ = outbox.send(Report::Starting(sql));
                }
                let mut trace = Trace::default();
                let result = program
                    .step(
                        &mut conn,
                        &mut others,
                        &mut vars,
                        framing,
                        &mut stats,
                        &mut cursor,
                        Some(&mut trace),
                    )
                    .await;
                let (end, failure) = match result {
                    Ok(end) => (end, None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                };
                if end.as_ref().is_some_and(End::lost_connections) {
                    // A crash: the servers end what the session had open (its connections to
                    // the other nodes go; the run database's is kept for the timeline, its
                    // transaction rolled back as a dropped connection's would be).
                    others.drop_all();
                    let _ = conn.rollback().await;
                }
                if let (Some(end), Some(h)) = (&end, &mut vars.history) {
                    h.complete(match end {
                        End::Committed => crate::history::Completion::Ok,
                        End::Unknown | End::Crashed | End::Partial | End::Lost => {
                            crate::history::Completion::Info
                        }
                        End::Rejected(_) | End::Aborted(_) => crate::history::Completion::Fail,
                    });
                }
                if outbox
                    .send(Report::Done(Box::new(Done {
                        index,
                        trace,
                        end,
                        failure,
                        outputs: Vec::new(),
                    })))
                    .is_err()
                {
                    break;
                }
            }
            let vars = names
                .iter()
                .zip(&vars.values)
                .map(|(n, v)| (n.clone(), v.clone().unwrap_or(Value::Empty)))
                .collect();
            Observed { vars }
        });
        Ok(Handle {
            name: s.session.name.clone(),
            pid,
            program: s.program,
            commands,
            reports,
            pending_sql: None,
            next: 0,
            end: None,
            in_flight: false,
            tries: 1,
            written: None,
            forced: false,
            setup_outputs: Vec::new(),
            task,
        })
    }

    /// A session that runs its steps as written (see `super::written`).
    pub(super) fn from_parts(
        name: String,
        pid: i64,
        program: Arc<Program>,
        written: Arc<Vec<crate::scenario::WrittenStep>>,
        commands: mpsc::UnboundedSender<Command>,
        reports: mpsc::UnboundedReceiver<Report>,
        task: tokio::task::JoinHandle<Observed>,
    ) -> Handle {
        Handle {
            name,
            pid,
            program,
            commands,
            reports,
            pending_sql: None,
            next: 0,
            end: None,
            in_flight: false,
            tries: 1,
            written: Some(written),
            forced: false,
            setup_outputs: Vec::new(),
            task,
        }
    }

    /// Sends step `index` of a session that runs its steps as written.
    pub fn send_step(&mut self, index: usize) {
        self.in_flight = true;
        self.pending_sql = None;
        let _ = self.commands.send(Command::Run(index));
    }

    /// Sends the next action.
    pub fn send_next(&mut self) {
        self.in_flight = true;
        self.pending_sql = None;
        let _ = self.commands.send(Command::Next);
    }

    /// Starts the operation over.
    pub fn restart(&mut self) {
        self.next = 0;
        self.end = None;
        self.tries += 1;
        let _ = self.commands.send(Command::Restart);
    }

    /// The action's report, if it has arrived.
    pub fn try_report(&mut self) -> Option<Done> {
        loop {
            match self.reports.try_recv().ok()? {
                Report::Starting(sql) => self.pending_sql = Some(sql),
                Report::Done(done) => return Some(self.accept(*done)),
            }
        }
    }

    /// Waits up to `d` for the action's report.
    pub async fn report_within(&mut self, d: std::time::Duration) -> Option<Done> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.reports.recv())
                .await
                .ok()??
            {
                Report::Starting(sql) => self.pending_sql = Some(sql),
                Report::Done(done) => return Some(self.accept(*done)),
            }
        }
    }

    fn accept(&mut self, done: Done) -> Done {
        self.in_flight = false;
        self.forced = false;
        self.next = done.index + 1;
        if done.end.is_some() {
            self.end.clone_from(&done.end);
        }
        done
    }

    /// The session has nothing left to run: its operation ended, or (steps run as written)
    /// nothing is in flight.
    pub fn is_done(&self) -> bool {
        self.end.is_some() || (self.written.is_some() && !self.in_flight)
    }

    /// Ends the task and returns what the session saw.
    pub async fn finish(self) -> anyhow::Result<Observed> {
        drop(self.commands);
        Ok(self.task.await?)
    }
}
