//! Scenarios that span several servers (`[node.*]`), each on private servers the lab starts:
//! distributed-lock (a Redis lock service beside the storage database; a holder paused past its
//! TTL writes late; fencing tokens refuse the late write) and two-phase-commit (three private
//! PostgreSQL clusters; a coordinator that crashes between two commits loses money, two-phase
//! commit does not, and a crash after PREPARE blocks other transfers until recovery ends the
//! transactions in doubt). Also: a COMMIT whose connection is lost is counted as unknown, a
//! `--node` Redis keeps the data the run did not create, and every server is gone afterwards.

use contention::engine::redis::ephemeral::Ephemeral;
use contention::engine::redis::lock::LockService;
use contention::report::RunReport;

use crate::support::{
    cell, invariant, json, processes_using, replays, run, run_json, scratch, stderr, stdout, write,
};

/// The private servers a report names (their directories), checked gone afterwards.
pub(crate) fn private_dirs(r: &RunReport) -> Vec<std::path::PathBuf> {
    r.nodes
        .iter()
        .filter_map(|n| {
            let s = &n.server;
            let start = s.find("/dev/shm/").or_else(|| s.find("/tmp/"))?;
            let path: String = s[start..]
                .chars()
                .take_while(|c| !matches!(c, ',' | ';' | ')' | ' '))
                .collect();
            // The server's top directory: `/dev/shm/contention-pg-XXXX/data` -> its parent.
            let p = std::path::PathBuf::from(path);
            p.ancestors()
                .find(|a| {
                    a.file_name()
                        .is_some_and(|f| f.to_string_lossy().starts_with("contention-"))
                })
                .map(|a| a.to_path_buf())
        })
        .collect()
}

pub(crate) fn all_gone(r: &RunReport) {
    let dirs = private_dirs(r);
    assert_eq!(
        dirs.len(),
        r.nodes.len(),
        "a private server per node: {:?}",
        r.nodes
    );
    for d in dirs {
        assert!(!d.exists(), "{} is left behind", d.display());
        assert_eq!(
            processes_using(&d),
            0,
            "a server of {} still runs",
            d.display()
        );
    }
}

/// `contention run NAME --strategy all --expect declared`, whose expectations must hold.
fn declared(name: &str) -> RunReport {
    let (code, r) = run_json(&[name, "--strategy", "all", "--expect", "declared"]);
    let failures: Vec<String> = r
        .failures()
        .map(|(c, f)| format!("{}: {f}", c.label()))
        .collect();
    assert_eq!(code, 0, "{name}: declared expectations: {failures:?}");
    r
}

#[test]
fn a_holder_paused_past_its_ttl_loses_writes_unless_the_storage_checks_fencing_tokens() {
    let r = declared("distributed-lock");
    // The same with both lock services: Redis, and PostgreSQL's advisory locks.
    for (unsafe_one, safe) in [
        ("lock-only", "fencing"),
        ("advisory-lock-only", "advisory-fencing"),
    ] {
        let lock_only = cell(&r, unsafe_one, "rc");
        assert!(
            invariant(lock_only, "lost_writes") > 0,
            "{unsafe_one}: {}",
            json(lock_only)
        );
        assert!(
            invariant(lock_only, "stale_writes") > 0,
            "{unsafe_one}: {}",
            json(lock_only)
        );
        let fencing = cell(&r, safe, "rc");
        assert_eq!(invariant(fencing, "lost_writes"), 0, "{}", json(fencing));
        assert_eq!(invariant(fencing, "stale_writes"), 0, "{}", json(fencing));
        assert!(
            fencing
                .stats
                .rejected
                .get("fenced_off")
                .copied()
                .unwrap_or(0)
                > 0,
            "{safe}: late writes must be refused, not absent: {}",
            json(fencing)
        );
        for c in [lock_only, fencing] {
            assert!(c.stats.faults_total > 0, "pauses are listed: {}", json(c));
            assert!(c.stats.faults.iter().all(|f| f.fault == "pause 300ms"));
        }
    }
    // Every node is named, and every private server is gone.
    let names: Vec<&str> = r.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["storage", "locks", "pglocks"]);
    assert!(r.nodes[1].server.contains("Redis"), "{:?}", r.nodes);
    assert!(r.nodes[2].server.contains("PostgreSQL"), "{:?}", r.nodes);
    all_gone(&r);
}

#[test]
fn the_paused_holder_replays_step_by_step() {
    let rs = replays(&["distributed-lock", "--strategy", "all"]);
    let verdict = |s: &str| {
        rs.iter()
            .find(|r| r.strategy.as_deref() == Some(s))
            .unwrap_or_else(|| panic!("no replay of {s}"))
    };
    for s in ["lock-only", "advisory-lock-only"] {
        let lock_only = verdict(s);
        assert_eq!(
            lock_only.verdict.label(),
            "possible",
            "{s}: {}",
            json(&lock_only.events)
        );
    }
    // With an advisory lock, the server ended a's idle session during its pause: its release
    // finds the lock gone.
    let advisory = verdict("advisory-lock-only");
    assert!(
        advisory.events.iter().any(|e| e.trace.result.as_deref()
            == Some("not released: the lock expired (or another holder has it now)")),
        "{}",
        json(&advisory.events)
    );
    let fencing = verdict("fencing");
    assert_eq!(
        fencing.verdict.label(),
        "prevented",
        "{}",
        json(&fencing.events)
    );
    let a_end = &fencing.ends.iter().find(|e| e.session == "a").unwrap().end;
    assert_eq!(a_end, "rejected: fenced_off");
    // The pause is shown where it happened, and b took the lock with a newer token.
    assert!(
        fencing
            .events
            .iter()
            .any(|e| e.trace.fault.as_deref() == Some("pause 300ms")),
        "{}",
        json(&fencing.events)
    );
    assert!(
        fencing
            .events
            .iter()
            .any(|e| e.trace.result.as_deref() == Some("acquired, fencing token 2")),
        "{}",
        json(&fencing.events)
    );
}

#[test]
fn two_phase_commit_conserves_money_and_its_crashed_coordinator_blocks_until_recovery() {
    let r = declared("two-phase-commit");
    let none = cell(&r, "no-coordination", "rc");
    assert!(invariant(none, "money_not_conserved") > 0, "{}", json(none));
    assert!(none.stats.faults_total > 0, "{}", json(none));
    for s in ["2pc", "2pc-crash"] {
        let c = cell(&r, s, "rc");
        assert_eq!(invariant(c, "money_not_conserved"), 0, "{s}: {}", json(c));
        assert_eq!(invariant(c, "prepared_left"), 0, "{s}: {}", json(c));
        assert!(c.stats.committed > 0, "{s}: {}", json(c));
    }
    // The blocking a crashed coordinator causes: transfers wait on the rows its prepared
    // transactions hold until the recovery ends them, which it does only after they have been
    // in doubt for recover_after (200 ms).
    let crash = cell(&r, "2pc-crash", "rc");
    assert!(crash.stats.faults_total > 0, "{}", json(crash));
    assert!(
        crash.stats.latency_ms(0.99) >= 150.0,
        "p99 {} ms: transfers must have waited for transactions in doubt: {}",
        crash.stats.latency_ms(0.99),
        json(crash)
    );
    let names: Vec<&str> = r.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["bank_a", "bank_b", "coordinator"]);
    all_gone(&r);
}

#[test]
fn the_crashed_coordinator_replays_with_the_recovery_releasing_the_waiting_transfer() {
    let rs = replays(&["two-phase-commit"]);
    let r = &rs[0];
    assert_eq!(r.verdict.label(), "prevented", "{}", json(&r.events));
    let end = |s: &str| r.ends.iter().find(|e| e.session == s).unwrap().end.clone();
    assert!(end("a").starts_with("crashed"), "{}", end("a"));
    assert_eq!(end("b"), "committed");
    assert_eq!(end("r"), "committed");
    // b's debit waited for a's transaction in doubt, and resumed once r rolled it back.
    let text = json(&r.events);
    assert!(text.contains("\"waits\""), "b must wait: {text}");
    assert!(text.contains("ROLLBACK PREPARED"), "{text}");
}

#[test]
fn two_phase_commit_is_refused_on_mariadb_and_a_misplaced_step_is_located() {
    let out = run(&["run", "two-phase-commit", "--engine", "mariadb"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("PostgreSQL only"), "{}", stderr(&out));

    let dir = scratch();
    let base = r#"
name = "nodes"
summary = "s"
[node.a]
[node.b]
[node.locks]
engine = "redis"
[setup]
sql = "CREATE TABLE t (x int)"
[[invariant]]
name = "i"
anomaly = "a"
explain = "e"
node = "a"
sql = "SELECT 0"
"#;
    for (step, want) in [
        ("sql = \"SELECT 1\"", "say which this runs on"),
        ("node = \"c\"\nsql = \"SELECT 1\"", "no node named `c`"),
        (
            "node = \"a\"\nlock = { release = '\"k\"' }",
            "a lock step runs on a lock-service node",
        ),
        (
            "node = \"locks\"\nsql = \"SELECT 1\"",
            "has no SQL and no transaction",
        ),
        (
            "node = \"locks\"\nlock = { acquire = '\"k\"' }",
            "`acquire` needs `ttl`",
        ),
        (
            "node = \"a\"\nsql = \"SELECT 1\"\ncommit = true\nprepare = '\"g\"'",
            "drop `commit`",
        ),
    ] {
        let text = format!("{base}[strategy.s]\nsummary = \"s\"\n[[strategy.s.step]]\n{step}\n");
        let file = write(&dir, "nodes.toml", &text);
        let out = run(&["validate", file.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{step}: accepted");
        assert!(err.contains(want), "{step}: {err}");
        assert!(err.contains("nodes.toml:"), "the file and line: {err}");
    }
    // A --node that names no node of the scenario.
    let out = run(&["run", "distributed-lock", "--node", "lock=redis://x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no node named `lock`"),
        "{}",
        stderr(&out)
    );
}

/// A COMMIT whose connection goes away: the server may or may not have committed, and the
/// client cannot know. Here a deferred trigger terminates the session's own backend at COMMIT,
/// so every operation's COMMIT loses its connection.
#[test]
fn a_connection_lost_during_commit_is_an_unknown_outcome_and_the_client_reconnects() {
    let dir = scratch();
    let file = write(
        &dir,
        "lost-commit.toml",
        r#"
name = "lost-commit"
summary = "Every COMMIT loses its connection."
[setup]
sql = """
CREATE TABLE t (x int);
CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_terminate_backend(pg_backend_pid());
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER die AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION die();
"""
[strategy.insert]
summary = "one insert"
[[strategy.insert.step]]
sql = "INSERT INTO t VALUES (:op)"
[[invariant]]
name = "rows"
anomaly = "a row that committed"
explain = "the trigger kills the backend before the commit is durable"
sql = "SELECT count(*) FROM t"
"#,
    );
    for pipeline in [true, false] {
        let mut args = vec![
            file.to_str().unwrap(),
            "--clients",
            "2",
            "--operations",
            "6",
        ];
        if !pipeline {
            args.push("--no-pipeline");
        }
        let (code, r) = run_json(&args);
        assert_eq!(code, 0, "{}", json(&r));
        let c = cell(&r, "insert", "rc");
        assert_eq!(c.stats.unknown, 6, "pipeline {pipeline}: {}", json(c));
        assert_eq!(
            c.stats.committed,
            0,
            "never counted as committed: {}",
            json(c)
        );
        assert_eq!(c.stats.total_aborts(), 0, "nor as aborted: {}", json(c));
        assert_eq!(invariant(c, "rows"), 0, "{}", json(c));
    }
    let out = run(&["run", file.to_str().unwrap(), "--operations", "2"]);
    assert!(
        stdout(&out).contains(
            "unknown outcome, insert@rc: 2 operation(s) lost the connection during COMMIT"
        ),
        "{}",
        stdout(&out)
    );
}

/// `--node locks=URL` points the lock service at a Redis the test started: the run keeps its
/// keys under a prefix of its own and deletes only those; a key it did not create survives.
#[test]
fn a_node_given_by_url_keeps_the_data_the_run_did_not_create() {
    let mut redis = Ephemeral::start().expect("a private redis-server");
    let url = redis.url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut mine = LockService::connect(&url, "user:").await.unwrap();
        let held = mine
            .acquire("record", "me", std::time::Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(held, Some(1));
    });
    let node = format!("locks={url}");
    let (code, r) = run_json(&[
        "distributed-lock",
        "--strategy",
        "fencing",
        "--duration",
        "1s",
        "--node",
        &node,
    ]);
    assert_eq!(code, 0, "{}", json(&r));
    assert!(
        cell(&r, "fencing", "rc").stats.committed > 0,
        "{}",
        json(&r)
    );
    assert!(r.nodes[1].server.contains(&url), "{:?}", r.nodes);
    rt.block_on(async {
        let mut mine = LockService::connect(&url, "user:").await.unwrap();
        // Still held by the test: the run never touched it.
        assert!(!mine.release("record", "other").await.unwrap());
        assert!(
            mine.release("record", "me").await.unwrap(),
            "the test's own key is gone"
        );
    });
    redis.stop();
}

#[test]
fn a_saga_compensates_a_refused_credit_and_a_stopped_node_and_an_auditor_sees_money_in_flight() {
    let r = declared("saga");
    let none = cell(&r, "no-compensation", "rc");
    assert!(invariant(none, "money_not_conserved") > 0, "{}", json(none));
    for s in ["saga", "2pc"] {
        let c = cell(&r, s, "rc");
        assert_eq!(invariant(c, "money_not_conserved"), 0, "{s}: {}", json(c));
        assert!(c.stats.committed > 0, "{s}: {}", json(c));
    }
    let saga = cell(&r, "saga", "rc");
    assert!(
        saga.stats.rejected.get("compensated").copied().unwrap_or(0) > 0,
        "closed accounts must make sagas compensate: {}",
        json(saga)
    );
    // bank_b's server restarted under the transfers: the credits that met it down were
    // compensated (no-compensation just lost them), and no COMMIT the saga saw was lost.
    for c in [none, saga] {
        assert!(c.stats.faults_total > 0, "{}", json(c));
    }
    assert!(
        none.stats
            .rejected
            .get("credit_failed")
            .copied()
            .unwrap_or(0)
            > 0,
        "{}",
        json(none)
    );
    assert!(
        saga.stats
            .rejected
            .get("compensated_node_down")
            .copied()
            .unwrap_or(0)
            > 0,
        "a stopped bank_b must make sagas compensate: {}",
        json(saga)
    );
    // The recovery pass ran, and ended with nothing left to finish.
    let recovery = saga
        .auditors
        .iter()
        .find(|a| a.name == "recovery")
        .expect("the recovery pass");
    assert_eq!(
        recovery.stats.rejected.get("nothing_pending").copied(),
        Some(1),
        "{}",
        json(saga)
    );
    // Between the debit's commit and the credit's (or the compensation's), the money is on
    // neither bank: the auditor's sums show it.
    assert!(
        invariant(saga, "inconsistent_totals_seen") > 0,
        "{}",
        json(saga)
    );
    all_gone(&r);
}

/// bank_b restarted every 5 credits of client 1 for a second: sagas meet it down all the time,
/// some are cut at the deadline while it is, and the recovery pass finishes them: no money is
/// lost or made, whatever the timing.
#[test]
fn sagas_survive_a_node_that_keeps_restarting() {
    for seed in ["1", "2"] {
        let (code, r) = run_json(&[
            "saga",
            "--strategy",
            "saga",
            "--param",
            "restart_every=5",
            "--duration",
            "1s",
            "--seed",
            seed,
        ]);
        assert_eq!(code, 0, "{}", json(&r));
        let c = cell(&r, "saga", "rc");
        assert!(c.stats.faults_total > 1, "{}", json(c));
        assert_eq!(invariant(c, "money_not_conserved"), 0, "{}", json(c));
        all_gone(&r);
    }
}

/// Ctrl-C in the middle of a run on three private PostgreSQL clusters and a Redis: every one of
/// them is stopped and removed.
#[test]
fn interrupting_a_run_on_several_servers_removes_every_one() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let (mut child, mut reader, mut seen, _) = crate::provisioning::start(
        &[
            "run",
            "two-phase-commit",
            "--strategy",
            "2pc",
            "--duration",
            "60s",
        ],
        "2pc @",
    );
    std::thread::sleep(std::time::Duration::from_millis(700));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stop within 30 s of SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    seen.push_str(&rest);
    assert_eq!(status.code(), Some(130), "{seen}");
    // Every private server the run announced: the run database's and each node's.
    let tops: Vec<std::path::PathBuf> = seen
        .lines()
        .filter_map(|l| l.split("(ephemeral, ").nth(1))
        .map(|rest| {
            let data = rest.split([',', ')']).next().unwrap_or_default().trim();
            std::path::Path::new(data).parent().unwrap().to_path_buf()
        })
        .collect();
    assert_eq!(tops.len(), 3, "three clusters announced:\n{seen}");
    for top in tops {
        assert!(!top.exists(), "{} is left behind", top.display());
        assert_eq!(
            processes_using(&top),
            0,
            "a server of {} still runs",
            top.display()
        );
    }
}

/// Without two-phase commit, the final COMMIT runs node by node: here bank b's COMMIT fails
/// (a deferred unique key) after a's succeeded, every time. Each operation is counted as
/// partial, never as committed or aborted, is not retried, and a's writes stay.
#[test]
fn an_operation_committed_on_one_node_and_refused_on_the_next_is_partial() {
    let dir = scratch();
    let file = write(
        &dir,
        "partial.toml",
        r#"
name = "partial"
summary = "a commits, b refuses at COMMIT"
[node.a]
setup = { sql = "CREATE TABLE t (x int)" }
[node.b]
setup = { sql = "CREATE TABLE u (x int UNIQUE DEFERRABLE INITIALLY DEFERRED)" }
[setup]
sql = "CREATE TABLE marker (x int)"
[strategy.both]
summary = "a write on each node"
[[strategy.both.step]]
node = "a"
sql = "INSERT INTO t VALUES (:op)"
[[strategy.both.step]]
node = "b"
sql = "INSERT INTO u VALUES (:op), (:op)"
[[invariant]]
name = "written_on_a"
anomaly = "a write that stayed on a"
explain = "rows on a whose operation failed on b"
node = "a"
sql = "SELECT count(*) FROM t"
"#,
    );
    let (code, r) = run_json(&[
        file.to_str().unwrap(),
        "--clients",
        "1",
        "--operations",
        "4",
    ]);
    assert_eq!(code, 0, "{}", json(&r));
    let c = cell(&r, "both", "rc");
    assert_eq!(c.stats.partial, 4, "{}", json(c));
    assert_eq!(c.stats.committed, 0, "{}", json(c));
    assert_eq!(c.stats.total_aborts(), 0, "{}", json(c));
    assert_eq!(c.stats.retries, 0, "{}", json(c));
    assert_eq!(invariant(c, "written_on_a"), 4, "{}", json(c));
}

/// Advisory locks stack within a session: a lock that an attempt took and abandoned (rejected
/// before its release) is released when its client's next attempt starts, or the client would
/// keep it forever (each acquire stacking on the last) and the other client could never take it.
#[test]
fn an_advisory_lock_an_attempt_abandoned_is_released_by_its_clients_next_attempt() {
    let dir = scratch();
    let file = write(
        &dir,
        "abandon.toml",
        r#"
name = "abandon"
summary = "Client 0 abandons its first lock."
[node.store]
[node.locks]
engine = "postgres-advisory"
[setup]
sql = "CREATE TABLE t (x int)"
[run]
clients = 2
duration = "1s"
max_tries = 400
[strategy.s]
summary = "take, maybe abandon, release"
[[strategy.s.step]]
node = "locks"
lock = { acquire = '"k"', ttl = "10000" }
retry_if = "!acquired"
[[strategy.s.step]]
reject_if = "client == 0 && op == 1"
outcome = "abandoned"
[[strategy.s.step]]
node = "store"
sql = "INSERT INTO t VALUES (:client)"
commit = true
[[strategy.s.step]]
node = "locks"
lock = { release = '"k"' }
think = "5ms"
[[invariant]]
name = "client_1_rows"
anomaly = "none"
explain = "operations of client 1 that took the lock"
node = "store"
sql = "SELECT count(*) FROM t WHERE x = 1"
"#,
    );
    let (code, r) = run_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{}", json(&r));
    let c = cell(&r, "s", "rc");
    assert_eq!(
        c.stats.rejected.get("abandoned").copied(),
        Some(1),
        "{}",
        json(c)
    );
    // Client 1 takes the lock all through the second, not just before client 0's first
    // attempt abandoned it.
    assert!(
        invariant(c, "client_1_rows") > 10,
        "client 0 kept the lock it abandoned: {}",
        json(c)
    );
}
