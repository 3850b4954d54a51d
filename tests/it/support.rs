//! Running the binary and reading its JSON report.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The binary, with no ambient database configuration.
pub fn contention() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_contention"));
    for var in [
        "DATABASE_URL",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
    ] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null());
    c
}

pub fn run(args: &[&str]) -> Output {
    contention().args(args).output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `contention run ... --format json --quiet` and returns (exit code, report).
pub fn run_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json", "--quiet"]);
    let out = run(&all);
    let code = out.status.code().unwrap_or(-1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); exit {code}\nstdout:\n{}\nstderr:\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (code, report)
}

/// The cell of a report for a strategy at an isolation level.
pub fn cell<'a>(report: &'a Value, strategy: &str, isolation: &str) -> &'a Value {
    report["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["strategy"] == strategy && c["isolation"] == isolation)
        .unwrap_or_else(|| panic!("no cell {strategy}@{isolation}"))
}

/// An invariant's measured damage in a cell.
pub fn invariant(cell: &Value, name: &str) -> i64 {
    cell["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no invariant {name}"))["value"]
        .as_i64()
        .expect("a number")
}

/// Damage over all writer-side invariants of a cell.
pub fn writer_damage(cell: &Value) -> i64 {
    cell["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .filter(|m| m["side"] == "writer")
        .map(|m| m["value"].as_i64().expect("a number"))
        .sum()
}

pub fn aborts(cell: &Value, class: &str) -> u64 {
    cell["stats"]["aborts"][class]
        .as_u64()
        .expect("abort count")
}

pub fn committed(cell: &Value) -> u64 {
    cell["stats"]["committed"].as_u64().expect("committed")
}

/// A scratch directory for scenario files written by a test.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}
