//! One simulated client: waits at the start barrier, then runs operations until its budget, the
//! deadline or an interrupt stops it, retrying failed attempts with bounded, jittered backoff.
//! Used for writers and auditors alike. It counts into its own [`Stats`] and records latencies
//! into its role's [`SharedLatency`]; it must not share counters with other clients or print
//! anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Barrier;
use tokio_util::sync::CancellationToken;

use super::draws::Draws;
use super::program::{End, Framing, Program, Slots, Vars};
use crate::engine::{Driver, Pool, Session, run_beside};
use crate::history::Completion;
use crate::outcome::Abort;
use crate::scenario::Value;
use crate::stats::{SharedLatency, Stats};

/// How long an attempt in flight at the deadline may still finish before it is cut: the runner
/// cancels the cell's `abort` this long after its deadline.
pub const CUT_GRACE: Duration = Duration::from_millis(250);

/// Backoff before retry `n` (1-based): uniform in [0, min(1 ms * 2^n, 50 ms)].
const BACKOFF_CAP: Duration = Duration::from_millis(50);

/// How a client reaches the database. One per client, built once: the size of the variants
/// does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    /// Its own connection, statements prepared once.
    Own(Session),
    /// A connection borrowed from a shared pool for each attempt (`--connections N`).
    Pool(Pool),
}

/// What a group of clients runs.
pub struct Role {
    pub program: Arc<Program>,
    /// Failure classes that retry the operation (none for auditors).
    pub retry: Vec<Abort>,
    pub max_tries: u32,
    pub framing: Framing,
    /// Operations left for all clients of the role together (`None`: until stopped).
    pub budget: Option<Arc<AtomicU64>>,
    /// Stops this role between operations (deadline, or the writers finished).
    pub stop: CancellationToken,
    /// Live counters for a progress display, if one is shown.
    pub live: Option<Arc<super::Live>>,
    /// Latencies of the role's commits (the runner merges them into the role's [`Stats`]).
    pub latency: SharedLatency,
    /// A client of the role stops at its first rejected operation (a recovery pass that ran
    /// out of work).
    pub until_rejected: bool,
}

/// What every client of a cell shares.
pub struct Shared {
    pub slots: Arc<Slots>,
    pub draws: Arc<Draws>,
    /// Parameter values by slot.
    pub params: Vec<(usize, Value)>,
    pub seed: u64,
    pub barrier: Arc<Barrier>,
    /// Abandon the attempt in flight: cancelled by an interrupt, and by the cell
    /// [`CUT_GRACE`] after its deadline (then the attempt is cut).
    pub abort: CancellationToken,
    /// The interrupt alone (Ctrl-C, SIGTERM): tells an interrupt from a cut.
    pub interrupt: CancellationToken,
    /// Where each client's history log goes (`--history`); none: nothing is recorded.
    pub history: Option<Arc<crate::history::Sink>>,
    /// The run's nodes, for connections to the others and to reconnect.
    pub targets: super::nodes::Targets,
    /// The session settings of every connection.
    pub session: Arc<[(String, String)]>,
}

/// Runs the client to its end. An own connection comes with its driver, which this task polls
/// next to the client's work: a reply wakes the client directly, not through a second task
/// (and, through [`run_beside`], without polling the task a second time).
pub async fn run(
    conn: Conn,
    driver: Option<Driver>,
    role: Arc<Role>,
    shared: Arc<Shared>,
    index: u32,
    seed_stream: u64,
) -> anyhow::Result<Stats> {
    // Pinned once for both paths: an `await` of the future by value on one of them would hold
    // a second copy of its state in this task's (a few KiB per client).
    let work = operate(conn, role, shared, index, seed_stream);
    tokio::pin!(work);
    let Some(driver) = driver else {
        return work.await;
    };
    let (stats, driver) = run_beside(work, driver).await;
    // The client is dropped: the driver closes the connection once the server has answered
    // what was in flight (an interrupted attempt may still wait on a lock), so it finishes on
    // its own rather than hold up the cell.
    if let Some(driver) = driver {
        tokio::spawn(driver);
    }
    stats
}

async fn operate(
    mut conn: Conn,
    role: Arc<Role>,
    shared: Arc<Shared>,
    index: u32,
    seed_stream: u64,
) -> anyhow::Result<Stats> {
    let mut stats = Stats::default();
    let mut vars = Vars::new(shared.slots.clone());
    for (slot, v) in &shared.params {
        vars.set(*slot, v.clone());
    }
    let slot = |n: &str| shared.slots.get(n).expect("built-in slot");
    let (client_slot, op_slot, try_slot) = (slot("client"), slot("op"), slot("try"));
    vars.set(client_slot, Value::Int(index.into()));
    vars.who = if seed_stream == 1 {
        format!("client {index}")
    } else {
        format!("auditor client {index}")
    };
    let mut others = super::nodes::Others::new(&shared.targets, shared.session.clone());
    // A writer's process is its client number (as `client` in its steps); auditors get others.
    vars.history = shared
        .history
        .as_ref()
        .map(|h| h.recorder((seed_stream == 1).then_some(index)));
    let mut rng = StdRng::seed_from_u64(
        shared.seed
            ^ seed_stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(index).wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    // Child tokens: cancelled with their parents, but each with its own lock, so checking them
    // (before every operation, and at every wake-up of an attempt) is not a lock all the
    // clients of the cell contend for.
    let (stop, abort) = (role.stop.child_token(), shared.abort.child_token());
    shared.barrier.wait().await;
    vars.started = Instant::now();
    // Registered once; polled when it is woken (see `Race`).
    let aborted = abort.cancelled();
    tokio::pin!(aborted);
    let race = super::race::Race::new();
    let pooled_conn = matches!(conn, Conn::Pool(_));
    let mut op: i64 = 0;
    while !stop.is_cancelled() && !abort.is_cancelled() && claim(role.budget.as_deref()) {
        op += 1;
        vars.set(op_slot, Value::Int(op));
        shared.draws.draw(&mut rng, &mut vars)?;
        let start = Instant::now();
        let mut tries = 0u32;
        loop {
            tries += 1;
            vars.set(try_slot, Value::Int(tries.into()));
            let mut pooled;
            let session = match &mut conn {
                Conn::Own(session) => session,
                Conn::Pool(pool) => {
                    pooled = tokio::select! {
                        biased;
                        () = &mut aborted => {
                            if !shared.interrupt.is_cancelled() {
                                stats.cut += 1;
                            }
                            return Ok(stats);
                        }
                        s = pool.session(role.program.sql_texts()) => s?,
                    };
                    &mut *pooled
                }
            };
            if let Some(h) = &mut vars.history {
                h.invoke();
            }
            // The attempt's future is boxed while it runs: one allocation per attempt (some
            // 100 ns against a round trip's 100 µs) keeps its few KiB of state out of every
            // idle client's task, which is what lets 10,000 clients fit in 100 MB.
            let end = race
                .run(
                    Box::pin(role.program.attempt(
                        session,
                        &mut others,
                        &mut vars,
                        role.framing,
                        &mut stats,
                    )),
                    aborted.as_mut(),
                )
                .await
                .transpose()?;
            let Some(end) = end else {
                // An interrupt abandons the attempt (dropping the connection rolls it back);
                // the cell's halt after its deadline cuts it, cancelling its statement on the
                // server (bounded: a server that does not answer must not hold the cell).
                if !shared.interrupt.is_cancelled() {
                    stats.cut += 1;
                    let _ = tokio::time::timeout(CUT_GRACE, Box::pin(session.cancel())).await;
                }
                return Ok(stats);
            };
            if let Some(h) = &mut vars.history {
                h.complete(match end {
                    End::Committed => Completion::Ok,
                    End::Unknown | End::Crashed | End::Partial | End::Lost => Completion::Info,
                    End::Rejected(_) | End::Aborted(_) => Completion::Fail,
                });
            }
            if end.lost_connections() {
                // A crash, or a COMMIT whose connection went: every connection is dropped
                // (the servers roll back what was open), and the client starts afresh.
                others.drop_all();
                // Boxed, as the attempt is: inline, a connect's state would sit in every idle
                // client's task (1,700 bytes each).
                if pooled_conn {
                    // A pooled connection goes back to the pool: end what the crash left open
                    // there, as the server would for a dropped connection.
                    let _ = Box::pin(session.rollback()).await;
                }
                if let Conn::Own(session) = &mut conn {
                    *session = Box::pin(async {
                        let mut fresh = shared.targets.main().session(&shared.session).await?;
                        role.program.prepare(&mut fresh).await?;
                        anyhow::Ok(fresh)
                    })
                    .await?;
                }
            }
            match &end {
                End::Committed => {
                    stats.record_shared_commit(start.elapsed(), &role.latency, index);
                    if let Some(live) = &role.live {
                        live.committed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                End::Rejected(outcome) => stats.record_rejection(outcome),
                // Counted where it happened (`unknown`, the fault list): neither committed
                // nor aborted, and not retried (the client cannot know whether to).
                End::Unknown | End::Crashed | End::Partial | End::Lost => {}
                End::Aborted(class) => {
                    stats.aborts[class.index()] += 1;
                    if let Some(live) = &role.live {
                        live.aborts
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if role.retry.contains(class) && tries < role.max_tries {
                        stats.retries += 1;
                        let cap = BACKOFF_CAP.min(Duration::from_micros(1000 << tries.min(16)));
                        let pause = cap.mul_f64(rng.random::<f64>());
                        tokio::select! {
                            () = &mut aborted => return Ok(stats),
                            () = tokio::time::sleep(pause) => {}
                        }
                        if stop.is_cancelled() {
                            // Past the deadline: no new attempt.
                            stats.cut += 1;
                            return Ok(stats);
                        }
                        continue;
                    }
                    stats.failed += 1;
                }
            }
            if tries > 1 && !matches!(end, End::Aborted(_)) {
                stats.retried_operations += 1;
            }
            if role.until_rejected && matches!(end, End::Rejected(_)) {
                return Ok(stats);
            }
            break;
        }
    }
    Ok(stats)
}

fn claim(budget: Option<&AtomicU64>) -> bool {
    budget.is_none_or(|b| {
        b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    })
}
