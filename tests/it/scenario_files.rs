//! Scenario files: every built-in validates, and malformed files are refused with errors that
//! name the file, the line and the key.

use crate::support::{cell, invariant, json, run, run_json, scratch, stderr, stdout, write};
use contention::outcome::Abort;

pub const TINY: &str = r#"name = "tiny"
summary = "a counter"

[params]
n = 3

[setup]
sql = "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, :n) g;"

[draw]
row = { uniform = [1, "n"] }

[strategy.inc]
summary = "increment"

[[strategy.inc.step]]
sql = "UPDATE t SET v = v + 1 WHERE id = :row"

[[invariant]]
name = "negative"
anomaly = "none"
explain = "never"
sql = "SELECT count(*) FROM t WHERE v < 0"
"#;

#[test]
fn every_builtin_scenario_validates() {
    let list = run(&["list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    for name in [
        "ticketmaster",
        "bank-transfer",
        "write-skew",
        "aba",
        "deadlock",
        "meeting-room",
        "wallet-overdraft",
        "duplicate-callback",
        "job-queue",
        "distributed-lock",
        "two-phase-commit",
        "saga",
        "hot-item",
        "seat-hold",
    ] {
        assert!(text.contains(name), "`list` misses {name}:\n{text}");
        let out = run(&["validate", name]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let show = run(&["show", name]);
        assert!(show.status.success(), "{name}: {}", stderr(&show));
        assert!(stdout(&show).contains("Invariants"), "{name}");
    }
}

#[test]
fn the_builtin_strategies_are_those_of_the_catalogue() {
    let expected: &[(&str, &[&str])] = &[
        (
            "ticketmaster",
            &[
                "naive",
                "unchecked-conditional",
                "conditional",
                "for-update",
                "version",
                "serializable",
                "table-lock",
            ],
        ),
        (
            "bank-transfer",
            &[
                "naive",
                "atomic",
                "for-update",
                "for-update-ordered",
                "version",
                "serializable",
            ],
        ),
        (
            "write-skew",
            &[
                "naive",
                "for-update",
                "materialize-conflict",
                "serializable",
            ],
        ),
        (
            "aba",
            &[
                "value-as-version",
                "count-as-version",
                "version",
                "for-update",
            ],
        ),
        (
            "deadlock",
            &["unordered", "ordered", "nowait", "lock-timeout"],
        ),
        (
            "meeting-room",
            &["naive", "lock-room", "exclusion", "serializable"],
        ),
        (
            "wallet-overdraft",
            &["naive", "guarded", "check-constraint"],
        ),
        ("duplicate-callback", &["naive", "unique", "on-conflict"]),
        ("job-queue", &["naive", "for-update", "skip-locked"]),
        (
            "distributed-lock",
            &[
                "lock-only",
                "fencing",
                "advisory-lock-only",
                "advisory-fencing",
            ],
        ),
        ("two-phase-commit", &["no-coordination", "2pc", "2pc-crash"]),
        ("saga", &["no-compensation", "saga", "2pc"]),
        (
            "hot-item",
            &[
                "naive",
                "for-update",
                "conditional",
                "version",
                "serializable",
                "queue",
            ],
        ),
        ("list-append", &["txn"]),
        ("rw-register", &["txn"]),
        (
            "seat-hold",
            &[
                "no-check",
                "txn-start-now",
                "clock-check",
                "lock-whole-purchase",
            ],
        ),
    ];
    for (name, strategies) in expected {
        let out = run(&["show", name, "--format", "json"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let v: contention::scenario::Scenario = serde_json::from_slice(&out.stdout).unwrap();
        let mut got: Vec<&str> = v.strategies.keys().map(|s| s.as_str()).collect();
        got.sort();
        let mut want = strategies.to_vec();
        want.sort();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_valid_file_validates() {
    let dir = scratch();
    let p = write(&dir, "tiny.toml", TINY);
    let out = run(&["validate", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok:"));
}

/// Writes TINY with `from` replaced by `to`, validates it, and checks the error names the file,
/// the line holding `line_of` and every needle.
pub fn refused(from: &str, to: &str, line_of: Option<&str>, needles: &[&str]) {
    assert!(TINY.contains(from), "test bug: {from}");
    let text = TINY.replacen(from, to, 1);
    let dir = scratch();
    let p = write(&dir, "tiny.toml", &text);
    let out = run(&["validate", p.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2 for {to:?}: {err}"
    );
    assert!(err.contains("tiny.toml"), "no file name in: {err}");
    if let Some(marker) = line_of {
        let line = text
            .lines()
            .position(|l| l.contains(marker))
            .expect("marker")
            + 1;
        assert!(
            err.contains(&format!("tiny.toml:{line}:")),
            "expected line {line} in: {err}"
        );
    }
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    refused(
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"\nthinks = true",
        Some("thinks = true"),
        &["thinks", "unknown field"],
    );
}

#[test]
fn wrong_types_and_values_name_the_key() {
    refused(
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"\nthink = \"5 parsecs\"",
        Some("parsecs"),
        &["strategy.inc.step[1].think", "duration"],
    );
    refused(
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"\nreject_if = \"v >\"",
        Some("reject_if"),
        &["strategy.inc.step[1].reject_if", "cannot parse"],
    );
    refused(
        "summary = \"increment\"",
        "summary = \"increment\"\nisolation = \"chaos\"",
        Some("chaos"),
        &["strategy.inc.isolation", "unknown isolation level"],
    );
    refused(
        "summary = \"increment\"",
        "summary = \"increment\"\nexpect.rc = [\"anomaly:nope\"]",
        Some("anomaly:nope"),
        &["strategy.inc.expect.rc", "no invariant named `nope`"],
    );
    refused(
        "row = { uniform = [1, \"n\"] }",
        "row = { uniform = [1, \"n\"], distinct_from = \"ghost\" }",
        Some("ghost"),
        &["draw.row.distinct_from", "ghost"],
    );
    refused(
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
        "sql = \"BEGIN\"",
        Some("sql = \"BEGIN\""),
        &["managed by the runner"],
    );
}

#[test]
fn missing_setup_files_and_parameters_are_named() {
    refused(
        "sql = \"CREATE TABLE",
        "files = [\"missing.sql\"]\nsql = \"CREATE TABLE",
        Some("missing.sql"),
        &["setup.files[0]", "cannot read"],
    );
    refused(
        "generate_series(1, :n)",
        "generate_series(1, :m)",
        None,
        &["setup.sql", "`:m` is not a parameter"],
    );
    refused(
        "WHERE v < 0\"",
        "WHERE v < :m\"",
        Some("WHERE v < :m"),
        &["invariant[1].sql", "`:m` is not a parameter"],
    );
}

#[test]
fn invariant_sql_sees_the_runs_parameter_values() {
    // Setup inserts n rows; the invariant is off by the difference if `:n` were not the
    // overridden value.
    let text = TINY.replace(
        "SELECT count(*) FROM t WHERE v < 0",
        "SELECT count(*) - :n FROM t",
    );
    let dir = scratch();
    let p = write(&dir, "tiny.toml", &text);
    let (code, r) = run_json(&[p.to_str().unwrap(), "--param", "n=5", "--operations", "5"]);
    assert_eq!(code, 0, "{}", json(&r));
    assert_eq!(
        invariant(cell(&r, "inc", "rc"), "negative"),
        0,
        "{}",
        json(&r)
    );
}

#[test]
fn bad_param_overrides_name_the_flag() {
    let dir = scratch();
    let p = write(&dir, "tiny.toml", TINY);
    let path = p.to_str().unwrap();
    let out = run(&["run", path, "--param", "nope=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--param nope: this scenario has no such parameter; it has: n"),
        "{}",
        stderr(&out)
    );
    let out = run(&["run", path, "--param", "n=three"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--param n=three: expected an integer"),
        "{}",
        stderr(&out)
    );
    let out = run(&["run", "ticketmaster", "--strategy", "optimism"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--strategy optimism"),
        "{}",
        stderr(&out)
    );
    let out = run(&["run", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("built-in: ticketmaster"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_invariant_that_returns_null_or_no_row_is_an_error_not_ok() {
    let dir = scratch();
    for (sql, says) in [
        ("SELECT sum(v) FROM t WHERE v < 0", "returned NULL"),
        ("SELECT v FROM t WHERE v < 0", "returned no row"),
    ] {
        let p = write(
            &dir,
            "tiny.toml",
            &TINY.replace("SELECT count(*) FROM t WHERE v < 0", sql),
        );
        let path = p.to_str().unwrap();
        let out = run(&["run", path, "--operations", "3", "--quiet"]);
        assert_eq!(out.status.code(), Some(2), "{sql}: {}", stdout(&out));
        let err = stderr(&out);
        for needle in [path, "invariant `negative`", says] {
            assert!(err.contains(needle), "{sql}: no {needle:?} in:\n{err}");
        }
    }
}

#[test]
fn type_errors_name_the_key_not_the_value() {
    refused(
        "[strategy.inc]",
        "[run]\nclients = \"eight\"\n\n[strategy.inc]",
        Some("\"eight\""),
        &["key `run.clients`", "invalid type"],
    );
    refused(
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"\ncommit = \"yes\"",
        Some("commit = \"yes\""),
        &["key `strategy.inc.step.commit`", "expected a boolean"],
    );
}

#[test]
fn setup_and_invariant_sql_errors_name_the_line_inside_the_sql() {
    let dir = scratch();
    write(
        &dir,
        "schema.sql",
        "CREATE TABLE t (id int PRIMARY KEY, v int);\nINSERT INTO t SELECT g, 0 FROM generate_series(1, :n) g;\nSELEC 1;\n",
    );
    let setup = TINY.replace(
        "sql = \"CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, :n) g;\"",
        "files = [\"schema.sql\"]",
    );
    let invariant = TINY.replace(
        "sql = \"SELECT count(*) FROM t WHERE v < 0\"",
        "sql = \"\"\"\nSELECT count(*)\nFROM t\nWHERE nope < 0\"\"\"",
    );
    for (text, needles) in [
        (
            setup,
            &["setup `schema.sql`, line 3 of its SQL", "syntax error"][..],
        ),
        (
            invariant,
            &["invariant `negative`, line 3 of its SQL", "\"nope\""],
        ),
    ] {
        let p = write(&dir, "tiny.toml", &text);
        let path = p.to_str().unwrap();
        let out = run(&["run", path, "--operations", "3", "--quiet"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(path), "no file in: {err}");
        for n in needles {
            assert!(err.contains(n), "expected `{n}` in: {err}");
        }
    }
}

#[test]
fn an_unknown_variable_in_when_names_the_file() {
    let text = TINY.replace(
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
        "sql = \"UPDATE t SET v = v + 1 WHERE id = :row\"\nwhen = \"ghost > 1\"",
    );
    let dir = scratch();
    let p = write(&dir, "tiny.toml", &text);
    let path = p.to_str().unwrap();
    let out = run(&["run", path, "--operations", "3", "--quiet"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = text
        .lines()
        .position(|l| l.contains("[[strategy.inc.step]]"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("{path}:{line}:1: key `strategy.inc.step[1].when`")),
        "{err}"
    );
    assert!(err.contains("`ghost` in when is set by nothing"), "{err}");
}

#[test]
fn a_misspelled_bind_name_is_refused_at_validate() {
    refused(
        "WHERE id = :row\"",
        "WHERE id = :rwo\"",
        Some("[[strategy.inc.step]]"),
        &[
            "key `strategy.inc.step[1].sql`",
            "`:rwo` in sql is set by nothing",
        ],
    );
}

#[test]
fn a_bind_name_no_step_returns_is_refused_before_the_run() {
    // `v` is a word of the SQL, so `validate` lets it pass; the server describes the UPDATE as
    // returning no column, so the run refuses it before its first statement.
    let text = TINY.replace("WHERE id = :row", "WHERE id = :row AND v >= :v");
    let dir = scratch();
    let p = write(&dir, "tiny.toml", &text);
    let path = p.to_str().unwrap();
    assert!(run(&["validate", path]).status.success());
    let out = run(&["run", path, "--operations", "3", "--quiet"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`:v` in sql is set by nothing")
            && err.contains("a column that a step of this role returns")
            && err.contains("key `strategy.inc.step[1]`"),
        "{err}"
    );
}

#[test]
fn expect_declared_says_what_it_checked_and_where_nothing_was_declared() {
    let dir = scratch();
    let bare = write(&dir, "tiny.toml", TINY);
    let declared = write(
        &dir,
        "declared.toml",
        &TINY.replace(
            "summary = \"increment\"",
            "summary = \"increment\"\nexpect.rc = [\"no-anomalies\", \"no-aborts:deadlock\"]",
        ),
    );
    let args = |p: &std::path::Path| {
        [
            p.to_str().unwrap().to_string(),
            "--isolation".into(),
            "rc,rr".into(),
            "--operations".into(),
            "4".into(),
            "--expect".into(),
            "declared".into(),
        ]
    };
    let a = args(&bare);
    let (code, r) = run_json(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{}", json(&r));
    let e = r
        .expectations
        .as_ref()
        .expect("a summary of what was checked");
    assert_eq!((e.checked, e.cells, e.failed), (0, 0, 0), "{}", json(&r));
    assert_eq!(e.undeclared, ["inc@rc", "inc@rr"], "{}", json(&r));

    let d = args(&declared);
    let (code, r) = run_json(&d.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{}", json(&r));
    let e = r.expectations.as_ref().unwrap();
    assert_eq!((e.checked, e.cells, e.failed), (2, 1, 0), "{}", json(&r));
    assert_eq!(e.undeclared, ["inc@rr"], "{}", json(&r));
    let mut table = vec!["run"];
    table.extend(d.iter().map(String::as_str));
    let out = run(&table);
    let text = stdout(&out);
    assert!(
        text.contains("expectations: 2 checked in 1 cells, 0 failed")
            && text.contains("expectations: nothing declared for inc@rr: not checked"),
        "{text}"
    );
}

const CALLBACKS: &str = r#"name = "callbacks"
summary = "a payment notification delivered more than once"

[setup]
sql = "CREATE TABLE paid (id int PRIMARY KEY)"

[draw]
payment = { uniform = [1, 3] }

[strategy.unmapped]
summary = "a duplicate is an error"
[[strategy.unmapped.step]]
sql = "INSERT INTO paid (id) VALUES (:payment)"

[strategy.mapped]
summary = "a duplicate is the business outcome `already_paid`"
reject_on = { "23505" = "already_paid", "1062" = "already_paid" }
[[strategy.mapped.step]]
sql = "INSERT INTO paid (id) VALUES (:payment)"

[strategy.retried]
summary = "a duplicate is retried (and keeps failing)"
retry_on = ["23505", "1062"]
[[strategy.retried.step]]
sql = "INSERT INTO paid (id) VALUES (:payment)"

[[invariant]]
name = "too_many"
anomaly = "none"
explain = "never"
sql = "SELECT count(*) - 3 FROM paid WHERE id > 3"
"#;

#[test]
fn error_codes_are_outcomes_retries_or_counted_by_code_on_each_engine() {
    let dir = scratch();
    let p = write(&dir, "callbacks.toml", CALLBACKS);
    let path = p.to_str().unwrap();
    let (code, r) = run_json(&[
        path,
        "--engine",
        "postgres,mariadb",
        "--operations",
        "12",
        "--clients",
        "1",
    ]);
    assert_eq!(code, 0, "{}", json(&r));
    for (engine, dup) in [("postgres", "23505"), ("mariadb", "1062")] {
        let of = |s: &str| {
            r.cells
                .iter()
                .find(|c| c.engine.name() == engine && c.strategy == s)
                .unwrap_or_else(|| panic!("{engine} {s}: {}", json(&r)))
        };
        // Three payments, twelve deliveries: nine duplicates in each strategy.
        let u = &of("unmapped").stats;
        assert_eq!(
            (u.committed, u.other_codes.get(dup)),
            (3, Some(&9)),
            "{engine}: {}",
            json(&r)
        );
        let m = &of("mapped").stats;
        assert_eq!(
            (
                m.committed,
                m.rejected.get("already_paid"),
                m.abort(Abort::Other)
            ),
            (3, Some(&9), 0),
            "{engine}: {}",
            json(&r)
        );
        let t = &of("retried").stats;
        assert!(
            t.committed == 3
                && t.failed == 9
                && t.abort(Abort::Conflict) > 9
                && t.other_codes.is_empty(),
            "{engine}: {}",
            json(&r)
        );
    }
    let out = run(&[
        "run",
        path,
        "--operations",
        "12",
        "--clients",
        "1",
        "--strategy",
        "unmapped",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("other errors by code, unmapped@rc: 23505 ×9"),
        "{text}"
    );
    for (bad, needle) in [
        (
            "\"23505\" = \"already_paid\", ",
            "`2350x` is not an error code",
        ),
        ("retry_on = [\"23505\", \"1062\"]", "is also in reject_on"),
    ] {
        let text = match bad {
            b if b.starts_with("retry_on") => {
                CALLBACKS.replace(b, "reject_on = { \"1062\" = \"x\" }\nretry_on = [\"1062\"]")
            }
            b => CALLBACKS.replace(b, "\"2350x\" = \"already_paid\", "),
        };
        let p = write(&dir, "bad.toml", &text);
        let out = run(&["validate", p.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(
            out.status.code() == Some(2) && err.contains(needle) && err.contains("bad.toml:"),
            "{err}"
        );
    }
}

#[test]
fn templates_strategy_setup_and_think_parameters() {
    let text = TINY
        .replace(
            "[params]\nn = 3",
            "[params]\nn = 3\npause = { value = \"2ms\", help = \"think\" }",
        )
        .replace(
            "[[strategy.inc.step]]\nsql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
            "[[strategy.inc.step]]\ninclude = \"bump\"\n\n[strategy.capped]\nsummary = \"the same, under a CHECK of its own\"\nsetup.sql = \"ALTER TABLE t ADD CHECK (v <= 1)\"\n[[strategy.capped.step]]\ninclude = \"bump\"\n\n[[template.bump.step]]\nsql = \"UPDATE t SET v = v + 1 WHERE id = :row\"\nthink = \":pause\"",
        );
    let dir = scratch();
    let p = write(&dir, "tiny.toml", &text);
    let path = p.to_str().unwrap();
    let show = run(&["show", path, "--format", "json", "--param", "pause=7"]);
    assert!(show.status.success(), "{}", stderr(&show));
    let s: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
    for st in ["inc", "capped"] {
        let step = &s["strategies"][st]["steps"][0];
        assert!(
            step["sql"]["source"]
                .as_str()
                .unwrap()
                .starts_with("UPDATE t"),
            "{step}"
        );
        assert_eq!(step["think"], serde_json::json!({"fixed": "7ms"}), "{step}");
    }
    // Nine increments over three rows: the capped strategy's own CHECK refuses all but one per
    // row (23514, counted by code); the other strategy never sees the constraint.
    let (code, r) = run_json(&[path, "--operations", "9", "--clients", "1"]);
    assert_eq!(code, 0, "{}", json(&r));
    let capped = cell(&r, "capped", "rc");
    assert_eq!(
        capped.stats.committed + capped.stats.other_codes.get("23514").copied().unwrap_or(0),
        9,
        "{}",
        json(&r)
    );
    assert!(
        capped
            .stats
            .other_codes
            .get("23514")
            .is_some_and(|&n| n >= 6),
        "{}",
        json(&r)
    );
    assert_eq!(cell(&r, "inc", "rc").stats.committed, 9, "{}", json(&r));
    // What is refused, with file, line and key.
    for (from, to, needle) in [
        (
            "include = \"bump\"\n\n[strategy.capped]",
            "include = \"bmup\"\n\n[strategy.capped]",
            "no template named `bmup` (templates: bump)",
        ),
        (
            "include = \"bump\"\n\n[strategy.capped]",
            "include = \"bump\"\ncommit = true\n\n[strategy.capped]",
            "a step with `include` has no other key",
        ),
        (
            "think = \":pause\"",
            "think = \":pasue\"",
            "`:pasue` is not a parameter",
        ),
        (
            "think = \":pause\"",
            "include = \"bump\"",
            "a template cannot include another template",
        ),
    ] {
        assert!(text.contains(from), "test bug: {from}");
        let bad = write(&dir, "bad.toml", &text.replacen(from, to, 1));
        let out = run(&["validate", bad.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(
            out.status.code() == Some(2) && err.contains("bad.toml:") && err.contains(needle),
            "{err}"
        );
    }
}

#[test]
fn a_step_computes_variables_with_let() {
    // Six operations by one client spread over the three rows by `let`, not by a draw or a
    // SELECT used as a calculator: each row ends at 2.
    let text = TINY
        .replace(
            "[[strategy.inc.step]]\nsql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
            "[[strategy.inc.step]]\nlet = { target = \"op % n + 1\" }\n[[strategy.inc.step]]\nsql = \"UPDATE t SET v = v + 1 WHERE id = :target\"\nreject_if = \"target > n\"",
        )
        .replace(
            "SELECT count(*) FROM t WHERE v < 0",
            "SELECT count(*) FROM t WHERE v <> 2",
        );
    let dir = scratch();
    let p = write(&dir, "tiny.toml", &text);
    let path = p.to_str().unwrap();
    let (code, r) = run_json(&[path, "--operations", "6", "--clients", "1"]);
    assert_eq!(code, 0, "{}", json(&r));
    assert_eq!(
        invariant(cell(&r, "inc", "rc"), "negative"),
        0,
        "{}",
        json(&r)
    );
    for (from, to, needle) in [
        ("let = { target", "let = { n", "strategy.inc.step[1].let.n"),
        ("op % n + 1", "op % m + 1", "`m` in let is set by nothing"),
    ] {
        let bad = write(&dir, "bad.toml", &text.replacen(from, to, 1));
        let out = run(&["validate", bad.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(
            out.status.code() == Some(2) && err.contains(needle) && err.contains("bad.toml:"),
            "{err}"
        );
    }
}
