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
use crate::engine::EngineKind;
use crate::isolation::Isolation;
use crate::replay::{self, Options, Replay};
use crate::report::document::{self, AnomalyReport, AnomalyResult, Kind};
use crate::scenario::{self, Scenario, catalog};

/// One `--expect`: the verdict wanted, for one engine or all.
struct Want {
    engine: Option<EngineKind>,
    prevented: bool,
}

fn parse_want(text: &str) -> anyhow::Result<Want> {
    let (engine, verdict) = match text.split_once(':') {
        Some((e, v)) => (
            Some(
                e.parse::<EngineKind>()
                    .map_err(|m| anyhow::anyhow!("--expect {text}: {m}"))?,
            ),
            v,
        ),
        None => (None, text),
    };
    let prevented = match verdict.trim() {
        "prevented" => true,
        "possible" => false,
        other => bail!("--expect {text}: `{other}`: expected prevented or possible"),
    };
    Ok(Want { engine, prevented })
}

pub async fn anomalies(
    args: AnomaliesArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Exit> {
    let wants = args
        .expect
        .iter()
        .map(|w| parse_want(w))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let engines = args.common.db.engines()?;
    // The catalogue in each engine's dialect: chosen[e][i] is anomaly i on engine e.
    let mut chosen: Vec<Vec<Scenario>> = Vec::new();
    for &engine in &engines {
        let mut mine = Vec::new();
        for name in catalog::anomaly_names() {
            let mut s = scenario::load_on(&name, &[], engine)?;
            args.common.db.apply_sets(&mut s);
            let id = s.anomaly.as_ref().map(|a| a.id.clone()).unwrap_or_default();
            if args.only.is_empty()
                || args
                    .only
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(&id) || o.eq_ignore_ascii_case(&s.name))
            {
                mine.push(s);
            }
        }
        chosen.push(mine);
    }
    if chosen[0].is_empty() {
        let all: Vec<String> = catalog::anomaly_names();
        let ids: Vec<String> = all
            .iter()
            .filter_map(|n| scenario::load(n, &[]).ok()?.anomaly.map(|a| a.id))
            .collect();
        bail!(
            "--only {}: no such anomaly; the catalogue has {} (or their ids: {})",
            args.only.join(","),
            all.join(", "),
            ids.join(", ")
        );
    }
    let quiet = args.common.quiet;
    let mut say = |msg: String| {
        if !quiet {
            let _ = writeln!(err, "contention: {msg}");
        }
    };
    let opts = Options {
        seed: 1,
        step_timeout: args.common.step_timeout,
        max_tries: 1,
        pause: None,
        history: false,
    };
    // (engine, anomaly index, replay)
    let mut results: Vec<(EngineKind, usize, Replay)> = Vec::new();
    let mut servers = Vec::new();
    let mut columns: Vec<(EngineKind, Isolation)> = Vec::new();
    let mut interrupted = false;
    for (&engine, mine) in engines.iter().zip(&chosen) {
        let levels = args.isolation.on(engine);
        columns.extend(levels.iter().map(|&l| (engine, l)));
        let ws = Workspace::open(&args.common.db, engine, "anomalies", 8, &mut say).await?;
        let targets = ws.targets();
        let mut failure = None;
        'all: for (i, s) in mine.iter().enumerate() {
            for level in &levels {
                say(format!("{engine}: {} @ {level}", s.name));
                let schedule = &s.schedules[0];
                tokio::select! {
                    r = replay::replay(&targets, s, None, *level, schedule, &opts) => match r {
                        Ok(r) => results.push((engine, i, r)),
                        Err(e) => { failure = Some(e.context(format!("{engine}: {} @ {level}", s.name))); break 'all; }
                    },
                    _ = ws.abort.cancelled() => { interrupted = true; break 'all; }
                }
            }
        }
        servers.push(ws.info.clone());
        ws.close_after(failure, &mut say).await?;
        if interrupted {
            break;
        }
    }
    let several = engines.len() > 1;
    let info = servers[0].clone();
    let names = &chosen[0];

    let color = args.common.color.enabled() && args.common.format == TimelineFormat::Text;
    if args.common.format == TimelineFormat::Json {
        let doc = AnomalyReport {
            kind: Kind::Anomalies,
            version: document::VERSION,
            tool: document::tool(),
            server: info.clone(),
            servers: if several { servers.clone() } else { Vec::new() },
            results: results
                .iter()
                .map(|(e, i, r)| AnomalyResult {
                    engine: *e,
                    anomaly: names[*i].anomaly.as_ref().map(|a| a.id.clone()),
                    name: names[*i].name.clone(),
                    isolation: r.isolation,
                    verdict: r.verdict.clone(),
                    replay: r.clone(),
                })
                .collect(),
        };
        crate::report::json(out, &doc)?;
    } else {
        let markdown = args.common.format == TimelineFormat::Markdown;
        let head = format!(
            "Classic anomalies on {}",
            servers
                .iter()
                .map(|s| s
                    .version
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" "))
                .collect::<Vec<_>>()
                .join(" and ")
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
        if !args.common.db.set.is_empty() {
            let sets: Vec<String> = args
                .common
                .db
                .set
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(out, "every session with --set {}\n", sets.join(", "))?;
        }
        let mut b = Builder::default();
        let mut header = vec!["anomaly".to_string(), "name".to_string()];
        header.extend(columns.iter().map(|(e, l)| {
            if several {
                format!("{e}\n{l}")
            } else {
                l.to_string()
            }
        }));
        b.push_record(header);
        for (i, s) in names.iter().enumerate() {
            let mut row = vec![
                s.anomaly.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
                s.name.clone(),
            ];
            for (engine, level) in &columns {
                let cell = results
                    .iter()
                    .find(|(e, j, r)| e == engine && *j == i && r.isolation == *level);
                row.push(match cell {
                    None => "-".to_string(),
                    Some((_, _, r)) if !r.verdict.is_prevented() && color => {
                        r.verdict.label().red().to_string()
                    }
                    Some((_, _, r)) if color => r.verdict.label().green().to_string(),
                    Some((_, _, r)) => r.verdict.label(),
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
             showed it a consistent snapshot); prevented by abort = the server aborted a transaction instead (its error code).\n\
             Each verdict comes from one deterministic schedule per anomaly: `--explain` shows it."
        )?;
        if columns
            .iter()
            .any(|(e, l)| *e == EngineKind::Postgres && *l == Isolation::Ru)
        {
            writeln!(out, "PostgreSQL runs READ UNCOMMITTED as READ COMMITTED.")?;
        }
        if columns
            .iter()
            .any(|(e, l)| *e == EngineKind::Mariadb && *l == Isolation::Ru)
        {
            writeln!(
                out,
                "MariaDB's READ UNCOMMITTED is a level of its own: reads see uncommitted writes."
            )?;
        }
        if args.explain {
            for ((engine, mine), server) in engines.iter().zip(&chosen).zip(&servers) {
                for (i, s) in mine.iter().enumerate() {
                    writeln!(out)?;
                    if let Some(a) = &s.anomaly {
                        let on = if several {
                            format!(" on {}", engine.title())
                        } else {
                            String::new()
                        };
                        writeln!(
                            out,
                            "{} {}{on} — {}\n  ({})",
                            a.id, s.name, a.definition, a.reference
                        )?;
                    }
                    let replays: Vec<Replay> = results
                        .iter()
                        .filter(|(e, j, _)| e == engine && *j == i)
                        .map(|(_, _, r)| r.clone())
                        .collect();
                    writeln!(out)?;
                    print(&replays, s, server, args.common.format, color, out)?;
                }
            }
        }
    }
    if interrupted {
        return Ok(Exit::signalled());
    }
    let mut failed = false;
    for (engine, i, r) in &results {
        // The most specific `--expect` for this engine: its own, else the general one.
        let want = wants
            .iter()
            .rev()
            .find(|w| w.engine == Some(*engine))
            .or_else(|| wants.iter().rev().find(|w| w.engine.is_none()));
        let Some(want) = want else { continue };
        if want.prevented != r.verdict.is_prevented() {
            failed = true;
            let _ = writeln!(
                err,
                "expectation failed: {engine}: {} ({}) @ {}: expected {}, the server gave {}",
                names[*i].name,
                names[*i].anomaly.as_ref().map_or("", |a| a.id.as_str()),
                r.isolation,
                if want.prevented {
                    "prevented"
                } else {
                    "possible"
                },
                r.verdict.label()
            );
        }
    }
    Ok(if failed {
        Exit::ExpectationFailed
    } else {
        Exit::Ok
    })
}
