//! The HTML page's section for replays: each replay's timeline (a column per session, the
//! statements, waits, resumptions, results and errors in order) with its verdict.
//!
//! It only writes HTML into the page being built (helpers from the parent module); it must not
//! run anything.

use std::fmt::Write as _;

use super::*;

pub(super) fn replays(h: &mut String, r: &ReplayReport) {
    let _ = writeln!(
        h,
        "<h2><span class=\"kind\">replay</span>{}</h2>",
        esc(&r.scenario.name)
    );
    meta(
        h,
        &[("server", server_line(&r.server)), ("tool", r.tool.clone())],
    );
    for one in &r.replays {
        replay(h, Some(&r.scenario), one);
    }
}

/// One replay's timeline and outcome; invariant explanations and the schedule's story come from
/// the scenario when the document carries it.
pub(super) fn replay(h: &mut String, scenario: Option<&Scenario>, r: &Replay) {
    let _ = writeln!(
        h,
        "<h3>{} · {} @ {} · schedule {}: <code>{}</code></h3>",
        esc(&r.scenario),
        esc(r.strategy.as_deref().unwrap_or("")),
        esc(&r.isolation.to_string()),
        esc(&r.schedule),
        esc(&r.tokens.join(" "))
    );
    let summary = scenario
        .and_then(|s| s.schedules.get(&r.schedule))
        .map_or("", |s| s.summary.as_str());
    if !summary.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(summary));
    }

    h.push_str("<div class=\"scroll\"><table class=\"timeline\">\n<thead><tr>");
    th(h, "#", false, "schedule token (or step and try)");
    for s in &r.sessions {
        th(h, &format!("session {s}"), false, "");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (n, e) in r.events.iter().enumerate() {
        if n == r.schedule_ends_at {
            let _ = writeln!(
                h,
                "<tr class=\"after\"><td colspan=\"{}\">after the schedule: the rest, session by session, then retries</td></tr>",
                r.sessions.len() + 1
            );
        }
        let label = match &e.token {
            Some(t) => t.clone(),
            None if scenario
                .and_then(|sc| crate::replay::timeline::written_name(sc, e))
                .is_some() =>
            {
                scenario
                    .and_then(|sc| crate::replay::timeline::written_name(sc, e))
                    .expect("checked")
            }
            None if e.attempt <= 1 => format!("{}{}", e.session, e.step),
            None => format!("{}{} (try {})", e.session, e.step, e.attempt),
        };
        h.push_str("<tr>");
        td(h, &label, "step");
        for s in &r.sessions {
            if *s == e.session {
                let _ = write!(h, "<td>{}</td>", event_cell(e));
            } else {
                h.push_str("<td></td>");
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n<ul class=\"outcome\">\n");

    let ends: Vec<String> = r.ends.iter().map(|e| e.to_string()).collect();
    if !ends.is_empty() {
        let _ = writeln!(h, "<li>{}</li>", esc(&ends.join(" · ")));
    }
    for m in &r.invariants {
        let reader = if m.side == Side::Reader {
            " (seen by a reader)"
        } else {
            ""
        };
        if m.value == 0 {
            let _ = writeln!(
                h,
                "<li><code>{}</code> = 0{}: holds</li>",
                esc(&m.name),
                esc(reader)
            );
        } else {
            let explain = scenario
                .and_then(|s| s.invariants.iter().find(|i| i.name == m.name))
                .map_or("", |i| i.explain.as_str());
            let _ = writeln!(
                h,
                "<li><code class=\"bad\">{}</code> = {}{}: {} — {}</li>",
                esc(&m.name),
                m.value,
                esc(reader),
                esc(&m.anomaly),
                esc(explain)
            );
        }
    }
    let (class, meaning) = match r.verdict {
        Verdict::Unjudged => ("unjudged", "no invariant declared"),
        Verdict::Possible => ("possible", "the anomaly happened"),
        _ => ("prevented", "no anomaly"),
    };
    let _ = writeln!(
        h,
        "<li><span class=\"verdict {class}\">{}</span> {}</li>\n</ul>",
        esc(&r.verdict.label()),
        meaning
    );
}

/// One session's cell for one event of a timeline (mirrors the terminal timeline).
fn event_cell(e: &Event) -> String {
    let mut parts: Vec<String> = Vec::new();
    let sql = e.trace.sql.as_deref();
    match &e.kind {
        EventKind::Waits { blockers } => {
            if let Some(sql) = sql {
                parts.push(format!("<div class=\"sql\">{}</div>", esc(sql)));
            }
            parts.push(format!(
                "<div class=\"wait\">waits for {}</div>",
                esc(&blockers.join(", "))
            ));
            return parts.concat();
        }
        EventKind::Nothing => return "<div class=\"res\">(nothing to do)</div>".to_string(),
        EventKind::StillWaiting => return "<div class=\"wait\">(still waiting)</div>".to_string(),
        EventKind::Ran | EventKind::Resumes => {}
    }
    match (sql, e.kind == EventKind::Resumes) {
        (Some(_), true) => parts.push("<div class=\"wait\">resumes</div>".to_string()),
        (Some(sql), false) => parts.push(format!("<div class=\"sql\">{}</div>", esc(sql))),
        (None, _) if e.trace.skipped => {
            parts.push("<div class=\"res\">(skipped: <code>when</code> is false)</div>".into())
        }
        (None, _) if !e.trace.lets.is_empty() => parts.push(format!(
            "<div class=\"sql\">{}</div>",
            esc(&e.trace.lets.join(", "))
        )),
        (None, _) if e.trace.fault.is_some() => {}
        (None, _) => parts.push("<div class=\"res\">(no SQL)</div>".into()),
    }
    let kept: Vec<crate::engine::written::Output> = e
        .trace
        .rows
        .clone()
        .map(crate::engine::written::Output::Rows)
        .into_iter()
        .collect();
    if let (true, Some(res)) = (kept.is_empty(), &e.trace.result) {
        parts.push(format!("<div class=\"res\">→ {}</div>", esc(res)));
    }
    let mut outputs = crate::replay::timeline::output_lines(&kept);
    outputs.extend(crate::replay::timeline::output_lines(&e.trace.notices));
    outputs.extend(crate::replay::timeline::output_lines(&e.outputs));
    if !outputs.is_empty() {
        parts.push(format!(
            "<pre class=\"res\">{}</pre>",
            esc(&outputs.join("\n"))
        ));
    }
    if let Some((code, msg)) = &e.trace.error {
        parts.push(format!(
            "<div class=\"err\">ERROR {}: {}</div>",
            esc(code),
            esc(msg)
        ));
    }
    if let Some(flag) = &e.trace.flag {
        parts.push(format!("<div class=\"err\">flags {}</div>", esc(flag)));
    }
    if let Some(fault) = &e.trace.fault {
        parts.push(format!("<div class=\"err\">FAULT: {}</div>", esc(fault)));
    }
    if e.trace.committed {
        parts.push("<div class=\"end-ok\">COMMIT</div>".into());
    }
    match e.end.as_deref() {
        None => {}
        Some("committed") => parts.push("<div class=\"end-ok\">⇒ committed</div>".into()),
        Some(end) => parts.push(format!("<div class=\"end-bad\">⇒ {}</div>", esc(end))),
    }
    parts.concat()
}
