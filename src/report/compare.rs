//! Two result files side by side (`contention compare before.json after.json`): cells of run
//! reports matched by strategy@level, points of sweeps by strategy@level and value; throughput
//! ratio, abort rate and anomalies before and after, with what changed named. Reads the JSON
//! documents as written (so files from older versions still compare); it must not run anything.

use std::io::Write;

use anyhow::{anyhow, bail};
use serde_json::Value;
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Style};

/// One comparable row of a document: key, ops/s, abort rate (0..1), anomalies (count or rate).
struct Row {
    key: String,
    ops: f64,
    aborts: f64,
    anomalies: f64,
}

fn rows(doc: &Value, name: &str) -> anyhow::Result<(String, Vec<Row>)> {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    if doc["kind"] == "sweep" {
        let vary = doc["vary"].as_str().unwrap_or("value");
        let points = doc["points"]
            .as_array()
            .ok_or_else(|| anyhow!("{name}: a sweep without points"))?;
        let rows = points
            .iter()
            .map(|p| Row {
                key: format!(
                    "{}@{} {vary}={}",
                    text(&p["strategy"]),
                    text(&p["isolation"]),
                    text(&p["value"])
                ),
                ops: f(&p["ops_per_s"]["mean"]),
                aborts: f(&p["abort_rate"]["mean"]),
                anomalies: f(&p["anomaly_rate"]["mean"]),
            })
            .collect();
        return Ok(("anomalies /1k ops".into(), rows));
    }
    let cells = doc["cells"]
        .as_array()
        .ok_or_else(|| anyhow!("{name}: neither a run report (cells) nor a sweep (points); write one with --output or --format json"))?;
    let rows = cells
        .iter()
        .map(|c| {
            let stats = &c["stats"];
            let aborts: f64 = stats["aborts"]
                .as_object()
                .map_or(0.0, |m| m.values().map(f).sum());
            let rejected: f64 = stats["rejected"]
                .as_object()
                .map_or(0.0, |m| m.values().map(f).sum());
            let attempts = f(&stats["committed"]) + rejected + aborts;
            let anomalies: f64 = c["invariants"].as_array().map_or(0.0, |v| {
                v.iter()
                    .filter(|m| m["side"] == "writer")
                    .map(|m| f(&m["value"]).abs())
                    .sum()
            });
            Row {
                key: format!("{}@{}", text(&c["strategy"]), text(&c["isolation"])),
                ops: f(&c["ops_per_s"]),
                aborts: if attempts > 0.0 {
                    aborts / attempts
                } else {
                    0.0
                },
                anomalies,
            }
        })
        .collect();
    Ok(("anomalies".into(), rows))
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Prints the comparison of `before` and `after` (names are for messages).
pub fn render(
    before: (&str, &Value),
    after: (&str, &Value),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (unit, a) = rows(before.1, before.0)?;
    let (unit_b, b) = rows(after.1, after.0)?;
    if unit != unit_b {
        bail!(
            "{} and {} are not the same kind of file (a run report and a sweep)",
            before.0,
            after.0
        );
    }
    let scenario = |d: &Value| text(&d["scenario"]["name"]);
    if scenario(before.1) != scenario(after.1) {
        writeln!(
            out,
            "note: different scenarios: {} and {}",
            scenario(before.1),
            scenario(after.1)
        )?;
    }
    let differ = differing_settings(&before.1["settings"], &after.1["settings"]);
    if !differ.is_empty() {
        writeln!(out, "note: settings differ: {}", differ.join(", "))?;
    }
    let mut t = Builder::default();
    t.push_record([
        "cell",
        "ops/s before",
        "ops/s after",
        "ratio",
        "aborts % before → after",
        &format!("{unit} before → after"),
        "change",
    ]);
    for r in &a {
        let Some(n) = b.iter().find(|x| x.key == r.key) else {
            t.push_record([
                r.key.clone(),
                format!("{:.0}", r.ops),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "only before".into(),
            ]);
            continue;
        };
        let ratio = if r.ops > 0.0 {
            format!("{:.2}x", n.ops / r.ops)
        } else {
            "-".into()
        };
        let change = match (r.anomalies > 0.0, n.anomalies > 0.0) {
            (false, true) => "NEW ANOMALIES",
            (true, false) => "anomalies gone",
            _ => "",
        };
        t.push_record([
            r.key.clone(),
            format!("{:.0}", r.ops),
            format!("{:.0}", n.ops),
            ratio,
            format!("{:.1} → {:.1}", r.aborts * 100.0, n.aborts * 100.0),
            format!("{} → {}", num(r.anomalies), num(n.anomalies)),
            change.into(),
        ]);
    }
    for n in b.iter().filter(|n| !a.iter().any(|r| r.key == n.key)) {
        t.push_record([
            n.key.clone(),
            "-".into(),
            format!("{:.0}", n.ops),
            "-".into(),
            "-".into(),
            "-".into(),
            "only after".into(),
        ]);
    }
    let mut table = t.build();
    table.with(Style::rounded());
    table.modify(Columns::new(1..6), Alignment::right());
    writeln!(out, "{} → {}", before.0, after.0)?;
    writeln!(out, "{table}")?;
    Ok(())
}

/// `name before → after` for each run setting whose recorded value differs (a setting missing
/// from one file, written by another version, shows as `-`).
fn differing_settings(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let shown = |v: Option<&Value>| v.map_or_else(|| "-".to_string(), text);
    let names: Vec<&String> = b.keys().chain(a.keys()).collect();
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .filter(|k| seen.insert(*k) && b.get(*k) != a.get(*k))
        .map(|k| format!("{k} {} → {}", shown(b.get(k)), shown(a.get(k))))
        .collect()
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Reads a result file.
pub fn read(path: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| anyhow!("{path}: not a JSON result file: {e}"))
}
