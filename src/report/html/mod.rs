//! One self-contained HTML page from the documents the tool writes: run reports
//! (`contention run --format json`), sweeps (`contention sweep --output`), replays
//! (`contention replay --format json`), the anomaly table and benchmarks, read as their types
//! ([`Document`]). Inline CSS, plots inlined as SVG, no scripts and no network fetches: the file
//! can be mailed, archived or opened offline.
//!
//! A run whose cells recorded histories also shows what an independent checker said of each
//! (run beforehand by the `report` command, see [`crate::checker`]): its verdict, the anomalies
//! it named, and their transactions as the scenario's steps.
//!
//! Every piece of text taken from a document is escaped. Rendering only: this module reads the
//! typed documents and must not run anything.

mod replay;
mod run;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;

use super::abort_meaning;
use super::bench::{BenchReport, Peer};
use super::document::{AnomalyReport, Document, ReplayReport};
use super::sweep::{Summary, SweepReport};
use super::{Cell, RunReport, plot, settings_fields};
use crate::checker::{CellCheck, Valid, Verdict as Checked};
use crate::engine::ServerInfo;
use crate::outcome::Abort;
use crate::replay::{Event, Kind as EventKind, Replay, Verdict};
use crate::scenario::{Invariant, Scenario, Side};
use replay::{replay, replays};
use run::{histories, run};

/// A document to render and where it came from (shown in the page).
pub struct Source {
    pub name: String,
    pub doc: Document,
    /// For a run: what a history checker said of each cell's history (same order as the
    /// cells; empty when none was asked).
    pub checks: Vec<crate::checker::CellCheck>,
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root { --fg: #1d2430; --muted: #5b6472; --line: #d9dee6; --head: #f2f4f8; --bad: #b3261e;
        --bad-bg: #fdecea; --good: #1b6e3a; --good-bg: #e8f5ec; --warn: #8a5a00; --warn-bg: #fff4dc; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       color: var(--fg); margin: 0 auto; padding: 24px 32px 64px; max-width: 1500px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 22px; margin: 40px 0 6px; padding-top: 16px; border-top: 2px solid var(--line); }
h3 { font-size: 17px; margin: 28px 0 6px; }
p, ul { margin: 6px 0; }
.muted { color: var(--muted); }
.kind { display: inline-block; font-size: 12px; font-weight: 600; text-transform: uppercase;
        letter-spacing: .05em; padding: 2px 8px; border-radius: 10px; background: var(--head);
        color: var(--muted); vertical-align: middle; margin-right: 8px; }
nav ul { padding-left: 20px; }
table { border-collapse: collapse; margin: 10px 0 6px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; vertical-align: top; }
th { background: var(--head); text-align: left; font-weight: 600; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.bad { color: var(--bad); background: var(--bad-bg); font-weight: 600; }
.bad { color: var(--bad); }
td.name { white-space: nowrap; }
td.ok { color: var(--good); }
.scroll { overflow-x: auto; max-width: 100%; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--muted); }
code, .sql { font-family: "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: 8px; margin: 12px 0; background: #fff; }
.figure svg { display: block; width: 100%; height: auto; }
table.timeline td { min-width: 280px; max-width: 520px; }
table.timeline td.step { min-width: 0; white-space: nowrap; color: var(--muted); font-family: monospace; }
table.timeline .sql { white-space: pre-wrap; }
table.timeline .res { color: var(--muted); }
table.timeline .wait { color: var(--warn); background: var(--warn-bg); }
table.timeline .err, table.timeline .end-bad { color: var(--bad); font-weight: 600; }
table.timeline .end-ok { color: var(--good); font-weight: 600; }
table.timeline tr.after td { background: var(--head); color: var(--muted); font-style: italic; text-align: center; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: 600; }
.verdict.possible { color: var(--bad); background: var(--bad-bg); }
.verdict.prevented { color: var(--good); background: var(--good-bg); }
"#;

/// The whole page for these documents, in the order given.
pub fn render(sources: &[Source]) -> anyhow::Result<String> {
    let tool = sources
        .iter()
        .map(|s| tool_of(&s.doc))
        .next()
        .unwrap_or("contention");

    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let title = match sources {
        [one] => format!("contention: {} {}", scenario_name(&one.doc), one.doc.kind()),
        _ => "contention report".to_string(),
    };
    let _ = writeln!(h, "<title>{}</title>", esc(&title));
    let _ = writeln!(h, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(h, "<header>\n<h1>{}</h1>", esc(&title));
    let _ = writeln!(
        h,
        "<p class=\"muted\">Written by {} from {}.</p>",
        esc(tool),
        sources
            .iter()
            .map(|s| format!("<code>{}</code>", esc(&s.name)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if sources.len() > 1 {
        h.push_str("<nav><ul>\n");
        for (i, s) in sources.iter().enumerate() {
            let _ = writeln!(
                h,
                "<li><a href=\"#doc-{i}\">{}: {}</a> <span class=\"muted\">({})</span></li>",
                s.doc.kind(),
                esc(&scenario_name(&s.doc)),
                esc(&s.name)
            );
        }
        h.push_str("</ul></nav>\n");
    }
    h.push_str("</header>\n");

    for (i, s) in sources.iter().enumerate() {
        let _ = writeln!(h, "<section class=\"doc {}\" id=\"doc-{i}\">", s.doc.kind());
        match &s.doc {
            Document::Run(r) => {
                run(&mut h, r);
                histories(&mut h, r, &s.checks);
            }
            Document::Sweep(r) => sweep(&mut h, r).with_context(|| s.name.clone())?,
            Document::Replay(r) => replays(&mut h, r),
            Document::Anomalies(r) => anomalies(&mut h, r),
            Document::Bench(r) => bench(&mut h, r),
        }
        let _ = writeln!(
            h,
            "<p class=\"muted\">Source: <code>{}</code></p>\n</section>",
            esc(&s.name)
        );
    }
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

fn tool_of(doc: &Document) -> &str {
    match doc {
        Document::Run(r) => &r.tool,
        Document::Sweep(r) => &r.tool,
        Document::Replay(r) => &r.tool,
        Document::Anomalies(r) => &r.tool,
        Document::Bench(r) => &r.tool,
    }
}

fn scenario_name(doc: &Document) -> String {
    match doc {
        Document::Run(r) => r.scenario.name.clone(),
        Document::Sweep(r) => r.scenario.name.clone(),
        Document::Replay(r) => r.scenario.name.clone(),
        Document::Anomalies(_) => "classic anomalies".into(),
        Document::Bench(r) => r.scenario.clone(),
    }
}

fn th(h: &mut String, label: &str, num: bool, title: &str) {
    let class = if num { " class=\"num\"" } else { "" };
    let title = if title.is_empty() {
        String::new()
    } else {
        format!(" title=\"{}\"", esc(title))
    };
    // Long snake_case names may break after an underscore.
    let label = esc(label).replace('_', "_<wbr>");
    let _ = write!(h, "<th{class}{title}>{label}</th>");
}

fn td(h: &mut String, value: &str, class: &str) {
    if class.is_empty() {
        let _ = write!(h, "<td>{}</td>", esc(value));
    } else {
        let _ = write!(h, "<td class=\"{class}\">{}</td>", esc(value));
    }
}

/// A definition list of (term, value) pairs; empty values are left out.
fn meta(h: &mut String, rows: &[(&str, String)]) {
    h.push_str("<dl class=\"meta\">\n");
    for (k, v) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    h.push_str("</dl>\n");
}

/// A collapsible key/value table (server settings and the like).
fn settings_table<'a>(
    h: &mut String,
    summary: &str,
    rows: impl IntoIterator<Item = (&'a str, String)>,
) {
    let rows: Vec<(&str, String)> = rows.into_iter().collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<details><summary>{}</summary>\n<table class=\"settings\">",
        esc(summary)
    );
    for (k, v) in rows {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(k),
            esc(&v)
        );
    }
    h.push_str("</table></details>\n");
}

fn server_settings(h: &mut String, server: &ServerInfo) {
    let s: &BTreeMap<String, String> = &server.settings;
    settings_table(
        h,
        "server settings",
        s.iter().map(|(k, v)| (k.as_str(), v.clone())),
    );
}

/// The run settings that are set, as one line, without `skip` (a sweep's varied setting).
fn settings_line(settings: &crate::runner::Settings, skip: &str) -> String {
    settings_fields(settings)
        .into_iter()
        .filter(|(k, _)| *k != skip)
        .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn params_line(scenario: &Scenario) -> String {
    scenario
        .params
        .iter()
        .map(|(k, p)| {
            format!(
                "{k} = {}",
                crate::scenario::expr::to_text(&p.value).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every server of a side-by-side run, else the one.
fn servers_line(first: &ServerInfo, all: &[ServerInfo]) -> String {
    if all.is_empty() {
        server_line(first)
    } else {
        all.iter().map(server_line).collect::<Vec<_>>().join("; ")
    }
}

fn server_line(server: &ServerInfo) -> String {
    if server.ephemeral {
        format!("{} (private, ephemeral)", server.version)
    } else {
        server.version.clone()
    }
}

fn measured(cell: &Cell, name: &str) -> i64 {
    cell.invariants
        .iter()
        .find(|m| m.name == name)
        .map_or(0, |m| m.value)
}

/// Every node's server, or "one database".
fn nodes_line(nodes: &[super::NodeServer]) -> String {
    if nodes.is_empty() {
        return "one database".to_string();
    }
    nodes
        .iter()
        .map(|n| format!("{}: {}", n.node, n.server))
        .collect::<Vec<_>>()
        .join("; ")
}

fn sweep(h: &mut String, r: &SweepReport) -> anyhow::Result<()> {
    let vary = &r.vary;
    let _ = writeln!(
        h,
        "<h2><span class=\"kind\">sweep</span>{} over {}</h2>",
        esc(&r.scenario.name),
        esc(vary)
    );
    if !r.scenario.summary.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(&r.scenario.summary));
    }
    let values: Vec<String> = r.values.iter().map(ToString::to_string).collect();
    meta(
        h,
        &[
            ("varied", format!("{vary} = {}", values.join(", "))),
            ("runs per point", r.repeat.to_string()),
            ("settings", settings_line(&r.settings, vary)),
            ("parameters", params_line(&r.scenario)),
            ("server", servers_line(&r.server, &r.servers)),
            ("nodes", nodes_line(&r.nodes)),
            ("tool", r.tool.clone()),
        ],
    );
    server_settings(h, &r.server);

    let svg = plot::render_svg(r)?;
    // The XML declaration, if any, is not allowed inside HTML.
    let svg = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg.as_str(),
    };
    let _ = writeln!(h, "<div class=\"figure\">\n{svg}\n</div>");

    h.push_str("<h3>Points</h3>\n<div class=\"scroll\"><table class=\"points\">\n<thead><tr>");
    th(h, "strategy", false, "");
    th(h, "isolation", false, "");
    th(h, vary, true, "the varied parameter");
    th(h, "runs", true, "repetitions");
    th(
        h,
        "ops/s",
        true,
        "committed operations per second: mean (min–max)",
    );
    th(h, "p99 ms", true, "99th percentile latency: mean (min–max)");
    th(
        h,
        "abort rate %",
        true,
        "aborted attempts / attempts: mean (min–max)",
    );
    th(
        h,
        "anomalies / 1,000 ops",
        true,
        "anomalies per 1,000 committed operations: mean (min–max)",
    );
    h.push_str("</tr></thead>\n<tbody>\n");
    let several = r.several();
    for p in &r.points {
        h.push_str("<tr>");
        td(h, &p.series(several), "name");
        td(h, &p.isolation.to_string(), "name");
        td(h, &p.value.to_string(), "num");
        td(h, &p.runs.to_string(), "num");
        let measures: [(Summary, f64, usize, bool); 4] = [
            (p.ops_per_s, 1.0, 0, false),
            (p.p99_ms, 1.0, 1, false),
            (p.abort_rate, 100.0, 1, false),
            (p.anomaly_rate, 1.0, 1, true),
        ];
        for (m, scale, decimals, anomalies) in measures {
            let cell = if m.max > m.min {
                format!(
                    "{:.d$} ({:.d$}–{:.d$})",
                    m.mean * scale,
                    m.min * scale,
                    m.max * scale,
                    d = decimals
                )
            } else {
                format!("{:.d$}", m.mean * scale, d = decimals)
            };
            let bad = anomalies && m.max > 0.0;
            td(h, &cell, if bad { "num bad" } else { "num" });
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    Ok(())
}

fn anomalies(h: &mut String, r: &AnomalyReport) {
    h.push_str("<h2><span class=\"kind\">anomalies</span>The classic anomalies</h2>\n");
    meta(
        h,
        &[("server", server_line(&r.server)), ("tool", r.tool.clone())],
    );
    let mut levels = Vec::new();
    let mut rows: Vec<(String, &str)> = Vec::new();
    for a in &r.results {
        if !levels.contains(&a.isolation) {
            levels.push(a.isolation);
        }
        let row = (a.anomaly.clone().unwrap_or_default(), a.name.as_str());
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    h.push_str("<div class=\"scroll\"><table class=\"anomalies\">\n<thead><tr>");
    th(h, "anomaly", false, "");
    th(h, "name", false, "");
    for l in &levels {
        th(h, &l.to_string(), false, "");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (id, name) in &rows {
        h.push_str("<tr>");
        td(h, id, "name");
        td(h, name, "name");
        for l in &levels {
            let verdict = r.results.iter().find(|a| {
                a.anomaly.clone().unwrap_or_default() == *id && a.name == *name && a.isolation == *l
            });
            match verdict.map(|a| &a.verdict) {
                None => td(h, "", ""),
                Some(v @ Verdict::Possible) => td(h, &v.label(), "bad"),
                Some(v) => td(h, &v.label(), "ok"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    h.push_str("<p class=\"muted\">Each verdict is what one deterministic schedule did on this server. The timelines:</p>\n");
    for a in &r.results {
        let _ = writeln!(
            h,
            "<details><summary>{} {} @ {}: {}</summary>",
            esc(a.anomaly.as_deref().unwrap_or("")),
            esc(&a.name),
            esc(&a.isolation.to_string()),
            esc(&a.verdict.label())
        );
        replay(h, None, &a.replay);
        h.push_str("</details>\n");
    }
}

fn bench(h: &mut String, r: &BenchReport) {
    let _ = writeln!(
        h,
        "<h2><span class=\"kind\">bench</span>{} against {}</h2>",
        esc(&r.scenario),
        r.peer.name()
    );
    meta(
        h,
        &[
            ("scale", r.scale.to_string()),
            ("duration", format!("{} s per run", r.duration_s)),
            (
                "round trips",
                if r.peer == Peer::Sysbench {
                    "every statement on its own (MySQL has no pipelining)".into()
                } else if r.pipeline {
                    "BEGIN and COMMIT sent with the neighbouring statement".into()
                } else {
                    "every statement on its own (--no-pipeline)".into()
                },
            ),
            ("seed", r.seed.to_string()),
            ("server", server_line(&r.server)),
            ("tool", r.tool.clone()),
        ],
    );
    if let Some(c) = &r.comparison {
        h.push_str("<div class=\"scroll\"><table class=\"bench\">\n<thead><tr>");
        th(h, "clients", true, "");
        th(h, "rounds", true, "");
        let peer = r.peer.name();
        th(h, &format!("{peer} tps"), true, "mean of the rounds");
        th(h, "contention ops/s", true, "mean of the rounds");
        th(
            h,
            "ratio",
            true,
            &format!("contention / {peer}: median of the rounds (range)"),
        );
        th(h, &format!("{peer} CPU µs/txn"), true, "mean of the rounds");
        th(h, "contention CPU µs/op", true, "mean of the rounds");
        th(
            h,
            "CPU ratio",
            true,
            &format!("contention / {peer}: of the means (the rounds' range)"),
        );
        h.push_str("</tr></thead>\n<tbody>\n");
        for row in &c.rows {
            h.push_str("<tr>");
            td(h, &row.clients.to_string(), "num");
            td(h, &row.rounds.len().to_string(), "num");
            td(h, &format!("{:.0}", row.peer_tps), "num");
            td(h, &format!("{:.0}", row.contention_ops_per_s), "num");
            let ratio = row.ratio.map_or("-".to_string(), |q| {
                format!("{:.2} ({:.2}–{:.2})", q.median, q.min, q.max)
            });
            td(h, &ratio, "num");
            td(h, &format!("{:.0}", row.peer_cpu_us_per_txn), "num");
            td(h, &format!("{:.0}", row.contention_cpu_us_per_op), "num");
            let cpu = match (row.cpu_ratio, row.cpu_ratios) {
                (None, _) => "-".to_string(),
                (Some(c), Some(q)) => format!("{c:.2} ({:.2}–{:.2})", q.min, q.max),
                (Some(c), None) => format!("{c:.2}"),
            };
            td(h, &cpu, "num");
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table></div>\n");
    }
    if let Some(f) = &r.footprint {
        for run in f.runs() {
            meta(
                h,
                &[
                    ("clients", run.clients.to_string()),
                    (
                        "connections",
                        run.connections
                            .map_or_else(|| "one per client".into(), |n| n.to_string()),
                    ),
                    ("committed", run.committed.to_string()),
                    ("ops/s", format!("{:.0}", run.ops_per_s)),
                    ("start-up", format!("{:.2} s", run.startup_s)),
                    (
                        "CPU user / sys",
                        format!("{:.2} s / {:.2} s", run.user_s, run.sys_s),
                    ),
                    (
                        "CPU per 1000 ops",
                        run.cpu_s_per_1000_ops
                            .map_or_else(|| "-".into(), |c| format!("{c:.3} s")),
                    ),
                    ("peak RSS", format!("{:.1} MiB", run.peak_rss_mib)),
                ],
            );
        }
    }
    if r.interrupted {
        h.push_str("<p class=\"bad\"><strong>Interrupted: partial results.</strong></p>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Measured;
    use crate::isolation::Isolation;
    use crate::report::document::{Kind, VERSION};
    use crate::stats::Stats;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn text_from_documents_is_escaped() {
        let mut scenario = crate::scenario::load("ticketmaster", &[]).unwrap();
        scenario.name = "<b>evil</b>".into();
        scenario.invariants.truncate(1);
        let inv = &mut scenario.invariants[0];
        inv.name = "x<y".into();
        inv.anomaly = "a&b".into();
        inv.explain = "<i>why</i>".into();
        let mut stats = Stats::default();
        stats.record_commit(std::time::Duration::from_millis(2));
        let report = RunReport {
            kind: Kind::Run,
            version: VERSION,
            tool: "contention 0.1.0".into(),
            scenario,
            settings: crate::runner::Settings {
                clients: 2,
                duration: std::time::Duration::from_secs(1),
                operations: None,
                timeout: None,
                think: std::time::Duration::ZERO,
                max_tries: 3,
                seed: 1,
                connections: None,
                pipeline: true,
                live: None,
                history: None,
            },
            server: ServerInfo {
                engine: crate::engine::EngineKind::Postgres,
                version: "PostgreSQL 15.20".into(),
                version_num: 150020,
                ephemeral: false,
                settings: Default::default(),
            },
            servers: Vec::new(),
            nodes: Vec::new(),
            database: "db".into(),
            cells: vec![Cell {
                engine: crate::engine::EngineKind::Postgres,
                abort_codes: Default::default(),
                strategy: "<s>".into(),
                isolation: Isolation::Rc,
                pinned: false,
                startup_s: 0.0,
                elapsed_s: 1.0,
                ops_per_s: 1.0,
                stats,
                auditors: Vec::new(),
                invariants: vec![Measured {
                    name: "x<y".into(),
                    anomaly: "a&b".into(),
                    side: Side::Writer,
                    value: 3,
                }],
                failures: Vec::new(),
                checked: 0,
                interrupted: false,
                history: None,
            }],
            notes: vec!["<note>".into()],
            expectations: None,
            interrupted: false,
        };
        let html = render(&[Source {
            checks: Vec::new(),
            name: "r<1>.json".into(),
            doc: Document::Run(Box::new(report)),
        }])
        .unwrap();
        for raw in ["<b>evil", "<s>", "x<y", "<i>why", "<note>", "r<1>"] {
            assert!(!html.contains(raw), "unescaped {raw}");
        }
        assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;"));
        assert!(html.contains("<td class=\"num bad\">3</td>"));
        assert!(
            html.contains("&lt;i&gt;why&lt;/i&gt;"),
            "the explanation is shown"
        );
    }
}
