//! seat-hold (reservations with a TTL) on a private PostgreSQL and a private MariaDB side by
//! side: every run holds the expectations the scenario declares per level and engine, the
//! strategies that never check the hold or check it against the transaction's start sell
//! expired holds (and no-check sells seats twice), the clock read under the seat's lock and
//! the lock held for the whole purchase sell nothing wrong, and each replay gives the verdict
//! the scenario's notes describe, step by step.

use contention::engine::EngineKind;
use contention::replay::Replay;
use contention::report::document::Document;

use crate::builtins::{
    cell, damaged, declared, end, find, levels, rejected, safe, verdict, waited,
};
use crate::support::{document, invariant, json, run, stderr};

const PG: EngineKind = EngineKind::Postgres;
const MARIADB: EngineKind = EngineKind::Mariadb;

/// `contention replay seat-hold --schedule NAME` on both engines, every level and strategy.
fn replays_of(schedule: &str) -> Vec<Replay> {
    let out = run(&[
        "replay",
        "seat-hold",
        "--schedule",
        schedule,
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

/// A replay's measured invariant.
fn measured(r: &Replay, name: &str) -> i64 {
    r.invariants
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no invariant {name}"))
        .value
}

#[test]
fn seat_hold_sells_expired_holds_unless_the_clock_is_read_under_the_seats_lock() {
    let r = declared("seat-hold");
    for engine in [PG, MARIADB] {
        // Never looking at the hold again: slow customers' expired holds are sold at every
        // level, and at rc the seats the sweeper released to another customer are sold twice.
        for level in levels(&r, engine, "no-check") {
            damaged(&r, engine, "no-check", &level, "sold_after_expiry");
        }
        damaged(&r, engine, "no-check", "rc", "sold_twice");
        // The clock read after the waits, under the seat's lock; and no hold at all.
        safe(&r, engine, "clock-check");
        safe(&r, engine, "lock-whole-purchase");
        for level in levels(&r, engine, "clock-check") {
            let c = cell(&r, engine, "clock-check", &level);
            assert!(
                rejected(c, "hold_expired") > 0,
                "clock-check refuses the expired holds: {}",
                json(c)
            );
        }
        // Locking the seat for the whole purchase makes the next customer wait for the
        // deliberation: its operations take longer than those of the holds.
        let held = cell(&r, engine, "clock-check", "rc");
        let locked = cell(&r, engine, "lock-whole-purchase", "rc");
        assert!(
            locked.stats.latency_ms(0.5) > 1.5 * held.stats.latency_ms(0.5),
            "{}@rc: lock-whole-purchase p50 {:.0} ms vs clock-check {:.0} ms",
            engine.name(),
            locked.stats.latency_ms(0.5),
            held.stats.latency_ms(0.5)
        );
    }
    // now() on PostgreSQL is the transaction's start: the last-moment customers' holds expire
    // while they pay and queue, and the check still passes, at every level (serializable too:
    // nothing concurrent is wrong, the clock is). It checks the holder, so never twice.
    for level in ["rc", "rr", "serializable"] {
        damaged(&r, PG, "txn-start-now", level, "sold_after_expiry");
    }
    for engine in [PG, MARIADB] {
        for level in levels(&r, engine, "txn-start-now") {
            let c = cell(&r, engine, "txn-start-now", &level);
            assert_eq!(invariant(c, "sold_twice"), 0, "{}", json(c));
        }
    }
}

#[test]
fn seat_hold_stale_now_replay_sells_an_expired_hold_on_postgresql_only() {
    let rs = replays_of("stale-now");
    // b waits for a's lock on the show while its hold expires; now() is b's start.
    for level in ["rc", "rr", "serializable"] {
        verdict(&rs, PG, "txn-start-now", level, "possible");
        let t = find(&rs, PG, "txn-start-now", level);
        assert!(waited(t, "b"), "{}", json(&t.events));
        assert_eq!(end(t, "b"), "committed", "{level}");
        assert!(measured(t, "sold_after_expiry") > 0, "{level}");
        // The clock read after the wait refuses it.
        verdict(&rs, PG, "clock-check", level, "prevented");
        let c = find(&rs, PG, "clock-check", level);
        assert_eq!(end(c, "b"), "rejected: hold_expired", "{level}");
    }
    // MariaDB's NOW(6) is the statement's start: b's check runs after its wait and refuses.
    for level in ["ru", "rc", "rr", "serializable"] {
        verdict(&rs, MARIADB, "txn-start-now", level, "prevented");
        let t = find(&rs, MARIADB, "txn-start-now", level);
        assert!(waited(t, "b"), "{}", json(&t.events));
        assert_eq!(end(t, "b"), "rejected: hold_expired", "{level}");
    }
}

#[test]
fn seat_hold_takeover_replay_sells_the_only_seat_twice_without_a_check() {
    let rs = replays_of("takeover");
    for (engine, levels) in [
        (PG, &["rc", "rr", "serializable"][..]),
        (MARIADB, &["ru", "rc", "rr", "serializable"][..]),
    ] {
        for &level in levels {
            verdict(&rs, engine, "no-check", level, "possible");
            let n = find(&rs, engine, "no-check", level);
            assert_eq!(measured(n, "sold_twice"), 1, "{level}");
            assert_eq!(measured(n, "over_capacity"), 1, "{level}");
            for strategy in ["txn-start-now", "clock-check"] {
                verdict(&rs, engine, strategy, level, "prevented");
                let s = find(&rs, engine, strategy, level);
                assert_eq!(end(s, "a"), "rejected: hold_expired", "{strategy}@{level}");
                assert_eq!(end(s, "b"), "committed", "{strategy}@{level}");
            }
        }
    }
}
