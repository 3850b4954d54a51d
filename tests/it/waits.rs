//! Every wait bounded and interruptible, every failure explained: a setup that blocks ends on
//! SIGINT (130) and SIGTERM (143) with its private server removed; a port that accepts and never
//! replies is an error naming it within the connect timeout; a server lost mid-run prints the
//! cells that finished and the error that ended the run. The bounds asserted are generous (the
//! machine is shared); the lab's own are about 1 s and the connect timeout.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::provisioning::{server_processes_using, start};
use crate::support::{contention, scratch, stderr, write};

/// A scenario whose setup sleeps for 1000 s.
const BLOCKED_SETUP: &str = r#"
name = "blocked-setup"
summary = "a setup that never ends"
[setup]
sql = "CREATE TABLE t (id int PRIMARY KEY); SELECT pg_sleep(1000);"
[run]
clients = 2
duration = "1s"
[strategy.plain]
summary = "reads"
[[strategy.plain.step]]
sql = "SELECT id FROM t"
[[invariant]]
name = "none"
anomaly = "none"
explain = "nothing to measure"
sql = "SELECT 0"
"#;

/// Waits for the child to exit, at most `limit`; returns its code and the time it took.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (s.code(), started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the lab did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn blocked_setup_under(signal: Signal, expected: i32) {
    let dir = scratch();
    let file = write(&dir, "blocked.toml", BLOCKED_SETUP);
    let (mut child, mut reader, mut seen, data_dir) = start(
        &["run", file.to_str().unwrap(), "--isolation", "rc"],
        "plain @ rc",
    );
    // The setup is running (and sleeping) once the cell has been announced.
    std::thread::sleep(Duration::from_millis(800));
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let (code, took) = wait_exit(&mut child, Duration::from_secs(20));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    seen.push_str(&rest);
    assert_eq!(code, Some(expected), "{signal}: took {took:?}\n{seen}");
    let top = data_dir
        .expect("the private server's data directory is announced")
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(!top.exists(), "{} is left behind\n{seen}", top.display());
    assert_eq!(server_processes_using(&top), 0, "a server process is left");
}

#[test]
fn a_blocked_setup_ends_on_sigint_with_130() {
    blocked_setup_under(Signal::SIGINT, 130);
}

#[test]
fn a_blocked_setup_ends_on_sigterm_with_143() {
    blocked_setup_under(Signal::SIGTERM, 143);
}

/// A port that accepts connections and never says a word.
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    port
}

fn connect_to_silence(url: &str) -> (String, Duration) {
    let started = Instant::now();
    let out = contention()
        .args(["run", "ticketmaster", "--db", url, "--operations", "1"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    (stderr(&out), took)
}

#[test]
fn a_port_that_never_replies_is_an_error_within_the_connect_timeout() {
    let port = silent_listener();
    // connect_timeout in the URL is honoured...
    let (err, took) = connect_to_silence(&format!(
        "postgresql://lab@127.0.0.1:{port}/x?connect_timeout=2"
    ));
    assert!(took < Duration::from_secs(20), "took {took:?}: {err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}"))
            && err.contains("did not complete the connection within 2 s"),
        "{err}"
    );
    // ...and without it the default bounds the wait, on both engines.
    let (err, took) = connect_to_silence(&format!("postgresql://lab@127.0.0.1:{port}/x"));
    assert!(took < Duration::from_secs(40), "took {took:?}: {err}");
    assert!(err.contains("within 10 s"), "{err}");
    let (err, took) = connect_to_silence(&format!("mysql://lab@127.0.0.1:{port}/"));
    assert!(took < Duration::from_secs(40), "took {took:?}: {err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("within 10 s"),
        "{err}"
    );
}

/// The private server killed (as `pg_ctl stop -m immediate` does) while the second cell runs:
/// exit 2, the first cell printed and written, and the error that ended the second cell.
#[test]
fn a_server_lost_mid_run_prints_the_finished_cells() {
    let dir = scratch();
    let output = dir.path().join("lost.json");
    let (mut child, mut reader, mut seen, data_dir) = start(
        &[
            "run",
            "bank-transfer",
            "--strategy",
            "for-update",
            "--isolation",
            "rc,rr",
            "--duration",
            "2s",
            "--format",
            "json",
            "--output",
            output.to_str().unwrap(),
        ],
        "for-update @ rr",
    );
    let data_dir = data_dir.unwrap_or_else(|| panic!("no data directory announced:\n{seen}"));
    std::thread::sleep(Duration::from_millis(500));
    let pid: i32 = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SIGQUIT: PostgreSQL's immediate shutdown.
    kill(Pid::from_raw(pid), Signal::SIGQUIT).unwrap();
    let (code, took) = wait_exit(&mut child, Duration::from_secs(30));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    seen.push_str(&rest);
    assert_eq!(code, Some(2), "took {took:?}\n{seen}");
    assert!(seen.contains("error: for-update @ rr"), "{seen}");
    assert!(
        !seen.contains("cannot drop"),
        "the clean-up's error first:\n{seen}"
    );
    let written = std::fs::read_to_string(&output).expect("--output is written");
    let report: contention::report::RunReport = serde_json::from_str(&written).unwrap();
    assert_eq!(report.cells.len(), 1, "{written}");
    assert_eq!(report.cells[0].isolation.to_string(), "rc");
    assert!(
        report.notes.iter().any(|n| n.contains("ended early")),
        "{:?}",
        report.notes
    );
}

/// Interrupts a run while the engine's initialiser (`initdb`, `mariadb-install-db`) fills the
/// private server's directory (no template: `template_var=off`; the directories in a scratch
/// `dir_var`, so that parallel tests do not mix): the initialiser is killed with its process
/// group, the directory removed, exit 130, within about a second.
fn interrupted_initialiser(engine: &str, dir_var: &str, template_var: &str) {
    let base = scratch();
    // As root the initialiser runs as the engine's system user, which must reach the directory.
    let open = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(base.path(), open).unwrap();
    let mut child = contention()
        .args([
            "run",
            "ticketmaster",
            "--engine",
            engine,
            "--operations",
            "1",
        ])
        .env(dir_var, base.path())
        .env(template_var, "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The initialiser is running once the data directory has its first files.
    let started = Instant::now();
    let top = loop {
        let top = std::fs::read_dir(base.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::read_dir(p.join("data")).is_ok_and(|mut d| d.next().is_some()));
        if let Some(top) = top {
            break top;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the initialiser never wrote into {}",
            base.path().display()
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(5));
    };
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let (code, took) = wait_exit(&mut child, Duration::from_secs(20));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(code, Some(130), "took {took:?}\n{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?} to stop:\n{err}"
    );
    assert!(!top.exists(), "{} is left behind\n{err}", top.display());
    assert_eq!(
        server_processes_using(&top),
        0,
        "an initialiser process is left"
    );
    eprintln!("{engine}: {took:?} from SIGINT to exit during the initialiser");
}

#[test]
fn a_signal_during_initdb_kills_it_and_removes_the_directory() {
    interrupted_initialiser("postgres", "CONTENTION_PG_DIR", "CONTENTION_PG_TEMPLATE");
}

#[test]
fn a_signal_during_mariadb_install_db_kills_it_and_removes_the_directory() {
    interrupted_initialiser(
        "mariadb",
        "CONTENTION_MARIADB_DIR",
        "CONTENTION_MARIADB_TEMPLATE",
    );
}

/// An `initdb` that never ends (a script whose child sleeps): SIGINT still ends the run within
/// the bound, with the script's whole process group killed and the directory removed.
#[test]
fn a_signal_during_an_initdb_that_never_ends_kills_its_process_group() {
    let real = contention::engine::postgres::ephemeral::find_bindir().expect("PostgreSQL binaries");
    let bin = scratch();
    let base = scratch();
    // As root initdb runs as the postgres system user, which must reach both.
    for d in [&bin, &base] {
        let open = std::os::unix::fs::PermissionsExt::from_mode(0o777);
        std::fs::set_permissions(d.path(), open).unwrap();
    }
    let sleeper = base.path().join("sleeper.pid");
    std::os::unix::fs::symlink(real.join("postgres"), bin.path().join("postgres")).unwrap();
    let initdb = write(
        &bin,
        "initdb",
        &format!(
            "#!/bin/sh\nsleep 1000 &\necho $! > {}\nwait\n",
            sleeper.display()
        ),
    );
    std::fs::set_permissions(&initdb, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut child = contention()
        .args(["run", "ticketmaster", "--operations", "1"])
        .env("CONTENTION_PG_BINDIR", bin.path())
        .env("CONTENTION_PG_DIR", base.path())
        .env("CONTENTION_PG_TEMPLATE", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&sleeper)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "initdb never ran"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(5));
    };
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let (code, took) = wait_exit(&mut child, Duration::from_secs(20));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(code, Some(130), "took {took:?}\n{err}");
    let tops: Vec<_> = std::fs::read_dir(base.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(tops.is_empty(), "{tops:?} left behind\n{err}");
    // The script's child, in the script's process group, is gone too (a zombie reaped by init
    // may linger a moment).
    let gone = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "the initialiser's child {pid} is left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("a hung initdb: {took:?} from SIGINT to exit");
}

/// A scenario whose step and invariant both sleep for 1000 s (the step only when replayed: a
/// run uses the `quick` strategy).
const SLEEPY: &str = r#"
name = "sleepy"
summary = "a step and an invariant that never end"
[setup]
sql = "CREATE TABLE t (id int PRIMARY KEY)"
[strategy.quick]
summary = "reads"
[[strategy.quick.step]]
sql = "SELECT count(*)::text FROM t"
[strategy.sleeps]
summary = "sleeps"
[[strategy.sleeps.step]]
sql = "SELECT pg_sleep(1000)::text"
[[invariant]]
name = "stuck"
anomaly = "none"
explain = "never answers"
sql = "SELECT count(*) FROM (SELECT pg_sleep(1000)) s"
"#;

#[test]
fn an_invariant_that_never_answers_is_named_within_its_limit() {
    let dir = scratch();
    let file = write(&dir, "sleepy.toml", SLEEPY);
    let started = Instant::now();
    let out = contention()
        .args([
            "run",
            file.to_str().unwrap(),
            "--strategy",
            "quick",
            "--operations",
            "1",
        ])
        .output()
        .unwrap();
    let (took, err) = (started.elapsed(), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invariant `stuck` did not answer within 10 s"),
        "{err}"
    );
    // The limit (10 s) plus starting a private server, generously.
    assert!(took < Duration::from_secs(40), "took {took:?}: {err}");
    eprintln!("a stuck invariant: exit 2 after {took:?}");
}

/// Signals the lab (`args`) once stderr has shown `until` and `ready(pid)` holds, then asserts
/// exit 130 and that its private server and directory are gone; returns the time to exit.
fn interrupt_when(args: &[&str], until: &str, ready: impl Fn(u32) -> bool) -> Duration {
    let (mut child, mut reader, mut seen, data_dir) = start(args, until);
    let started = Instant::now();
    while !ready(child.id()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never ready:\n{seen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let (code, took) = wait_exit(&mut child, Duration::from_secs(20));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    seen.push_str(&rest);
    assert_eq!(code, Some(130), "took {took:?}\n{seen}");
    let top = data_dir
        .expect("the private server's data directory is announced")
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(!top.exists(), "{} is left behind\n{seen}", top.display());
    assert_eq!(server_processes_using(&top), 0, "a server process is left");
    took
}

#[test]
fn an_interrupted_replay_of_a_sleeping_step_exits_130_and_cleans_up() {
    let dir = scratch();
    let file = write(&dir, "sleepy.toml", SLEEPY);
    let args = [
        "replay",
        file.to_str().unwrap(),
        "--strategy",
        "sleeps",
        "--schedule",
        "a1 b1",
        "--step-timeout",
        "600s",
    ];
    // The step is sleeping a moment after the replay is announced.
    let announced = Instant::now();
    let took = interrupt_when(&args, "replaying sleeps @ rc", |_| {
        announced.elapsed() > Duration::from_millis(800)
    });
    eprintln!("an interrupted replay: {took:?} from SIGINT to exit");
}

/// Whether a direct child of `pid` runs `program`.
fn has_child(pid: u32, program: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        stat.contains(&format!("({program})"))
            && stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .is_some_and(|ppid| ppid == pid.to_string())
    })
}

#[test]
fn an_interrupted_bench_during_pgbench_exits_130_and_cleans_up() {
    let args = [
        "bench",
        "--clients",
        "1",
        "--duration",
        "60s",
        "--rounds",
        "1",
    ];
    let took = interrupt_when(&args, "pgbench database", |pid| has_child(pid, "pgbench"));
    eprintln!("bench interrupted during pgbench: {took:?} from SIGINT to exit");
}

#[test]
fn an_interrupted_bench_footprint_exits_130_and_cleans_up() {
    let args = [
        "bench",
        "--footprint",
        "--footprint-sizes",
        "20,4,5",
        "--duration",
        "60s",
    ];
    // Interrupted while its child `contention run` runs.
    let took = interrupt_when(&args, "run database", |pid| has_child(pid, "contention"));
    eprintln!("bench --footprint interrupted: {took:?} from SIGINT to exit");
}
