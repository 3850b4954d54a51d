//! The built-ins from everyday designs (meeting-room, wallet-overdraft, duplicate-callback,
//! job-queue), on a private PostgreSQL and a private MariaDB side by side: every run holds the
//! expectations each scenario declares per level and engine (`--expect declared`), the unsafe
//! strategies show their anomaly, the safe ones none, and each replay gives the verdict the
//! scenario's notes describe, step by step.

use contention::engine::EngineKind;
use contention::replay::{Kind as EventKind, Replay};
use contention::report::document::Document;
use contention::report::{Cell, RunReport};

use crate::support::{document, invariant, json, run, run_json, stderr, stdout, writer_damage};

const PG: EngineKind = EngineKind::Postgres;
const MARIADB: EngineKind = EngineKind::Mariadb;

/// `contention run NAME` on both engines at every level with `--expect declared`, which must
/// hold.
pub(crate) fn declared(name: &str) -> RunReport {
    let (code, report) = run_json(&[
        name,
        "--engine",
        "postgres,mariadb",
        "--isolation",
        "all",
        "--expect",
        "declared",
        "--seed",
        "1",
    ]);
    let failures: Vec<String> = report
        .failures()
        .map(|(c, f)| format!("{}: {f}", c.label()))
        .collect();
    assert_eq!(
        code, 0,
        "{name}: declared expectations failed: {failures:#?}"
    );
    report
}

pub(crate) fn cell<'a>(
    r: &'a RunReport,
    engine: EngineKind,
    strategy: &str,
    level: &str,
) -> &'a Cell {
    r.cells
        .iter()
        .find(|c| c.engine == engine && c.strategy == strategy && c.isolation.to_string() == level)
        .unwrap_or_else(|| panic!("no cell {}:{strategy}@{level}", engine.name()))
}

/// Levels of a strategy's cells on an engine (a pinned strategy has one).
pub(crate) fn levels(r: &RunReport, engine: EngineKind, strategy: &str) -> Vec<String> {
    r.cells
        .iter()
        .filter(|c| c.engine == engine && c.strategy == strategy)
        .map(|c| c.isolation.to_string())
        .collect()
}

/// A correct strategy on an engine: no writer-side damage at any level, no unmapped error, and
/// it did real work.
pub(crate) fn safe(r: &RunReport, engine: EngineKind, strategy: &str) {
    let ls = levels(r, engine, strategy);
    assert!(!ls.is_empty(), "no cells of {strategy}");
    for level in ls {
        let c = cell(r, engine, strategy, &level);
        let at = format!("{}:{strategy}@{level}", engine.name());
        assert_eq!(
            writer_damage(c),
            0,
            "{at} must show no anomaly: {}",
            json(c)
        );
        assert!(c.stats.other_codes.is_empty(), "{at}: {}", json(c));
        assert!(c.stats.committed > 0, "{at} did nothing: {}", json(c));
    }
}

pub(crate) fn damaged(r: &RunReport, engine: EngineKind, strategy: &str, level: &str, inv: &str) {
    let c = cell(r, engine, strategy, level);
    assert!(
        invariant(c, inv) > 0,
        "{}:{strategy}@{level} must show {inv}: {}",
        engine.name(),
        json(c)
    );
}

pub(crate) fn rejected(c: &Cell, outcome: &str) -> u64 {
    c.stats.rejected.get(outcome).copied().unwrap_or(0)
}

/// `contention replay NAME` on both engines, every level and strategy.
fn replays(name: &str) -> Vec<Replay> {
    let out = run(&[
        "replay",
        name,
        "--engine",
        "postgres,mariadb",
        "--isolation",
        "all",
        "--strategy",
        "all",
        "--format",
        "json",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    match document(&out) {
        Document::Replay(r) => r.replays,
        other => panic!("a {} document from `replay`", other.kind()),
    }
}

pub(crate) fn find<'a>(
    rs: &'a [Replay],
    engine: EngineKind,
    strategy: &str,
    level: &str,
) -> &'a Replay {
    rs.iter()
        .find(|r| {
            r.engine == engine
                && r.strategy.as_deref() == Some(strategy)
                && r.isolation.to_string() == level
        })
        .unwrap_or_else(|| panic!("no replay {}:{strategy}@{level}", engine.name()))
}

/// Asserts a replay's verdict label.
pub(crate) fn verdict(rs: &[Replay], engine: EngineKind, strategy: &str, level: &str, want: &str) {
    let r = find(rs, engine, strategy, level);
    assert_eq!(
        r.verdict.label(),
        want,
        "{}:{strategy}@{level}: {}",
        engine.name(),
        json(&r.events)
    );
}

/// How session `session` of a replay ended (`committed`, `rejected: room_taken`, ...).
pub(crate) fn end<'a>(r: &'a Replay, session: &str) -> &'a str {
    &r.ends
        .iter()
        .find(|e| e.session == session)
        .expect("the session")
        .end
}

/// The error codes session `session` got in a replay, in order.
pub(crate) fn errors(r: &Replay, session: &str) -> Vec<String> {
    r.events
        .iter()
        .filter(|e| e.session == session)
        .filter_map(|e| e.trace.error.as_ref().map(|(code, _)| code.clone()))
        .collect()
}

pub(crate) fn waited(r: &Replay, session: &str) -> bool {
    r.events
        .iter()
        .any(|e| e.session == session && matches!(e.kind, EventKind::Waits { .. }))
}

/// `contention show NAME --engine ENGINE --format json`: the resolved scenario.
fn shown(name: &str, engine: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["show", name, "--engine", engine, "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("show's JSON")
}

/// What a strategy runs: each step's name and SQL.
fn steps_of(s: &serde_json::Value, strategy: &str) -> Vec<(serde_json::Value, serde_json::Value)> {
    s["strategies"][strategy]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps of {strategy}"))
        .iter()
        .map(|st| (st["name"].clone(), st["sql"].clone()))
        .collect()
}

/// The built-ins keep one set of tables: a strategy that relies on a constraint runs the naive
/// steps (the same templates) with the constraint added by its own setup on each engine, which
/// the naive strategy never gets; job-queue's job time is a parameter.
#[test]
fn constraint_strategies_run_the_naive_steps_under_their_own_setup() {
    for engine in ["postgres", "mariadb"] {
        for (name, safe) in [
            ("wallet-overdraft", "check-constraint"),
            ("duplicate-callback", "unique"),
        ] {
            let s = shown(name, engine, &[]);
            assert_eq!(
                steps_of(&s, "naive"),
                steps_of(&s, safe),
                "{name} on {engine}"
            );
            assert!(
                s["strategies"]["naive"].get("setup").is_none(),
                "{name}: naive has no setup of its own"
            );
            let setup = s["strategies"][safe]["setup"].to_string();
            let want = if name == "wallet-overdraft" {
                "CHECK (balance >= 0)"
            } else {
                "UNIQUE (callback_id)"
            };
            assert!(setup.contains(want), "{name}:{safe} on {engine}: {setup}");
        }
        let m = shown("meeting-room", engine, &[]);
        let setup = m["strategies"]["exclusion"]["setup"].to_string();
        let want = if engine == "postgres" {
            "EXCLUDE USING gist"
        } else {
            "CREATE TABLE room_slots"
        };
        assert!(setup.contains(want), "meeting-room on {engine}: {setup}");
        let j = shown("job-queue", engine, &["--param", "job_time=5"]);
        for strategy in ["naive", "for-update", "skip-locked"] {
            assert_eq!(
                j["strategies"][strategy]["steps"][0]["think"],
                serde_json::json!({"fixed": "5ms"}),
                "job-queue:{strategy} on {engine}"
            );
        }
    }
}

// -------------------------------------------------------------------------------------------
// meeting-room

#[test]
fn meeting_room_double_books_where_each_engine_allows_it() {
    let r = declared("meeting-room");
    for level in ["rc", "rr"] {
        damaged(&r, PG, "naive", level, "double_booked");
    }
    for level in ["ru", "rc", "rr"] {
        damaged(&r, MARIADB, "naive", level, "double_booked");
    }
    // The room lock: correct at rc; at rr on PostgreSQL the waiter's snapshot predates the wait.
    damaged(&r, PG, "lock-room", "rr", "double_booked");
    for level in ["rc", "serializable"] {
        let c = cell(&r, PG, "lock-room", level);
        assert_eq!(invariant(c, "double_booked"), 0, "lock-room@{level}");
        assert!(rejected(c, "room_taken") > 0, "{}", json(c));
    }
    // ... and on MariaDB at every level, rr included (the read view starts after the wait).
    safe(&r, MARIADB, "lock-room");
    for engine in [PG, MARIADB] {
        safe(&r, engine, "exclusion");
        safe(&r, engine, "serializable");
        for level in levels(&r, engine, "exclusion") {
            let c = cell(&r, engine, "exclusion", &level);
            assert!(
                rejected(c, "room_taken") > 0,
                "23P01 / 1062 count as room_taken: {}",
                json(c)
            );
        }
    }
    for engine in [PG, MARIADB] {
        let c = cell(&r, engine, "naive", "serializable");
        assert_eq!(invariant(c, "double_booked"), 0, "{}", json(c));
    }
}

#[test]
fn meeting_room_replays_show_the_room_lock_failing_at_repeatable_read_on_postgresql() {
    let rs = replays("meeting-room");
    for level in ["rc", "rr"] {
        verdict(&rs, PG, "naive", level, "possible");
    }
    verdict(
        &rs,
        PG,
        "naive",
        "serializable",
        "prevented by abort (40001)",
    );
    verdict(
        &rs,
        PG,
        "serializable",
        "serializable",
        "prevented by abort (40001)",
    );
    verdict(&rs, PG, "lock-room", "rc", "prevented");
    verdict(
        &rs,
        PG,
        "lock-room",
        "serializable",
        "prevented by abort (40001)",
    );
    // rr: b waits for a's room lock, and after a commits its count still finds no clash.
    verdict(&rs, PG, "lock-room", "rr", "possible");
    let rr = find(&rs, PG, "lock-room", "rr");
    assert!(waited(rr, "b"), "{}", json(&rr.events));
    assert!(errors(rr, "b").is_empty(), "no 40001: {}", json(&rr.events));
    assert_eq!(end(rr, "b"), "committed");
    assert_eq!(
        end(find(&rs, PG, "lock-room", "rc"), "b"),
        "rejected: room_taken"
    );
    for level in ["rc", "rr", "serializable"] {
        verdict(&rs, PG, "exclusion", level, "prevented");
        let x = find(&rs, PG, "exclusion", level);
        assert!(waited(x, "b"), "b's INSERT waits for a's booking");
        assert_eq!(errors(x, "b"), ["23P01"], "exclusion@{level}");
        assert_eq!(end(x, "b"), "rejected: room_taken");
    }

    for level in ["ru", "rc", "rr"] {
        verdict(&rs, MARIADB, "naive", level, "possible");
    }
    verdict(
        &rs,
        MARIADB,
        "naive",
        "serializable",
        "prevented by abort (1213)",
    );
    verdict(
        &rs,
        MARIADB,
        "serializable",
        "serializable",
        "prevented by abort (1213)",
    );
    for level in ["ru", "rc", "rr", "serializable"] {
        verdict(&rs, MARIADB, "lock-room", level, "prevented");
        let l = find(&rs, MARIADB, "lock-room", level);
        assert!(waited(l, "b"));
        assert_eq!(end(l, "b"), "rejected: room_taken", "lock-room@{level}");
        verdict(&rs, MARIADB, "exclusion", level, "prevented");
        let x = find(&rs, MARIADB, "exclusion", level);
        assert_eq!(
            errors(x, "b"),
            ["1062"],
            "the slot grid's key, exclusion@{level}"
        );
        assert_eq!(end(x, "b"), "rejected: room_taken");
    }
}

// -------------------------------------------------------------------------------------------
// wallet-overdraft

#[test]
fn wallet_overdraft_goes_negative_only_with_the_naive_check() {
    let r = declared("wallet-overdraft");
    damaged(&r, PG, "naive", "rc", "overdrawn");
    for level in ["ru", "rc", "rr"] {
        damaged(&r, MARIADB, "naive", level, "overdrawn");
    }
    for level in ["rr", "serializable"] {
        let c = cell(&r, PG, "naive", level);
        assert_eq!(writer_damage(c), 0, "{}", json(c));
    }
    assert_eq!(writer_damage(cell(&r, MARIADB, "naive", "serializable")), 0);
    for engine in [PG, MARIADB] {
        safe(&r, engine, "guarded");
        safe(&r, engine, "check-constraint");
        let c = cell(&r, engine, "check-constraint", "rc");
        assert!(
            rejected(c, "insufficient_funds") > 0,
            "23514 / 4025 count as insufficient_funds: {}",
            json(c)
        );
    }
}

#[test]
fn wallet_overdraft_replays_give_each_strategys_verdict() {
    let rs = replays("wallet-overdraft");
    verdict(&rs, PG, "naive", "rc", "possible");
    for level in ["rr", "serializable"] {
        for s in ["naive", "guarded", "check-constraint"] {
            verdict(&rs, PG, s, level, "prevented by abort (40001)");
        }
    }
    for level in ["ru", "rc", "rr"] {
        verdict(&rs, MARIADB, "naive", level, "possible");
    }
    verdict(
        &rs,
        MARIADB,
        "naive",
        "serializable",
        "prevented by abort (1213)",
    );
    let rc = find(&rs, PG, "check-constraint", "rc");
    assert_eq!(errors(rc, "b"), ["23514"]);
    assert_eq!(end(rc, "b"), "rejected: insufficient_funds");
    for level in ["ru", "rc", "rr", "serializable"] {
        verdict(&rs, MARIADB, "guarded", level, "prevented");
        assert_eq!(
            end(find(&rs, MARIADB, "guarded", level), "b"),
            "rejected: insufficient_funds"
        );
    }
    for level in ["ru", "rc", "rr"] {
        let c = find(&rs, MARIADB, "check-constraint", level);
        assert_eq!(errors(c, "b"), ["4025"], "check-constraint@{level}");
        assert_eq!(end(c, "b"), "rejected: insufficient_funds");
    }
    for engine in [PG, MARIADB] {
        verdict(&rs, engine, "guarded", "rc", "prevented");
        let g = find(&rs, engine, "guarded", "rc");
        assert!(waited(g, "b"), "b's guarded UPDATE waits for a");
    }
}

// -------------------------------------------------------------------------------------------
// duplicate-callback

#[test]
fn duplicate_callback_books_twice_only_without_a_key() {
    let r = declared("duplicate-callback");
    for level in ["rc", "rr"] {
        damaged(&r, PG, "naive", level, "double_booked");
    }
    for level in ["ru", "rc", "rr"] {
        damaged(&r, MARIADB, "naive", level, "double_booked");
    }
    assert_eq!(writer_damage(cell(&r, PG, "naive", "serializable")), 0);
    assert_eq!(writer_damage(cell(&r, MARIADB, "naive", "serializable")), 0);
    for engine in [PG, MARIADB] {
        for s in ["unique", "on-conflict"] {
            safe(&r, engine, s);
            let c = cell(&r, engine, s, "rc");
            assert!(rejected(c, "duplicate") > 0, "{}", json(c));
        }
    }
}

#[test]
fn duplicate_callback_replays_give_each_strategys_verdict() {
    let rs = replays("duplicate-callback");
    for level in ["rc", "rr"] {
        verdict(&rs, PG, "naive", level, "possible");
    }
    verdict(
        &rs,
        PG,
        "naive",
        "serializable",
        "prevented by abort (40001)",
    );
    for level in ["ru", "rc", "rr"] {
        verdict(&rs, MARIADB, "naive", level, "possible");
    }
    verdict(
        &rs,
        MARIADB,
        "naive",
        "serializable",
        "prevented by abort (1213)",
    );
    // UNIQUE: the second INSERT waits for the first's key, then 23505 (rr too) / 1062.
    for level in ["rc", "rr"] {
        let u = find(&rs, PG, "unique", level);
        assert!(waited(u, "b"));
        assert_eq!(errors(u, "b"), ["23505"], "unique@{level}");
        assert_eq!(end(u, "b"), "rejected: duplicate");
        verdict(&rs, PG, "unique", level, "prevented");
    }
    verdict(
        &rs,
        PG,
        "unique",
        "serializable",
        "prevented by abort (40001)",
    );
    for level in ["ru", "rc", "rr"] {
        let u = find(&rs, MARIADB, "unique", level);
        assert_eq!(errors(u, "b"), ["1062"], "unique@{level}");
        assert_eq!(end(u, "b"), "rejected: duplicate");
    }
    // ON CONFLICT DO NOTHING inserts nothing at rc; at rr the unseen conflicting row is 40001.
    verdict(&rs, PG, "on-conflict", "rc", "prevented");
    assert_eq!(
        end(find(&rs, PG, "on-conflict", "rc"), "b"),
        "rejected: duplicate"
    );
    for level in ["rr", "serializable"] {
        verdict(&rs, PG, "on-conflict", level, "prevented by abort (40001)");
    }
    // INSERT IGNORE: 0 rows, no error, at every level.
    for level in ["ru", "rc", "rr", "serializable"] {
        let o = find(&rs, MARIADB, "on-conflict", level);
        assert!(errors(o, "b").is_empty(), "on-conflict@{level}");
        assert_eq!(end(o, "b"), "rejected: duplicate");
        verdict(&rs, MARIADB, "on-conflict", level, "prevented");
    }
}

// -------------------------------------------------------------------------------------------
// job-queue

#[test]
fn job_queue_runs_jobs_twice_only_naively_and_skip_locked_is_faster() {
    let r = declared("job-queue");
    damaged(&r, PG, "naive", "rc", "ran_twice");
    for level in ["ru", "rc", "rr"] {
        damaged(&r, MARIADB, "naive", level, "ran_twice");
    }
    for level in ["rr", "serializable"] {
        assert_eq!(writer_damage(cell(&r, PG, "naive", level)), 0);
    }
    assert_eq!(writer_damage(cell(&r, MARIADB, "naive", "serializable")), 0);
    for engine in [PG, MARIADB] {
        safe(&r, engine, "for-update");
        safe(&r, engine, "skip-locked");
        // FOR UPDATE runs one job at a time; SKIP LOCKED lets the workers run in parallel
        // (6-7x at rc and rr on a quiet machine; 2x leaves room for a loaded one).
        for level in ["rc", "rr"] {
            let locked = cell(&r, engine, "for-update", level);
            let skip = cell(&r, engine, "skip-locked", level);
            assert!(
                skip.ops_per_s > 2.0 * locked.ops_per_s,
                "{}@{level}: skip-locked {:.0} ops/s vs for-update {:.0}",
                engine.name(),
                skip.ops_per_s,
                locked.ops_per_s
            );
        }
    }
}

#[test]
fn job_queue_replays_give_each_strategys_verdict() {
    let rs = replays("job-queue");
    verdict(&rs, PG, "naive", "rc", "possible");
    for level in ["rr", "serializable"] {
        verdict(&rs, PG, "naive", level, "prevented by abort (40001)");
        verdict(&rs, PG, "for-update", level, "prevented by abort (40001)");
    }
    for level in ["ru", "rc", "rr"] {
        verdict(&rs, MARIADB, "naive", level, "possible");
    }
    verdict(
        &rs,
        MARIADB,
        "naive",
        "serializable",
        "prevented by abort (1213)",
    );
    for engine in [PG, MARIADB] {
        // FOR UPDATE at rc: b waits for job 1, then takes job 2.
        verdict(&rs, engine, "for-update", "rc", "prevented");
        let f = find(&rs, engine, "for-update", "rc");
        assert!(waited(f, "b"), "{}", json(&f.events));
        assert_eq!(end(f, "b"), "committed");
        // SKIP LOCKED at rc and rr: b passes over job 1 without waiting.
        for level in ["rc", "rr"] {
            verdict(&rs, engine, "skip-locked", level, "prevented");
            let s = find(&rs, engine, "skip-locked", level);
            assert!(!waited(s, "b"), "skip-locked@{level}: {}", json(&s.events));
        }
    }
}
