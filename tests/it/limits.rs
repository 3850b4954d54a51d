//! Limits up front: absurd counts and durations are refused with the accepted range, the same
//! from a file's `[run]` table as from the command line; setup files must be regular files of
//! bounded size; a `--db` server that cannot take the clients' connections is refused before
//! the first cell starts, suggesting `--connections N`.

use contention::engine::postgres::ephemeral::Ephemeral;

use crate::scenario_files::{TINY, refused};
use crate::support::{run, run_json, scratch, stderr, write};

#[test]
fn a_files_run_table_is_held_to_the_flags_ranges() {
    let with_run = |run: &str| format!("[run]\n{run}\n\n[strategy.inc]");
    for (run_line, key, says) in [
        (
            "operations = 0",
            "run.operations",
            "expected 1 to 1000000000, got 0",
        ),
        ("clients = 0", "run.clients", "expected 1 to 100000, got 0"),
        (
            "clients = 100001",
            "run.clients",
            "expected 1 to 100000, got 100001",
        ),
        (
            "duration = \"100000000h\"",
            "run.duration",
            "expected 1ms to 24h",
        ),
        (
            "duration = \"0s\"",
            "run.duration",
            "expected 1ms to 24h, got 0s",
        ),
        ("think = \"2h\"", "run.think", "expected 0ms to 1h, got 2h"),
        (
            "max_tries = 0",
            "run.max_tries",
            "expected 1 to 1000000, got 0",
        ),
    ] {
        refused(
            "[strategy.inc]",
            &with_run(run_line),
            Some(run_line),
            &[key, says],
        );
    }
    refused(
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"\nthink = \"3h\"",
        Some("think = \"3h\""),
        &["strategy.inc.step[1].think", "expected 0ms to 1h"],
    );
}

#[test]
fn the_command_line_accepts_the_same_ranges() {
    let dir = scratch();
    let p = write(&dir, "tiny.toml", TINY);
    let path = p.to_str().unwrap();
    for (flags, says) in [
        (
            &["--operations", "0"][..],
            "--operations 0: expected 1 to 1000000000, got 0",
        ),
        (
            &["--clients", "0"],
            "--clients 0: expected 1 to 100000, got 0",
        ),
        (
            &["--clients", "100000000"],
            "--clients 100000000: expected 1 to 100000",
        ),
        (&["--duration", "100000000h"], "expected 1ms to 24h"),
        (&["--think", "2h"], "--think: expected 0ms to 1h, got 2h"),
        (
            &["--max-tries", "0"],
            "--max-tries 0: expected 1 to 1000000",
        ),
        (
            &["--connections", "0"],
            "--connections 0: expected 1 to 100000",
        ),
    ] {
        let mut args = vec!["run", path];
        args.extend_from_slice(flags);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{flags:?}: expected `{says}` in: {err}");
        // Refused before anything starts: no server was provisioned.
        assert!(!err.contains("starting a private"), "{flags:?}: {err}");
    }
    let out = run(&["sweep", path, "--vary", "clients=1,100001"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--vary clients=100001: expected 1 to 100000"),
        "{}",
        stderr(&out)
    );
    let out = run(&["bench", "--clients", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--clients 0: expected 1 to 100000"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn setup_files_must_be_regular_files() {
    for file in ["/dev/zero", "/tmp"] {
        refused(
            "sql = \"CREATE TABLE",
            &format!("files = [\"{file}\"]\nsql = \"CREATE TABLE"),
            Some(file),
            &["setup.files[0]", "not a regular file"],
        );
    }
    let out = run(&["validate", "/dev/zero/x.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["validate", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/dev/zero: the scenario file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn clients_beyond_a_db_servers_connections_are_refused_before_the_cell() {
    let server =
        Ephemeral::start(&[("max_connections".into(), "20".into())]).expect("a private PostgreSQL");
    let url = format!(
        "host={} port={} user=postgres dbname=postgres",
        server.socket_dir().display(),
        server.port()
    );
    // 20 - 3 reserved for superusers - 3 of the lab's own = 14.
    let out = run(&[
        "run",
        "ticketmaster",
        "--db",
        &url,
        "--strategy",
        "conditional",
        "--clients",
        "15",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in [
        "15 clients need 15 connections, but the server takes 14",
        "max_connections 20",
        "--connections 14",
    ] {
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
    }
    assert!(!err.contains("conditional @"), "a cell started: {err}");

    // The pooled mode the message suggests runs.
    let (code, _) = run_json(&[
        "ticketmaster",
        "--db",
        &url,
        "--strategy",
        "conditional",
        "--clients",
        "15",
        "--connections",
        "14",
        "--operations",
        "30",
    ]);
    assert_eq!(code, 0);

    let out = run(&[
        "sweep",
        "ticketmaster",
        "--db",
        &url,
        "--strategy",
        "conditional",
        "--vary",
        "clients=2,40",
        "--operations",
        "10",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--vary clients=40: 40 clients need 40"),
        "{err}"
    );
}
