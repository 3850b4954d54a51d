//! The command line as a user meets it: help, exit codes, output formats, the pooled mode, and
//! how a client frames its transactions (pipelined or not).

use crate::support::{
    aborts, cell, invariant, json, run, run_json, scratch, stderr, stdout, write, writer_damage,
};

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = run(&["run", "--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for needle in [
        "contention run ticketmaster --isolation rc",
        "--expect",
        "--db",
        "130 interrupted",
    ] {
        assert!(text.contains(needle), "help lacks {needle}:\n{text}");
    }
}

#[test]
fn a_failed_expectation_exits_1_and_says_why() {
    let out = run(&[
        "run",
        "ticketmaster",
        "--strategy",
        "naive",
        "--isolation",
        "rc",
        "--expect",
        "no-anomalies",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("expectation failed: naive@rc: expected no anomalies, saw oversold"),
        "{text}"
    );
    assert!(
        text.contains("oversold — lost update in naive@rc"),
        "{text}"
    );
}

#[test]
fn table_csv_and_markdown_render_the_same_cells() {
    let out = run(&[
        "run",
        "ticketmaster",
        "--strategy",
        "conditional,for-update",
        "--format",
        "csv",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&out);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("scenario,engine,strategy,isolation,pinned,committed,rejected,oversold")
    );
    assert_eq!(
        lines.filter(|l| l.starts_with("ticketmaster,")).count(),
        2,
        "{csv}"
    );

    let out = run(&[
        "run",
        "ticketmaster",
        "--strategy",
        "conditional",
        "--isolation",
        "ru",
        "--format",
        "markdown",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.contains("| conditional "), "{md}");
    assert!(
        md.contains("READ UNCOMMITTED is accepted and runs as READ COMMITTED"),
        "{md}"
    );
}

#[test]
fn json_records_what_is_needed_to_repeat_the_run() {
    let (code, r) = run_json(&[
        "ticketmaster",
        "--strategy",
        "conditional",
        "--seed",
        "7",
        "--param",
        "seats=3",
        "--clients",
        "6",
    ]);
    assert_eq!(code, 0);
    assert_eq!(r.settings.seed, 7);
    assert_eq!(r.settings.clients, 6);
    assert_eq!(
        r.scenario.params["seats"].value,
        contention::scenario::Value::Int(3)
    );
    assert!(r.server.version.starts_with("PostgreSQL"));
    assert!(r.server.settings.contains_key("deadlock_timeout"));
    let c = cell(&r, "conditional", "rc");
    assert_eq!(
        c.stats.committed,
        3,
        "three seats, three sales: {}",
        json(&c)
    );
    assert!(c.stats.latency_ms(0.99) > 0.0);
}

#[test]
fn clients_can_share_a_small_pool() {
    let (code, r) = run_json(&[
        "ticketmaster",
        "--strategy",
        "conditional",
        "--connections",
        "2",
        "--clients",
        "8",
        "--param",
        "seats=4",
    ]);
    assert_eq!(code, 0);
    let c = cell(&r, "conditional", "rc");
    assert_eq!(writer_damage(c), 0);
    assert_eq!(c.stats.committed, 4);
}

/// Even operations insert id 1, which only the first of them can: the others fail with a
/// unique violation (class `other`, not retried) in the same round trip as their COMMIT when
/// pipelined. Every operation after a failure must start clean: were the failed transaction
/// left open, the next one would fail too (25P02) or vanish in its rollback.
const UNIQUE: &str = r#"name = "unique"
summary = "every other insert collides"

[setup]
sql = "CREATE TABLE t (id int PRIMARY KEY)"

[strategy.insert]
summary = "one insert"

[[strategy.insert.step]]
sql = "INSERT INTO t VALUES (CASE WHEN :op % 2 = 0 THEN 1 ELSE :op + 100 END)"

[[invariant]]
name = "rows_not_six"
anomaly = "none"
explain = "ops 1, 2, 3, 5, 7 and 9 insert a row each"
sql = "SELECT abs(count(*) - 6) FROM t"
"#;

#[test]
fn a_failed_statement_ends_its_transaction_pipelined_or_not() {
    let dir = scratch();
    let file = write(&dir, "unique.toml", UNIQUE);
    for extra in [&[][..], &["--no-pipeline"], &["--connections", "1"]] {
        let mut args = vec![
            file.to_str().unwrap(),
            "--clients",
            "1",
            "--operations",
            "10",
        ];
        args.extend_from_slice(extra);
        let (code, r) = run_json(&args);
        assert_eq!(code, 0, "{extra:?}: {}", json(&r));
        let c = cell(&r, "insert", "rc");
        assert_eq!(c.stats.committed, 6, "{extra:?}: {}", json(&c));
        assert_eq!(aborts(c, "other"), 4, "{extra:?}: {}", json(&c));
        assert_eq!(c.stats.failed, 4, "{extra:?}: {}", json(&c));
        assert_eq!(invariant(c, "rows_not_six"), 0, "{extra:?}: {}", json(&c));
    }
}

/// A CI expectation that names no cell (or no invariant) could never fail: it is refused before
/// anything runs, naming it.
#[test]
fn an_expect_that_names_nothing_is_refused() {
    for (expect, says) in [
        ("naiv: no-anomalies", "`naiv` names no cell of this run"),
        ("rr: anomalies", "`rr` names no cell of this run"),
        ("anomaly:oversld", "has no invariant `oversld`"),
    ] {
        let out = run(&[
            "run",
            "ticketmaster",
            "--isolation",
            "rc",
            "--expect",
            expect,
        ]);
        assert_eq!(out.status.code(), Some(2), "{expect}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{expect}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("starting a private"),
            "refused before any server starts: {}",
            stderr(&out)
        );
    }
}

/// A session setting the server refuses is named as the scenario's (or `--set`'s), not as a
/// failed connection.
#[test]
fn a_refused_session_setting_is_named() {
    let out = run(&[
        "run",
        "ticketmaster",
        "--isolation",
        "rc",
        "--strategy",
        "conditional",
        "--set",
        "deadlock_timeout=abc",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("[settings]"), "{err}");
    assert!(err.contains("deadlock_timeout = abc"), "{err}");
    assert!(err.contains("invalid value for parameter"), "{err}");
}

#[test]
fn new_writes_a_starter_that_runs_its_declared_outcomes_on_both_engines() {
    let dir = scratch();
    let file = dir.path().join("shop").join("my-shop.toml");
    let path = file.to_str().unwrap();
    let out = run(&["new", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("wrote {path}")));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("name = \"my-shop\""), "{text}");
    // Never overwritten; a bad name is refused.
    let again = run(&["new", path]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("exists: not overwritten"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    let bad = run(&["new", dir.path().join("my shop").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("letters, digits"), "{}", stderr(&bad));
    // It validates, and what it declares holds on both engines (naive oversells at rc).
    assert!(run(&["validate", path]).status.success());
    let (code, r) = run_json(&[
        path,
        "--isolation",
        "all",
        "--engine",
        "postgres,mariadb",
        "--expect",
        "declared",
    ]);
    assert_eq!(code, 0, "{}", json(&r));
    let e = r.expectations.as_ref().unwrap();
    assert!(e.checked >= 18 && e.failed == 0, "{}", json(&r));
    for engine in ["postgres", "mariadb"] {
        let naive = r
            .cells
            .iter()
            .find(|c| {
                c.engine.name() == engine && c.strategy == "naive" && c.isolation.short() == "rc"
            })
            .unwrap();
        assert!(invariant(naive, "oversold") > 0, "{engine}: {}", json(&r));
    }
}
