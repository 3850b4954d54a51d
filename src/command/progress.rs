//! A progress bar on stderr for commands that run cells: cells done, elapsed time and estimate,
//! and the live throughput and abort rate of the cell in flight (from the runner's relaxed
//! counters, sampled twice a second). Shown only when asked and stderr is a terminal; it must not
//! print anything else.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::alarm::Alarm;
use crate::runner::Live;

pub struct Progress {
    bar: ProgressBar,
    live: Arc<Live>,
    ticker: Option<Alarm>,
}

impl Progress {
    /// A bar over `cells` cells, or a hidden one unless `wanted` and stderr is a terminal.
    pub fn new(cells: u64, wanted: bool) -> Progress {
        let shown = wanted && std::io::stderr().is_terminal();
        let bar = if shown {
            ProgressBar::new(cells)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} cells {elapsed} (~{eta} left)  {prefix}  {msg}",
            )
            .expect("a valid template"),
        );
        let live = Arc::new(Live::default());
        // On the alarm's thread, not the runtime's timers (see `alarm`).
        let ticker = shown.then(|| {
            let (bar, live) = (bar.clone(), live.clone());
            let (mut last, mut at) = ((0, 0), Instant::now());
            Alarm::every(Duration::from_millis(500), move || {
                let now = (live.committed.load(Relaxed), live.aborts.load(Relaxed));
                let secs = at.elapsed().as_secs_f64().max(1e-3);
                let ops = (now.0 - last.0) as f64 / secs;
                let aborts = (now.1 - last.1) as f64 / secs;
                bar.set_message(format!("{ops:.0} ops/s, {aborts:.0} aborts/s"));
                (last, at) = (now, Instant::now());
            })
        });
        Progress { bar, live, ticker }
    }

    pub fn is_shown(&self) -> bool {
        self.ticker.is_some()
    }

    /// The counters the runner should update (`Settings::live`).
    pub fn live(&self) -> Arc<Live> {
        self.live.clone()
    }

    /// A cell starts: count the previous one done and show this one's label.
    pub fn cell(&self, label: String) {
        if self.bar.prefix().is_empty() {
            self.bar.set_prefix(label);
        } else {
            self.bar.inc(1);
            self.bar.set_prefix(label);
        }
    }

    pub fn finish(self) {
        drop(self.ticker);
        self.bar.finish_and_clear();
    }
}
