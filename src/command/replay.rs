//! `contention replay`: resolve the scenario, schedule, strategies and levels, replay each
//! (strategy, level) on the run database, and print the timelines. The scheduling itself is in
//! `crate::replay`; the drawing in `crate::replay::timeline`.

use std::io::Write;

use anyhow::{anyhow, bail};

use super::Exit;
use super::workspace::Workspace;
use crate::cli::{ReplayArgs, TimelineFormat};
use crate::engine::ServerInfo;
use crate::isolation::Isolation;
use crate::replay::{self, Options, Replay, timeline};
use crate::report::document::{self, Kind, ReplayReport};
use crate::scenario::{self, Scenario, Schedule, Strategy};

pub async fn replay(
    args: ReplayArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Exit> {
    if crate::spec::is_spec(&args.scenario) {
        return super::spec::replay_spec(args, out, err).await;
    }
    if args.expected.is_some() || args.record.is_some() {
        bail!(
            "--expected and --record are for isolation-tester specs and their .out files: give a .spec file"
        );
    }
    let engines = args.common.db.engines()?;
    let quiet = args.common.quiet;
    let mut say = |msg: String| {
        if !quiet {
            let _ = writeln!(err, "contention: {msg}");
        }
    };
    // Per engine: its dialect of the scenario, its replays and its server.
    let mut done: Vec<(Scenario, Vec<Replay>, ServerInfo)> = Vec::new();
    let mut interrupted = false;
    for &engine in &engines {
        let mut scenario = scenario::load_on(&args.scenario, &args.params, engine)?;
        args.common.db.apply_sets(&mut scenario);
        let mut schedule = pick_schedule(&mut scenario, args.schedule.as_deref())?;
        if !schedule.params.is_empty() {
            // The schedule's parameters, as if given first with --param (so --param wins).
            let mut params = schedule.params.clone();
            params.extend(args.params.iter().cloned());
            scenario = scenario::load_on(&args.scenario, &params, engine)?;
            args.common.db.apply_sets(&mut scenario);
            schedule = pick_schedule(&mut scenario, args.schedule.as_deref())?;
        }
        let strategies = pick_strategies(&scenario, &schedule, args.strategy.as_deref())?;
        let mut cells: Vec<(Option<&Strategy>, Isolation)> = Vec::new();
        for st in &strategies {
            match st.and_then(|s| s.isolation) {
                Some(pinned) => cells.push((*st, pinned)),
                None => cells.extend(args.isolation.on(engine).into_iter().map(|l| (*st, l))),
            }
        }
        let opts = Options {
            seed: args.seed,
            step_timeout: args.common.step_timeout,
            max_tries: scenario.run.max_tries,
            pause: super::step::pause(args.step, &scenario, args.common.color.enabled())?,
            history: args.history.is_some(),
        };
        if args.history.is_some() && scenario.history.is_none() {
            bail!(
                "--history: {} declares no `[history] model`, so its steps say nothing a history could record (list-append and rw-register do)",
                scenario.name
            );
        }
        let ws = Workspace::for_scenario(
            &args.common.db,
            &scenario,
            scenario.sessions.len() as u32 + 2,
            &mut say,
        )
        .await?;
        let targets = ws.targets();
        let mut replays = Vec::new();
        let mut failure = None;
        for (st, level) in cells {
            let label =
                st.map_or_else(|| format!("@ {level}"), |s| format!("{} @ {level}", s.name));
            say(format!("replaying {label} on {}", engine.title()));
            tokio::select! {
                r = replay::replay(&targets, &scenario, st, level, &schedule, &opts) => match r {
                    Ok(mut r) => {
                        if let (Some(base), Some(sink)) = (&args.history, r.history.take()) {
                            let strategy = st.map_or("sessions", |s| s.name.as_str());
                            let file = crate::history::cell_path(base, strategy, level, engine);
                            if let Err(e) = sink.write(&file) {
                                failure = Some(e);
                                break;
                            }
                            say(format!("history: {}", file.display()));
                        }
                        replays.push(r);
                    }
                    Err(e) => { failure = Some(e.context(label)); break; }
                },
                _ = ws.abort.cancelled() => { interrupted = true; break; }
            }
        }
        let info = ws.info.clone();
        ws.close_after(failure, &mut say).await?;
        done.push((scenario, replays, info));
        if interrupted {
            break;
        }
    }
    let several = done.len() > 1;
    if args.common.format == TimelineFormat::Json {
        let (scenario, _, info) = &done[0];
        let doc = ReplayReport {
            kind: Kind::Replay,
            version: document::VERSION,
            tool: document::tool(),
            server: info.clone(),
            servers: if several {
                done.iter().map(|(_, _, i)| i.clone()).collect()
            } else {
                Vec::new()
            },
            scenario: scenario.clone(),
            replays: done.iter().flat_map(|(_, r, _)| r.clone()).collect(),
        };
        crate::report::json(out, &doc)?;
    } else {
        for (i, (scenario, replays, info)) in done.iter().enumerate() {
            if several {
                if i > 0 {
                    writeln!(out)?;
                }
                let title = info
                    .version
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                match args.common.format {
                    TimelineFormat::Markdown => writeln!(out, "### {title}\n")?,
                    _ => writeln!(out, "═══ {title} ═══\n")?,
                }
            }
            print(
                replays,
                scenario,
                info,
                args.common.format,
                args.common.color.enabled(),
                out,
            )?;
        }
    }
    Ok(if interrupted {
        Exit::signalled()
    } else {
        Exit::Ok
    })
}

/// Prints replays as timelines (text, Markdown) or one JSON document.
pub fn print(
    replays: &[Replay],
    scenario: &Scenario,
    info: &ServerInfo,
    format: TimelineFormat,
    color: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match format {
        TimelineFormat::Json => {
            let doc = ReplayReport {
                kind: Kind::Replay,
                version: document::VERSION,
                tool: document::tool(),
                server: info.clone(),
                servers: Vec::new(),
                scenario: scenario.clone(),
                replays: replays.to_vec(),
            };
            crate::report::json(out, &doc)?;
        }
        TimelineFormat::Text | TimelineFormat::Markdown => {
            let look = timeline::Look {
                markdown: format == TimelineFormat::Markdown,
                color,
                width: width(),
            };
            for (i, r) in replays.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                timeline::render(r, scenario, look, out)?;
            }
        }
    }
    Ok(())
}

/// `COLUMNS` when set, else the terminal's width, else 120 when not a terminal.
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .or_else(|| terminal_size::terminal_size().map(|(w, _)| w.0 as usize))
        .unwrap_or(120)
        .max(40)
}

fn pick_schedule(scenario: &mut Scenario, arg: Option<&str>) -> anyhow::Result<Schedule> {
    if scenario.schedules.is_empty() && arg.is_none() {
        bail!(
            "{} has no [schedule.NAME]: give one with --schedule \"a1 b1 a2 ...\"",
            scenario.name
        );
    }
    match arg {
        None => Ok(scenario.schedules[0].clone()),
        Some(name) if scenario.schedules.contains_key(name) => Ok(scenario.schedules[name].clone()),
        Some(text) if !text.contains(|c: char| c.is_ascii_digit() || c == '.') => {
            let names: Vec<&str> = scenario.schedules.keys().map(String::as_str).collect();
            bail!(
                "--schedule {text}: no such schedule; {} has {}",
                scenario.name,
                names.join(", ")
            )
        }
        Some(text) => scenario::adhoc_schedule(scenario, text).map_err(|m| anyhow!(m)),
    }
}

fn pick_strategies<'a>(
    scenario: &'a Scenario,
    schedule: &Schedule,
    arg: Option<&str>,
) -> anyhow::Result<Vec<Option<&'a Strategy>>> {
    if scenario.is_replay_only() {
        if arg.is_some() {
            bail!(
                "--strategy: {} has no strategies; its sessions bring their own steps",
                scenario.name
            );
        }
        return Ok(vec![None]);
    }
    let names: Vec<String> = match arg {
        Some("all") => scenario.strategies.keys().cloned().collect(),
        Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        None => vec![
            schedule
                .strategy
                .clone()
                .unwrap_or_else(|| scenario.strategies[0].name.clone()),
        ],
    };
    names
        .iter()
        .map(|n| {
            scenario.strategies.get(n).map(Some).ok_or_else(|| {
                let all: Vec<&str> = scenario.strategies.keys().map(String::as_str).collect();
                anyhow!(
                    "--strategy {n}: no such strategy; {} has {}",
                    scenario.name,
                    all.join(", ")
                )
            })
        })
        .collect()
}
