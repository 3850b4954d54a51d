//! Deterministic replays: each core scenario's schedule gives the outcome of the catalogue at
//! every level, the same timeline on every run; the anomaly catalogue gives PostgreSQL's table.

use contention::replay::{Event, Kind as EventKind, Replay};
use contention::report::document::Document;

use crate::support::{document, json, replays, run, stderr, stdout};

fn find<'a>(rs: &'a [Replay], strategy: &str, level: &str) -> &'a Replay {
    rs.iter()
        .find(|r| r.strategy.as_deref() == Some(strategy) && r.isolation.to_string() == level)
        .unwrap_or_else(|| panic!("no replay {strategy}@{level}"))
}

fn verdict(r: &Replay) -> String {
    r.verdict.label()
}

fn invariant(r: &Replay, name: &str) -> i64 {
    r.invariants
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no invariant {name}"))
        .value
}

/// The timeline without anything that may differ between runs (there should be nothing).
fn timeline(rs: &[Replay]) -> Vec<String> {
    rs.iter()
        .map(|r| json(&(&r.strategy, r.isolation, &r.events, &r.verdict)))
        .collect()
}

fn events_of<'a>(r: &'a Replay, session: &str) -> Vec<&'a Event> {
    r.events.iter().filter(|e| e.session == session).collect()
}

/// The SQLSTATE of the error that ended the event's attempt, if any.
fn error(e: &Event) -> Option<&str> {
    e.trace.error.as_ref().map(|(code, _)| code.as_str())
}

#[test]
fn ticketmaster_oversells_step_by_step_at_read_committed_only() {
    let first = replays(&["ticketmaster", "--isolation", "all", "--strategy", "all"]);
    for _ in 0..2 {
        let again = replays(&["ticketmaster", "--isolation", "all", "--strategy", "all"]);
        assert_eq!(
            timeline(&first),
            timeline(&again),
            "a replay must give the same timeline every run"
        );
    }
    let rs = &first;
    for unsafe_strategy in ["naive", "unchecked-conditional"] {
        let rc = find(rs, unsafe_strategy, "rc");
        assert_eq!(verdict(rc), "possible");
        assert_eq!(invariant(rc, "oversold"), 1, "two tickets for one seat");
        for level in ["rr", "serializable"] {
            assert_eq!(
                verdict(find(rs, unsafe_strategy, level)),
                "prevented by abort (40001)",
                "{unsafe_strategy}@{level}"
            );
        }
    }
    // The unchecked conditional UPDATE at rc: b's UPDATE changes 0 rows and its INSERT runs anyway.
    let b = events_of(find(rs, "unchecked-conditional", "rc"), "b");
    assert!(
        b.iter()
            .any(|e| e.trace.result.as_deref() == Some("0 rows affected")),
        "{b:?}"
    );
    for safe in ["conditional", "for-update", "version", "table-lock"] {
        for level in ["rc", "rr", "serializable"] {
            assert!(
                verdict(find(rs, safe, level)).starts_with("prevented"),
                "{safe}@{level}"
            );
        }
    }
    assert!(verdict(find(rs, "serializable", "serializable")).starts_with("prevented"));
    // FOR UPDATE: b's read waits for a, resumes after a commits, and finds the concert sold out.
    let fu = find(rs, "for-update", "rc");
    let b = events_of(fu, "b");
    assert!(
        b.iter().any(|e| e.kind
            == EventKind::Waits {
                blockers: vec!["a".into()]
            }),
        "{b:?}"
    );
    assert!(
        b.iter()
            .any(|e| e.kind == EventKind::Resumes && e.end.as_deref() == Some("rejected: sold_out")),
        "{b:?}"
    );
}

#[test]
fn bank_transfer_loses_a_credit_at_read_committed_only() {
    let rs = replays(&["bank-transfer", "--isolation", "all", "--strategy", "all"]);
    let rc = find(&rs, "naive", "rc");
    assert_eq!(verdict(rc), "possible");
    assert_eq!(
        invariant(rc, "money_drift"),
        10,
        "a's credit of 10 was overwritten"
    );
    for level in ["rr", "serializable"] {
        assert_eq!(
            verdict(find(&rs, "naive", level)),
            "prevented by abort (40001)"
        );
    }
    for s in ["atomic", "for-update", "for-update-ordered", "version"] {
        for level in ["rc", "rr", "serializable"] {
            assert!(
                verdict(find(&rs, s, level)).starts_with("prevented"),
                "{s}@{level}"
            );
        }
    }
}

#[test]
fn deadlock_victim_is_the_session_that_closes_the_cycle() {
    for _ in 0..3 {
        let rs = replays(&["deadlock", "--isolation", "all", "--strategy", "all"]);
        for level in ["rc", "rr", "serializable"] {
            let un = find(&rs, "unordered", level);
            let b = events_of(un, "b");
            assert!(
                b.iter().any(|e| error(e) == Some("40P01")),
                "unordered@{level}: b closes the cycle and gets 40P01: {b:?}"
            );
            assert!(
                events_of(un, "a").iter().all(|e| error(e).is_none()),
                "a is never the victim"
            );
            let ordered = find(&rs, "ordered", level);
            assert!(
                ordered.events.iter().all(|e| error(e) != Some("40P01")),
                "ordered: no deadlock (at rr and serializable b's lock after a's commit is a 40001)"
            );
            assert!(
                events_of(ordered, "b")
                    .iter()
                    .any(|e| matches!(e.kind, EventKind::Waits { .. })),
                "ordered: b waits its turn"
            );
            for s in ["nowait", "lock-timeout"] {
                assert!(
                    find(&rs, s, level)
                        .events
                        .iter()
                        .any(|e| error(e) == Some("55P03")),
                    "{s}@{level}: 55P03"
                );
            }
        }
    }
}

#[test]
fn a_schedule_can_be_given_on_the_command_line() {
    let rs = replays(&[
        "ticketmaster",
        "--strategy",
        "naive",
        "--schedule",
        "a1 a2 a3 a4 b1 b2 b3 b4",
    ]);
    let r = &rs[0];
    assert_eq!(r.schedule, "given");
    assert_eq!(
        verdict(r),
        "prevented",
        "run one after the other, the second buyer finds it sold out"
    );
    assert_eq!(r.ends[1].end, "rejected: sold_out");

    let out = run(&["replay", "ticketmaster", "--schedule", "a1 b9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--schedule `b9`: session b has at most"),
        "{}",
        stderr(&out)
    );
    let out = run(&["replay", "ticketmaster", "--schedule", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no such schedule; ticketmaster has oversell"),
        "{}",
        stderr(&out)
    );
    let out = run(&["replay", "ticketmaster", "--strategy", "optimistic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--strategy optimistic: no such strategy"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_timeline_shows_waits_and_resumptions() {
    let out = run(&[
        "replay",
        "ticketmaster",
        "--strategy",
        "for-update",
        "--quiet",
        "--color",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("waits for a"), "{text}");
    assert!(text.contains("resumes"), "{text}");
    assert!(text.contains("⇒ rejected: sold_out"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour codes when not asked");
    let out = run(&["replay", "ticketmaster", "--quiet", "--format", "markdown"]);
    let md = stdout(&out);
    assert!(md.contains("| a1 |") || md.contains("| a1  "), "{md}");
    assert!(md.contains("oversold = 1"), "{md}");
}

/// PostgreSQL's answer for each anomaly at rc, rr, serializable: true = prevented.
const POSTGRES: [(&str, [bool; 3]); 12] = [
    ("G0", [true, true, true]),
    ("G1a", [true, true, true]),
    ("G1b", [true, true, true]),
    ("G1c", [true, true, true]),
    ("OTV", [true, true, true]),
    ("PMP", [false, true, true]),
    ("P4", [false, true, true]),
    ("G-single", [false, true, true]),
    ("G2-item", [false, false, true]),
    ("G2", [false, false, true]),
    ("G-single-write", [false, true, true]),
    ("PMP-write", [false, true, true]),
];

#[test]
fn the_anomaly_table_matches_postgresql() {
    for _ in 0..2 {
        let out = run(&["anomalies", "--format", "json", "--quiet"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let Document::Anomalies(doc) = document(&out) else {
            panic!("not the anomaly table: {}", stdout(&out));
        };
        let results = &doc.results;
        assert_eq!(results.len(), 36, "12 anomalies x 3 levels");
        for (id, prevented) in POSTGRES {
            for (level, want) in ["rc", "rr", "serializable"].iter().zip(prevented) {
                let r = results
                    .iter()
                    .find(|r| r.anomaly.as_deref() == Some(id) && r.isolation.to_string() == *level)
                    .unwrap_or_else(|| panic!("no result for {id}@{level}"));
                let v = r.verdict.label();
                assert_eq!(r.verdict.is_prevented(), want, "{id}@{level}: {v}");
                assert_eq!(r.replay.verdict, r.verdict, "{id}@{level}");
            }
        }
        // The write variants at rr and serializable: the DELETE meets y changed after a's
        // snapshot (40001); the UPDATE's snapshot never had b's row, so nothing conflicts.
        for level in ["rr", "serializable"] {
            for (id, want) in [
                ("G-single-write", "prevented by abort (40001)"),
                ("PMP-write", "prevented"),
            ] {
                let r = results
                    .iter()
                    .find(|r| r.anomaly.as_deref() == Some(id) && r.isolation.to_string() == level)
                    .unwrap_or_else(|| panic!("no result for {id}@{level}"));
                assert_eq!(r.verdict.label(), want, "{id}@{level}");
            }
        }
    }
}

#[test]
fn anomalies_expect_exits_1_when_the_server_disagrees() {
    let ok = run(&[
        "anomalies",
        "--isolation",
        "rr",
        "--only",
        "lost-update",
        "--expect",
        "prevented",
        "--quiet",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("P4"), "{}", stdout(&ok));
    let bad = run(&[
        "anomalies",
        "--isolation",
        "rc",
        "--only",
        "P4",
        "--expect",
        "prevented",
        "--quiet",
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(
        stderr(&bad)
            .contains("expectation failed: postgres: lost-update (P4) @ rc: expected prevented"),
        "{}",
        stderr(&bad)
    );
    let unknown = run(&["anomalies", "--only", "G9"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("--only G9: no such anomaly"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn write_skew_and_aba_replays_give_the_catalogue_outcomes() {
    let rs = replays(&["write-skew", "--isolation", "all", "--strategy", "all"]);
    for level in ["rc", "rr"] {
        let r = find(&rs, "naive", level);
        assert_eq!(verdict(r), "possible", "naive@{level}");
        assert_eq!(invariant(r, "uncovered_shifts"), 1);
    }
    assert_eq!(
        verdict(find(&rs, "naive", "serializable")),
        "prevented by abort (40001)"
    );
    for s in ["for-update", "materialize-conflict"] {
        for level in ["rc", "rr", "serializable"] {
            assert!(
                verdict(find(&rs, s, level)).starts_with("prevented"),
                "{s}@{level}"
            );
        }
    }
    let rs = replays(&["aba", "--isolation", "all", "--strategy", "all"]);
    for level in ["rc", "rr", "serializable"] {
        let r = find(&rs, "value-as-version", level);
        assert_eq!(
            verdict(r),
            "possible",
            "value-as-version@{level}: isolation does not help"
        );
        assert_eq!(invariant(r, "lost_reviews"), 1);
        for s in ["version", "for-update"] {
            assert!(
                verdict(find(&rs, s, level)).starts_with("prevented"),
                "{s}@{level}"
            );
        }
    }
}
