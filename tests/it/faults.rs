//! Faults that take a node's server away: `restart = { node, down }` stops a private server at
//! once and starts it again, while the clients go on. Operations that meet the stopped node are
//! counted as lost (rolled back, the client reconnects) unless the step catches the failure
//! (`catch = "var"`), and every COMMIT the clients saw survives the crash. Also: a caught COMMIT
//! whose connection went is `unknown`, and the faults' misplacements are located.

use crate::distributed::all_gone;
use crate::support::{cell, invariant, json, run, run_json, scratch, stderr, write};

/// Two nodes; client 1 restarts node b every 40 of its operations. `plain` increments a
/// counter on b; `caught` does the same but, when b cannot be reached, increments a's instead.
const PROBE: &str = r#"
name = "restart-probe"
summary = "A counter on a node that a client restarts."
[node.a]
[node.b]
[setup]
sql = "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL); INSERT INTO t VALUES (1, 0);"
[run]
clients = 3
duration = "2s"
think = "1ms"
[template.crash]
[[template.crash.step]]
when = "client == 1 && op % 40 == 0"
restart = { node = "b", down = "200ms" }

[strategy.plain]
summary = "Increment b's counter."
[[strategy.plain.step]]
include = "crash"
[[strategy.plain.step]]
node = "b"
sql = "UPDATE t SET n = n + 1 WHERE id = 1"
commit = true
think = true

[strategy.caught]
summary = "Increment b's counter, else a's."
[[strategy.caught.step]]
include = "crash"
[[strategy.caught.step]]
node = "b"
sql = "UPDATE t SET n = n + 1 WHERE id = 1"
commit = true
catch = "failed"
think = true
[[strategy.caught.step]]
node = "a"
when = "failed != \"\""
sql = "UPDATE t SET n = n + 1 WHERE id = 1"
commit = true

[[invariant]]
name = "on_b"
anomaly = "count"
explain = "increments on b"
node = "b"
sql = "SELECT n FROM t"
[[invariant]]
name = "on_a"
anomaly = "count"
explain = "increments on a"
node = "a"
sql = "SELECT n FROM t"
"#;

#[test]
fn a_restarted_node_loses_the_operations_in_flight_and_keeps_every_acknowledged_commit() {
    let dir = scratch();
    let file = write(&dir, "restart.toml", PROBE);
    // PostgreSQL stops at SIGQUIT (`-m immediate`), MariaDB at SIGKILL.
    for engine in ["postgres", "mariadb"] {
        restarts(&file, engine);
    }
}

fn restarts(file: &std::path::Path, engine: &str) {
    let (code, r) = run_json(&[
        file.to_str().unwrap(),
        "--strategy",
        "all",
        "--engine",
        engine,
    ]);
    assert_eq!(code, 0, "{engine}: {}", json(&r));
    let plain = cell(&r, "plain", "rc");
    assert!(plain.stats.faults_total > 0, "{}", json(plain));
    assert!(
        plain
            .stats
            .faults
            .iter()
            .all(|f| f.fault == "restart node b (down 200ms)"),
        "{}",
        json(plain)
    );
    assert!(
        plain.stats.lost > 0,
        "operations meet the stopped node: {}",
        json(plain)
    );
    // Every COMMIT that returned is on b after its crashes (the node runs crash-safe), and
    // nothing else is: lost and unknown operations are not counted as committed.
    let on_b = invariant(plain, "on_b") as u64;
    assert!(
        on_b >= plain.stats.committed && on_b <= plain.stats.committed + plain.stats.unknown,
        "b has {on_b} increments for {} commits ({} unknown): {}",
        plain.stats.committed,
        plain.stats.unknown,
        json(plain)
    );
    let caught = cell(&r, "caught", "rc");
    assert!(caught.stats.faults_total > 0, "{}", json(caught));
    assert_eq!(
        caught.stats.lost,
        0,
        "a caught failure does not end the operation: {}",
        json(caught)
    );
    let on_a = invariant(caught, "on_a") as u64;
    assert!(
        on_a > 0,
        "failures while b was down went to a: {}",
        json(caught)
    );
    let total = on_a + invariant(caught, "on_b") as u64;
    // A caught COMMIT whose connection went counts as failed here, and may have landed on b.
    assert!(
        total >= caught.stats.committed,
        "{total} increments for {} commits: {}",
        caught.stats.committed,
        json(caught)
    );
    all_gone(&r);
}

/// A caught COMMIT that loses its connection gives `unknown`, and the attempt goes on: here a
/// deferred trigger on node b terminates its own backend at every COMMIT.
#[test]
fn a_caught_commit_whose_connection_went_is_unknown_and_the_attempt_goes_on() {
    let dir = scratch();
    let file = write(
        &dir,
        "caught-unknown.toml",
        r#"
name = "caught-unknown"
summary = "Every COMMIT on b loses its connection."
[node.a]
[node.b]
setup = { sql = """
CREATE TABLE u (x int);
CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_terminate_backend(pg_backend_pid());
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER die AFTER INSERT ON u DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION die();
""" }
[setup]
sql = "CREATE TABLE t (x int);"
[strategy.s]
summary = "insert on b, caught"
[[strategy.s.step]]
node = "b"
sql = "INSERT INTO u VALUES (:op)"
commit = true
catch = "failed"
[[strategy.s.step]]
node = "a"
sql = "INSERT INTO t VALUES (:op)"
commit = true
[[strategy.s.step]]
reject_if = "failed == \"unknown\""
outcome = "caught_unknown"
[[invariant]]
name = "rows_on_a"
anomaly = "count"
explain = "rows a has"
node = "a"
sql = "SELECT count(*) FROM t"
"#,
    );
    let (code, r) = run_json(&[
        file.to_str().unwrap(),
        "--clients",
        "2",
        "--operations",
        "6",
    ]);
    assert_eq!(code, 0, "{}", json(&r));
    let c = cell(&r, "s", "rc");
    assert_eq!(
        c.stats.rejected.get("caught_unknown").copied(),
        Some(6),
        "{}",
        json(c)
    );
    assert_eq!(c.stats.unknown + c.stats.lost, 0, "{}", json(c));
    assert_eq!(
        invariant(c, "rows_on_a"),
        6,
        "the attempts went on: {}",
        json(c)
    );
}

/// A restart of the run database, of a lock service or of a `--node` server is refused
/// before anything starts, naming the key or the flag; `catch` needs a statement.
#[test]
fn misplaced_restarts_and_catches_are_located() {
    let dir = scratch();
    let bad = [
        (
            PROBE.replace(r#"restart = { node = "b""#, r#"restart = { node = "a""#),
            "`a` is the run database",
        ),
        (
            PROBE.replace(r#"down = "200ms""#, r#"down = "soon""#),
            "restart.down",
        ),
        (
            PROBE.replace(
                "[[strategy.caught.step]]\nnode = \"a\"\nwhen = \"failed != \\\"\\\"\"\nsql = \"UPDATE t SET n = n + 1 WHERE id = 1\"",
                "[[strategy.caught.step]]\nnode = \"a\"\nwhen = \"failed != \\\"\\\"\"\ncatch = \"again\"",
            ),
            "`catch` catches the failure of the step's statement",
        ),
    ];
    for (i, (text, wanted)) in bad.iter().enumerate() {
        assert_ne!(text, PROBE, "case {i} changed nothing");
        let file = write(&dir, &format!("bad{i}.toml"), text);
        let out = run(&["validate", file.to_str().unwrap()]);
        assert!(!out.status.success(), "case {i}");
        let err = stderr(&out);
        // `FILE:LINE:COLUMN: key `...``
        let located = err.contains(&format!("bad{i}.toml:")) && err.contains("key `strategy.");
        assert!(err.contains(wanted) && located, "case {i}: {err}");
    }
    let file = write(&dir, "restart.toml", PROBE);
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--node",
        "b=postgresql://postgres@localhost:1/x",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--node b=...") && stderr(&out).contains("leave --node b out"),
        "{}",
        stderr(&out)
    );
}
