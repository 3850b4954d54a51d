//! `contention sweep`: runs the chosen strategies and levels at each value of one varied
//! parameter (or the client count), `--repeat` times each with the next seed, and aggregates
//! the cells into points (mean/min/max). It drives runs and shows progress; the aggregation and
//! rendering are `report::sweep`'s.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{anyhow, bail};

use super::Exit;
use super::progress::Progress;
use super::run::{pick_strategies, run_cells, settings};
use super::workspace::Workspace;
use crate::cli::SweepArgs;
use crate::engine::EngineKind;
use crate::isolation::Isolation;
use crate::report::document::{self, Kind};
use crate::report::sweep::{Point, SweepReport, Swept, render_csv, render_table};
use crate::report::{Cell, Format};
use crate::runner::Settings;
use crate::scenario::{self, Scenario};

/// What `--vary` changes.
enum Varied {
    Clients,
    Param(String),
}

/// One point of a sweep to run: the engine, the value, the scenario and settings it gives.
type Plan = (EngineKind, Swept, Scenario, Settings);

pub async fn sweep(
    args: SweepArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Exit> {
    let (name, values) = args
        .vary
        .split_once('=')
        .map(|(n, v)| {
            (
                n.trim().to_string(),
                v.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>(),
            )
        })
        .ok_or_else(|| {
            anyhow!(
                "--vary {}: expected NAME=V1,V2,... (e.g. clients=1,2,4)",
                args.vary
            )
        })?;
    if values.is_empty() {
        bail!("--vary {name}=: no values given");
    }
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let engines = args.db.engines()?;
    let base = scenario::load_on(&args.scenario, &args.load.params, engines[0])?;
    if base.is_replay_only() {
        bail!(
            "{}: a replay-only scenario has no strategies to sweep",
            base.name
        );
    }
    let mut name = name;
    let varied = if name == "clients" {
        Varied::Clients
    } else {
        let p = base
            .params
            .keys()
            .find(|k| k.replace('-', "_") == name.replace('-', "_"))
            .ok_or_else(|| {
                let all: Vec<&str> = base.params.keys().map(String::as_str).collect();
                anyhow!(
                    "--vary {name}: neither `clients` nor a parameter of {}; its parameters: {}",
                    base.name,
                    all.join(", ")
                )
            })?;
        name = p.clone();
        Varied::Param(p.clone())
    };

    // One scenario and settings per engine and value, all checked before anything runs.
    let mut plans: Vec<Plan> = Vec::new();
    for &engine in &engines {
        for v in &values {
            let mut load = args.load.clone();
            match &varied {
                Varied::Clients => {
                    let n: u32 = v
                        .parse()
                        .map_err(|_| anyhow!("--vary clients={v}: expected a whole number"))?;
                    crate::limits::clients(n).map_err(|e| anyhow!("--vary clients={v}: {e}"))?;
                    load.clients = Some(n);
                }
                Varied::Param(p) => load.params.push((p.clone(), v.clone())),
            }
            let mut sc = scenario::load_on(&args.scenario, &load.params, engine)?;
            args.db.apply_sets(&mut sc);
            let st = settings(&load, &sc)?;
            plans.push((engine, Swept::parse(v), sc, st));
        }
    }
    let strategy_names: Vec<String> = pick_strategies(&base, &args.strategy)?
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let levels_on = |engine: EngineKind| -> Vec<Isolation> {
        args.isolation
            .as_ref()
            .map_or_else(|| base.run.isolation.clone(), |l| l.on(engine))
    };
    let cells_per_run = |engine: EngineKind| -> usize {
        strategy_names
            .iter()
            .map(|n| {
                if base.strategies[n].isolation.is_some() {
                    1
                } else {
                    levels_on(engine).len()
                }
            })
            .sum()
    };
    let total: u64 = plans
        .iter()
        .map(|(e, _, _, _)| (args.repeat as usize * cells_per_run(*e)) as u64)
        .sum();

    let progress = Progress::new(total, !args.quiet && args.format != Format::Json);
    let quiet = args.quiet || args.format == Format::Json || progress.is_shown();
    let mut say = |msg: String| {
        if !quiet {
            let _ = writeln!(err, "contention: {msg}");
        }
    };
    let mut runs: HashMap<(EngineKind, String, Isolation, usize), Vec<Cell>> = HashMap::new();
    let mut servers = Vec::new();
    let mut nodes = Vec::new();
    let mut interrupted = false;
    for &engine in &engines {
        let mine: Vec<(usize, &Plan)> = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| p.0 == engine)
            .collect();
        let max_clients = mine
            .iter()
            .map(|(_, (_, _, sc, st))| {
                let auditors = sc.auditors.iter().map(|a| a.clients).sum();
                crate::limits::connections_needed(st.clients, auditors, st.connections)
            })
            .max()
            .unwrap_or(1);
        let first = &mine.first().expect("a point on this engine").1.2;
        let ws = Workspace::for_scenario(&args.db, first, max_clients, &mut say).await?;
        // A --db server may take fewer connections than the largest point opens: refuse
        // before the first cell starts.
        let too_many = mine.iter().find_map(|(_, (_, value, sc, st))| {
            let auditors = sc.auditors.iter().map(|a| a.clients).sum();
            crate::limits::server_connections(&ws.info, st.clients, auditors, st.connections)
                .err()
                .map(|e| format!("--vary {name}={value}: {e}"))
        });
        if let Some(e) = too_many {
            if let Err(closing) = ws.close(&mut say).await {
                say(format!("{closing:#}"));
            }
            bail!("{} on {engine}: {e}", base.name);
        }
        let levels = levels_on(engine);
        let mut failure = None;
        'plans: for (i, (_, value, sc, st)) in &mine {
            for r in 0..args.repeat {
                let mut st = st.clone();
                st.seed = args.load.seed + u64::from(r);
                st.live = Some(progress.live());
                if let Some(h) = &st.history {
                    let run = if args.repeat > 1 {
                        format!(".run{}", r + 1)
                    } else {
                        String::new()
                    };
                    st.history = Some(crate::history::tagged(h, &format!("{name}={value}{run}")));
                }
                let strategies: Vec<_> = strategy_names.iter().map(|n| &sc.strategies[n]).collect();
                let mut tick = |msg: String| {
                    let on = if engines.len() > 1 {
                        format!("{engine}: ")
                    } else {
                        String::new()
                    };
                    let line = format!(
                        "{on}{}={} run {}/{}: {msg}",
                        name,
                        value,
                        r + 1,
                        args.repeat
                    );
                    progress.cell(line.clone());
                    say(line);
                };
                let (cells, failed) = run_cells(
                    &ws.targets(),
                    sc,
                    &strategies,
                    &levels,
                    &st,
                    &ws.abort,
                    &mut tick,
                )
                .await;
                for c in cells {
                    runs.entry((engine, c.strategy.clone(), c.isolation, *i))
                        .or_default()
                        .push(c);
                }
                if let Some(e) = failed {
                    failure = Some(e);
                    break 'plans;
                }
                if ws.abort.is_cancelled() {
                    break 'plans;
                }
            }
        }
        interrupted = ws.abort.is_cancelled();
        servers.push(ws.info.clone());
        if nodes.is_empty() {
            nodes = ws.node_servers(first);
        }
        ws.close_after(failure, &mut say).await?;
        if interrupted {
            break;
        }
    }
    progress.finish();

    // Points grouped by series (engine, strategy, level), in value order.
    let mut points = Vec::new();
    for &engine in &engines {
        for strategy in &strategy_names {
            let series: Vec<Isolation> = match base.strategies[strategy].isolation {
                Some(pinned) => vec![pinned],
                None => levels_on(engine),
            };
            for level in series {
                for (i, (e, value, _, _)) in plans.iter().enumerate() {
                    if *e != engine {
                        continue;
                    }
                    if let Some(cells) = runs.remove(&(engine, strategy.clone(), level, i)) {
                        points.push(Point::new(value.clone(), cells));
                    }
                }
            }
        }
    }
    let report = SweepReport {
        kind: Kind::Sweep,
        version: document::VERSION,
        tool: document::tool(),
        scenario: base,
        server: servers[0].clone(),
        servers: if engines.len() > 1 {
            servers
        } else {
            Vec::new()
        },
        nodes,
        vary: name,
        values: plans
            .iter()
            .filter(|p| p.0 == engines[0])
            .map(|p| p.1.clone())
            .collect(),
        repeat: args.repeat,
        settings: plans[0].3.clone(),
        points,
        interrupted,
    };
    if let Some(path) = &args.output {
        crate::report::write_files(path, &report, |w| render_csv(&report, w))?;
    }
    if let Some(path) = &args.plot {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| anyhow!("--plot {}: {e}", path.display()))?;
        }
        crate::report::plot::render(&report, path)?;
    }
    match args.format {
        Format::Table => render_table(&report, false, out)?,
        Format::Markdown => render_table(&report, true, out)?,
        Format::Csv => render_csv(&report, out)?,
        Format::Json => {
            crate::report::json(out, &report)?;
        }
    }
    Ok(if interrupted {
        Exit::signalled()
    } else {
        Exit::Ok
    })
}
