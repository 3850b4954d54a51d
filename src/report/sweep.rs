//! A sweep's results as data: one [`Point`] per (strategy, isolation, varied value), with
//! mean/min/max over the repetitions of throughput, p99 latency, abort rate and anomaly rate,
//! and every repetition's cell kept for later comparison; rendered as a table, CSV or JSON.
//! It aggregates and formats; it must not run anything.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use tabled::builder::Builder;
use tabled::settings::Alignment;
use tabled::settings::object::Columns;

use super::Cell;
use super::document::Kind;
use crate::engine::{EngineKind, ServerInfo};
use crate::isolation::Isolation;
use crate::runner::Settings;
use crate::scenario::{Scenario, Side};

/// Mean, min and max of one measure over the repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(xs: &[f64]) -> Summary {
        if xs.is_empty() {
            return Summary {
                mean: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Summary { mean, min, max }
    }
}

/// A value of the varied parameter: a whole number, a number, or a word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Swept {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Swept {
    /// `4` -> 4, `0.5` -> 0.5, anything else a word.
    pub fn parse(v: &str) -> Swept {
        if let Ok(i) = v.parse::<i64>() {
            Swept::Int(i)
        } else if let Ok(f) = v.parse::<f64>() {
            Swept::Float(f)
        } else {
            Swept::Text(v.to_string())
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Swept::Int(i) => Some(*i as f64),
            Swept::Float(f) => Some(*f),
            Swept::Text(_) => None,
        }
    }

    /// The same value (1 and 1.0 are).
    pub fn same(&self, other: &Swept) -> bool {
        match (self.as_f64(), other.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

impl std::fmt::Display for Swept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Swept::Int(i) => write!(f, "{i}"),
            Swept::Float(x) => write!(f, "{x}"),
            Swept::Text(s) => f.write_str(s),
        }
    }
}

/// One strategy at one level at one value of the varied parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// The engine it ran on (files written before engines existed: postgres).
    #[serde(default)]
    pub engine: EngineKind,
    pub strategy: String,
    pub isolation: Isolation,
    pub value: Swept,
    pub runs: usize,
    pub ops_per_s: Summary,
    pub p99_ms: Summary,
    /// Aborted attempts / attempts, 0..1.
    pub abort_rate: Summary,
    /// Writer-side anomalies per 1,000 committed operations.
    pub anomaly_rate: Summary,
    pub cells: Vec<Cell>,
}

/// Everything a sweep produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    /// [`Kind::Sweep`].
    pub kind: Kind,
    /// [`super::document::VERSION`] when written (0: before documents had versions).
    #[serde(default)]
    pub version: u32,
    pub tool: String,
    pub scenario: Scenario,
    /// The (first) engine's server.
    pub server: ServerInfo,
    /// Every engine's server, when several ran side by side (`--engine a,b`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerInfo>,
    /// Every node's server, for a scenario that spans several (the first engine's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<super::NodeServer>,
    pub vary: String,
    pub values: Vec<Swept>,
    pub repeat: u32,
    pub settings: Settings,
    pub points: Vec<Point>,
    pub interrupted: bool,
}

impl SweepReport {
    /// Whether the points come from more than one engine.
    pub fn several(&self) -> bool {
        self.points
            .iter()
            .any(|p| p.engine != self.points[0].engine)
    }
}

/// Aborted attempts as a share of all attempts.
pub fn abort_rate(c: &Cell) -> f64 {
    let aborts = c.stats.total_aborts() as f64;
    let attempts = c.stats.committed as f64 + c.stats.total_rejected() as f64 + aborts;
    if attempts > 0.0 {
        aborts / attempts
    } else {
        0.0
    }
}

/// Writer-side anomalies per 1,000 committed operations.
pub fn anomaly_rate(c: &Cell) -> f64 {
    let damage: i64 = c
        .invariants
        .iter()
        .filter(|m| m.side == Side::Writer)
        .map(|m| m.value.abs())
        .sum();
    damage as f64 * 1000.0 / c.stats.committed.max(1) as f64
}

impl Point {
    /// Aggregates the repetitions of one (strategy, isolation, value).
    /// The series' name: the strategy, prefixed with the engine when a sweep holds several.
    pub fn series(&self, several: bool) -> String {
        if several {
            format!("{}:{}", self.engine, self.strategy)
        } else {
            self.strategy.clone()
        }
    }

    pub fn new(value: Swept, cells: Vec<Cell>) -> Point {
        let measure =
            |f: &dyn Fn(&Cell) -> f64| Summary::of(&cells.iter().map(f).collect::<Vec<_>>());
        Point {
            engine: cells[0].engine,
            strategy: cells[0].strategy.clone(),
            isolation: cells[0].isolation,
            value,
            runs: cells.len(),
            ops_per_s: measure(&|c| c.ops_per_s),
            p99_ms: measure(&|c| c.stats.latency_ms(0.99)),
            abort_rate: measure(&abort_rate),
            anomaly_rate: measure(&anomaly_rate),
            cells,
        }
    }
}

fn range(s: Summary, digits: usize, runs: usize) -> String {
    if runs > 1 {
        format!(
            "{:.digits$} [{:.digits$}–{:.digits$}]",
            s.mean, s.min, s.max
        )
    } else {
        format!("{:.digits$}", s.mean)
    }
}

const COLUMNS: [&str; 7] = [
    "strategy",
    "isolation",
    "",
    "ops/s",
    "p99 ms",
    "aborts %",
    "anomalies /1k ops",
];

fn rows(r: &SweepReport) -> Vec<Vec<String>> {
    let several = r.several();
    r.points
        .iter()
        .map(|p| {
            let value = p.value.to_string();
            let pct = Summary {
                mean: p.abort_rate.mean * 100.0,
                min: p.abort_rate.min * 100.0,
                max: p.abort_rate.max * 100.0,
            };
            vec![
                p.series(several),
                p.isolation.to_string(),
                value,
                range(p.ops_per_s, 0, p.runs),
                range(p.p99_ms, 1, p.runs),
                range(pct, 1, p.runs),
                range(p.anomaly_rate, 1, p.runs),
            ]
        })
        .collect()
}

pub fn render_table(r: &SweepReport, markdown: bool, out: &mut dyn Write) -> io::Result<()> {
    let repeat = if r.repeat > 1 {
        format!(", mean [min–max] of {} runs", r.repeat)
    } else {
        String::new()
    };
    writeln!(
        out,
        "{} — sweep over {}{repeat} — {}",
        r.scenario.name,
        r.vary,
        if r.servers.is_empty() {
            std::slice::from_ref(&r.server)
        } else {
            &r.servers[..]
        }
        .iter()
        .map(|s| s
            .version
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "))
        .collect::<Vec<_>>()
        .join(", ")
    )?;
    let mut b = Builder::default();
    let mut header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    header[2] = r.vary.clone();
    b.push_record(header);
    for row in rows(r) {
        b.push_record(row);
    }
    let mut t = b.build();
    super::style(&mut t, markdown);
    t.modify(Columns::new(2..), Alignment::right());
    writeln!(out, "{t}")?;
    writeln!(
        out,
        "aborts % = aborted attempts / attempts; anomalies /1k ops = writer-side damage per 1,000 committed operations"
    )?;
    for n in &r.nodes {
        writeln!(out, "node {}: {}", n.node, n.server)?;
    }
    if r.interrupted {
        writeln!(out, "interrupted: partial results")?;
    }
    Ok(())
}

pub fn render_csv(r: &SweepReport, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "scenario",
        "strategy",
        "isolation",
        "vary",
        "value",
        "runs",
        "ops_per_s_mean",
        "ops_per_s_min",
        "ops_per_s_max",
        "p99_ms_mean",
        "abort_rate_mean",
        "anomaly_rate_mean",
    ])?;
    for p in &r.points {
        let value = p.value.to_string();
        w.write_record([
            r.scenario.name.clone(),
            p.series(r.several()),
            p.isolation.to_string(),
            r.vary.clone(),
            value,
            p.runs.to_string(),
            format!("{:.3}", p.ops_per_s.mean),
            format!("{:.3}", p.ops_per_s.min),
            format!("{:.3}", p.ops_per_s.max),
            format!("{:.3}", p.p99_ms.mean),
            format!("{:.5}", p.abort_rate.mean),
            format!("{:.3}", p.anomaly_rate.mean),
        ])?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_values() {
        let s = Summary::of(&[1.0, 3.0, 2.0]);
        assert_eq!((s.mean, s.min, s.max), (2.0, 1.0, 3.0));
        let e = Summary::of(&[]);
        assert_eq!((e.mean, e.min, e.max), (0.0, 0.0, 0.0));
    }
}
