//! Running the binary and reading its JSON documents, as the lab's own types.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use contention::outcome::Abort;
use contention::report::document::Document;
use contention::report::{Cell, RunReport};
use contention::scenario::Side;

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

/// A document from a command's stdout; panics with its output when it is not one.
pub fn document(out: &Output) -> Document {
    Document::parse(&stdout(out)).unwrap_or_else(|e| {
        panic!(
            "no JSON document ({e:#}); exit {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            stdout(out),
            stderr(out)
        )
    })
}

/// Runs `contention run ... --format json --quiet` and returns (exit code, report).
pub fn run_json(args: &[&str]) -> (i32, RunReport) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json", "--quiet"]);
    let out = run(&all);
    let code = out.status.code().unwrap_or(-1);
    match document(&out) {
        Document::Run(r) => (code, *r),
        other => panic!("a {} document from `run`", other.kind()),
    }
}

/// Something of a document as compact JSON, for assertion messages.
pub fn json(x: &impl serde::Serialize) -> String {
    serde_json::to_string(x).unwrap_or_else(|e| format!("(unprintable: {e})"))
}

/// The cell of a report for a strategy at an isolation level.
pub fn cell<'a>(report: &'a RunReport, strategy: &str, isolation: &str) -> &'a Cell {
    report
        .cells
        .iter()
        .find(|c| c.strategy == strategy && c.isolation.to_string() == isolation)
        .unwrap_or_else(|| panic!("no cell {strategy}@{isolation}"))
}

/// An invariant's measured damage in a cell.
pub fn invariant(cell: &Cell, name: &str) -> i64 {
    cell.invariants
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no invariant {name}"))
        .value
}

/// Damage over all writer-side invariants of a cell.
pub fn writer_damage(cell: &Cell) -> i64 {
    cell.invariants
        .iter()
        .filter(|m| m.side == Side::Writer)
        .map(|m| m.value)
        .sum()
}

pub fn aborts(cell: &Cell, class: &str) -> u64 {
    cell.stats
        .abort(class.parse::<Abort>().expect("an abort class"))
}

pub fn committed(cell: &Cell) -> u64 {
    cell.stats.committed
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

/// Runs `sql` as root over a private MariaDB's `socket` with the command-line client
/// (`--no-defaults`: the machine's option files, which point at its shared server, are never
/// read) and returns the rows, tab-separated, without headers.
pub fn mariadb_query(socket: &std::path::Path, sql: &str) -> String {
    let out = Command::new("mariadb")
        .arg("--no-defaults")
        .arg("-S")
        .arg(socket)
        .args(["-u", "root", "--batch", "--skip-column-names", "-e", sql])
        .stdin(Stdio::null())
        .output()
        .expect("the mariadb client runs");
    assert!(
        out.status.success(),
        "`{sql}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}
