//! Isolation-tester specs run natively (`contention replay FILE.spec`), compared with their
//! recorded output (`--expected FILE.out`), and TOML sessions that run their steps as written:
//! BEGIN/COMMIT/ROLLBACK as steps, 25P02 after an error, session-level locks and settings,
//! per-session isolation and read only, every result set and notice kept.

use contention::engine::written::Output;
use contention::replay::{Kind as EventKind, Replay};

use crate::support::{replays, run, stderr, stdout};

fn data(file: &str) -> String {
    format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// The event a token ran.
fn at<'a>(r: &'a Replay, token: &str) -> &'a contention::replay::Event {
    r.events
        .iter()
        .find(|e| e.token.as_deref() == Some(token))
        .unwrap_or_else(|| panic!("no event for {token}"))
}

fn code(e: &contention::replay::Event) -> Option<&str> {
    e.trace.error.as_ref().map(|(c, _)| c.as_str())
}

fn result_sets(e: &contention::replay::Event) -> Vec<&contention::engine::written::ResultSet> {
    e.outputs
        .iter()
        .filter_map(|o| match o {
            Output::Rows(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[test]
fn specs_agree_with_their_recorded_output() {
    for spec in ["lost-update", "aborted", "marks", "interleave"] {
        let out = run(&[
            "replay",
            &data(&format!("specs/{spec}.spec")),
            "--expected",
            &data(&format!("specs/{spec}.out")),
            "--quiet",
        ]);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{spec}: {text}\n{}",
            stderr(&out)
        );
        assert!(
            text.contains("permutations behave as recorded") && !text.contains("DIFFERS"),
            "{spec}: {text}"
        );
    }
}

#[test]
fn a_difference_from_the_recorded_output_is_named_per_permutation() {
    let recorded = std::fs::read_to_string(data("specs/lost-update.out")).unwrap();
    // Permutation 1 as if w2 had not waited and had failed differently; permutation 2's rows.
    let changed = recorded
        .replacen(
            "step w2: UPDATE counter SET n = n + 1 WHERE id = 1; <waiting ...>",
            "step w2: UPDATE counter SET n = n + 1 WHERE id = 1;",
            1,
        )
        .replacen(
            "ERROR:  could not serialize access due to concurrent update",
            "ERROR:  deadlock detected",
            1,
        )
        .replacen(" 1|2|  20|row1 ", " 1|3|  30|row1 ", 1);
    assert_ne!(changed, recorded);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("changed.out");
    std::fs::write(&file, changed).unwrap();
    let out = run(&[
        "replay",
        &data("specs/lost-update.spec"),
        "--expected",
        file.to_str().unwrap(),
        "--quiet",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("permutation 1 (r1 r2 w1 w2 c1 c2 show): DIFFERS"),
        "{text}"
    );
    assert!(
        text.contains("step w2: waited here, not in the recorded output"),
        "{text}"
    );
    assert!(
        text.contains("step w2 completing: recorded ERROR:  deadlock detected, here ERROR:  could not serialize access due to concurrent update"),
        "{text}"
    );
    assert!(
        text.contains("permutation 2 (r1 w1 c1 r2 w2 c2 show): DIFFERS"),
        "{text}"
    );
    assert!(text.contains("step show: rows differ"), "{text}");
    assert!(text.contains(" 1|3|  30|row1"), "{text}");
    assert!(
        text.contains("0 of 2 permutations behave as recorded"),
        "{text}"
    );
}

#[test]
fn a_failed_transaction_answers_25p02_and_its_commit_rolls_back() {
    let rs = replays(&[&data("specs/aborted.spec")]);
    let r = &rs[0];
    assert!(r.as_written);
    assert_eq!(code(at(r, "bad1")), Some("23505"));
    assert_eq!(
        code(at(r, "more1")),
        Some("25P02"),
        "the session stays in its failed transaction"
    );
    assert_eq!(code(at(r, "c1")), None);
    // The advisory lock taken outside the transaction outlives it: lock2 waits for s1.
    assert_eq!(
        at(r, "lock2").kind,
        EventKind::Waits {
            blockers: vec!["s1".into()]
        }
    );
    // check1: two result sets, the first with two columns named id; ins1's row rolled back;
    // the notice, and the session's own setting from its setup.
    let check = at(r, "check1");
    let sets = result_sets(check);
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].columns, ["id", "id", "v"]);
    assert_eq!(
        sets[0].rows,
        vec![vec![Some("1".into()), Some("1".into()), Some("one".into())]]
    );
    assert_eq!(
        sets[1].rows,
        vec![vec![Some("first".into()), Some("HI".into())]]
    );
    assert!(check.outputs.iter().any(|o| matches!(
        o,
        Output::Notice { severity, message } if severity == "NOTICE" && message == "shout hi"
    )));
}

#[test]
fn annotations_hold_a_completion_or_show_a_step_as_waiting() {
    let rs = replays(&[&data("specs/marks.spec")]);
    let kinds = |r: &Replay| -> Vec<String> {
        r.events
            .iter()
            .map(|e| {
                let what = match &e.kind {
                    EventKind::Waits { .. } => "waits",
                    EventKind::Resumes => "completes",
                    _ => "runs",
                };
                format!("{}{} {what}", e.session, e.step)
            })
            .collect()
    };
    assert_eq!(
        kinds(&rs[0]),
        [
            "s21 runs",
            "s11 waits",
            "s22 waits",
            "s11 completes",
            "s22 completes",
            "s12 runs",
            "s23 waits",
            "s23 completes"
        ]
    );
    assert_eq!(
        kinds(&rs[1]),
        [
            "s21 runs",
            "s11 waits",
            "s22 runs",
            "s11 completes",
            "s12 runs",
            "s23 runs"
        ]
    );
}

#[test]
fn without_permutations_every_interleaving_runs() {
    let rs = replays(&[&data("specs/interleave.spec")]);
    let orders: Vec<String> = rs.iter().map(|r| r.tokens.join(" ")).collect();
    assert_eq!(orders, ["a1 a2 b1", "a1 b1 a2", "b1 a1 a2"]);
    let one = replays(&[&data("specs/interleave.spec"), "--schedule", "b1 a1 a2"]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].tokens, ["b1", "a1", "a2"]);
}

#[test]
fn spec_errors_name_file_line_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.spec");
    std::fs::write(
        &file,
        "session s1\nstep a { SELECT 1; }\n\npermutation a nope\n",
    )
    .unwrap();
    let out = run(&["replay", file.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}:4: permutation: no step named `nope`",
            file.display()
        )),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "replay",
        &data("specs/aborted.spec"),
        "--engine",
        "mariadb",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("isolation-tester specs are PostgreSQL's format"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn toml_sessions_run_as_written_with_their_own_level_and_read_only() {
    let rs = replays(&[&data("as-written.toml")]);
    let r = &rs[0];
    assert!(r.as_written);
    // Two columns named `name` both shown; bob's write refused by his read-only default, then
    // 25P02 until his ROLLBACK; alice's count repeated outside a transaction sees one doctor.
    let first_count = &r.events[2];
    assert_eq!(first_count.token.as_deref(), Some("a.count"));
    assert_eq!(
        result_sets(first_count)[0].columns,
        ["name", "on_call", "name"]
    );
    assert_eq!(result_sets(first_count)[0].total, 2);
    assert_eq!(code(at(r, "b.leave")), Some("25006"));
    let b_counts: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.token.as_deref() == Some("b.count"))
        .collect();
    assert_eq!(code(b_counts[1]), Some("25P02"));
    let last = r
        .events
        .iter()
        .rev()
        .find(|e| e.token.as_deref() == Some("a.count"))
        .unwrap();
    assert_eq!(result_sets(last)[0].total, 1);
    let level = result_sets(at(r, "a.level"))[0].rows[0].clone();
    assert_eq!(
        level,
        vec![Some("serializable".into()), Some("alice".into())]
    );
    // The invariants read what the steps returned.
    let holds = |name: &str| r.invariants.iter().find(|m| m.name == name).unwrap().value;
    assert_eq!(holds("nobody_on_call"), 0);
    assert_eq!(holds("alice_saw_herself_gone"), 0);
    assert_eq!(r.verdict.label(), "prevented");
}

#[test]
fn a_schedule_sets_parameters_and_param_still_wins() {
    let count = |args: &[&str]| -> u64 {
        let mut all = vec![data("as-written.toml")];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let rs = replays(&all);
        result_sets(at(&rs[0], "a.count"))[0].total
    };
    assert_eq!(count(&[]), 2, "the first schedule, at the file's extra = 0");
    assert_eq!(
        count(&["--schedule", "crowded"]),
        3,
        "the schedule sets extra = 1"
    );
    assert_eq!(
        count(&["--schedule", "crowded", "--param", "extra=2"]),
        4,
        "--param wins over the schedule"
    );
}

#[test]
fn a_schedule_parameter_the_scenario_lacks_is_refused_naming_the_key() {
    let text = std::fs::read_to_string(data("as-written.toml"))
        .unwrap()
        .replace("params = { extra = 1 }", "params = { extras = 1 }");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.toml");
    std::fs::write(&file, text).unwrap();
    let out = run(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("schedule.crowded.params.extras"), "{e}");
    assert!(
        e.contains("no parameter `extras` in [params] (it has extra)"),
        "{e}"
    );
}

#[test]
fn step_refuses_without_a_terminal_on_stdin() {
    let out = run(&[
        "replay",
        &data("specs/lost-update.spec"),
        "--step",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--step waits for Enter before each step: stdin is not a terminal"),
        "{}",
        stderr(&out)
    );
}

/// `--step` on a pseudo-terminal (util-linux `script`), Enter pressed every half second: one
/// prompt per token, in order, each after the timeline so far.
#[test]
fn step_waits_for_enter_before_each_token_on_a_terminal() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let command = format!(
        "COLUMNS=100 {} replay {} --schedule 1 --step --quiet --color never",
        env!("CARGO_BIN_EXE_contention"),
        data("specs/lost-update.spec")
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for _ in 0..10 {
            std::thread::sleep(std::time::Duration::from_millis(500));
            if stdin.write_all(b"\n").is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let prompts: Vec<&str> = text
        .match_indices("next: ")
        .map(|(i, _)| text[i + 6..].split_whitespace().next().unwrap())
        .collect();
    assert_eq!(prompts, ["r1", "r2", "w1", "w2", "c1", "c2", "show"]);
    // Before w2 runs, the redrawn timeline shows w1's statement and not yet w2's wait.
    let before_w2 = &text[..text.find("next: w2").unwrap()];
    let last_frame = &before_w2[before_w2.rfind("\x1b[2J").unwrap()..];
    assert!(
        last_frame.contains("│ w1 │ UPDATE counter SET"),
        "{last_frame}"
    );
    assert!(!last_frame.contains("waits for"), "{last_frame}");
    // Then the whole timeline, with the wait.
    assert!(text[text.find("next: show").unwrap()..].contains("waits for s1"));
}

#[test]
fn timelines_fit_the_terminal_width_folding_sql_and_abbreviating_results() {
    for columns in [60usize, 90] {
        let out = crate::support::contention()
            .args(["replay", &data("specs/lost-update.spec"), "--quiet"])
            .env("COLUMNS", columns.to_string())
            .output()
            .unwrap();
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        for line in text.lines() {
            assert!(
                line.chars().count() <= columns,
                "wider than {columns}: {line}"
            );
        }
        // Rows are never wrapped: a result line too wide is cut short with an ellipsis.
        if columns == 60 {
            assert!(text.contains("id | n | tens | la…"), "{text}");
        } else {
            assert!(text.contains("id | n | tens | label"), "{text}");
        }
    }
}

#[test]
fn steps_run_as_written_on_both_engines() {
    for engine in ["postgres", "mariadb"] {
        let rs = replays(&[&data("as-written-portable.toml"), "--engine", engine]);
        let r = &rs[0];
        assert_eq!(
            at(r, "b.bump").kind,
            EventKind::Waits {
                blockers: vec!["a".into()]
            },
            "{engine}"
        );
        let resumed = r
            .events
            .iter()
            .find(|e| e.kind == EventKind::Resumes)
            .unwrap();
        assert_eq!(resumed.session, "b", "{engine}");
        let dup = code(at(r, "b.dup")).unwrap().to_string();
        assert_eq!(
            dup,
            if engine == "postgres" {
                "23505"
            } else {
                "1062"
            }
        );
        let sets = result_sets(at(r, "b.show"));
        assert_eq!(sets.len(), 2, "{engine}: both result sets of the step");
        assert_eq!(sets[0].columns, ["id", "id", "v"], "{engine}");
        assert_eq!(
            sets[0].rows,
            vec![vec![Some("1".into()), Some("1".into()), Some("11".into())]],
            "{engine}: b's update rolled back"
        );
        assert_eq!(sets[1].rows, vec![vec![Some("1".into())]], "{engine}");
        assert_eq!(r.verdict.label(), "prevented", "{engine}");
    }
}

#[test]
fn deferrable_is_refused_on_mariadb_naming_the_feature() {
    let text = std::fs::read_to_string(data("as-written-portable.toml"))
        .unwrap()
        .replacen(
            "isolation = \"rc\"",
            "isolation = \"serializable\"\ndeferrable = true",
            1,
        );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deferrable.toml");
    std::fs::write(&file, text).unwrap();
    let out = run(&[
        "replay",
        file.to_str().unwrap(),
        "--engine",
        "mariadb",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("session a"), "{e}");
    assert!(
        e.contains("`deferrable` is a PostgreSQL feature: MariaDB has no deferrable transactions"),
        "{e}"
    );
    // On PostgreSQL the same file runs.
    let rs = replays(&[file.to_str().unwrap()]);
    assert_eq!(rs[0].verdict.label(), "prevented");
}

#[test]
fn a_framed_step_keeps_every_row_as_the_server_named_the_columns() {
    for engine in ["postgres", "mariadb"] {
        let rs = replays(&[&data("managed-rows.toml"), "--engine", engine]);
        let read = &rs[0].events[0];
        let rows = read.trace.rows.as_ref().expect("kept rows");
        assert_eq!(rows.columns, ["v", "v", "rows"], "{engine}");
        assert_eq!(rows.total, 3, "{engine}");
        let text =
            |r: &[&str]| -> Vec<Option<String>> { r.iter().map(|v| Some(v.to_string())).collect() };
        assert_eq!(
            rows.rows,
            vec![
                text(&["10", "10", "7"]),
                text(&["20", "20", "7"]),
                text(&["30", "30", "7"])
            ],
            "{engine}"
        );
    }
    // The timeline shows the column named rows as a column, not as the row count.
    let out = run(&["replay", &data("managed-rows.toml"), "--quiet"]);
    let text = stdout(&out);
    assert!(text.contains("v  | v  | rows"), "{text}");
    assert!(text.contains("30 | 30 | 7"), "{text}");
    assert!(text.contains("(3 rows)"), "{text}");
}

#[test]
fn a_framed_session_has_its_own_setup_level_and_read_only() {
    let rs = replays(&[&data("managed-setup.toml"), "--isolation", "rc"]);
    let rows = rs[0].events[0].trace.rows.clone().expect("kept rows");
    assert_eq!(
        rows.rows,
        vec![vec![
            Some("reader".into()),
            Some("serializable".into()),
            Some("on".into())
        ]],
        "the session's setup, level and read only, whatever --isolation says"
    );
    // A framed step's notices, in order, beside its rows.
    let shout = &rs[0].events[1];
    assert_eq!(
        shout.trace.notices,
        vec![
            Output::Notice {
                severity: "NOTICE".into(),
                message: "first hi".into()
            },
            Output::Notice {
                severity: "WARNING".into(),
                message: "then hi".into()
            }
        ]
    );
    assert!(rs[0].events[0].trace.notices.is_empty());
    let text = std::fs::read_to_string(data("managed-setup.toml"))
        .unwrap()
        .replace(
            "read_only = true",
            "read_only = true\nteardown = \"RESET ALL\"",
        );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.toml");
    std::fs::write(&file, text).unwrap();
    let out = run(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("session.a.teardown"), "{e}");
    assert!(
        e.contains("`teardown` is for sessions that run their steps as written"),
        "{e}"
    );
}

#[test]
fn a_spec_replay_renders_in_html_with_every_result_set_and_notice() {
    let out = run(&[
        "replay",
        &data("specs/aborted.spec"),
        "--format",
        "json",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("aborted.json");
    let html = dir.path().join("aborted.html");
    std::fs::write(&json, &out.stdout).unwrap();
    let out = run(&[
        "report",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    for want in [
        "NOTICE: shout hi",
        "id | id | v",
        "first | HI",
        "ERROR 25P02",
        "waits for s1",
        "not judged",
    ] {
        assert!(page.contains(want), "{want} missing from the page");
    }
}
