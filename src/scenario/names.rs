//! Which names a role's steps read (bind parameters and expression variables), and the check
//! that something can set each one: a parameter, a draw, a built-in, a session's `bind`, or a
//! column that a step of the same role returns.
//!
//! Without it a misspelled `:jbo` is bound as NULL and the table shows believable anomalies.
//! The check runs twice: at `validate`, where a step's columns are not known yet and any word
//! of the role's SQL counts as a column it may return (so a name that appears nowhere is
//! caught), and before a cell starts, against the columns the server describes for each
//! prepared statement (exact). This module decides nothing else; it must not touch a database.

use std::collections::HashSet;

use super::Step;

/// The first name a step reads that nothing sets: `(step, name, where)` with `where` the
/// field (`sql`, `when`, `reject_if`, `retry_if`, `flag_if`, `until`).
pub fn first_unset<'a>(
    steps: &'a [Step],
    known: &HashSet<String>,
    returned: &dyn Fn(&str) -> bool,
) -> Option<(&'a Step, &'a str, &'static str)> {
    let mut computed: Vec<&str> = steps
        .iter()
        .flat_map(|s| {
            s.lets
                .iter()
                .map(|(n, _)| n.as_str())
                .chain(s.catch.as_deref())
        })
        .collect();
    // A lock step sets `acquired`, `fence` and `released`.
    if steps.iter().any(|s| s.lock.is_some()) {
        computed.extend(super::LOCK_VARIABLES);
    }
    steps.iter().find_map(|step| {
        reads(step)
            .find(|(name, _)| !known.contains(*name) && !computed.contains(name) && !returned(name))
            .map(|(name, field)| (step, name, field))
    })
}

/// The message for a name nothing sets.
pub fn unset_message(name: &str, field: &str, exact: bool) -> String {
    let sigil = if field == "sql" { ":" } else { "" };
    let columns = if exact {
        "a column that a step of this role returns"
    } else {
        "a word of this role's SQL (a column it may return)"
    };
    format!(
        "`{sigil}{name}` in {field} is set by nothing: it is not a parameter, a draw, a built-in (client, op, try, rows), a session's bind, a step's `let`, nor {columns}; a misspelling would be bound as NULL"
    )
}

/// Every name a step reads, with the field it is read in.
fn reads(step: &Step) -> impl Iterator<Item = (&str, &'static str)> {
    let binds = step
        .sql
        .iter()
        .flat_map(|s| s.names.iter().map(|n| (n.as_str(), "sql")));
    let lets = step
        .lets
        .iter()
        .flat_map(|(_, e)| e.variables().map(|v| (v, "let")));
    let exprs = [
        (step.when.as_ref(), "when"),
        (step.reject_if.as_ref(), "reject_if"),
        (step.retry_if.as_ref(), "retry_if"),
        (step.flag_if.as_ref(), "flag_if"),
        (step.until.as_ref().map(|u| &u.expr), "until"),
    ]
    .into_iter()
    .flat_map(|(e, field)| {
        e.into_iter()
            .flat_map(move |e| e.variables().map(move |v| (v, field)))
    });
    let lock = step.lock.iter().flat_map(|l| {
        let (a, b) = match l {
            super::LockOp::Acquire { key, ttl_ms } => (key, Some(ttl_ms)),
            super::LockOp::Release { key } => (key, None),
        };
        a.variables()
            .chain(b.into_iter().flat_map(|e| e.variables()))
            .map(|v| (v, "lock"))
    });
    let two_phase = step
        .two_phase
        .iter()
        .flat_map(|(_, e)| e.variables().map(|v| (v, "two-phase id")));
    binds.chain(lets).chain(exprs).chain(lock).chain(two_phase)
}

/// The words of the role's SQL outside bind parameters, string literals and comments, as
/// written and folded to lower case: the names its statements could return as columns.
pub fn sql_words(steps: &[Step]) -> HashSet<String> {
    let mut out = HashSet::new();
    for sql in steps.iter().filter_map(|s| s.sql.as_ref()) {
        let b = sql.source.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'\'' {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let bound =
                    start > 0 && b[start - 1] == b':' && (start < 2 || b[start - 2] != b':');
                if !bound {
                    let w = &sql.source[start..i];
                    out.insert(w.to_string());
                    out.insert(w.to_ascii_lowercase());
                }
            } else {
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::sql::parse_named;

    fn step(sql: &str) -> Step {
        Step {
            name: None,
            key: "strategy.s.step[1]".into(),
            line: 3,
            when: None,
            sql: Some(parse_named(sql)),
            reject_if: None,
            outcome: "rejected".into(),
            retry_if: None,
            flag_if: None,
            flag: None,
            think: super::super::Think::None,
            commit: false,
            lets: Vec::new(),
            history: None,
            node: 0,
            lock: None,
            two_phase: None,
            fault: None,
            until: None,
            catch: None,
        }
    }

    #[test]
    fn a_misspelled_bind_is_found_and_a_returned_column_is_not() {
        let steps = vec![
            step("SELECT id AS job FROM queue WHERE state = 'new' -- :nope"),
            step("UPDATE queue SET state = 'done' WHERE id = :jbo"),
        ];
        let known: HashSet<String> = ["client".to_string()].into();
        let words = sql_words(&steps);
        assert!(words.contains("job") && !words.contains("nope") && !words.contains("jbo"));
        let (s, name, field) = first_unset(&steps, &known, &|n| words.contains(n)).unwrap();
        assert_eq!((s.line, name, field), (3, "jbo", "sql"));
        let fixed = vec![
            steps[0].clone(),
            step("UPDATE queue SET x = 1 WHERE id = :job"),
        ];
        assert!(first_unset(&fixed, &known, &|n| words.contains(n)).is_none());
    }

    #[test]
    fn casts_are_not_binds() {
        let words = sql_words(&[step("SELECT n::int AS total FROM t")]);
        assert!(words.contains("int") && words.contains("total"));
    }
}
