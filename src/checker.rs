//! An independent history checker, run on a recorded history (`--history`): `adya` (a native
//! implementation of Elle's analysis) or `elle-cli` (Elle itself), whichever is on PATH, asked
//! whether the history is serializable and which anomalies it shows. Its verdict is read as
//! data, with the transactions each anomaly names looked up in the history file (their
//! micro-operations and the scenario steps that did them).
//!
//! This module runs the checker and reads files; it must not render (that is `report::html`)
//! nor decide what the lab's own verdict is.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value as Json;

use crate::scenario::HistoryModel;

/// The model every history is checked against: the strongest that isolation levels promise.
pub const MODEL: &str = "serializable";

/// A checker found on PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    Adya,
    ElleCli,
}

impl Checker {
    pub fn name(self) -> &'static str {
        match self {
            Checker::Adya => "adya",
            Checker::ElleCli => "elle-cli",
        }
    }

    /// The first of adya, elle-cli that runs.
    pub fn find() -> Option<Checker> {
        [Checker::Adya, Checker::ElleCli].into_iter().find(|c| {
            Command::new(c.name())
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
    }

    /// The command line that checks `file`, as a user would type it.
    pub fn command(self, file: &Path, model: HistoryModel) -> Vec<String> {
        let file = file.display().to_string();
        match self {
            Checker::Adya => vec![
                "adya".into(),
                "check".into(),
                "-m".into(),
                model.name().into(),
                "-c".into(),
                MODEL.into(),
                file,
            ],
            Checker::ElleCli => vec![
                "elle-cli".into(),
                "--model".into(),
                model.name().into(),
                "--consistency-models".into(),
                MODEL.into(),
                file,
            ],
        }
    }

    /// Checks one history file.
    pub fn check(self, file: &Path, model: HistoryModel) -> anyhow::Result<Verdict> {
        let mut argv = self.command(file, model);
        if self == Checker::Adya {
            argv.insert(2, "--json".into());
        }
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| anyhow::anyhow!("{}: {e}", argv[0]))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let command = self.command(file, model).join(" ");
        let mut verdict = match self {
            Checker::Adya => {
                let report: AdyaReport = serde_json::from_str(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "{command}: exit {:?}, no JSON report ({e}): {}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )
                })?;
                Verdict {
                    checker: self.name().into(),
                    command,
                    valid: match report.valid {
                        Json::Bool(true) => Valid::Yes,
                        Json::Bool(false) => Valid::No,
                        _ => Valid::Unknown,
                    },
                    anomaly_types: report.anomaly_types,
                    anomalies: report
                        .anomalies
                        .into_iter()
                        .map(|(kind, list)| {
                            let n = list.len();
                            let first = list.into_iter().next();
                            Found {
                                kind,
                                count: n,
                                explanation: first
                                    .as_ref()
                                    .map(|a| a.explanation.clone())
                                    .unwrap_or_default(),
                                ops: first.map(|a| a.ops).unwrap_or_default(),
                                transactions: Vec::new(),
                            }
                        })
                        .collect(),
                    not: report.not,
                    text: String::new(),
                }
            }
            // elle-cli's output is text: its exit status and what it printed.
            Checker::ElleCli => Verdict {
                checker: self.name().into(),
                command,
                valid: match out.status.code() {
                    Some(0) => Valid::Yes,
                    Some(1) => Valid::No,
                    _ => Valid::Unknown,
                },
                anomaly_types: Vec::new(),
                anomalies: Vec::new(),
                not: Vec::new(),
                text,
            },
        };
        verdict.look_up(file)?;
        Ok(verdict)
    }
}

/// Whether the history satisfies serializability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Valid {
    Yes,
    No,
    /// The checker could not tell (no dependencies inferred, a search timed out).
    Unknown,
}

/// A checker's answer for one history.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `adya` or `elle-cli`.
    pub checker: String,
    /// How to run it by hand (without `--json`).
    pub command: String,
    pub valid: Valid,
    pub anomaly_types: Vec<String>,
    /// One entry per anomaly type, with its first instance.
    pub anomalies: Vec<Found>,
    /// The weakest models the anomalies rule out.
    pub not: Vec<String>,
    /// A checker whose output is text only: what it printed.
    pub text: String,
}

/// The first anomaly of one type.
#[derive(Debug, Clone)]
pub struct Found {
    pub kind: String,
    /// Anomalies of this type in the history.
    pub count: usize,
    pub explanation: String,
    /// History indices of the completions involved.
    pub ops: Vec<u64>,
    /// Those operations, from the history file.
    pub transactions: Vec<Transaction>,
}

/// One operation of the history, as the lab recorded it.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub index: u64,
    pub process: i64,
    /// ok, fail or info.
    pub kind: String,
    /// Micro-operations as JSON (`["append",2,100012]`), each with the scenario step (from 1)
    /// that did it, when recorded.
    pub mops: Vec<(String, Option<usize>)>,
}

impl Verdict {
    /// Fills each anomaly's transactions from the history file.
    fn look_up(&mut self, file: &Path) -> anyhow::Result<()> {
        let wanted: std::collections::BTreeSet<u64> = self
            .anomalies
            .iter()
            .flat_map(|a| a.ops.iter().copied())
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let mut found = BTreeMap::new();
        for line in text.lines() {
            let Ok(op) = serde_json::from_str::<Json>(line) else {
                continue;
            };
            let Some(index) = op["index"].as_u64().filter(|i| wanted.contains(i)) else {
                continue;
            };
            let steps: Vec<Option<usize>> = match op["steps"].as_array() {
                Some(s) => s.iter().map(|n| n.as_u64().map(|n| n as usize)).collect(),
                None => Vec::new(),
            };
            let mops = op["value"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .enumerate()
                        .map(|(i, m)| (m.to_string(), steps.get(i).copied().flatten()))
                        .collect()
                })
                .unwrap_or_default();
            found.insert(
                index,
                Transaction {
                    index,
                    process: op["process"].as_i64().unwrap_or(-1),
                    kind: op["type"].as_str().unwrap_or("?").to_string(),
                    mops,
                },
            );
        }
        for a in &mut self.anomalies {
            a.transactions = a.ops.iter().filter_map(|i| found.get(i).cloned()).collect();
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct AdyaReport {
    valid: Json,
    #[serde(default)]
    anomaly_types: Vec<String>,
    #[serde(default)]
    anomalies: BTreeMap<String, Vec<AdyaAnomaly>>,
    #[serde(default)]
    not: Vec<String>,
}

#[derive(Deserialize)]
struct AdyaAnomaly {
    #[serde(default)]
    ops: Vec<u64>,
    #[serde(default)]
    explanation: String,
}

/// What a report can say about one cell's history.
#[derive(Debug, Clone)]
pub enum CellCheck {
    /// No history was recorded for the cell.
    NoHistory,
    /// Neither adya nor elle-cli is on PATH.
    NoChecker,
    /// The checker could not check it (the file is gone, the checker failed).
    Failed(String),
    Checked(Box<Verdict>),
}

/// Checks each cell's history, if it has one, with the checker on PATH.
pub fn check_cells(cells: &[crate::report::Cell]) -> Vec<CellCheck> {
    let checker = if cells.iter().any(|c| c.history.is_some()) {
        Checker::find()
    } else {
        None
    };
    cells
        .iter()
        .map(|c| match (&c.history, checker) {
            (None, _) => CellCheck::NoHistory,
            (Some(_), None) => CellCheck::NoChecker,
            (Some(h), Some(checker)) => match checker.check(&h.file, h.model) {
                Ok(v) => CellCheck::Checked(Box::new(v)),
                Err(e) => CellCheck::Failed(format!("{e:#}")),
            },
        })
        .collect()
}
