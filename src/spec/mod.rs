//! PostgreSQL isolation-tester specs, natively: a `.spec` file becomes a replay scenario whose
//! sessions run their steps as written (see `crate::replay::written`), one schedule per
//! permutation (the listed ones, or every interleaving of the sessions' steps), so a spec runs
//! on the replay scheduler with the same timelines, JSON and HTML as a TOML replay. `out`
//! writes a replay in the tester's expected-output format and compares it with a recorded
//! `.out` file.
//!
//! Decisions: each permutation starts on a freshly reset run database followed by the spec's
//! setup blocks, so the spec's global teardown is not run (and the result sets of setup and
//! teardown blocks are not shown); sessions' setup runs on their own connections before the
//! permutation, their teardown after it. This module reads and translates; it must not run
//! anything itself.

pub mod out;
pub mod parse;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use indexmap::IndexMap;

use crate::engine::EngineKind;
use crate::isolation::Isolation;
use crate::scenario::{
    Characteristics, RunDefaults, Scenario, Schedule, Session, Target, Token, WrittenStep,
};
pub use parse::Spec;

/// Permutations run at most when a spec lists none.
pub const MAX_PERMUTATIONS: usize = 1000;

/// Whether `arg` names a spec file.
pub fn is_spec(arg: &str) -> bool {
    Path::new(arg).extension().is_some_and(|e| e == "spec")
}

/// Reads a spec file into a scenario with one schedule per permutation, named 1, 2, ...
pub fn load(path: &Path) -> anyhow::Result<(Spec, Scenario)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let spec = parse::parse(path, &text).map_err(|m| anyhow!(m))?;
    let scenario = scenario(path, &spec)?;
    Ok((spec, scenario))
}

fn scenario(path: &Path, spec: &Spec) -> anyhow::Result<Scenario> {
    let permutations = if spec.permutations.is_empty() {
        parse::all_permutations(spec, MAX_PERMUTATIONS)
            .map_err(|m| anyhow!("{}: {m}", path.display()))?
    } else {
        spec.permutations.clone()
    };
    let owner = |step: &str| {
        spec.sessions
            .iter()
            .find(|s| s.steps.iter().any(|x| x.name == step))
            .map(|s| s.name.clone())
            .expect("the parser checked every step name")
    };
    let mut schedules = IndexMap::new();
    for (n, p) in permutations.iter().enumerate() {
        let name = (n + 1).to_string();
        schedules.insert(
            name.clone(),
            Schedule {
                name,
                summary: String::new(),
                tokens: p
                    .steps
                    .iter()
                    .map(|(step, marks)| Token {
                        session: owner(step),
                        target: Target::Named(step.clone()),
                        text: step.clone(),
                        blockers: marks.clone(),
                    })
                    .collect(),
                strategy: None,
                params: Vec::new(),
            },
        );
    }
    let file = path.display().to_string();
    let sessions = spec
        .sessions
        .iter()
        .map(|s| Session {
            name: s.name.clone(),
            summary: String::new(),
            bind: Vec::new(),
            steps: None,
            written: Some(
                s.steps
                    .iter()
                    .map(|st| WrittenStep {
                        name: st.name.clone(),
                        sql: st.sql.clone(),
                        key: format!("{file}: step \"{}\"", st.name),
                        line: st.line,
                    })
                    .collect(),
            ),
            setup: s.setup.clone(),
            teardown: s.teardown.clone(),
            characteristics: Characteristics::default(),
        })
        .collect();
    Ok(Scenario {
        name: path
            .file_stem()
            .map_or_else(|| "spec".into(), |s| s.to_string_lossy().into_owned()),
        engine: EngineKind::Postgres,
        summary: format!("isolation-tester spec {file}"),
        story: String::new(),
        notes: None,
        file: path.to_path_buf(),
        params: IndexMap::new(),
        setup: spec
            .setup
            .iter()
            .enumerate()
            .map(|(i, sql)| (format!("setup block {}", i + 1), sql.clone()))
            .collect(),
        settings: Vec::new(),
        nodes: Vec::new(),
        draws: Vec::new(),
        run: RunDefaults {
            clients: spec.sessions.len() as u32,
            duration: Duration::from_secs(1),
            operations: None,
            think: Duration::ZERO,
            max_tries: 1,
            isolation: vec![Isolation::Rc],
        },
        strategies: IndexMap::new(),
        auditors: Vec::new(),
        invariants: Vec::new(),
        sessions,
        schedules,
        anomaly: None,
        history: None,
    })
}
