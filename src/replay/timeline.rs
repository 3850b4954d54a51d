//! A replay as people read it: one column per session, one row per step, with the SQL, what it
//! returned, waits and resumptions, commits and aborts with their SQLSTATE; then how each session
//! ended, the invariants with the anomaly named and explained, and the verdict. Terminal (with
//! colour when asked), Markdown, or JSON. This module only formats; it must not run anything.

use std::io::{self, Write};

use owo_colors::OwoColorize;
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Style, Width};

use super::{Event, Kind, Replay, Verdict};
use crate::engine::written::Output;
use crate::scenario::{Scenario, Side};

/// How to draw.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub markdown: bool,
    pub color: bool,
    /// Total width for the table (terminal width, or a default).
    pub width: usize,
}

pub fn render(r: &Replay, scenario: &Scenario, look: Look, out: &mut dyn Write) -> io::Result<()> {
    let paint = Paint(look.color && !look.markdown);
    let who = match &r.strategy {
        _ if r.as_written => "steps as written".to_string(),
        Some(s) => format!("{s} @ {}", r.isolation),
        None => format!("@ {}", r.isolation),
    };
    let head = format!(
        "{} · {who} · {} {}: {}",
        r.scenario,
        if scenario.file.extension().is_some_and(|e| e == "spec") {
            "permutation"
        } else {
            "schedule"
        },
        r.schedule,
        r.tokens.join(" ")
    );
    if look.markdown {
        writeln!(out, "**{head}**\n")?;
    } else {
        for line in fold(&head, look.width) {
            writeln!(out, "{}", paint.bold(&line))?;
        }
    }
    if let Some(s) = scenario
        .schedules
        .get(&r.schedule)
        .filter(|s| !s.summary.is_empty())
    {
        let width = if look.markdown {
            usize::MAX
        } else {
            look.width
        };
        for line in s.summary.lines().flat_map(|l| fold(l, width)) {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
    }

    let sessions = r.sessions.len().max(1);
    // The label column, then the sessions' share of the rest: rows never wrap past the
    // terminal; SQL folds, result lines are abbreviated.
    const LABEL: usize = 12;
    let per = (look.width.saturating_sub(LABEL + 3 * sessions + 4) / sessions).max(12);
    let max = if look.markdown { usize::MAX } else { per };
    let mut b = Builder::default();
    let mut header = vec!["#".to_string()];
    header.extend(r.sessions.iter().cloned());
    b.push_record(header);
    for (n, e) in r.events.iter().enumerate() {
        if n == r.schedule_ends_at && n < r.events.len() {
            let mut row = vec!["·".to_string()];
            row.extend(r.sessions.iter().map(|_| paint.dim("(after the schedule)")));
            b.push_record(row);
        }
        let label = match (&e.token, e.attempt) {
            (Some(t), _) => t.clone(),
            (None, _) if written_name(scenario, e).is_some() => {
                written_name(scenario, e).expect("checked")
            }
            (None, 1) => format!("{}{}", e.session, e.step),
            (None, n) => format!("{}{} (try {n})", e.session, e.step),
        };
        let mut row = vec![label];
        for s in &r.sessions {
            row.push(if *s == e.session {
                cell(e, paint, look.markdown, max)
            } else {
                String::new()
            });
        }
        b.push_record(row);
    }
    let mut table = b.build();
    if look.markdown {
        table.with(Style::markdown());
    } else {
        table.with(Style::rounded());
        table.modify(Columns::new(0..1), Width::wrap(LABEL));
        // Session columns are folded line by line in `cell` (tabled's word wrap carries words
        // across lines, which breaks result tables).
    }
    writeln!(out, "{table}")?;

    writeln!(out)?;
    let ends: Vec<String> = r.ends.iter().map(|e| e.to_string()).collect();
    if !ends.is_empty() {
        let width = if look.markdown {
            usize::MAX
        } else {
            look.width
        };
        for line in fold(&ends.join(" · "), width) {
            writeln!(out, "{}{line}", bullet(look))?;
        }
    }
    for m in &r.invariants {
        let inv = scenario.invariants.iter().find(|i| i.name == m.name);
        let reader = if m.side == Side::Reader {
            " (seen by a reader)"
        } else {
            ""
        };
        if m.value == 0 {
            writeln!(out, "{}{} = 0{reader}: holds", bullet(look), m.name)?;
            continue;
        }
        let explain = inv.map(|i| i.explain.as_str()).unwrap_or_default();
        writeln!(
            out,
            "{}{} = {}{reader}: {} — {explain}",
            bullet(look),
            paint.red(&m.name),
            m.value,
            m.anomaly
        )?;
        if let Some(p) = inv.and_then(|i| i.prevented_by.as_deref()) {
            writeln!(
                out,
                "{}  prevented by: {p}",
                if look.markdown { "  " } else { "" }
            )?;
        }
    }
    let verdict = match &r.verdict {
        Verdict::Unjudged => return Ok(()),
        Verdict::Possible => paint.red(&format!("{}: the anomaly happened", r.verdict.label())),
        v => paint.green(&format!("{}: no anomaly", v.label())),
    };
    writeln!(out, "{}{verdict}", bullet(look))?;
    Ok(())
}

fn bullet(look: Look) -> &'static str {
    if look.markdown { "- " } else { "" }
}

/// One session's cell for one event.
/// The name of the step an event ran, for sessions that run their steps as written.
pub fn written_name(scenario: &Scenario, e: &Event) -> Option<String> {
    let s = scenario.sessions.iter().find(|s| s.name == e.session)?;
    let step = s.written.as_ref()?.get(e.step.checked_sub(1)?)?;
    // A spec's step names are unique; a TOML schedule names steps `session.step`.
    if scenario.file.extension().is_some_and(|x| x == "spec") {
        Some(step.name.clone())
    } else {
        Some(format!("{}.{}", s.name, step.name))
    }
}

/// `line` folded at spaces into lines of at most `max` characters (a longer word is cut).
/// Lines with colour codes are left whole.
fn fold(line: &str, max: usize) -> Vec<String> {
    if line.chars().count() <= max || line.contains('\u{1b}') {
        return vec![line.to_string()];
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let mut word = word.to_string();
        while word.chars().count() > max {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            let head: String = word.chars().take(max).collect();
            word = word.chars().skip(max).collect();
            out.push(head);
        }
        let len = current.chars().count();
        if len > 0 && len + 1 + word.chars().count() > max {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `line`, abbreviated with `…` to `max` characters.
fn abbreviate(line: String, max: usize) -> String {
    if line.chars().count() <= max {
        return line;
    }
    let mut s: String = line.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn cell(e: &Event, paint: Paint, markdown: bool, max: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    match &e.kind {
        Kind::Nothing => lines.push(paint.dim("(nothing to do)")),
        Kind::StillWaiting => lines.push(paint.yellow("(still waiting)")),
        Kind::Waits { blockers } => {
            lines.extend(e.trace.sql.clone());
            lines.push(paint.yellow(&format!("waits for {}", blockers.join(", "))));
        }
        Kind::Ran | Kind::Resumes => {
            let resumed = e.kind == Kind::Resumes;
            match (&e.trace.sql, resumed) {
                (Some(sql), false) => lines.push(sql.clone()),
                (Some(_), true) => lines.push(paint.yellow("resumes")),
                (None, _) if e.trace.skipped => lines.push(paint.dim("(skipped: `when` is false)")),
                (None, _) if !e.trace.lets.is_empty() => lines.push(e.trace.lets.join(", ")),
                (None, _) if e.trace.fault.is_some() => {}
                (None, _) => lines.push(paint.dim("(no SQL)")),
            }
            // The rows as the server returned them when they were kept; else the summary.
            let kept = e.trace.rows.clone().map(|set| vec![Output::Rows(set)]);
            match (&kept, &e.trace.result) {
                (Some(_), _) => {}
                (None, Some(res)) => lines.push(format!("→ {res}")),
                (None, None) => {}
            }
            for line in output_lines(kept.as_deref().unwrap_or_default())
                .into_iter()
                .chain(output_lines(&e.trace.notices))
                .chain(output_lines(&e.outputs))
            {
                let line = abbreviate(line, max);
                lines.push(
                    if line.starts_with("NOTICE") || line.starts_with("WARNING") {
                        paint.yellow(&line)
                    } else {
                        line
                    },
                );
            }
            if let Some((code, msg)) = &e.trace.error {
                lines.push(paint.red(&format!("ERROR {code}: {msg}")));
            }
            if let Some(flag) = &e.trace.flag {
                lines.push(paint.red(&format!("flags {flag}")));
            }
            if let Some(fault) = &e.trace.fault {
                lines.push(paint.red(&format!("FAULT: {fault}")));
            }
            if e.trace.committed {
                lines.push(paint.green("COMMIT"));
            }
            match e.end.as_deref() {
                None => {}
                Some("committed") => lines.push(paint.green("⇒ committed")),
                Some(end) => lines.push(paint.red(&format!("⇒ {end}"))),
            }
        }
    }
    let sep = if markdown { "<br>" } else { "\n" };
    let lines: Vec<String> = lines.into_iter().flat_map(|l| fold(&l, max)).collect();
    let text = lines.join(sep);
    if markdown {
        text.replace('|', "\\|")
    } else {
        text
    }
}

/// What the server answered to a step run as written, as text lines: each result set as a
/// small table with every column as the server named it (a cut one says so), the rows other
/// statements affected, and notices, in the order they came.
pub fn output_lines(outputs: &[Output]) -> Vec<String> {
    let mut lines = Vec::new();
    for o in outputs {
        match o {
            Output::Rows(set) => {
                let cells = |row: &[Option<String>]| -> Vec<String> {
                    row.iter()
                        .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                        .collect()
                };
                let mut widths: Vec<usize> =
                    set.columns.iter().map(|c| c.chars().count()).collect();
                for row in &set.rows {
                    for (w, v) in widths.iter_mut().zip(cells(row)) {
                        *w = (*w).max(v.chars().count());
                    }
                }
                let line = |vals: Vec<String>| -> String {
                    vals.iter()
                        .zip(&widths)
                        .map(|(v, w)| format!("{v:<w$}"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                        .trim_end()
                        .to_string()
                };
                lines.push(line(set.columns.clone()));
                lines.push(
                    widths
                        .iter()
                        .map(|w| "-".repeat(*w))
                        .collect::<Vec<_>>()
                        .join("-+-"),
                );
                for row in &set.rows {
                    lines.push(line(cells(row)));
                }
                let n = set.total;
                if set.is_cut() {
                    lines.push(format!("({n} rows; the first {} kept)", set.rows.len()));
                } else {
                    lines.push(format!("({n} row{})", if n == 1 { "" } else { "s" }));
                }
            }
            Output::Affected { rows } if *rows > 0 => {
                lines.push(format!(
                    "→ {rows} row{} affected",
                    if *rows == 1 { "" } else { "s" }
                ));
            }
            Output::Affected { .. } => {}
            Output::Notice { severity, message } => lines.push(format!("{severity}: {message}")),
        }
    }
    lines
}

/// Colours, or none.
#[derive(Debug, Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn red(self, s: &str) -> String {
        if self.0 {
            s.red().to_string()
        } else {
            s.to_string()
        }
    }
    fn green(self, s: &str) -> String {
        if self.0 {
            s.green().to_string()
        } else {
            s.to_string()
        }
    }
    fn yellow(self, s: &str) -> String {
        if self.0 {
            s.yellow().to_string()
        } else {
            s.to_string()
        }
    }
    fn dim(self, s: &str) -> String {
        if self.0 {
            s.dimmed().to_string()
        } else {
            s.to_string()
        }
    }
    fn bold(self, s: &str) -> String {
        if self.0 {
            s.bold().to_string()
        } else {
            s.to_string()
        }
    }
}
