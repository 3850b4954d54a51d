//! `contention replay --step`: before each token of the schedule, clear the terminal, draw the
//! timeline so far and the token about to run, and wait for Enter, so a teacher can walk a room
//! through an anomaly one statement at a time. It only draws and waits; the replay itself is
//! `crate::replay`.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::bail;

use crate::replay::{Pause, timeline};
use crate::scenario::Scenario;

/// The pause `--step` asks for, or none; refused unless stdin is a terminal.
pub fn pause(step: bool, scenario: &Scenario, color: bool) -> anyhow::Result<Option<Pause>> {
    if !step {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        bail!("--step waits for Enter before each step: stdin is not a terminal");
    }
    let scenario = Arc::new(scenario.clone());
    Ok(Some(Pause(Arc::new(move |so_far, next| {
        let look = timeline::Look {
            markdown: false,
            color,
            width: super::replay::width(),
        };
        let mut out = std::io::stdout();
        // Clear the screen and go home: the timeline is redrawn as it grows.
        write!(out, "\x1b[2J\x1b[H")?;
        timeline::render(so_far, &scenario, look, &mut out)?;
        write!(
            out,
            "\nnext: {next} — press Enter to run it (Ctrl-C stops) "
        )?;
        out.flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(())
    }))))
}
