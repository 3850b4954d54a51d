//! The command line as a user meets it: help, exit codes, output formats, the pooled mode.

use crate::support::{cell, run, run_json, stderr, stdout, writer_damage};

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
            .starts_with("scenario,strategy,isolation,pinned,committed,rejected,oversold")
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
    assert_eq!(r["settings"]["seed"], 7);
    assert_eq!(r["settings"]["clients"], 6);
    assert_eq!(r["scenario"]["params"]["seats"]["value"], 3);
    assert!(
        r["server"]["version"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL")
    );
    assert!(r["server"]["settings"]["deadlock_timeout"].is_string());
    let c = cell(&r, "conditional", "rc");
    assert_eq!(c["stats"]["committed"], 3, "three seats, three sales: {c}");
    assert!(c["stats"]["latency"]["p99"].as_u64().unwrap() > 0);
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
    assert_eq!(c["stats"]["committed"], 4);
}
