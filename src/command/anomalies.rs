//! `contention anomalies`: replays the classic anomaly catalogue (scenarios/anomalies/) at each
//! isolation level against the server and prints which anomalies it prevents, with `--expect`
//! for pipelines. The replays are `crate::replay`'s; this command selects, tabulates and judges.

use std::io::Write;

use anyhow::bail;
use owo_colors::OwoColorize;
use tabled::builder::Builder;

use super::Exit;
use super::replay::print;
use super::workspace::Workspace;
use crate::cli::{AnomaliesArgs, TimelineFormat};
use crate::replay::{self, Options, Replay};
use crate::report::document::{self, AnomalyReport, AnomalyResult, Kind};
use crate::scenario::{self, Scenario, catalog};

pub async fn anomalies(
    args: AnomaliesArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Exit> {
    let mut chosen: Vec<Scenario> = Vec::new();
    for name in catalog::anomaly_names() {
        let s = scenario::load_on(&name, &[], args.common.db.engine()?)?;
        let id = s.anomaly.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        if args.only.is_empty()
            || args
                .only
                .iter()
                .any(|o| o.eq_ignore_ascii_case(&id) || o.eq_ignore_ascii_case(&s.name))
        {
            chosen.push(s);
        }
    }
    if chosen.is_empty() {
        let all: Vec<String> = catalog::anomaly_names();
        bail!(
            "--only {}: no such anomaly; the catalogue has {} (or their ids: G0, G1a, G1b, G1c, OTV, PMP, P4, G-single, G2-item, G2)",
            args.only.join(","),
            all.join(", ")
        );
    }
    let levels = args.isolation.0.clone();
    let quiet = args.common.quiet;
    let mut say = |msg: String| {
        if !quiet {
            let _ = writeln!(err, "contention: {msg}");
        }
    };
    let ws = Workspace::open(&args.common.db, "anomalies", 8, &mut say).await?;
    let opts = Options {
        seed: 1,
        step_timeout: args.common.step_timeout,
        max_tries: 1,
    };
    let mut results: Vec<(usize, Replay)> = Vec::new();
    let mut failure = None;
    let mut interrupted = false;
    'all: for (i, s) in chosen.iter().enumerate() {
        for level in &levels {
            say(format!("{} @ {level}", s.name));
            let schedule = &s.schedules[0];
            tokio::select! {
                r = replay::replay(&ws.db, s, None, *level, schedule, &opts) => match r {
                    Ok(r) => results.push((i, r)),
                    Err(e) => { failure = Some(e.context(format!("{} @ {level}", s.name))); break 'all; }
                },
                _ = ws.abort.cancelled() => { interrupted = true; break 'all; }
            }
        }
    }
    let info = ws.info.clone();
    ws.close(&mut say).await?;
    if let Some(e) = failure {
        return Err(e);
    }

    let color = args.common.color.enabled() && args.common.format == TimelineFormat::Text;
    if args.common.format == TimelineFormat::Json {
        let doc = AnomalyReport {
            kind: Kind::Anomalies,
            version: document::VERSION,
            tool: document::tool(),
            server: info.clone(),
            results: results
                .iter()
                .map(|(i, r)| AnomalyResult {
                    anomaly: chosen[*i].anomaly.as_ref().map(|a| a.id.clone()),
                    name: chosen[*i].name.clone(),
                    isolation: r.isolation,
                    verdict: r.verdict.clone(),
                    replay: r.clone(),
                })
                .collect(),
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        let markdown = args.common.format == TimelineFormat::Markdown;
        let head = format!(
            "Classic anomalies on {}",
            info.version
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        );
        writeln!(
            out,
            "{}\n",
            if markdown {
                format!("**{head}**")
            } else {
                head
            }
        )?;
        let mut b = Builder::default();
        let mut header = vec!["anomaly".to_string(), "name".to_string()];
        header.extend(levels.iter().map(|l| l.to_string()));
        b.push_record(header);
        for (i, s) in chosen.iter().enumerate() {
            let mut row = vec![
                s.anomaly.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
                s.name.clone(),
            ];
            for level in &levels {
                let cell = results
                    .iter()
                    .find(|(j, r)| *j == i && r.isolation == *level);
                row.push(match cell {
                    None => "-".to_string(),
                    Some((_, r)) if !r.verdict.is_prevented() && color => {
                        r.verdict.label().red().to_string()
                    }
                    Some((_, r)) if color => r.verdict.label().green().to_string(),
                    Some((_, r)) => r.verdict.label(),
                });
            }
            b.push_record(row);
        }
        let mut t = b.build();
        crate::report::style(&mut t, markdown);
        writeln!(out, "{t}")?;
        writeln!(
            out,
            "\npossible = the replay produced the anomaly; prevented = it did not (the server made a session wait or \
             showed it a consistent snapshot); prevented by abort = the server aborted a transaction instead (SQLSTATE).\n\
             Each verdict comes from one deterministic schedule per anomaly: `--explain` shows it."
        )?;
        if args.explain {
            for (i, s) in chosen.iter().enumerate() {
                writeln!(out)?;
                if let Some(a) = &s.anomaly {
                    writeln!(
                        out,
                        "{} {} — {}\n  ({})",
                        a.id, s.name, a.definition, a.reference
                    )?;
                }
                let mine: Vec<Replay> = results
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, r)| r.clone())
                    .collect();
                writeln!(out)?;
                print(&mine, s, &info, args.common.format, color, out)?;
            }
        }
    }
    if interrupted {
        return Ok(Exit::Interrupted);
    }
    if let Some(want) = &args.expect {
        let mut failed = false;
        for (i, r) in &results {
            let ok = (want == "prevented") == r.verdict.is_prevented();
            if !ok {
                failed = true;
                let _ = writeln!(
                    err,
                    "expectation failed: {} ({}) @ {}: expected {want}, the server gave {}",
                    chosen[*i].name,
                    chosen[*i].anomaly.as_ref().map_or("", |a| a.id.as_str()),
                    r.isolation,
                    r.verdict.label()
                );
            }
        }
        if failed {
            return Ok(Exit::ExpectationFailed);
        }
    }
    Ok(Exit::Ok)
}
