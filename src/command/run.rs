//! `contention run`: resolve the scenario and flags, provision a server and the run's database,
//! run every (strategy, isolation) cell, measure invariants, check expectations, render the
//! report, and clean up on every path (success, error, Ctrl-C).

use std::io::Write;

use anyhow::{Context as _, anyhow, bail};
use tokio_util::sync::CancellationToken;

use super::Exit;
use super::progress::Progress;
use super::workspace::Workspace;
use crate::check;
use crate::cli::{LoadArgs, RunArgs};
use crate::engine::EngineKind;
use crate::expect::Expectation;
use crate::isolation::Isolation;
use crate::limits;
use crate::report::document::{self, Kind};
use crate::report::{self, Cell, RunReport};
use crate::runner::{self, Settings};
use crate::scenario::{self, Scenario, Side, Strategy};

/// What `--expect` asks for.
enum Check {
    /// The scenario's documented expectations for each cell.
    Declared,
    /// An expectation for every cell (writer side), or for the cells a scope names:
    /// `serializable: no-anomalies`, `naive@rc: anomalies`, `for-update: aborts<=5%`.
    Every {
        scope: Option<String>,
        rule: Expectation,
    },
}

impl Check {
    fn parse(text: &str) -> anyhow::Result<Check> {
        if text == "declared" {
            return Ok(Check::Declared);
        }
        let keywords = ["anomaly", "aborts", "no-aborts"];
        let (scope, rule) = match text.split_once(':') {
            Some((head, rest)) if !keywords.contains(&head.trim()) => {
                (Some(head.trim().to_string()), rest.trim())
            }
            _ => (None, text),
        };
        let rule = rule
            .parse()
            .map_err(|m| anyhow!("--expect {text}: {m}, or declared"))?;
        Ok(Check::Every { scope, rule })
    }
}

/// A scope names a strategy, an isolation level, an engine, or one cell (`strategy@level`).
fn in_scope(scope: &str, cell: &Cell) -> bool {
    scope_matches(scope, cell.engine, &cell.strategy, cell.isolation)
}

fn scope_matches(scope: &str, engine: EngineKind, strategy: &str, level: Isolation) -> bool {
    scope == "*"
        || scope == engine.name()
        || scope == strategy
        || scope == level.to_string()
        || scope == format!("{strategy}@{level}")
}

pub async fn run(args: RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Exit> {
    // One scenario per engine: the same file in each engine's dialect.
    let engines = args.db.engines()?;
    let scenarios = engines
        .iter()
        .map(|&e| {
            scenario::load_on(&args.scenario, &args.load.params, e).map(|mut s| {
                args.db.apply_sets(&mut s);
                s
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let first = &scenarios[0];
    if first.is_replay_only() {
        bail!(
            "{}: its sessions have their own steps and no strategies run under load: use `contention replay {}`",
            first.name,
            args.scenario
        );
    }
    pick_strategies(first, &args.strategy)?;
    let levels_on = |scenario: &Scenario| {
        args.isolation
            .as_ref()
            .map(|l| l.on(scenario.engine))
            .unwrap_or_else(|| scenario.run.isolation.clone())
    };
    let checks = args
        .expect
        .iter()
        .map(|e| Check::parse(e))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The cells this run will have: (engine, strategy, level).
    let mut planned: Vec<(EngineKind, String, Isolation)> = Vec::new();
    for sc in &scenarios {
        let levels = levels_on(sc);
        for st in pick_strategies(sc, &args.strategy)? {
            let cell_levels = st.isolation.map_or_else(|| levels.clone(), |p| vec![p]);
            planned.extend(
                cell_levels
                    .into_iter()
                    .map(|l| (sc.engine, st.name.clone(), l)),
            );
        }
    }
    // A scope that names no cell of the run, or an invariant the scenario does not have, is a
    // typo: a CI check that could never fail.
    for (text, check) in args.expect.iter().zip(&checks) {
        if let Check::Every {
            rule: Expectation::Anomaly(name),
            ..
        } = check
            && !first.invariants.iter().any(|i| &i.name == name)
        {
            let names: Vec<&str> = first.invariants.iter().map(|i| i.name.as_str()).collect();
            bail!(
                "--expect {text}: {} has no invariant `{name}`; it has {}",
                first.name,
                names.join(", ")
            );
        }
        if let Check::Every {
            scope: Some(scope), ..
        } = check
            && !planned
                .iter()
                .any(|(e, st, l)| scope_matches(scope, *e, st, *l))
        {
            let cells: Vec<String> = planned
                .iter()
                .map(|(_, st, l)| format!("{st}@{l}"))
                .collect();
            bail!(
                "--expect {text}: `{scope}` names no cell of this run (a strategy, a level, an engine or strategy@level; this run has {})",
                cells.join(", ")
            );
        }
    }
    let settings = settings(&args.load, first)?;
    let quiet = args.quiet;
    let mut say = |msg: String| {
        if !quiet {
            let _ = writeln!(err, "contention: {msg}");
        }
    };
    let cell_count: usize = scenarios
        .iter()
        .map(|sc| {
            let levels = levels_on(sc).len();
            pick_strategies(sc, &args.strategy)
                .map(|st| {
                    st.iter()
                        .map(|s| if s.isolation.is_some() { 1 } else { levels })
                        .sum::<usize>()
                })
                .unwrap_or(0)
        })
        .sum();
    let progress = Progress::new(
        cell_count as u64,
        !quiet && args.format != report::Format::Json,
    );
    let mut settings = settings;
    settings.live = Some(progress.live());
    let several = scenarios.len() > 1;
    let mut cells = Vec::new();
    let mut servers = Vec::new();
    let mut databases = Vec::new();
    let mut nodes = Vec::new();
    let mut interrupted = false;
    // The error that ended the run early (a lost server, a broken statement), and what the
    // clean-up could not undo.
    let mut failure: Option<anyhow::Error> = None;
    let mut left_behind: Vec<String> = Vec::new();
    for scenario in &scenarios {
        let strategies = pick_strategies(scenario, &args.strategy)?;
        let levels = levels_on(scenario);
        let auditor_clients: u32 = scenario.auditors.iter().map(|a| a.clients).sum();
        let ws = Workspace::for_scenario(
            &args.db,
            scenario,
            // A private server sized for the connections, not the clients: each allowed
            // connection costs the server shared memory (a pool of 50 for 10,000 clients).
            limits::connections_needed(settings.clients, auditor_clients, settings.connections),
            &mut say,
        )
        .await?;
        // A --db server may take fewer connections than the cell opens: refuse before it starts.
        if let Err(e) = limits::server_connections(
            &ws.info,
            settings.clients,
            auditor_clients,
            settings.connections,
        ) {
            if let Err(closing) = ws.close(&mut say).await {
                say(format!("{closing:#}"));
            }
            bail!("{} on {}: {e}", scenario.name, scenario.engine);
        }
        let engine = scenario.engine;
        let mut tick = |msg: String| {
            let msg = if several {
                format!("{engine}: {msg}")
            } else {
                msg
            };
            if progress.is_shown() {
                progress.cell(msg);
            } else {
                say(msg);
            }
        };
        let (mut ran, failed) = run_cells(
            &ws.targets(),
            scenario,
            &strategies,
            &levels,
            &settings,
            &ws.abort,
            &mut tick,
        )
        .await;
        let (mut info, db, abort) = (ws.info.clone(), ws.db.clone(), ws.abort.clone());
        nodes.extend(ws.node_servers(scenario));
        let private = ws.server.is_ephemeral();
        // The scenario's [settings] are what its sessions actually ran with.
        for (name, value) in &scenario.settings {
            info.settings
                .insert(name.clone(), format!("{value} (session)"));
        }
        if let Err(e) = ws.close(&mut say).await {
            // A server lost mid-run fails the clean-up too: say what is left, and keep the
            // error that ended the run (if one did) as the run's error.
            left_behind.push(if private {
                format!(
                    "could not drop the run database `{}` ({e:#}); it went with the private server, which is removed",
                    db.name()
                )
            } else {
                format!(
                    "the run database `{}` is left behind ({e:#}); drop it with: {}",
                    db.name(),
                    db.drop_command()
                )
            });
            if failed.is_none() && !abort.is_cancelled() {
                failure = Some(e);
            }
        }
        let throughput: Vec<(String, f64)> = ran.iter().map(|c| (c.label(), c.ops_per_s)).collect();
        let ops_of = |label: &str| throughput.iter().find(|(l, _)| l == label).map(|(_, v)| *v);
        for cell in &mut ran {
            apply_checks(cell, scenario, &checks, &ops_of);
        }
        cells.extend(ran);
        servers.push(info);
        databases.push(db.name().to_string());
        if let Some(e) = failed {
            failure = Some(e);
        }
        if failure.is_some() {
            break;
        }
        if abort.is_cancelled() {
            interrupted = true;
            break;
        }
    }
    progress.finish();

    let mut notes = Vec::new();
    let mut expectations = (!checks.is_empty()).then(|| report::Checked {
        checked: cells.iter().map(|c| c.checked).sum(),
        failed: cells.iter().map(|c| c.failures.len() as u32).sum(),
        cells: cells.iter().filter(|c| c.checked > 0).count() as u32,
        undeclared: Vec::new(),
    });
    if let Some(e) = expectations
        .as_mut()
        .filter(|_| checks.iter().any(|c| matches!(c, Check::Declared)))
    {
        e.undeclared = cells
            .iter()
            .filter(|c| {
                let sc = scenarios
                    .iter()
                    .find(|s| s.engine == c.engine)
                    .expect("a scenario per engine");
                sc.strategies
                    .get(&c.strategy)
                    .is_none_or(|s| s.expectations_at(c.isolation).is_empty())
                    && sc
                        .auditors
                        .iter()
                        .all(|a| a.expectations_at(c.isolation).is_empty())
            })
            .map(|c| c.label_in_engines(several))
            .collect();
    }
    let ran_ru = |e: EngineKind| {
        cells
            .iter()
            .any(|c| c.engine == e && c.isolation == Isolation::Ru)
    };
    if ran_ru(EngineKind::Postgres) {
        notes.push(
            "READ UNCOMMITTED is accepted and runs as READ COMMITTED in PostgreSQL.".to_string(),
        );
    }
    if ran_ru(EngineKind::Mariadb) {
        notes.push(
            "READ UNCOMMITTED is a level of its own in MariaDB: reads see uncommitted writes."
                .to_string(),
        );
    }
    if let Some(e) = &failure {
        if cells.is_empty() {
            // Nothing finished: the error is all there is to say.
            let mut message = format!("{e:#}");
            for l in &left_behind {
                message.push_str(&format!("\n{l}"));
            }
            return Err(anyhow!(message));
        }
        notes.push(format!(
            "the run ended early, after {} cell(s): {e:#}",
            cells.len()
        ));
    }
    notes.extend(left_behind.iter().cloned());
    let report = RunReport {
        kind: Kind::Run,
        version: document::VERSION,
        tool: document::tool(),
        scenario: scenarios.into_iter().next().expect("one engine at least"),
        settings,
        server: servers[0].clone(),
        servers: if several { servers } else { Vec::new() },
        nodes,
        database: databases.join(", "),
        cells,
        notes,
        expectations,
        interrupted,
    };
    if let Some(path) = &args.output {
        report::write_files(path, &report, |w| {
            report::render(&report, report::Format::Csv, w)
        })?;
    }
    report::render(&report, args.format, out)?;
    if let Some(e) = failure {
        writeln!(err, "error: {e:#}")?;
        for l in &left_behind {
            writeln!(err, "error: {l}")?;
        }
        return Ok(Exit::CouldNotRun);
    }
    Ok(if interrupted {
        Exit::signalled()
    } else if report.failures().next().is_some() {
        Exit::ExpectationFailed
    } else {
        Exit::Ok
    })
}

pub(super) fn pick_strategies<'a>(
    scenario: &'a Scenario,
    arg: &str,
) -> anyhow::Result<Vec<&'a Strategy>> {
    if arg.trim() == "all" {
        return Ok(scenario.strategies.values().collect());
    }
    arg.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            scenario.strategies.get(name).ok_or_else(|| {
                anyhow!(
                    "--strategy {name}: {} has no such strategy; it has: {}",
                    scenario.name,
                    scenario
                        .strategies
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        })
        .collect()
}

/// The cell settings: flags over the scenario's `[run]` defaults.
pub fn settings(args: &LoadArgs, scenario: &Scenario) -> anyhow::Result<Settings> {
    let d = &scenario.run;
    // The same ranges as the file's [run] table (checked when the scenario was loaded).
    let flag =
        |name: &str, value: &dyn std::fmt::Display, e: String| anyhow!("--{name} {value}: {e}");
    let clients = args.clients.unwrap_or(d.clients);
    limits::clients(clients).map_err(|e| flag("clients", &clients, e))?;
    if let Some(n) = args.connections {
        limits::connections(n).map_err(|e| flag("connections", &n, e))?;
        if scenario.nodes.len() > 1 {
            bail!(
                "--connections {n}: {} spans several servers, and its clients keep a connection to each; a shared pool is for one database",
                scenario.name
            );
        }
    }
    if let Some(n) = args.max_tries {
        limits::max_tries(n).map_err(|e| flag("max-tries", &n, e))?;
    }
    if let Some(n) = args.operations {
        limits::operations(n).map_err(|e| flag("operations", &n, e))?;
    }
    if let Some(d) = args.duration {
        limits::duration(d).map_err(|e| flag("duration", &humantime::format_duration(d), e))?;
    }
    if let Some(d) = args.think {
        limits::think(d).map_err(|e| anyhow!("--think: {e}"))?;
    }
    if let Some(d) = args.timeout {
        limits::duration(d).map_err(|e| flag("timeout", &humantime::format_duration(d), e))?;
    }
    if args.history.is_some() && scenario.history.is_none() {
        bail!(
            "--history: {} declares no `[history] model`, so its steps say nothing a history could record (list-append and rw-register do)",
            scenario.name
        );
    }
    Ok(Settings {
        clients,
        duration: args.duration.unwrap_or(d.duration),
        // An explicit --duration wins over the scenario's default operation count.
        operations: args.operations.or(if args.duration.is_some() {
            None
        } else {
            d.operations
        }),
        timeout: args.timeout,
        think: args.think.unwrap_or(d.think),
        max_tries: args.max_tries.unwrap_or(d.max_tries),
        seed: args.seed,
        connections: args.connections,
        pipeline: !args.no_pipeline,
        live: None,
        history: args.history.clone(),
    })
}

/// Runs every chosen strategy at every chosen level (a pinned strategy at its own), measuring
/// the invariants after each cell; stops early when `abort` fires. Returns the cells that
/// finished, and the error that ended the run early, if one did (an error that an interrupt
/// caused is the interrupt: none).
pub(super) async fn run_cells(
    targets: &runner::nodes::Targets,
    scenario: &Scenario,
    strategies: &[&Strategy],
    levels: &[Isolation],
    settings: &Settings,
    abort: &CancellationToken,
    say: &mut dyn FnMut(String),
) -> (Vec<Cell>, Option<anyhow::Error>) {
    let db = targets.main();
    let mut cells = Vec::new();
    for strategy in strategies {
        let cell_levels: Vec<Isolation> = match strategy.isolation {
            Some(pinned) => vec![pinned],
            None => levels.to_vec(),
        };
        for level in cell_levels {
            if abort.is_cancelled() {
                return (cells, None);
            }
            say(format!("{} @ {}", strategy.name, level));
            let measured = async {
                let outcome = runner::run_cell(targets, scenario, strategy, level, settings, abort)
                    .await
                    .with_context(|| format!("{} @ {}", strategy.name, level))?;
                // Each invariant is bounded (check::INVARIANT_TIMEOUT). A cell the interrupt cut
                // is still measured (its partial result is printed), for a second at most; an
                // interrupt during the measurement ends it (the run database's drop ends the
                // statement).
                let measure = check::measure(
                    targets,
                    scenario,
                    check::Sources {
                        auditors: &outcome.auditors,
                        sessions: None,
                    },
                );
                let interrupted = || runner::Interrupted("measuring the invariants");
                let measured = if abort.is_cancelled() {
                    tokio::time::timeout(std::time::Duration::from_secs(1), measure)
                        .await
                        .map_err(|_| interrupted())?
                } else {
                    tokio::select! {
                        m = measure => m,
                        () = abort.cancelled() => return Err(interrupted().into()),
                    }
                }
                .with_context(|| {
                    format!("{} @ {}: measuring the invariants", strategy.name, level)
                })?;
                anyhow::Ok((outcome, measured))
            }
            .await;
            match measured {
                Ok((mut outcome, measured)) => {
                    let sink = outcome.history.take();
                    let mut cell = Cell::new(
                        db.kind(),
                        strategy.name.clone(),
                        level,
                        strategy.isolation.is_some(),
                        outcome,
                        measured,
                    );
                    if let (Some(sink), Some(base)) = (sink, &settings.history) {
                        let file =
                            crate::history::cell_path(base, &strategy.name, level, db.kind());
                        match sink.write(&file) {
                            Ok(operations) => {
                                cell.history = Some(crate::report::CellHistory {
                                    file,
                                    model: sink.model(),
                                    operations,
                                })
                            }
                            Err(e) => return (cells, Some(e)),
                        }
                    }
                    cells.push(cell);
                }
                Err(_) if abort.is_cancelled() => return (cells, None),
                Err(e) => return (cells, Some(e)),
            }
        }
    }
    (cells, None)
}

fn apply_checks(
    cell: &mut Cell,
    scenario: &Scenario,
    checks: &[Check],
    ops_of: &dyn Fn(&str) -> Option<f64>,
) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for check in checks {
        match check {
            Check::Every { scope, rule } => {
                if scope.as_deref().is_none_or(|s| in_scope(s, cell)) {
                    checked += 1;
                    failures.extend(rule.check_among(cell, Side::Writer, ops_of));
                }
            }
            Check::Declared => {
                if let Some(s) = scenario.strategies.get(&cell.strategy) {
                    for e in s.expectations_at(cell.isolation) {
                        checked += 1;
                        failures.extend(e.check(cell, Side::Writer));
                    }
                }
                for a in &scenario.auditors {
                    for e in a.expectations_at(cell.isolation) {
                        checked += 1;
                        failures.extend(
                            e.check(cell, Side::Reader)
                                .map(|f| format!("auditor {}: {f}", a.name)),
                        );
                    }
                }
            }
        }
    }
    cell.failures = failures;
    cell.checked = checked;
}
