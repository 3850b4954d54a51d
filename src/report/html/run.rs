//! The HTML page's section for a run report: the matrix of cells with their anomalies, aborts
//! and latencies, the notes, and the histories an independent checker judged.
//!
//! It only writes HTML into the page being built (helpers from the parent module); it must not
//! read files or run anything but what the checker's verdicts already hold.

use std::fmt::Write as _;

use super::*;

/// What each abort class means, for column titles.
pub(super) fn run(h: &mut String, r: &RunReport) {
    let name = &r.scenario.name;
    let _ = writeln!(h, "<h2><span class=\"kind\">run</span>{}</h2>", esc(name));
    if !r.scenario.summary.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(&r.scenario.summary));
    }
    let s = &r.settings;
    let load = match s.operations {
        Some(n) => format!("{n} operations per cell"),
        None => format!("{} per cell", humantime::format_duration(s.duration)),
    };
    meta(
        h,
        &[
            (
                "scenario",
                format!("{name} ({})", r.scenario.file.display()),
            ),
            ("clients", s.clients.to_string()),
            ("load", load),
            ("think", humantime::format_duration(s.think).to_string()),
            ("seed", s.seed.to_string()),
            ("max tries", s.max_tries.to_string()),
            (
                "connections",
                match s.connections {
                    None => "one per client".into(),
                    Some(c) => format!("a pool of {c}"),
                },
            ),
            ("parameters", params_line(&r.scenario)),
            ("server", servers_line(&r.server, &r.servers)),
            ("nodes", nodes_line(&r.nodes)),
            ("database", r.database.clone()),
            ("tool", r.tool.clone()),
        ],
    );
    server_settings(h, &r.server);
    settings_table(
        h,
        "run settings (as recorded)",
        settings_fields(s)
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_else(|| "-".into()))),
    );

    let invs: &[Invariant] = &r.scenario.invariants;
    let cells = &r.cells;
    let any_failures = cells.iter().any(|c| !c.failures.is_empty());
    let several = r.engines().len() > 1;
    h.push_str("<div class=\"scroll\"><table class=\"matrix\">\n<thead><tr>");
    if several {
        th(h, "engine", false, "");
    }
    th(h, "strategy", false, "");
    th(h, "isolation", false, "");
    th(h, "committed", true, "operations that committed");
    th(h, "rejected", true, "business rejections (e.g. sold_out)");
    for inv in invs {
        let label = if inv.side == Side::Reader {
            format!("{} (reader)", inv.name)
        } else {
            inv.name.clone()
        };
        th(h, &label, true, &inv.anomaly);
    }
    for a in Abort::ALL {
        th(
            h,
            &r.abort_header(a),
            true,
            &format!("aborted attempts: {}", abort_meaning(a)),
        );
    }
    th(h, "retries", true, "re-attempts");
    th(h, "failed", true, "operations given up");
    th(h, "ops/s", true, "committed operations per second");
    th(h, "p50 ms", true, "median latency of committed operations");
    th(
        h,
        "p99 ms",
        true,
        "99th percentile latency of committed operations",
    );
    if any_failures {
        th(h, "expectations", false, "");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for c in cells {
        h.push_str("<tr>");
        if several {
            td(h, c.engine.title(), "name");
        }
        td(h, &c.strategy, "name");
        let mut iso = c.isolation.to_string();
        if c.pinned {
            iso.push_str(" (pinned)");
        }
        td(h, &iso, "name");
        td(h, &c.stats.committed.to_string(), "num");
        td(h, &c.stats.total_rejected().to_string(), "num");
        for inv in invs {
            match measured(c, &inv.name) {
                0 => td(h, "ok", "num ok"),
                v => td(h, &v.to_string(), "num bad"),
            }
        }
        for a in Abort::ALL {
            td(h, &c.stats.abort(a).to_string(), "num");
        }
        td(h, &c.stats.retries.to_string(), "num");
        td(h, &c.stats.failed.to_string(), "num");
        td(h, &format!("{:.0}", c.ops_per_s), "num");
        for q in [0.5, 0.99] {
            td(h, &format!("{:.1}", c.stats.latency_ms(q)), "num");
        }
        if any_failures {
            if c.failures.is_empty() {
                td(h, "ok", "ok");
            } else {
                td(h, &c.failures.join("; "), "bad");
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    let _ = writeln!(
        h,
        "<p class=\"muted\">Aborted attempts: {}.</p>",
        esc(&r.abort_legend())
    );

    // The anomalies found, one line per broken invariant.
    let mut found = Vec::new();
    for inv in invs {
        let where_: Vec<String> = cells
            .iter()
            .filter_map(|c| {
                let v = measured(c, &inv.name);
                (v != 0).then(|| format!("{} ({v})", c.label_in(r)))
            })
            .collect();
        if !where_.is_empty() {
            found.push((inv, where_));
        }
    }
    if found.is_empty() {
        h.push_str("<h3>Anomalies</h3>\n<p>None observed.</p>\n");
    } else {
        h.push_str("<h3>Anomalies</h3>\n<ul class=\"anomalies\">\n");
        for (inv, where_) in found {
            let reader = if inv.side == Side::Reader {
                " [seen by a concurrent reader, not damage done by the writers]"
            } else {
                ""
            };
            let _ = writeln!(
                h,
                "<li><strong>{}</strong> — {}{} in {}: {}</li>",
                esc(&inv.name),
                esc(&inv.anomaly),
                esc(reader),
                esc(&where_.join(", ")),
                esc(&inv.explain)
            );
        }
        h.push_str("</ul>\n");
    }
    let total_ops: u64 = cells
        .iter()
        .map(|c| c.stats.committed + c.stats.total_rejected())
        .sum();
    let _ = writeln!(
        h,
        "<p class=\"muted\">\"ok\" means not observed in this run ({total_ops} operations in all): evidence, not proof.</p>"
    );
    for line in r.other_codes() {
        let _ = writeln!(h, "<p>Other errors by code, {}</p>", esc(&line));
    }
    for line in r.fault_lines() {
        let _ = writeln!(h, "<p>{}</p>", esc(&line));
    }
    for line in r.expectations.iter().flat_map(|e| e.lines()) {
        let _ = writeln!(h, "<p>{}</p>", esc(&line));
    }
    for note in &r.notes {
        let _ = writeln!(h, "<p>Note: {}</p>", esc(note));
    }
    if r.interrupted {
        h.push_str("<p class=\"bad\"><strong>Interrupted: partial results.</strong></p>\n");
    }
}

/// The cells' recorded histories and what an independent checker said of each: its verdict,
/// the anomalies it named, and each anomaly's transactions as the lab's own steps.
pub(super) fn histories(h: &mut String, r: &RunReport, checks: &[CellCheck]) {
    if r.cells.iter().all(|c| c.history.is_none()) {
        return;
    }
    h.push_str("<h3>Histories</h3>\n");
    h.push_str("<p class=\"muted\">Each cell's operations in Elle's format, checked against serializability by an independent checker: the anomalies it names are inferred from what the transactions read and wrote, not from the scenario's invariants.</p>\n");
    for (c, check) in r
        .cells
        .iter()
        .zip(checks.iter().map(Some).chain(std::iter::repeat(None)))
    {
        let Some(hist) = &c.history else { continue };
        let _ = writeln!(
            h,
            "<h4>{}</h4>\n<p><code>{}</code>: {} operations, {}.</p>",
            esc(&c.label_in(r)),
            esc(&hist.file.display().to_string()),
            hist.operations,
            hist.model.name()
        );
        let by_hand = format!(
            "adya check -m {} -c serializable {}",
            hist.model.name(),
            hist.file.display()
        );
        match check {
            None | Some(CellCheck::NoHistory) | Some(CellCheck::NoChecker) => {
                let _ = writeln!(
                    h,
                    "<p>No checker on PATH (adya or elle-cli). Check it by hand: <code>{}</code> (<code>cargo install adya</code>).</p>",
                    esc(&by_hand)
                );
            }
            Some(CellCheck::Failed(e)) => {
                let _ = writeln!(h, "<p class=\"bad\">Not checked: {}</p>", esc(e));
            }
            Some(CellCheck::Checked(v)) => history_verdict(h, r, c, v),
        }
    }
}

fn history_verdict(h: &mut String, r: &RunReport, c: &Cell, v: &Checked) {
    let (class, said) = match v.valid {
        Valid::Yes => ("prevented", "valid: serializable".to_string()),
        Valid::No => (
            "possible",
            format!("not serializable: {}", v.anomaly_types.join(", ")),
        ),
        Valid::Unknown => ("", "unknown".to_string()),
    };
    let _ = writeln!(
        h,
        "<p>{}: <span class=\"verdict {class}\">{}</span> <span class=\"muted\">(<code>{}</code>)</span></p>",
        esc(&v.checker),
        esc(&said),
        esc(&v.command)
    );
    if !v.not.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"muted\">Rules out: {}.</p>",
            esc(&v.not.join(", "))
        );
    }
    if !v.text.is_empty() {
        let _ = writeln!(h, "<pre>{}</pre>", esc(v.text.trim()));
    }
    let steps = r
        .scenario
        .strategies
        .get(&c.strategy)
        .map(|s| s.steps.as_slice())
        .unwrap_or(&[]);
    for a in &v.anomalies {
        let _ = writeln!(
            h,
            "<details><summary><strong>{}</strong> ({} found; the first)</summary>\n<pre>{}</pre>",
            esc(&a.kind),
            a.count,
            esc(a.explanation.trim())
        );
        if !a.transactions.is_empty() {
            h.push_str("<table class=\"timeline\"><thead><tr><th>transaction</th><th>step</th><th>the lab's SQL</th><th>micro-operation</th></tr></thead><tbody>\n");
            for t in &a.transactions {
                for (i, (mop, step)) in t.mops.iter().enumerate() {
                    let name = if i == 0 {
                        format!("T{} (process {}, {})", t.index, t.process, t.kind)
                    } else {
                        String::new()
                    };
                    let (label, sql) = match step.and_then(|n| steps.get(n - 1).map(|s| (n, s))) {
                        Some((n, s)) => (
                            format!("{n} (line {})", s.line),
                            s.sql.as_ref().map(|q| q.source.clone()).unwrap_or_default(),
                        ),
                        None => (String::new(), String::new()),
                    };
                    let _ = writeln!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                        esc(&name),
                        esc(&label),
                        esc(&sql),
                        esc(mop)
                    );
                }
            }
            h.push_str("</tbody></table>\n");
        }
        h.push_str("</details>\n");
    }
}
