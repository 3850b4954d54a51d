//! The JSON documents the lab writes, as one type: [`Document`], a run report, a sweep, replays,
//! the anomaly table or a benchmark, each with a top-level `kind` and `version`. Also the two
//! documents that have no renderer of their own in `report` ([`ReplayReport`],
//! [`AnomalyReport`]).
//!
//! Reading a file goes through [`Document::read`]: it names the file in every error, refuses an
//! unknown `kind` and a newer `version`, and recognises files written before `kind` existed by
//! their shape. Every reader of result files (the HTML page, plots, `compare`, the tests) works on
//! these types, never on untyped JSON. This module defines and reads documents; it must not
//! render or run anything.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::RunReport;
use super::bench::BenchReport;
use super::sweep::SweepReport;
use crate::engine::{EngineKind, ServerInfo};
use crate::isolation::Isolation;
use crate::replay::{Replay, Verdict};
use crate::scenario::Scenario;

/// The version of the documents this build writes, and the newest it reads. Files without a
/// `version` were written before it existed; they read as version 0 (the same shape). Version 2:
/// a bench document's `footprint` holds two runs (`pooled`, `connections`), each with its
/// start-up; run cells carry `startup_s`. Older bench documents with a footprint do not read.
pub const VERSION: u32 = 2;

/// What a document is: its top-level `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `contention run --format json` or `--output`.
    Run,
    /// `contention sweep --output` or `--format json`.
    Sweep,
    /// `contention replay --format json`.
    Replay,
    /// `contention anomalies --format json`: the classic anomaly table.
    Anomalies,
    /// `contention bench --format json` or `--output`.
    Bench,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Run,
        Kind::Sweep,
        Kind::Replay,
        Kind::Anomalies,
        Kind::Bench,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Sweep => "sweep",
            Kind::Replay => "replay",
            Kind::Anomalies => "anomalies",
            Kind::Bench => "bench",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `contention <version>`: who wrote a document.
pub fn tool() -> String {
    format!("contention {}", env!("CARGO_PKG_VERSION"))
}

/// `contention replay --format json`: one replay per (strategy, level).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayReport {
    pub kind: Kind,
    #[serde(default)]
    pub version: u32,
    pub tool: String,
    /// The (first) engine's server.
    pub server: ServerInfo,
    /// Every engine's server, when several ran side by side (`--engine a,b`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerInfo>,
    pub scenario: Scenario,
    pub replays: Vec<Replay>,
}

/// `contention anomalies --format json`: the verdict of each classic anomaly at each level, with
/// the replay behind it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnomalyReport {
    pub kind: Kind,
    #[serde(default)]
    pub version: u32,
    pub tool: String,
    /// The (first) engine's server.
    pub server: ServerInfo,
    /// Every engine's server, when several ran side by side (`--engine a,b`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerInfo>,
    pub results: Vec<AnomalyResult>,
}

/// One classic anomaly at one level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnomalyResult {
    /// The engine it was replayed on (files written before engines existed: postgres).
    #[serde(default)]
    pub engine: EngineKind,
    /// Its id in the literature (G0, P4, ...).
    pub anomaly: Option<String>,
    /// The catalogue scenario (`lost-update`, ...).
    pub name: String,
    pub isolation: Isolation,
    pub verdict: Verdict,
    pub replay: Replay,
}

/// Any document the lab writes.
#[derive(Debug, Clone)]
pub enum Document {
    Run(Box<RunReport>),
    Sweep(Box<SweepReport>),
    Replay(Box<ReplayReport>),
    Anomalies(Box<AnomalyReport>),
    Bench(Box<BenchReport>),
}

/// The top of a document: enough to tell what it is before reading it whole.
#[derive(Deserialize)]
struct Probe {
    kind: Option<String>,
    version: Option<u64>,
    cells: Option<IgnoredAny>,
    replays: Option<IgnoredAny>,
    results: Option<IgnoredAny>,
}

impl Document {
    pub fn kind(&self) -> Kind {
        match self {
            Document::Run(_) => Kind::Run,
            Document::Sweep(_) => Kind::Sweep,
            Document::Replay(_) => Kind::Replay,
            Document::Anomalies(_) => Kind::Anomalies,
            Document::Bench(_) => Kind::Bench,
        }
    }

    /// Reads a result file; every error names it.
    pub fn read(path: &Path) -> anyhow::Result<Document> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Document::parse(&text).with_context(|| path.display().to_string())
    }

    /// A document from its JSON text. Read straight from the text (not through an untyped
    /// value, whose maps would lose the order of strategies, parameters and schedules).
    pub fn parse(text: &str) -> anyhow::Result<Document> {
        let probe: Probe = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                not_a_document()
            } else {
                anyhow!("not JSON: {e}")
            }
        })?;
        if let Some(v) = probe.version.filter(|v| *v > u64::from(VERSION)) {
            bail!(
                "a{} document of version {v}, written by a newer contention; this one ({}) reads versions up to {VERSION}",
                probe
                    .kind
                    .as_ref()
                    .map_or(String::new(), |k| format!(" \"{k}\"")),
                tool()
            );
        }
        let kind = match &probe.kind {
            Some(name) => Kind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    anyhow!(
                        "unknown document kind \"{name}\": this contention reads {}",
                        Kind::ALL.map(Kind::name).join(", ")
                    )
                })?,
            // Written before documents carried their kind: known by their shape.
            None if probe.replays.is_some() => Kind::Replay,
            None if probe.results.is_some() => Kind::Anomalies,
            None if probe.cells.is_some() => Kind::Run,
            None => return Err(not_a_document()),
        };
        // Such a file gets its kind as the first member (it has members: the probe saw one).
        let with_kind;
        let text = match probe.kind {
            Some(_) => text,
            None => {
                let body = text.trim_start().strip_prefix('{').unwrap_or(text);
                with_kind = format!("{{\"kind\": \"{kind}\", {body}");
                &with_kind
            }
        };
        let shape =
            |e: serde_json::Error| anyhow!("not a {kind} document as contention writes it: {e}");
        Ok(match kind {
            Kind::Run => Document::Run(serde_json::from_str(text).map_err(shape)?),
            Kind::Sweep => Document::Sweep(serde_json::from_str(text).map_err(shape)?),
            Kind::Replay => Document::Replay(serde_json::from_str(text).map_err(shape)?),
            Kind::Anomalies => Document::Anomalies(serde_json::from_str(text).map_err(shape)?),
            Kind::Bench => Document::Bench(serde_json::from_str(text).map_err(shape)?),
        })
    }
}

fn not_a_document() -> anyhow::Error {
    anyhow!(
        "not a contention document: expected a JSON object with a \"kind\" ({}), or an older run report (\"cells\"), replays (\"replays\") or anomaly table (\"results\")",
        Kind::ALL.map(Kind::name).join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_and_newer_versions_are_refused() {
        let e = Document::parse(r#"{"kind": "cake", "version": 1}"#).unwrap_err();
        assert!(
            e.to_string().contains("unknown document kind \"cake\""),
            "{e}"
        );
        let newer = VERSION + 1;
        let e = Document::parse(&format!(
            r#"{{"kind": "run", "version": {newer}, "cells": []}}"#
        ))
        .unwrap_err();
        assert!(format!("{e}").contains(&format!("version {newer}")), "{e}");
        let e = Document::parse(r#"{"hello": 1}"#).unwrap_err();
        assert!(e.to_string().contains("not a contention document"), "{e}");
        let e = Document::parse("[1, 2]").unwrap_err();
        assert!(e.to_string().contains("not a contention document"), "{e}");
        // A known kind with the wrong shape says which kind it expected.
        let e = Document::parse(r#"{"kind": "sweep", "version": 1}"#).unwrap_err();
        assert!(e.to_string().contains("not a sweep document"), "{e}");
    }

    #[test]
    fn every_builtin_scenario_reads_back_as_written() {
        use crate::scenario::{self, catalog};
        let names = catalog::builtin_names()
            .into_iter()
            .chain(catalog::anomaly_names());
        for name in names {
            let s = scenario::load(&name, &[]).unwrap();
            let written = serde_json::to_string(&s).unwrap();
            let read: Scenario =
                serde_json::from_str(&written).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(serde_json::to_string(&read).unwrap(), written, "{name}");
            for (a, b) in s.strategies.values().zip(read.strategies.values()) {
                for (x, y) in a.steps.iter().zip(&b.steps) {
                    let (x, y) = (x.sql.as_ref(), y.sql.as_ref());
                    assert_eq!(x, y, "{name}: the SQL sent follows from its source");
                }
            }
        }
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("future.json");
        std::fs::write(&p, r#"{"kind": "bench", "version": 99}"#).unwrap();
        let e = format!("{:#}", Document::read(&p).unwrap_err());
        assert!(e.contains("future.json") && e.contains("version 99"), "{e}");
    }
}
