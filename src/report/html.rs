//! One self-contained HTML page from the JSON documents the tool writes: run reports
//! (`contention run --format json`), sweeps (`contention sweep --output`) and replays
//! (`contention replay --format json`). Inline CSS, plots inlined as SVG, no scripts and no
//! network fetches: the file can be mailed, archived or opened offline.
//!
//! Every piece of text taken from a document is escaped. Rendering only: this module reads the
//! JSON and must not run anything.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use serde_json::Value;

use super::plot;

/// What a JSON document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Run,
    Sweep,
    Replay,
    /// `contention anomalies --format json`: the classic anomaly table.
    Anomalies,
}

impl Kind {
    /// Recognises a document by its `kind` (or, for documents written before `kind` existed, by
    /// its shape: `cells` for a run, `replays` for replays).
    pub fn of(doc: &Value) -> anyhow::Result<Kind> {
        match doc.get("kind").and_then(Value::as_str) {
            Some("run") => return Ok(Kind::Run),
            Some("sweep") => return Ok(Kind::Sweep),
            Some("replay") => return Ok(Kind::Replay),
            Some("anomalies") => return Ok(Kind::Anomalies),
            Some(other) => bail!("unknown document kind \"{other}\""),
            None => {}
        }
        if doc.get("replays").is_some_and(Value::is_array) {
            Ok(Kind::Replay)
        } else if doc.get("results").is_some_and(Value::is_array) {
            Ok(Kind::Anomalies)
        } else if doc.get("cells").is_some_and(Value::is_array) {
            Ok(Kind::Run)
        } else {
            bail!(
                "not a contention document: expected a run report (\"cells\"), a sweep (\"kind\": \"sweep\"), replays (\"replays\") or the anomaly table (\"results\")"
            )
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Sweep => "sweep",
            Kind::Replay => "replay",
            Kind::Anomalies => "anomalies",
        }
    }
}

/// A document to render and where it came from (shown in the page).
pub struct Source {
    pub name: String,
    pub doc: Value,
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
    let mut kinds = Vec::with_capacity(sources.len());
    for s in sources {
        kinds.push(Kind::of(&s.doc).with_context(|| s.name.clone())?);
    }
    let tool = sources
        .iter()
        .find_map(|s| s.doc.get("tool").and_then(Value::as_str))
        .unwrap_or("contention");

    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let title = match sources {
        [one] => format!(
            "contention: {} {}",
            scenario_name(&one.doc),
            kinds[0].name()
        ),
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
        for (i, (s, k)) in sources.iter().zip(&kinds).enumerate() {
            let _ = writeln!(
                h,
                "<li><a href=\"#doc-{i}\">{}: {}</a> <span class=\"muted\">({})</span></li>",
                k.name(),
                esc(&scenario_name(&s.doc)),
                esc(&s.name)
            );
        }
        h.push_str("</ul></nav>\n");
    }
    h.push_str("</header>\n");

    for (i, (s, k)) in sources.iter().zip(&kinds).enumerate() {
        let _ = writeln!(h, "<section class=\"doc {}\" id=\"doc-{i}\">", k.name());
        match k {
            Kind::Run => run(&mut h, &s.doc),
            Kind::Sweep => sweep(&mut h, &s.doc).with_context(|| s.name.clone())?,
            Kind::Replay => replays(&mut h, &s.doc),
            Kind::Anomalies => anomalies(&mut h, &s.doc),
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

fn scenario_name(doc: &Value) -> String {
    doc.pointer("/scenario/name")
        .and_then(Value::as_str)
        .or_else(|| doc.pointer("/replays/0/scenario").and_then(Value::as_str))
        .or_else(|| doc.get("results").map(|_| "classic anomalies"))
        .unwrap_or("?")
        .to_string()
}

/// A JSON scalar as text (strings without quotes); null as empty.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn u(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

fn f(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
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
fn settings_table(h: &mut String, summary: &str, map: Option<&Value>) {
    let Some(map) = map.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return;
    };
    let _ = writeln!(
        h,
        "<details><summary>{}</summary>\n<table class=\"settings\">",
        esc(summary)
    );
    for (k, v) in map {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(k),
            esc(&text(Some(v)))
        );
    }
    h.push_str("</table></details>\n");
}

fn settings_line(settings: Option<&Value>, skip: &str) -> String {
    let Some(map) = settings.and_then(Value::as_object) else {
        return String::new();
    };
    map.iter()
        .filter(|(k, v)| k.as_str() != skip && !v.is_null())
        .map(|(k, v)| format!("{k} {}", text(Some(v))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn params_line(doc: &Value) -> String {
    doc.pointer("/scenario/params")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, p)| format!("{k} = {}", text(p.get("value"))))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn server_line(doc: &Value) -> String {
    let version = text(doc.pointer("/server/version"));
    match doc.pointer("/server/ephemeral").and_then(Value::as_bool) {
        Some(true) => format!("{version} (private, ephemeral)"),
        _ => version,
    }
}

/// Invariant declarations of the scenario: (name, anomaly, side, explain).
fn invariants(doc: &Value) -> Vec<(String, String, String, String)> {
    let declared: Vec<_> = doc
        .pointer("/scenario/invariants")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        text(i.get("name")),
                        text(i.get("anomaly")),
                        text(i.get("side")),
                        text(i.get("explain")),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !declared.is_empty() {
        return declared;
    }
    // Without the scenario: whatever the cells measured.
    let mut seen: Vec<(String, String, String, String)> = Vec::new();
    for c in arr(doc, "cells") {
        for m in arr(c, "invariants") {
            let name = text(m.get("name"));
            if !seen.iter().any(|s| s.0 == name) {
                seen.push((
                    name,
                    text(m.get("anomaly")),
                    text(m.get("side")),
                    String::new(),
                ));
            }
        }
    }
    seen
}

fn measured(cell: &Value, name: &str) -> i64 {
    arr(cell, "invariants")
        .iter()
        .find(|m| m.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|m| m.get("value"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Abort classes as the run report names them, with the column label and its meaning.
const ABORTS: [(&str, &str, &str); 5] = [
    ("serialization", "40001", "serialization failure"),
    ("deadlock", "40P01", "deadlock detected"),
    ("lock-unavailable", "55P03", "lock not available"),
    (
        "conflict",
        "conflict",
        "the strategy's own check (retry_if)",
    ),
    ("other", "other", "any other SQL error"),
];

fn run(h: &mut String, doc: &Value) {
    let name = scenario_name(doc);
    let _ = writeln!(h, "<h2><span class=\"kind\">run</span>{}</h2>", esc(&name));
    let summary = text(doc.pointer("/scenario/summary"));
    if !summary.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(&summary));
    }
    let s = doc.get("settings");
    let g = |k: &str| text(s.and_then(|s| s.get(k)));
    let load = if g("operations").is_empty() {
        format!("{} per cell", g("duration"))
    } else {
        format!("{} operations per cell", g("operations"))
    };
    meta(
        h,
        &[
            (
                "scenario",
                format!("{name} ({})", text(doc.pointer("/scenario/file"))),
            ),
            ("clients", g("clients")),
            ("load", load),
            ("think", g("think")),
            ("seed", g("seed")),
            ("max tries", g("max_tries")),
            ("connections", {
                let c = g("connections");
                if c.is_empty() {
                    "one per client".into()
                } else {
                    format!("a pool of {c}")
                }
            }),
            ("parameters", params_line(doc)),
            ("server", server_line(doc)),
            ("database", text(doc.get("database"))),
            ("tool", text(doc.get("tool"))),
        ],
    );
    settings_table(h, "server settings", doc.pointer("/server/settings"));
    settings_table(h, "run settings (as recorded)", s);

    let invs = invariants(doc);
    let cells = arr(doc, "cells");
    let any_failures = cells.iter().any(|c| !arr(c, "failures").is_empty());
    h.push_str("<div class=\"scroll\"><table class=\"matrix\">\n<thead><tr>");
    th(h, "strategy", false, "");
    th(h, "isolation", false, "");
    th(h, "committed", true, "operations that committed");
    th(h, "rejected", true, "business rejections (e.g. sold_out)");
    for (name, anomaly, side, _) in &invs {
        let label = if side == "reader" {
            format!("{name} (reader)")
        } else {
            name.clone()
        };
        th(h, &label, true, anomaly);
    }
    for (_, label, meaning) in ABORTS {
        th(h, label, true, &format!("aborted attempts: {meaning}"));
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
        td(h, &text(c.get("strategy")), "name");
        let mut iso = text(c.get("isolation"));
        if c.get("pinned").and_then(Value::as_bool) == Some(true) {
            iso.push_str(" (pinned)");
        }
        td(h, &iso, "name");
        td(h, &u(c, "/stats/committed").to_string(), "num");
        let rejected: u64 = c
            .pointer("/stats/rejected")
            .and_then(Value::as_object)
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        td(h, &rejected.to_string(), "num");
        for (name, ..) in &invs {
            match measured(c, name) {
                0 => td(h, "ok", "num ok"),
                v => td(h, &v.to_string(), "num bad"),
            }
        }
        for (key, ..) in ABORTS {
            td(h, &u(c, &format!("/stats/aborts/{key}")).to_string(), "num");
        }
        td(h, &u(c, "/stats/retries").to_string(), "num");
        td(h, &u(c, "/stats/failed").to_string(), "num");
        td(
            h,
            &format!("{:.0}", f(c, "/ops_per_s").unwrap_or(0.0)),
            "num",
        );
        for q in ["p50", "p99"] {
            let ms = f(c, &format!("/stats/latency/{q}")).unwrap_or(0.0) / 1000.0;
            td(h, &format!("{ms:.1}"), "num");
        }
        if any_failures {
            let failures: Vec<String> = arr(c, "failures").iter().map(|f| text(Some(f))).collect();
            if failures.is_empty() {
                td(h, "ok", "ok");
            } else {
                td(h, &failures.join("; "), "bad");
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    let _ = writeln!(
        h,
        "<p class=\"muted\">Aborted attempts: {}.</p>",
        esc(&ABORTS
            .iter()
            .map(|(_, label, meaning)| format!("{label} {meaning}"))
            .collect::<Vec<_>>()
            .join(", "))
    );

    // The anomalies found, one line per broken invariant.
    let mut found = Vec::new();
    for (name, anomaly, side, explain) in &invs {
        let where_: Vec<String> = cells
            .iter()
            .filter_map(|c| {
                let v = measured(c, name);
                (v != 0).then(|| {
                    format!(
                        "{}@{} ({v})",
                        text(c.get("strategy")),
                        text(c.get("isolation"))
                    )
                })
            })
            .collect();
        if !where_.is_empty() {
            found.push((name, anomaly, side, explain, where_));
        }
    }
    if found.is_empty() {
        h.push_str("<h3>Anomalies</h3>\n<p>None observed.</p>\n");
    } else {
        h.push_str("<h3>Anomalies</h3>\n<ul class=\"anomalies\">\n");
        for (name, anomaly, side, explain, where_) in found {
            let reader = if side == "reader" {
                " [seen by a concurrent reader, not damage done by the writers]"
            } else {
                ""
            };
            let _ = writeln!(
                h,
                "<li><strong>{}</strong> — {}{} in {}: {}</li>",
                esc(name),
                esc(anomaly),
                esc(reader),
                esc(&where_.join(", ")),
                esc(explain)
            );
        }
        h.push_str("</ul>\n");
    }
    let total_ops: u64 = cells
        .iter()
        .map(|c| {
            u(c, "/stats/committed")
                + c.pointer("/stats/rejected")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
        })
        .sum();
    let _ = writeln!(
        h,
        "<p class=\"muted\">\"ok\" means not observed in this run ({total_ops} operations in all): evidence, not proof.</p>"
    );
    for note in arr(doc, "notes") {
        let _ = writeln!(h, "<p>Note: {}</p>", esc(&text(Some(note))));
    }
    if doc.get("interrupted").and_then(Value::as_bool) == Some(true) {
        h.push_str("<p class=\"bad\"><strong>Interrupted: partial results.</strong></p>\n");
    }
}

fn sweep(h: &mut String, doc: &Value) -> anyhow::Result<()> {
    let name = scenario_name(doc);
    let vary = text(doc.get("vary"));
    let _ = writeln!(
        h,
        "<h2><span class=\"kind\">sweep</span>{} over {}</h2>",
        esc(&name),
        esc(&vary)
    );
    let summary = text(doc.pointer("/scenario/summary"));
    if !summary.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(&summary));
    }
    let values: Vec<String> = arr(doc, "values").iter().map(|v| text(Some(v))).collect();
    meta(
        h,
        &[
            ("varied", format!("{vary} = {}", values.join(", "))),
            ("runs per point", text(doc.get("repeat"))),
            ("settings", settings_line(doc.get("settings"), &vary)),
            ("parameters", params_line(doc)),
            ("server", server_line(doc)),
            ("tool", text(doc.get("tool"))),
        ],
    );
    settings_table(h, "server settings", doc.pointer("/server/settings"));

    let svg = plot::render_svg(doc)?;
    // The XML declaration, if any, is not allowed inside HTML.
    let svg = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg.as_str(),
    };
    let _ = writeln!(h, "<div class=\"figure\">\n{svg}\n</div>");

    h.push_str("<h3>Points</h3>\n<div class=\"scroll\"><table class=\"points\">\n<thead><tr>");
    th(h, "strategy", false, "");
    th(h, "isolation", false, "");
    th(h, &vary, true, "the varied parameter");
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
    for p in arr(doc, "points") {
        h.push_str("<tr>");
        td(h, &text(p.get("strategy")), "name");
        td(h, &text(p.get("isolation")), "name");
        td(h, &text(p.get("value")), "num");
        td(h, &text(p.get("runs")), "num");
        for (key, scale, decimals) in [
            ("ops_per_s", 1.0, 0),
            ("p99_ms", 1.0, 1),
            ("abort_rate", 100.0, 1),
            ("anomaly_rate", 1.0, 1),
        ] {
            let m = p.get(key);
            let get = |k: &str| m.and_then(|m| m.get(k)).and_then(Value::as_f64);
            let cell = match (get("mean"), get("min"), get("max")) {
                (Some(mean), Some(lo), Some(hi)) if hi > lo => format!(
                    "{:.d$} ({:.d$}–{:.d$})",
                    mean * scale,
                    lo * scale,
                    hi * scale,
                    d = decimals
                ),
                (Some(mean), ..) => format!("{:.d$}", mean * scale, d = decimals),
                _ => "–".to_string(),
            };
            let bad = key == "anomaly_rate" && get("max").is_some_and(|v| v > 0.0);
            td(h, &cell, if bad { "num bad" } else { "num" });
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    Ok(())
}

fn replays(h: &mut String, doc: &Value) {
    let name = scenario_name(doc);
    let _ = writeln!(
        h,
        "<h2><span class=\"kind\">replay</span>{}</h2>",
        esc(&name)
    );
    meta(
        h,
        &[
            ("server", server_line(doc)),
            ("tool", text(doc.get("tool"))),
        ],
    );
    // Invariant explanations come from the scenario when the document carries it.
    let declared = invariants(doc);
    for r in arr(doc, "replays") {
        replay(h, doc, r, &declared);
    }
}

fn replay(h: &mut String, doc: &Value, r: &Value, declared: &[(String, String, String, String)]) {
    let schedule = text(r.get("schedule"));
    let tokens: Vec<String> = arr(r, "tokens").iter().map(|t| text(Some(t))).collect();
    let _ = writeln!(
        h,
        "<h3>{} · {} @ {} · schedule {}: <code>{}</code></h3>",
        esc(&text(r.get("scenario"))),
        esc(&text(r.get("strategy"))),
        esc(&text(r.get("isolation"))),
        esc(&schedule),
        esc(&tokens.join(" "))
    );
    let summary = doc
        .pointer(&format!(
            "/scenario/schedules/{}/summary",
            schedule.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !summary.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(summary));
    }

    let sessions: Vec<String> = arr(r, "sessions").iter().map(|s| text(Some(s))).collect();
    let ends_at = r
        .get("schedule_ends_at")
        .and_then(Value::as_u64)
        .map(|n| n as usize);
    let events = arr(r, "events");
    h.push_str("<div class=\"scroll\"><table class=\"timeline\">\n<thead><tr>");
    th(h, "#", false, "schedule token (or step and try)");
    for s in &sessions {
        th(h, &format!("session {s}"), false, "");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (n, e) in events.iter().enumerate() {
        if ends_at == Some(n) {
            let _ = writeln!(
                h,
                "<tr class=\"after\"><td colspan=\"{}\">after the schedule: the rest, session by session, then retries</td></tr>",
                sessions.len() + 1
            );
        }
        let session = text(e.get("session"));
        let step = text(e.get("step"));
        let attempt = e.get("try").and_then(Value::as_u64).unwrap_or(1);
        let label = match e.get("token").and_then(Value::as_str) {
            Some(t) => t.to_string(),
            None if attempt <= 1 => format!("{session}{step}"),
            None => format!("{session}{step} (try {attempt})"),
        };
        h.push_str("<tr>");
        td(h, &label, "step");
        for s in &sessions {
            if *s == session {
                let _ = write!(h, "<td>{}</td>", event_cell(e));
            } else {
                h.push_str("<td></td>");
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n<ul class=\"outcome\">\n");

    let ends: Vec<String> = arr(r, "ends")
        .iter()
        .map(|e| {
            let tries = e.get("tries").and_then(Value::as_u64).unwrap_or(1);
            let tries = if tries > 1 {
                format!(" after {tries} tries")
            } else {
                String::new()
            };
            format!("{} {}{tries}", text(e.get("session")), text(e.get("end")))
        })
        .collect();
    if !ends.is_empty() {
        let _ = writeln!(h, "<li>{}</li>", esc(&ends.join(" · ")));
    }
    for m in arr(r, "invariants") {
        let name = text(m.get("name"));
        let value = m.get("value").and_then(Value::as_i64).unwrap_or(0);
        let reader = if text(m.get("side")) == "reader" {
            " (seen by a reader)"
        } else {
            ""
        };
        if value == 0 {
            let _ = writeln!(
                h,
                "<li><code>{}</code> = 0{}: holds</li>",
                esc(&name),
                esc(reader)
            );
        } else {
            let explain = declared
                .iter()
                .find(|d| d.0 == name)
                .map(|d| d.3.clone())
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<li><code class=\"bad\">{}</code> = {value}{}: {} — {}</li>",
                esc(&name),
                esc(reader),
                esc(&text(m.get("anomaly"))),
                esc(&explain)
            );
        }
    }
    let verdict = text(r.get("verdict"));
    let class = if verdict == "possible" {
        "possible"
    } else {
        "prevented"
    };
    let meaning = if verdict == "possible" {
        "the anomaly happened"
    } else {
        "no anomaly"
    };
    let _ = writeln!(
        h,
        "<li><span class=\"verdict {class}\">{}</span> {}</li>\n</ul>",
        esc(&verdict),
        meaning
    );
}

fn anomalies(h: &mut String, doc: &Value) {
    h.push_str("<h2><span class=\"kind\">anomalies</span>The classic anomalies</h2>\n");
    meta(
        h,
        &[
            ("server", server_line(doc)),
            ("tool", text(doc.get("tool"))),
        ],
    );
    let results = arr(doc, "results");
    let mut levels: Vec<String> = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    for r in results {
        let level = text(r.get("isolation"));
        if !levels.contains(&level) {
            levels.push(level);
        }
        let row = (text(r.get("anomaly")), text(r.get("name")));
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    h.push_str("<div class=\"scroll\"><table class=\"anomalies\">\n<thead><tr>");
    th(h, "anomaly", false, "");
    th(h, "name", false, "");
    for l in &levels {
        th(h, l, false, "");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (id, name) in &rows {
        h.push_str("<tr>");
        td(h, id, "name");
        td(h, name, "name");
        for l in &levels {
            let verdict = results
                .iter()
                .find(|r| {
                    text(r.get("anomaly")) == *id
                        && text(r.get("name")) == *name
                        && text(r.get("isolation")) == *l
                })
                .map(|r| text(r.get("verdict")))
                .unwrap_or_default();
            let class = match verdict.as_str() {
                "possible" => "bad",
                "" => "",
                _ => "ok",
            };
            td(h, &verdict, class);
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    h.push_str("<p class=\"muted\">Each verdict is what one deterministic schedule did on this server. The timelines:</p>\n");
    let declared = invariants(doc);
    for r in results {
        let Some(replay_doc) = r.get("replay") else {
            continue;
        };
        let _ = writeln!(
            h,
            "<details><summary>{} {} @ {}: {}</summary>",
            esc(&text(r.get("anomaly"))),
            esc(&text(r.get("name"))),
            esc(&text(r.get("isolation"))),
            esc(&text(r.get("verdict")))
        );
        replay(h, doc, replay_doc, &declared);
        h.push_str("</details>\n");
    }
}

/// One session's cell for one event of a timeline (mirrors the terminal timeline).
fn event_cell(e: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    let sql = e.get("sql").and_then(Value::as_str);
    let kind = e.get("kind");
    let simple = kind.and_then(Value::as_str);
    if let Some(w) = kind.and_then(|k| k.get("waits")) {
        if let Some(sql) = sql {
            parts.push(format!("<div class=\"sql\">{}</div>", esc(sql)));
        }
        let blockers: Vec<String> = w
            .get("blockers")
            .and_then(Value::as_array)
            .map(|b| b.iter().map(|x| text(Some(x))).collect())
            .unwrap_or_default();
        parts.push(format!(
            "<div class=\"wait\">waits for {}</div>",
            esc(&blockers.join(", "))
        ));
        return parts.concat();
    }
    match simple {
        Some("nothing") => return "<div class=\"res\">(nothing to do)</div>".to_string(),
        Some("still_waiting") | Some("still-waiting") => {
            return "<div class=\"wait\">(still waiting)</div>".to_string();
        }
        _ => {}
    }
    let resumed = simple == Some("resumes");
    match (sql, resumed) {
        (Some(_), true) => parts.push("<div class=\"wait\">resumes</div>".to_string()),
        (Some(sql), false) => parts.push(format!("<div class=\"sql\">{}</div>", esc(sql))),
        (None, _) if e.get("skipped").and_then(Value::as_bool) == Some(true) => {
            parts.push("<div class=\"res\">(skipped: <code>when</code> is false)</div>".into())
        }
        (None, _) => parts.push("<div class=\"res\">(no SQL)</div>".into()),
    }
    if let Some(res) = e.get("result").and_then(Value::as_str) {
        parts.push(format!("<div class=\"res\">→ {}</div>", esc(res)));
    }
    if let Some(err) = e.get("error").and_then(Value::as_array) {
        let code = text(err.first());
        let msg = text(err.get(1));
        parts.push(format!(
            "<div class=\"err\">ERROR {}: {}</div>",
            esc(&code),
            esc(&msg)
        ));
    }
    if let Some(flag) = e.get("flag").and_then(Value::as_str) {
        parts.push(format!("<div class=\"err\">flags {}</div>", esc(flag)));
    }
    if e.get("committed").and_then(Value::as_bool) == Some(true) {
        parts.push("<div class=\"end-ok\">COMMIT</div>".into());
    }
    match e.get("end").and_then(Value::as_str) {
        None => {}
        Some("committed") => parts.push("<div class=\"end-ok\">⇒ committed</div>".into()),
        Some(end) => parts.push(format!("<div class=\"end-bad\">⇒ {}</div>", esc(end))),
    }
    parts.concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn recognises_documents() {
        assert_eq!(Kind::of(&json!({"cells": []})).unwrap(), Kind::Run);
        assert_eq!(Kind::of(&json!({"kind": "run"})).unwrap(), Kind::Run);
        assert_eq!(Kind::of(&json!({"kind": "sweep"})).unwrap(), Kind::Sweep);
        assert_eq!(Kind::of(&json!({"replays": []})).unwrap(), Kind::Replay);
        assert_eq!(Kind::of(&json!({"results": []})).unwrap(), Kind::Anomalies);
        assert!(Kind::of(&json!({"x": 1})).is_err());
    }

    #[test]
    fn text_from_documents_is_escaped() {
        let doc = json!({
            "tool": "contention 0.1.0",
            "scenario": {"name": "<b>evil</b>", "invariants": [
                {"name": "x<y", "anomaly": "a&b", "side": "writer", "explain": "<i>why</i>"}
            ]},
            "settings": {"clients": 2},
            "server": {"version": "PostgreSQL 15.20"},
            "cells": [{"strategy": "<s>", "isolation": "rc", "pinned": false, "ops_per_s": 1.0,
                "stats": {"committed": 1, "rejected": {}, "aborts": {}, "retries": 0, "failed": 0,
                          "latency": {"p50": 1000, "p99": 2000}},
                "invariants": [{"name": "x<y", "anomaly": "a&b", "side": "writer", "value": 3}],
                "failures": []}],
            "notes": ["<note>"],
        });
        let html = render(&[Source {
            name: "r<1>.json".into(),
            doc,
        }])
        .unwrap();
        for raw in ["<b>evil", "<s>", "x<y", "<i>why", "<note>", "r<1>"] {
            assert!(!html.contains(raw), "unescaped {raw}");
        }
        assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;"));
        assert!(html.contains("<td class=\"num bad\">3</td>"));
    }
}
