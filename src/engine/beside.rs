//! A client's work and its connection's [`Driver`] polled together in one task, each with a
//! waker of its own, so that a wake-up one of them gives the other while the task is running
//! is handled in the same poll instead of scheduling the task again.
//!
//! Why: tokio-postgres passes every request from the `Client` to the `Connection` through a
//! channel, and every reply back through another. With both halves in one task (see
//! [`RunDatabase::session_undriven`](super::RunDatabase::session_undriven)) and one waker for
//! both, as `tokio::select!` gives them, each of those hand-overs woke the task that was
//! already running: a round trip took three polls of the task, each polling the work and the
//! driver (callgrind, `contention run tpcb -c 1 --no-pipeline`: 20.9 task polls and 28 socket
//! reads per seven-round-trip transaction). Here a round trip is one poll of the task: the
//! driver reads the reply, the work takes it and sends the next request, the driver writes it.
//! A wake-up from outside (the socket, a timer, a cancellation) still wakes the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

use super::Driver;

/// Passes over the two futures in one poll of the task at most, before it yields to the
/// scheduler (which also renews tokio's cooperative budget: a resource whose budget is spent
/// wakes its waker at once, and an unbounded loop would spin on it).
const PASSES: u32 = 8;

/// Polls `work` to its end and `driver` beside it, in one task; returns the work's output and
/// the driver if it has not ended (it still has a connection to close).
pub async fn run_beside<W: Future>(
    work: Pin<&mut W>,
    driver: Driver,
) -> (W::Output, Option<Driver>) {
    Beside::new(work, driver).await
}

/// Whether either future was woken, and whether a wake-up must reach the task.
struct Shared {
    /// The task is inside [`Beside::poll`]: a wake-up is seen by its loop.
    polling: AtomicBool,
    task: AtomicWaker,
}

/// One future's waker: records its wake-up, and wakes the task unless the task is polling.
struct Flag {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        if !self.shared.polling.load(SeqCst) {
            self.shared.task.wake();
        }
    }
}

/// One of the two futures with its flag and waker.
struct Side {
    flag: Arc<Flag>,
    waker: Waker,
}

impl Side {
    fn new(shared: &Arc<Shared>) -> Side {
        let flag = Arc::new(Flag {
            // Both are polled on the first poll.
            woken: AtomicBool::new(true),
            shared: shared.clone(),
        });
        Side {
            waker: Waker::from(flag.clone()),
            flag,
        }
    }

    /// Whether it was woken since it was last polled (and forgets it: it is polled now).
    fn take(&self) -> bool {
        self.flag.woken.swap(false, SeqCst)
    }

    fn woken(&self) -> bool {
        self.flag.woken.load(SeqCst)
    }
}

struct Beside<'w, W> {
    work: Pin<&'w mut W>,
    driver: Option<Driver>,
    shared: Arc<Shared>,
    work_side: Side,
    driver_side: Side,
}

impl<'w, W: Future> Beside<'w, W> {
    fn new(work: Pin<&'w mut W>, driver: Driver) -> Self {
        let shared = Arc::new(Shared {
            polling: AtomicBool::new(false),
            task: AtomicWaker::new(),
        });
        Beside {
            work,
            driver: Some(driver),
            work_side: Side::new(&shared),
            driver_side: Side::new(&shared),
            shared,
        }
    }
}

impl<W: Future> Future for Beside<'_, W> {
    type Output = (W::Output, Option<Driver>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.shared.task.register(cx.waker());
        for _ in 0..PASSES {
            this.shared.polling.store(true, SeqCst);
            // The driver first: a reply it reads is taken by the work in the same pass, and a
            // request the work sends is written on the next.
            if this.driver_side.take()
                && let Some(driver) = &mut this.driver
                && driver
                    .as_mut()
                    .poll(&mut Context::from_waker(&this.driver_side.waker))
                    .is_ready()
            {
                // The connection ended: the work sees the error on its next statement.
                this.driver = None;
            }
            if this.work_side.take()
                && let Poll::Ready(out) = this
                    .work
                    .as_mut()
                    .poll(&mut Context::from_waker(&this.work_side.waker))
            {
                this.shared.polling.store(false, SeqCst);
                return Poll::Ready((out, this.driver.take()));
            }
            // A wake-up from now on wakes the task; one that came during the pass is seen here.
            this.shared.polling.store(false, SeqCst);
            if !this.work_side.woken() && !this.driver_side.woken() {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
