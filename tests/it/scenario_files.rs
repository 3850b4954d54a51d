//! Scenario files: every built-in validates, and malformed files are refused with errors that
//! name the file, the line and the key.

use crate::support::{cell, invariant, json, run, run_json, scratch, stderr, stdout, write};

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
        ("list-append", &["txn"]),
        ("rw-register", &["txn"]),
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
        err.contains(&format!("{path}:{line}: key `strategy.inc.step[1].when`")),
        "{err}"
    );
    assert!(err.contains("`ghost` is not set"), "{err}");
}
