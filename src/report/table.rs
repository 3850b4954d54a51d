//! The human report: a header, one table row per cell (tabled), then one line per anomaly
//! found explaining it, and the expectations that failed. Plain text or Markdown.

use std::io::{self, Write};

use tabled::builder::Builder;
use tabled::settings::Alignment;
use tabled::settings::object::{Columns, Rows};

use super::RunReport;
use crate::outcome::Abort;
use crate::scenario::Side;

pub fn render(report: &RunReport, markdown: bool, out: &mut dyn Write) -> io::Result<()> {
    let s = &report.settings;
    let sc = &report.scenario;
    let load = match s.operations {
        Some(n) => format!("{n} operations"),
        None => format!("{}", humantime::format_duration(s.duration)),
    };
    let connections = s
        .connections
        .map(|n| format!(" sharing {n} connections"))
        .unwrap_or_default();
    let head = format!(
        "{} — {} clients{connections}, {load}, think {}, seed {} — {}",
        sc.name,
        s.clients,
        humantime::format_duration(s.think),
        s.seed,
        if report.servers.is_empty() {
            short_version(&report.server.version)
        } else {
            report
                .servers
                .iter()
                .map(|s| short_version(&s.version))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    if markdown {
        writeln!(out, "**{head}**\n")?;
    } else {
        writeln!(out, "{head}")?;
    }

    let mut b = Builder::default();
    let several = report.engines().len() > 1;
    let mut header: Vec<String> = Vec::new();
    if several {
        header.push("engine".into());
    }
    header.extend([
        "strategy".into(),
        "isolation".into(),
        "committed".into(),
        "rejected".into(),
    ]);
    for inv in &sc.invariants {
        let name = if markdown {
            inv.name.clone()
        } else {
            fold(&inv.name)
        };
        header.push(match inv.side {
            Side::Writer => name,
            Side::Reader => format!("{name}\n(reader)"),
        });
    }
    // A column per abort class that occurred in some cell (the JSON and CSV keep all five).
    let classes: Vec<Abort> = Abort::ALL
        .into_iter()
        .filter(|&a| report.cells.iter().any(|c| c.stats.abort(a) > 0))
        .collect();
    header.extend(classes.iter().map(|&a| report.abort_header(a)));
    header.extend(["retries", "failed", "ops/s", "p50 ms", "p99 ms"].map(String::from));
    let any_expect = report.cells.iter().any(|c| !c.failures.is_empty());
    if any_expect {
        header.push("expected".into());
    }
    b.push_record(header);
    for c in &report.cells {
        let mut row = Vec::new();
        if several {
            row.push(c.engine.name().to_string());
        }
        row.extend([
            c.strategy.clone(),
            if c.pinned {
                format!("{} (pinned)", c.isolation)
            } else {
                c.isolation.to_string()
            },
            c.stats.committed.to_string(),
            c.stats.total_rejected().to_string(),
        ]);
        for inv in &sc.invariants {
            let v = c
                .invariants
                .iter()
                .find(|m| m.name == inv.name)
                .map_or(0, |m| m.value);
            row.push(if v == 0 { "ok".into() } else { v.to_string() });
        }
        for &a in &classes {
            row.push(c.stats.abort(a).to_string());
        }
        row.extend([
            c.stats.retries.to_string(),
            c.stats.failed.to_string(),
            format!("{:.0}", c.ops_per_s),
            format!("{:.1}", c.stats.latency_ms(0.5)),
            format!("{:.1}", c.stats.latency_ms(0.99)),
        ]);
        if any_expect {
            row.push(if c.failures.is_empty() {
                "ok".into()
            } else {
                "FAILED".into()
            });
        }
        b.push_record(row);
    }
    let mut table = b.build();
    super::style(&mut table, markdown);
    // Counts and figures right-aligned, names and headers left.
    table.modify(
        Columns::new(if several { 3.. } else { 2.. }),
        Alignment::right(),
    );
    table.modify(Rows::first(), Alignment::left());
    writeln!(out, "{table}")?;
    writeln!(
        out,
        "aborted attempts, a column per class that occurred: {}",
        report.abort_legend()
    )?;

    // One line per broken invariant, naming the cells and the reason.
    let mut explained = false;
    for inv in &sc.invariants {
        let cells: Vec<String> = report
            .cells
            .iter()
            .filter_map(|c| {
                let v = c.invariants.iter().find(|m| m.name == inv.name)?.value;
                (v != 0).then(|| format!("{} ({v})", c.label_in(report)))
            })
            .collect();
        if cells.is_empty() {
            continue;
        }
        if !explained {
            writeln!(out)?;
            explained = true;
        }
        let side = match inv.side {
            Side::Writer => "",
            Side::Reader => " [seen by a concurrent reader, not damage done by the writers]",
        };
        let bullet = if markdown { "- " } else { "" };
        writeln!(
            out,
            "{bullet}{} — {}{side} in {}: {}",
            inv.name,
            inv.anomaly,
            cells.join(", "),
            inv.explain
        )?;
    }
    let total_ops: u64 = report
        .cells
        .iter()
        .map(|c| c.stats.committed + c.stats.total_rejected())
        .sum();
    writeln!(
        out,
        "\n\"ok\" means not observed in this run ({total_ops} operations in all): evidence, not proof."
    )?;
    let cut: Vec<String> = report
        .cells
        .iter()
        .filter(|c| c.stats.cut > 0)
        .map(|c| {
            let deadline = match s.operations {
                None => s.duration,
                Some(_) => s.timeout.unwrap_or_default(),
            };
            let past = (c.elapsed_s - deadline.as_secs_f64()).max(0.0);
            format!(
                "{} ({} cut, ended {past:.2} s past the deadline)",
                c.label_in(report),
                c.stats.cut
            )
        })
        .collect();
    if !cut.is_empty() {
        writeln!(
            out,
            "cut at the deadline (in flight after a {} ms grace: their statements were cancelled; counted neither as committed nor as aborted): {}",
            crate::runner::client::CUT_GRACE.as_millis(),
            cut.join(", ")
        )?;
    }
    for line in report.other_codes() {
        writeln!(out, "other errors by code, {line}")?;
    }
    for line in report.fault_lines() {
        writeln!(out, "{line}")?;
    }
    for n in &report.nodes {
        writeln!(out, "node {}: {}", n.node, n.server)?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    for line in report.expectations.iter().flat_map(|e| e.lines()) {
        writeln!(out, "{line}")?;
    }
    if report.interrupted {
        writeln!(out, "interrupted: partial results")?;
    }
    let failures: Vec<_> = report.failures().collect();
    if !failures.is_empty() {
        writeln!(out)?;
        for (c, f) in failures {
            writeln!(out, "expectation failed: {}: {f}", c.label_in(report))?;
        }
    }
    Ok(())
}

/// "PostgreSQL 15.19 (Debian ...) on x86_64..." -> "PostgreSQL 15.19".
/// A long snake_case name on two lines, broken after the underscore nearest its middle, so an
/// invariant's column is about half as wide (`seat_count_mismatch` -> `seat_count_` /
/// `mismatch`). Short names and names without an underscore stay whole.
fn fold(name: &str) -> String {
    if name.chars().count() <= 12 {
        return name.to_string();
    }
    let middle = name.len() / 2;
    match name
        .match_indices('_')
        .map(|(i, _)| i + 1)
        .min_by_key(|&i| i.abs_diff(middle))
    {
        Some(i) if i < name.len() => format!("{}\n{}", &name[..i], &name[i..]),
        _ => name.to_string(),
    }
}

fn short_version(v: &str) -> String {
    v.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn long_snake_case_names_fold_near_their_middle() {
        assert_eq!(fold("oversold"), "oversold");
        assert_eq!(fold("seat_count_mismatch"), "seat_count_\nmismatch");
        assert_eq!(fold("negative_inventory"), "negative_\ninventory");
        assert_eq!(fold("averyveryverylongname"), "averyveryverylongname");
        assert_eq!(fold("trailing_underscore_"), "trailing_\nunderscore_");
    }
}
