//! The isolation tester's expected-output format: a replay of a spec written as PostgreSQL's
//! `isolationtester` prints it (`starting permutation: ...`, `step NAME: SQL`, `<waiting ...>`,
//! `<... completed>`, result sets as `PQprint` aligns them, `ERROR:  message`, notices), and
//! the comparison of that with a recorded `.out` file, permutation by permutation, in words:
//! which steps waited, which failed with what, which rows differ. It formats and compares; it
//! must not run anything.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::engine::written::{Output, ResultSet};
use crate::replay::{Kind, Replay};

/// The tester's output for these replays (one per permutation), header line included.
pub fn render(sessions: usize, replays: &[Replay]) -> String {
    let mut s = format!("Parsed test spec with {sessions} sessions\n");
    for r in replays {
        s.push_str(&permutation(r));
    }
    s
}

/// One permutation's part: a blank line, `starting permutation:`, then its steps.
pub fn permutation(r: &Replay) -> String {
    let mut s = format!("\nstarting permutation: {}\n", r.tokens.join(" "));
    // What the sessions' setups returned, as the tester prints them before the steps.
    for (_, outputs) in &r.setup_outputs {
        for o in outputs {
            if let Output::Rows(set) = o {
                s.push_str(&pqprint(set));
            }
        }
    }
    for (k, e) in r.events.iter().enumerate() {
        let name = step_name(r, k);
        let notices = |s: &mut String| {
            for o in &e.outputs {
                if let Output::Notice { severity, message } = o {
                    let _ = writeln!(s, "{}: {severity}:  {message}", e.session);
                }
            }
        };
        match &e.kind {
            Kind::Waits { .. } => {
                let sql = e.trace.sql.as_deref().unwrap_or_default();
                let _ = writeln!(s, "step {name}: {sql} <waiting ...>");
                continue;
            }
            Kind::Ran => {
                notices(&mut s);
                let sql = e.trace.sql.as_deref().unwrap_or_default();
                let _ = writeln!(s, "step {name}: {sql}");
            }
            Kind::Resumes => {
                notices(&mut s);
                let _ = writeln!(s, "step {name}: <... completed>");
            }
            Kind::StillWaiting | Kind::Nothing => continue,
        }
        for o in &e.outputs {
            if let Output::Rows(set) = o {
                s.push_str(&pqprint(set));
            }
        }
        if let Some((_, msg)) = &e.trace.error {
            let _ = writeln!(s, "ERROR:  {msg}");
        }
    }
    s
}

/// The step's name: the token that ran it, else (a completion) the token of the session's
/// step that waited.
fn step_name(r: &Replay, k: usize) -> String {
    let e = &r.events[k];
    e.token
        .clone()
        .or_else(|| {
            r.events[..k]
                .iter()
                .rev()
                .find(|w| w.session == e.session && matches!(w.kind, Kind::Waits { .. }))
                .and_then(|w| w.token.clone())
        })
        .unwrap_or_else(|| format!("{}{}", e.session, e.step))
}

/// A result set as libpq's `PQprint` writes it with a header, alignment and `|`: numeric
/// columns right-aligned, others left; a dashed border with `+`; `(N rows)` and a blank line.
pub fn pqprint(set: &ResultSet) -> String {
    if set.columns.is_empty() {
        return String::new();
    }
    let n = set.columns.len();
    let mut width: Vec<usize> = set.columns.iter().map(String::len).collect();
    let mut not_num = vec![false; n];
    for row in &set.rows {
        for (j, v) in row.iter().enumerate().take(n) {
            let Some(v) = v.as_deref().filter(|v| !v.is_empty()) else {
                continue;
            };
            width[j] = width[j].max(v.len());
            let numeric_chars = v
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'E' | 'e' | ' ' | '-'));
            let ends_in_digit = v.chars().last().is_some_and(|c| c.is_ascii_digit());
            if !numeric_chars || v.starts_with(['E', 'e']) || !ends_in_digit {
                not_num[j] = true;
            }
        }
    }
    let line = |vals: &mut dyn Iterator<Item = &str>| -> String {
        vals.enumerate()
            .map(|(j, v)| {
                if not_num[j] {
                    format!("{v:<w$}", w = width[j])
                } else {
                    format!("{v:>w$}", w = width[j])
                }
            })
            .collect::<Vec<_>>()
            .join("|")
    };
    let mut s = line(&mut set.columns.iter().map(String::as_str));
    s.push('\n');
    s.push_str(
        &width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("+"),
    );
    s.push('\n');
    for row in &set.rows {
        s.push_str(&line(
            &mut row.iter().take(n).map(|v| v.as_deref().unwrap_or_default()),
        ));
        s.push('\n');
    }
    let total = set.total;
    let _ = write!(s, "({total} row{})\n\n", if total == 1 { "" } else { "s" });
    s
}

/// One `step NAME: ...` entry of an output, with what followed it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    step: String,
    /// `<... completed>`
    completed: bool,
    /// `<waiting ...>` after the SQL.
    waited: bool,
    /// The lines after the step line (rows, errors, notices), blank lines dropped.
    body: Vec<String>,
}

/// A permutation of an output.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    steps: String,
    /// What came before the first step: the sessions' setups' result sets.
    setup: Vec<String>,
    entries: Vec<Entry>,
}

/// Splits an output into permutations and their entries; `sqls` are the spec's steps
/// (name, SQL), to tell a step line from a result line and the SQL from `<waiting ...>`.
fn split(text: &str, sqls: &[(String, String)]) -> Vec<Part> {
    let names: HashSet<&str> = sqls.iter().map(|(n, _)| n.as_str()).collect();
    let mut parts: Vec<Part> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.strip_prefix("starting permutation:") {
            parts.push(Part {
                steps: rest.trim().to_string(),
                setup: Vec::new(),
                entries: Vec::new(),
            });
            i += 1;
            continue;
        }
        let step = line
            .strip_prefix("step ")
            .and_then(|r| r.split_once(": "))
            .filter(|(n, _)| names.contains(n));
        let Some(part) = parts.last_mut() else {
            i += 1;
            continue;
        };
        match step {
            Some((name, rest)) => {
                let mut entry = Entry {
                    step: name.to_string(),
                    completed: rest == "<... completed>",
                    waited: false,
                    body: Vec::new(),
                };
                if !entry.completed {
                    // The SQL may span lines: take as many as the spec's SQL has.
                    let sql = &sqls.iter().find(|(n, _)| n == name).expect("known").1;
                    let span = sql.lines().count().max(1);
                    let text: Vec<&str> = lines[i..(i + span).min(lines.len())].to_vec();
                    let last = text.last().copied().unwrap_or_default();
                    entry.waited = last.ends_with(" <waiting ...>");
                    i += text.len();
                } else {
                    i += 1;
                }
                part.entries.push(entry);
            }
            None => {
                if !line.trim().is_empty() {
                    match part.entries.last_mut() {
                        Some(e) => e.body.push(line.trim_end().to_string()),
                        None => part.setup.push(line.trim_end().to_string()),
                    }
                }
                i += 1;
            }
        }
    }
    parts
}

/// How one permutation compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    pub index: usize,
    pub steps: String,
    /// Empty when the server behaved as recorded.
    pub differences: Vec<String>,
}

/// Compares the server's output with the recorded one, permutation by permutation.
pub fn compare(expected: &str, got: &str, sqls: &[(String, String)]) -> Vec<Agreement> {
    let want = split(expected, sqls);
    let have = split(got, sqls);
    let mut out = Vec::new();
    for k in 0..want.len().max(have.len()) {
        let (w, h) = (want.get(k), have.get(k));
        let steps = h.or(w).map(|p| p.steps.clone()).unwrap_or_default();
        let mut diffs = Vec::new();
        match (w, h) {
            (None, Some(_)) => diffs.push("not in the recorded output".to_string()),
            (Some(_), None) => diffs.push("recorded, but not run here".to_string()),
            (Some(w), Some(h)) if w.steps != h.steps => {
                diffs.push(format!("the recorded output runs `{}` here", w.steps))
            }
            (Some(w), Some(h)) => {
                if w.setup != h.setup {
                    diffs.push(format!(
                        "the sessions' setups returned: recorded\n{}\n      here\n{}",
                        indent(&w.setup),
                        indent(&h.setup)
                    ));
                }
                diffs.extend(entries(&w.entries, &h.entries));
            }
            (None, None) => {}
        }
        out.push(Agreement {
            index: k + 1,
            steps,
            differences: diffs,
        });
    }
    out
}

fn entries(want: &[Entry], have: &[Entry]) -> Vec<String> {
    let mut diffs = Vec::new();
    let label = |e: &Entry| {
        if e.completed {
            format!("step {} completing", e.step)
        } else {
            format!("step {}", e.step)
        }
    };
    for k in 0..want.len().max(have.len()) {
        match (want.get(k), have.get(k)) {
            (Some(w), None) => diffs.push(format!("{}: recorded, missing here", label(w))),
            (None, Some(h)) => {
                diffs.push(format!("{}: here, not in the recorded output", label(h)))
            }
            (Some(w), Some(h)) if w.step != h.step || w.completed != h.completed => {
                diffs.push(format!(
                    "entry {}: recorded {}, here {}",
                    k + 1,
                    label(w),
                    label(h)
                ));
                // Everything after a shift would differ too.
                break;
            }
            (Some(w), Some(h)) => {
                if w.waited != h.waited {
                    diffs.push(if w.waited {
                        format!(
                            "step {}: waited in the recorded output, ran without waiting here",
                            w.step
                        )
                    } else {
                        format!("step {}: waited here, not in the recorded output", w.step)
                    });
                }
                let err = |e: &Entry| e.body.iter().find(|l| l.starts_with("ERROR:")).cloned();
                let (we, he) = (err(w), err(h));
                if we != he {
                    diffs.push(format!(
                        "{}: recorded {}, here {}",
                        label(w),
                        we.unwrap_or_else(|| "no error".into()),
                        he.unwrap_or_else(|| "no error".into())
                    ));
                }
                let rows = |e: &Entry| -> Vec<String> {
                    e.body
                        .iter()
                        .filter(|l| !l.starts_with("ERROR:"))
                        .cloned()
                        .collect()
                };
                let (wr, hr) = (rows(w), rows(h));
                if wr != hr {
                    diffs.push(format!(
                        "{}: rows differ: recorded\n{}\n      here\n{}",
                        label(w),
                        indent(&wr),
                        indent(&hr)
                    ));
                }
            }
            (None, None) => {}
        }
    }
    diffs
}

fn indent(lines: &[String]) -> String {
    if lines.is_empty() {
        return "        (nothing)".into();
    }
    lines
        .iter()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cols: &[&str], rows: &[&[Option<&str>]]) -> ResultSet {
        ResultSet {
            columns: cols.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
            total: rows.len() as u64,
        }
    }

    #[test]
    fn result_sets_print_as_pqprint_aligns_them() {
        let s = set(
            &["id", "name"],
            &[&[Some("1"), Some("alice")], &[Some("10"), None]],
        );
        assert_eq!(
            pqprint(&s),
            "id|name \n--+-----\n 1|alice\n10|     \n(2 rows)\n\n"
        );
        let one = set(&["v"], &[&[Some("-3")]]);
        assert_eq!(pqprint(&one), " v\n--\n-3\n(1 row)\n\n");
    }

    #[test]
    fn a_difference_in_waits_errors_and_rows_is_named() {
        let sqls = vec![
            ("r1".to_string(), "SELECT v FROM t;".to_string()),
            ("w2".to_string(), "UPDATE t\n SET v = 2;".to_string()),
            ("c1".to_string(), "COMMIT;".to_string()),
        ];
        let want = "Parsed test spec with 2 sessions\n\nstarting permutation: r1 w2 c1\nstep r1: SELECT v FROM t;\nv\n-\n1\n(1 row)\n\nstep w2: UPDATE t\n SET v = 2; <waiting ...>\nstep c1: COMMIT;\nstep w2: <... completed>\nERROR:  could not serialize access due to concurrent update\n";
        assert!(compare(want, want, &sqls)[0].differences.is_empty());
        let have = "Parsed test spec with 2 sessions\n\nstarting permutation: r1 w2 c1\nstep r1: SELECT v FROM t;\nv\n-\n2\n(1 row)\n\nstep w2: UPDATE t\n SET v = 2;\nstep c1: COMMIT;\n";
        let d = &compare(want, have, &sqls)[0].differences;
        assert!(d[0].starts_with("step r1: rows differ"), "{d:?}");
        assert_eq!(
            d[1],
            "step w2: waited in the recorded output, ran without waiting here"
        );
        assert_eq!(d[2], "step w2 completing: recorded, missing here");
    }

    #[test]
    fn what_the_session_setups_returned_is_compared() {
        let sqls = vec![("r1".to_string(), "SELECT 1;".to_string())];
        let out = |v: &str| {
            format!(
                "\nstarting permutation: r1\nstate\n-----\n{v}\n(1 row)\n\nstep r1: SELECT 1;\n"
            )
        };
        assert!(
            compare(&out("ready"), &out("ready"), &sqls)[0]
                .differences
                .is_empty()
        );
        let d = &compare(&out("ready"), &out("steady"), &sqls)[0].differences;
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("the sessions' setups returned"), "{d:?}");
    }
}
