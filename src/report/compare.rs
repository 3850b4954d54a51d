//! Two result files side by side (`contention compare before.json after.json`): cells of run
//! reports matched by strategy@level, points of sweeps by strategy@level and value; throughput
//! ratio, abort rate and anomalies before and after, with what changed named. Reads the typed
//! documents ([`Document`]; files without `kind` or `version`, from older versions, still
//! compare); it must not run anything.

use std::io::Write;
use std::path::Path;

use anyhow::bail;
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Style};

use super::document::Document;
use super::settings_fields;
use super::sweep::abort_rate;
use crate::runner::Settings;
use crate::scenario::Side;

/// One comparable row of a document: key, ops/s, abort rate (0..1), anomalies (count or rate).
struct Row {
    key: String,
    ops: f64,
    aborts: f64,
    anomalies: f64,
}

/// The rows of a run report or a sweep, with the unit of their anomaly column.
fn rows(doc: &Document, name: &str) -> anyhow::Result<(&'static str, Vec<Row>)> {
    match doc {
        Document::Sweep(s) => Ok((
            "anomalies /1k ops",
            s.points
                .iter()
                .map(|p| Row {
                    key: format!("{}@{} {}={}", p.strategy, p.isolation, s.vary, p.value),
                    ops: p.ops_per_s.mean,
                    aborts: p.abort_rate.mean,
                    anomalies: p.anomaly_rate.mean,
                })
                .collect(),
        )),
        Document::Run(r) => Ok((
            "anomalies",
            r.cells
                .iter()
                .map(|c| Row {
                    key: c.label_in(r),
                    ops: c.ops_per_s,
                    aborts: abort_rate(c),
                    anomalies: c
                        .invariants
                        .iter()
                        .filter(|m| m.side == Side::Writer)
                        .map(|m| m.value.abs() as f64)
                        .sum(),
                })
                .collect(),
        )),
        other => bail!(
            "{name}: a {} document; compare reads run reports (cells) and sweeps (points): write one with --output or --format json",
            other.kind()
        ),
    }
}

/// The scenario's name and the run settings of a run report or a sweep.
fn scenario_and_settings(doc: &Document) -> Option<(&str, &Settings)> {
    match doc {
        Document::Run(r) => Some((&r.scenario.name, &r.settings)),
        Document::Sweep(s) => Some((&s.scenario.name, &s.settings)),
        _ => None,
    }
}

/// Prints the comparison of `before` and `after` (names are for messages).
pub fn render(
    before: (&str, &Document),
    after: (&str, &Document),
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
    if let (Some((sa, a_set)), Some((sb, b_set))) = (
        scenario_and_settings(before.1),
        scenario_and_settings(after.1),
    ) {
        if sa != sb {
            writeln!(out, "note: different scenarios: {sa} and {sb}")?;
        }
        if let (Document::Run(ra), Document::Run(rb)) = (before.1, after.1) {
            let names = |r: &crate::report::RunReport| {
                r.engines()
                    .iter()
                    .map(|e| e.name())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let (ea, eb) = (names(ra), names(rb));
            if ea != eb {
                writeln!(
                    out,
                    "note: different engines: {ea} ({}) and {eb} ({}); cells are matched by strategy@level",
                    ra.server.version.split(" on ").next().unwrap_or(""),
                    rb.server.version.split(" on ").next().unwrap_or("")
                )?;
            }
        }
        let differ = differing_settings(a_set, b_set);
        if !differ.is_empty() {
            writeln!(out, "note: settings differ: {}", differ.join(", "))?;
        }
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

/// `name before → after` for each run setting whose value differs (unset shows as `-`).
fn differing_settings(before: &Settings, after: &Settings) -> Vec<String> {
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    settings_fields(before)
        .iter()
        .zip(settings_fields(after).iter())
        .filter(|((_, b), (_, a))| b != a)
        .map(|((k, b), (_, a))| format!("{k} {} → {}", shown(b), shown(a)))
        .collect()
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Reads a result file (errors name it).
pub fn read(path: &str) -> anyhow::Result<Document> {
    Document::read(Path::new(path))
}
