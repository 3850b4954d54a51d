//! A client's attempt raced against the cell's abort, the abort's future polled only when it
//! was woken.
//!
//! Why: `tokio::select!` polls every branch at every wake-up of the task, and the abort is a
//! `CancellationToken`'s `cancelled()`, whose poll takes two mutexes (the token's state and
//! its `Notify`): about 1,400 instructions per seven-round-trip transaction (callgrind,
//! `contention run tpcb -c 1 --no-pipeline`), where this checks a flag. The abort still wins
//! when both are ready, as `select!`'s `biased` did.
//!
//! It races two futures; it must not decide what an abort means (the client does).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// The waker the abort's future is polled with; one per client, for all its attempts.
pub struct Race {
    flag: Arc<Flag>,
    waker: Waker,
}

/// Whether the abort's future was woken, and the task to wake for it.
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        self.task.wake();
    }
}

impl Default for Race {
    fn default() -> Race {
        Race::new()
    }
}

impl Race {
    pub fn new() -> Race {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Race {
            waker: Waker::from(flag.clone()),
            flag,
        }
    }

    /// Polls `work` to its end (`Some` of its output) unless `stop` ends first (`None`).
    pub async fn run<W: Future, S: Future<Output = ()>>(
        &self,
        work: W,
        mut stop: Pin<&mut S>,
    ) -> Option<W::Output> {
        let mut work = pin!(work);
        // Polled at once: since its last race, `stop` may have been polled with another waker.
        self.flag.woken.store(true, SeqCst);
        std::future::poll_fn(|cx| {
            self.flag.task.register(cx.waker());
            if self.flag.woken.swap(false, SeqCst)
                && stop
                    .as_mut()
                    .poll(&mut Context::from_waker(&self.waker))
                    .is_ready()
            {
                return Poll::Ready(None);
            }
            work.as_mut().poll(cx).map(Some)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn the_abort_ends_a_waiting_attempt_and_a_finished_one_returns() {
        let race = Race::new();
        let token = CancellationToken::new();
        let mut aborted = pin!(token.cancelled());
        let done = race.run(async { 7 }, aborted.as_mut()).await;
        assert_eq!(done, Some(7));
        let cancel = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cancel.cancel();
        });
        let waited = race
            .run(std::future::pending::<()>(), aborted.as_mut())
            .await;
        assert_eq!(waited, None);
    }
}
