//! Timers kept off the async runtime: a thread of the alarm's own sleeps until each instant it
//! was given and runs what is due there, until the [`Alarm`] is dropped. For a cell's deadline
//! and cut, a recovery pass's limit and the progress bar's refresh: timers that last a whole
//! cell.
//!
//! Why: a timer in tokio's wheel makes every park of the runtime read the clock, work out a
//! timeout and hand it to `epoll_wait`, which arms a kernel timer for it. With one round trip
//! per statement that is every round trip: one timer of 60 s in the wheel (`--timeout 60s` on an
//! `--operations` run) cost 3.5 µs more per transaction, 56.3 against 52.8 µs (`perf stat`,
//! `contention run tpcb -c 1 --no-pipeline -o 20000`, six alternating runs). A cancellation from
//! this thread wakes what waits on it through the runtime's own remote wake-up.
//!
//! It waits and calls; it must not know what it calls, nor be used for a timer that a client
//! sets per operation (think time, backoff): those stay tokio's.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What runs when an alarm rings.
type Ring = Box<dyn FnOnce() + Send>;

/// A thread that rings at its instants until it is dropped; dropping it stops the thread
/// before anything else rings (and waits for a ring in progress to end).
pub struct Alarm {
    /// Dropped to stop the thread: its wait ends at once.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Alarm {
    /// Rings each of `rings` in order, each its delay after the previous one's instant (the
    /// first its delay from now).
    pub fn after(rings: Vec<(Duration, Ring)>) -> Alarm {
        let start = Instant::now();
        Alarm::spawn(move |stopped| {
            let mut at = start;
            for (delay, ring) in rings {
                at += delay;
                if stopped(at) {
                    return;
                }
                ring();
            }
        })
    }

    /// Calls `tick` every `period` (from now) until dropped.
    pub fn every(period: Duration, mut tick: impl FnMut() + Send + 'static) -> Alarm {
        let start = Instant::now();
        Alarm::spawn(move |stopped| {
            let mut at = start;
            loop {
                at += period;
                if stopped(at) {
                    return;
                }
                tick();
            }
        })
    }

    /// Runs `body` on a thread of its own; `body` waits with the function it is given, which
    /// sleeps until an instant and says whether the alarm was dropped meanwhile.
    fn spawn(body: impl FnOnce(&dyn Fn(Instant) -> bool) + Send + 'static) -> Alarm {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("contention-alarm".into())
            .spawn(move || {
                let until = |at: Instant| loop {
                    let left = at.saturating_duration_since(Instant::now());
                    match stopped.recv_timeout(left) {
                        Err(RecvTimeoutError::Timeout) if Instant::now() >= at => return false,
                        // Woken early (it happens): sleep the rest.
                        Err(RecvTimeoutError::Timeout) | Ok(()) => {}
                        Err(RecvTimeoutError::Disconnected) => return true,
                    }
                };
                body(&until);
            })
            .expect("cannot start the alarm's thread");
        Alarm {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // It ends at once (its wait sees the channel closed); a panic in a ring is the
            // ring's, reported by the panic hook already.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

    #[test]
    fn rings_in_order_after_each_delay() {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        let ring = |n: u32| -> Ring {
            let tx = tx.clone();
            Box::new(move || tx.send((n, Instant::now())).unwrap())
        };
        let _alarm = Alarm::after(vec![
            (Duration::from_millis(30), ring(1)),
            (Duration::from_millis(20), ring(2)),
        ]);
        let (a, at_a) = rx.recv().unwrap();
        let (b, at_b) = rx.recv().unwrap();
        assert_eq!((a, b), (1, 2));
        // Not before their instants (a late ring is the machine's; an early one is a bug).
        assert!(at_a - start >= Duration::from_millis(30));
        assert!(at_b - start >= Duration::from_millis(50));
    }

    #[test]
    fn a_dropped_alarm_never_rings() {
        let rung = Arc::new(AtomicU32::new(0));
        let r = rung.clone();
        let alarm = Alarm::after(vec![(
            Duration::from_millis(50),
            Box::new(move || {
                r.fetch_add(1, SeqCst);
            }),
        )]);
        drop(alarm);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(rung.load(SeqCst), 0);
    }

    #[test]
    fn ticks_until_dropped() {
        let ticks = Arc::new(AtomicU32::new(0));
        let t = ticks.clone();
        let alarm = Alarm::every(Duration::from_millis(5), move || {
            t.fetch_add(1, SeqCst);
        });
        while ticks.load(SeqCst) < 3 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(alarm);
        let after = ticks.load(SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(ticks.load(SeqCst), after);
    }
}
