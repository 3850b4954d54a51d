//! Running the binary and reading its JSON documents, as the lab's own types.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
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

/// Runs `contention replay ARGS --format json --quiet`, which must succeed, and returns its
/// replays.
pub fn replays(args: &[&str]) -> Vec<contention::replay::Replay> {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json", "--quiet"]);
    let out = run(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    match document(&out) {
        Document::Replay(r) => r.replays,
        other => panic!("a {} document from `replay`", other.kind()),
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
/// The TCP sockets (v4 and v6) in the LISTEN state that process `pid` holds.
pub fn tcp_listeners_of(pid: u32) -> Vec<String> {
    let held: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the server's fds are readable")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    assert!(!held.is_empty(), "the server holds no socket at all");
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A = LISTEN), ..., inode (column 10)
            if cols.len() > 9 && cols[3] == "0A" && held.contains(cols[9]) {
                listening.push(format!("{table}: {}", cols[1]));
            }
        }
    }
    listening
}

/// How many processes have `dir` in their command line (a private server started in it).
pub fn processes_using(dir: &Path) -> usize {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(&needle))
        .count()
}

/// A private server left by a lab killed with SIGKILL is swept by the next start: runs the test
/// `child_test` in a child process with `env` set (it starts a server, prints `orphan top: DIR`
/// and waits), kills the child, then calls `start_next` (which starts another server, kept
/// running until the checks are done; `dir_of` gives its directory) and checks that neither the
/// orphan's directory nor its server is left.
pub fn orphan_is_swept<T>(
    child_test: &str,
    env: &str,
    start_next: impl FnOnce() -> T,
    dir_of: impl Fn(&T) -> PathBuf,
) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let top = loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child ended without starting a server:\n{seen}");
        }
        seen.push_str(&line);
        // The harness may put "test ... " before it on the same line.
        if let Some((_, dir)) = line.split_once("orphan top: ") {
            break PathBuf::from(dir.trim());
        }
    };
    assert_eq!(processes_using(&top), 1, "the child's server runs");
    // SIGKILL: the lab cannot clean up; its server, in its own process group, keeps running.
    child.kill().unwrap();
    child.wait().unwrap();
    // Tests run in parallel: another test's start may sweep it first. Either way, once the
    // next start has run, neither the directory nor its server may be left.
    let next = start_next();
    assert!(!top.exists(), "{} was not swept", top.display());
    assert_eq!(processes_using(&top), 0, "the orphan server still runs");
    assert!(dir_of(&next).exists());
}
