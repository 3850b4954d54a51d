//! The results of a run as data ([`RunReport`], one [`Cell`] per strategy and isolation level)
//! and their rendering as a table, Markdown, CSV or JSON into any `impl Write`. Every document
//! the lab writes is a type of this module's children (see [`document`]), read back by the same
//! types.
//!
//! Rendering only: this module must not run anything or decide outcomes.

pub mod bench;
pub mod compare;
pub mod document;
pub mod html;
pub mod plot;
pub mod sweep;
mod table;

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::check::Measured;
use crate::engine::{EngineKind, ServerInfo};
use crate::expect::Observed;
use crate::isolation::Isolation;
use crate::outcome::Abort;
use crate::runner::{Outcome, Settings};
use crate::scenario::{Scenario, Side};
use crate::stats::Stats;
use document::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
}

/// What an abort class means, in a few words.
pub fn abort_meaning(a: Abort) -> &'static str {
    match a {
        Abort::Serialization => "serialization failure",
        Abort::Deadlock => "deadlock detected",
        Abort::LockUnavailable => "lock not available",
        Abort::Conflict => "the strategy's own check (retry_if, retry_on)",
        Abort::Other => "any other SQL error (by code below)",
    }
}

/// One strategy at one isolation level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// The engine it ran on (files written before engines existed: postgres).
    #[serde(default)]
    pub engine: EngineKind,
    pub strategy: String,
    pub isolation: Isolation,
    /// The engine's own code behind each abort class (`serialization` -> `40001` or `1020`).
    #[serde(default)]
    pub abort_codes: std::collections::BTreeMap<Abort, String>,
    /// The strategy pins its level (the `--isolation` asked for is ignored).
    pub pinned: bool,
    /// Start-up of the clients: from the reset database to the start barrier (0 in files
    /// written before it was recorded).
    #[serde(default)]
    pub startup_s: f64,
    pub elapsed_s: f64,
    pub ops_per_s: f64,
    pub stats: Stats,
    pub auditors: Vec<AuditorCell>,
    pub invariants: Vec<Measured>,
    /// Expectations that did not hold (declared or from `--expect`).
    pub failures: Vec<String>,
    /// Expectations checked on this cell (declared or from `--expect`), held or not.
    #[serde(default)]
    pub checked: u32,
    pub interrupted: bool,
    /// The cell's recorded history (`--history`), if one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<CellHistory>,
}

/// Where a cell's history was written, and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellHistory {
    /// The file, as written (relative to where the run started, if the flag was relative).
    pub file: std::path::PathBuf,
    /// The Elle workload (`adya check -m`): list-append or rw-register.
    pub model: crate::scenario::HistoryModel,
    /// Operations (invocations) in it.
    pub operations: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditorCell {
    pub name: String,
    pub stats: Stats,
}

impl Cell {
    pub fn new(
        engine: EngineKind,
        strategy: String,
        isolation: Isolation,
        pinned: bool,
        outcome: Outcome,
        invariants: Vec<Measured>,
    ) -> Cell {
        let secs = outcome.elapsed.as_secs_f64();
        let stats = outcome.stats;
        Cell {
            engine,
            abort_codes: Abort::ALL
                .into_iter()
                .map(|a| (a, engine.abort_code(a).to_string()))
                .collect(),
            strategy,
            isolation,
            pinned,
            startup_s: outcome.startup.as_secs_f64(),
            elapsed_s: secs,
            ops_per_s: if secs > 0.0 {
                stats.committed as f64 / secs
            } else {
                0.0
            },
            stats,
            auditors: outcome
                .auditors
                .into_iter()
                .map(|(name, stats)| AuditorCell { name, stats })
                .collect(),
            invariants,
            failures: Vec::new(),
            checked: 0,
            interrupted: outcome.interrupted,
            history: None,
        }
    }

    pub fn label(&self) -> String {
        format!("{}@{}", self.strategy, self.isolation)
    }

    /// The label, prefixed with the engine when a report holds several (`mariadb:naive@rr`).
    pub fn label_in(&self, report: &RunReport) -> String {
        self.label_in_engines(report.engines().len() > 1)
    }

    /// The label, prefixed with the engine when `several` engines ran.
    pub fn label_in_engines(&self, several: bool) -> String {
        if several {
            format!("{}:{}", self.engine, self.label())
        } else {
            self.label()
        }
    }
}

impl Observed for Cell {
    fn invariants(&self) -> Vec<(&str, Side, i64)> {
        self.invariants
            .iter()
            .map(|m| (m.name.as_str(), m.side, m.value))
            .collect()
    }

    fn aborts(&self, class: Abort) -> u64 {
        self.stats.abort(class)
    }

    fn abort_rate(&self) -> f64 {
        sweep::abort_rate(self)
    }

    fn ops_per_s(&self) -> f64 {
        self.ops_per_s
    }
}

/// Everything a run produced, with what is needed to repeat it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// [`Kind::Run`], to tell run reports from sweeps and replays in files.
    pub kind: Kind,
    /// [`document::VERSION`] when written (0: before documents had versions).
    #[serde(default)]
    pub version: u32,
    pub tool: String,
    pub scenario: Scenario,
    pub settings: Settings,
    /// The (first) engine's server.
    pub server: ServerInfo,
    /// Every engine's server, when several ran side by side (`--engine a,b`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerInfo>,
    /// Each node's server, for a scenario that spans several (`[node.*]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeServer>,
    pub database: String,
    pub cells: Vec<Cell>,
    /// Remarks for the reader (e.g. READ UNCOMMITTED runs as READ COMMITTED in PostgreSQL).
    pub notes: Vec<String>,
    /// What `--expect` checked, when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectations: Option<Checked>,
    pub interrupted: bool,
}

/// One node's server, as a report names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeServer {
    pub node: String,
    /// Where it is, for people (never with a password).
    pub server: String,
}

/// What `--expect` checked over a run: how many expectations, how many failed, and the cells
/// where `--expect declared` found nothing declared (so nothing was checked there).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checked {
    pub checked: u32,
    pub failed: u32,
    pub cells: u32,
    pub undeclared: Vec<String>,
}

impl Checked {
    /// The lines a table prints: the count, then one line per cell with nothing declared.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "expectations: {} checked in {} cells, {} failed",
            self.checked, self.cells, self.failed
        )];
        out.extend(
            self.undeclared
                .iter()
                .map(|c| format!("expectations: nothing declared for {c}: not checked")),
        );
        out
    }
}

impl RunReport {
    /// The engines whose cells the report holds, in order.
    pub fn engines(&self) -> Vec<EngineKind> {
        let mut out: Vec<EngineKind> = Vec::new();
        for c in &self.cells {
            if !out.contains(&c.engine) {
                out.push(c.engine);
            }
        }
        if out.is_empty() {
            out.push(self.server.engine);
        }
        out
    }

    /// An abort class's column header: the engines' own codes (`40001`, `1213/40P01`, ...).
    pub fn abort_header(&self, class: Abort) -> String {
        let mut codes: Vec<&str> = Vec::new();
        for e in self.engines() {
            let code = e.abort_code(class);
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes.join("/")
    }

    /// What the abort columns mean, with each engine's codes.
    pub fn abort_legend(&self) -> String {
        let engines = self.engines();
        let several = engines.len() > 1;
        let mut parts = Vec::new();
        for class in [
            Abort::Serialization,
            Abort::Deadlock,
            Abort::LockUnavailable,
        ] {
            let codes: Vec<String> = engines
                .iter()
                .map(|e| {
                    if several {
                        format!("{} on {}", e.abort_code(class), e.title())
                    } else {
                        e.abort_code(class).to_string()
                    }
                })
                .collect();
            parts.push(if several {
                format!("{} ({})", abort_meaning(class), codes.join(", "))
            } else {
                format!("{} {}", codes.join(", "), abort_meaning(class))
            });
        }
        parts.push(format!("conflict = {}", abort_meaning(Abort::Conflict)));
        parts.push(format!("other = {}", abort_meaning(Abort::Other)));
        parts.join(", ")
    }

    /// One line per cell whose attempts failed with class `other`: the error codes and their
    /// counts (`naive@rc: 23505 ×12, 23P01 ×2`), writers and auditors together.
    pub fn other_codes(&self) -> Vec<String> {
        self.cells
            .iter()
            .filter_map(|c| {
                let mut codes = c.stats.other_codes.clone();
                for a in &c.auditors {
                    for (k, v) in &a.stats.other_codes {
                        *codes.entry(k.clone()).or_default() += v;
                    }
                }
                (!codes.is_empty()).then(|| {
                    let list: Vec<String> =
                        codes.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
                    format!("{}: {}", c.label_in(self), list.join(", "))
                })
            })
            .collect()
    }

    /// One line per cell with operations of unknown outcome or injected faults: counts by
    /// kind, then the first few with when they happened (the JSON lists up to
    /// [`crate::stats::FAULTS_KEPT`] per cell).
    pub fn fault_lines(&self) -> Vec<String> {
        const SHOWN: usize = 3;
        let mut out = Vec::new();
        for c in &self.cells {
            let label = c.label_in(self);
            let unknown: u64 =
                c.stats.unknown + c.auditors.iter().map(|a| a.stats.unknown).sum::<u64>();
            if unknown > 0 {
                out.push(format!(
                    "unknown outcome, {label}: {unknown} operation(s) lost the connection during COMMIT (counted neither as committed nor as aborted)"
                ));
            }
            let partial: u64 =
                c.stats.partial + c.auditors.iter().map(|a| a.stats.partial).sum::<u64>();
            if partial > 0 {
                out.push(format!(
                    "partly committed, {label}: {partial} operation(s) committed on some nodes and failed on a later one (not retried)"
                ));
            }
            let lost: u64 = c.stats.lost + c.auditors.iter().map(|a| a.stats.lost).sum::<u64>();
            if lost > 0 {
                out.push(format!(
                    "lost connection, {label}: {lost} operation(s) lost a connection, or could not reach a node, outside a COMMIT (rolled back by the server, not retried)"
                ));
            }
            let mut events: Vec<&crate::stats::FaultEvent> = c
                .stats
                .faults
                .iter()
                .chain(c.auditors.iter().flat_map(|a| a.stats.faults.iter()))
                .collect();
            let total =
                c.stats.faults_total + c.auditors.iter().map(|a| a.stats.faults_total).sum::<u64>();
            if total == 0 {
                continue;
            }
            events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
            let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
            for e in &events {
                *kinds.entry(e.fault.as_str()).or_default() += 1;
            }
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            let first: Vec<String> = events
                .iter()
                .take(SHOWN)
                .map(|e| {
                    format!(
                        "{} at {:.0} ms, {} after {}",
                        e.fault, e.at_ms, e.who, e.step
                    )
                })
                .collect();
            out.push(format!(
                "faults injected, {label}: {total} ({}{}); first: {}",
                kinds.join(", "),
                if (events.len() as u64) < total {
                    ", by kind among those listed"
                } else {
                    ""
                },
                first.join("; ")
            ));
        }
        out
    }

    pub fn failures(&self) -> impl Iterator<Item = (&Cell, &String)> {
        self.cells
            .iter()
            .flat_map(|c| c.failures.iter().map(move |f| (c, f)))
    }
}

/// A run's settings as (name, value) in the names of the JSON, `None` when unset: what the HTML
/// page shows and `compare` diffs. Every field is named here (a new one will not compile until
/// it is listed).
pub fn settings_fields(s: &Settings) -> Vec<(&'static str, Option<String>)> {
    let Settings {
        clients,
        duration,
        operations,
        timeout,
        think,
        max_tries,
        seed,
        connections,
        pipeline,
        live: _,
        history: _,
    } = s;
    let time = |d: &std::time::Duration| Some(humantime::format_duration(*d).to_string());
    vec![
        ("clients", Some(clients.to_string())),
        ("duration", time(duration)),
        ("operations", operations.map(|n| n.to_string())),
        ("timeout", timeout.as_ref().and_then(time)),
        ("think", time(think)),
        ("max_tries", Some(max_tries.to_string())),
        ("seed", Some(seed.to_string())),
        ("connections", connections.map(|n| n.to_string())),
        ("pipeline", Some(pipeline.to_string())),
    ]
}

/// The lab's two table looks: rounded boxes on a terminal, or a Markdown table.
pub fn style(table: &mut tabled::Table, markdown: bool) {
    if markdown {
        table.with(tabled::settings::Style::markdown());
    } else {
        table.with(tabled::settings::Style::rounded());
    }
}

/// Writes `value` as pretty JSON and a newline in one write: stdout is line-buffered, and a
/// run's document written through it directly took a system call per line (1,853 for one
/// `run tpcb --format json`, `strace -e write`).
pub fn json(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    out.write_all(&text)
}

/// Writes `path` (JSON) and the same path with `.csv`: the result files of runs and sweeps.
pub fn write_files(
    path: &std::path::Path,
    document: &impl Serialize,
    csv: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<()> {
    let named =
        |p: &std::path::Path, e: io::Error| anyhow::anyhow!("--output {}: {e}", p.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| named(path, e))?;
    }
    let mut file = std::fs::File::create(path).map_err(|e| named(path, e))?;
    json(&mut file, document).map_err(|e| named(path, e))?;
    let csv_path = path.with_extension("csv");
    let mut file = std::fs::File::create(&csv_path).map_err(|e| named(&csv_path, e))?;
    csv(&mut file).map_err(|e| named(&csv_path, e))?;
    Ok(())
}

pub fn render(report: &RunReport, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => table::render(report, false, out),
        Format::Markdown => table::render(report, true, out),
        Format::Json => json(out, report),
        Format::Csv => csv(report, out),
    }
}

fn csv(report: &RunReport, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = [
        "scenario",
        "engine",
        "strategy",
        "isolation",
        "pinned",
        "committed",
        "rejected",
    ]
    .map(String::from)
    .to_vec();
    let invariants: Vec<&str> = report
        .scenario
        .invariants
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    header.extend(invariants.iter().map(|s| s.to_string()));
    header.extend(
        Abort::ALL
            .iter()
            .map(|a| format!("aborts_{}", a.name().replace('-', "_"))),
    );
    header.extend(
        [
            "retries",
            "failed",
            "seconds",
            "ops_per_s",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "expectations",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    for c in &report.cells {
        let mut row = vec![
            report.scenario.name.clone(),
            c.engine.name().to_string(),
            c.strategy.clone(),
            c.isolation.to_string(),
            c.pinned.to_string(),
            c.stats.committed.to_string(),
            c.stats.total_rejected().to_string(),
        ];
        for name in &invariants {
            let v = c
                .invariants
                .iter()
                .find(|m| m.name == *name)
                .map_or(0, |m| m.value);
            row.push(v.to_string());
        }
        row.extend(Abort::ALL.iter().map(|a| c.stats.abort(*a).to_string()));
        row.extend([
            c.stats.retries.to_string(),
            c.stats.failed.to_string(),
            format!("{:.3}", c.elapsed_s),
            format!("{:.1}", c.ops_per_s),
            format!("{:.3}", c.stats.latency_ms(0.5)),
            format!("{:.3}", c.stats.latency_ms(0.95)),
            format!("{:.3}", c.stats.latency_ms(0.99)),
            if c.failures.is_empty() {
                "ok".into()
            } else {
                c.failures.join("; ")
            },
        ]);
        w.write_record(&row)?;
    }
    w.flush()
}
