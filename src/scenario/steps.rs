//! Validating steps: a role's `[[...step]]` tables become [`Step`]s (names, SQL with bind
//! parameters, `let`, conditions, think times (`think = ":param"` resolved first), commits and
//! `history` annotations), and every name a step reads must be set by something.
//!
//! It must not touch a database (what only the server can tell, the runner checks before a
//! cell starts), nor validate anything but steps (`validate` does the rest of the file).

use std::collections::HashSet;

use indexmap::IndexMap;
use toml::Spanned;

use super::raw::*;
use super::sql::parse_named;
use super::validate::{Ctx, check_name, is_identifier};
use super::*;

/// `think = ":name"`: the parameter's value, a duration (`"50ms"`) or a number of milliseconds,
/// so think times and TTLs can be swept and overridden (`--param hold=200ms`).
pub(super) fn think_params(
    cx: &Ctx,
    raw: &mut RawScenario,
    params: &IndexMap<String, Param>,
) -> Result<(), ScenarioError> {
    let mut lists: Vec<(String, &mut Vec<Spanned<RawStep>>)> = Vec::new();
    for (n, t) in &mut raw.template {
        lists.push((format!("template.{n}"), &mut t.get_mut().step));
    }
    for (n, s) in raw.strategy.iter_mut().flat_map(|s| s.get_mut()) {
        lists.push((format!("strategy.{n}"), &mut s.get_mut().step));
    }
    for (n, a) in &mut raw.auditor {
        lists.push((format!("auditor.{n}"), &mut a.get_mut().step));
    }
    for (n, s) in &mut raw.session {
        lists.push((format!("session.{n}"), &mut s.get_mut().step));
    }
    for (list, steps) in lists {
        for (i, step) in steps.iter_mut().enumerate() {
            let key = format!("{list}.step[{}].think", i + 1);
            think_param(cx, step.get_mut(), &key, params)?;
        }
    }
    Ok(())
}

fn think_param(
    cx: &Ctx,
    step: &mut RawStep,
    key: &str,
    params: &IndexMap<String, Param>,
) -> Result<(), ScenarioError> {
    let Some(think) = &mut step.think else {
        return Ok(());
    };
    let span = think.span();
    let RawThink::Fixed(text) = think.get_mut() else {
        return Ok(());
    };
    let Some(name) = text.strip_prefix(':') else {
        return Ok(());
    };
    let value = match params.get(name).map(|p| &p.value) {
        None => {
            let known: Vec<&str> = params.keys().map(String::as_str).collect();
            return Err(cx.err(
                Some(span),
                key,
                format!(
                    "`:{name}` is not a parameter (parameters: {})",
                    known.join(", ")
                ),
            ));
        }
        Some(Value::Int(ms)) if *ms >= 0 => format!("{ms}ms"),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => format!("{}ms", s.trim()),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(cx.err(
                    Some(span),
                    key,
                    format!("`:{name}` is {other:?}: a think time parameter is a duration like \"50ms\" or a number of milliseconds"),
                ));
        }
    };
    *text = value;
    Ok(())
}

/// Each name a step reads must be set by something (see [`names`]): strategies may read what
/// any session binds, auditors what the scenario knows, a session's own steps its own binds.
pub(super) fn every_name_set(
    cx: &Ctx,
    known: &HashSet<String>,
    strategies: &IndexMap<String, Strategy>,
    auditors: &[Auditor],
    sessions: &[Session],
) -> Result<(), ScenarioError> {
    let with_binds = |binds: &mut dyn Iterator<Item = &String>| {
        let mut k = known.clone();
        k.extend(binds.cloned());
        k
    };
    let all_binds = with_binds(&mut sessions.iter().flat_map(|s| s.bind.iter().map(|(n, _)| n)));
    let mut roles: Vec<(&[Step], HashSet<String>)> = Vec::new();
    roles.extend(
        strategies
            .values()
            .map(|s| (&s.steps[..], all_binds.clone())),
    );
    roles.extend(auditors.iter().map(|a| (&a.steps[..], known.clone())));
    for s in sessions {
        if let Some(steps) = &s.steps {
            roles.push((steps, with_binds(&mut s.bind.iter().map(|(n, _)| n))));
        }
    }
    for (steps, known) in roles {
        let words = names::sql_words(steps);
        if let Some((step, name, field)) = names::first_unset(steps, &known, &|n| words.contains(n))
        {
            return Err(cx.err_line(
                step.line,
                &format!("{}.{field}", step.key),
                names::unset_message(name, field, false),
            ));
        }
    }
    Ok(())
}

pub(super) fn steps(
    cx: &Ctx,
    raw: &[Spanned<RawStep>],
    key: &str,
    known: &HashSet<String>,
    flags: &[&str],
) -> Result<Vec<Step>, ScenarioError> {
    if raw.is_empty() {
        return Err(cx.err(None, &format!("{key}.step"), "at least one step is needed"));
    }
    let mut out: Vec<Step> = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let key = format!("{key}.step[{}]", i + 1);
        let r = s.get_ref();
        let name = match &r.name {
            None => None,
            Some(n) => {
                let k = format!("{key}.name");
                check_name(cx, n.get_ref(), &k, n.span())?;
                if n.get_ref() == "commit" {
                    return Err(cx.err(
                        Some(n.span()),
                        &k,
                        "`commit` names the final commit in schedules: choose another name",
                    ));
                }
                if out.iter().any(|o| o.name.as_ref() == Some(n.get_ref())) {
                    return Err(cx.err(
                        Some(n.span()),
                        &k,
                        format!("a second step named `{}`", n.get_ref()),
                    ));
                }
                Some(n.get_ref().clone())
            }
        };
        let compile =
            |field: &Option<Spanned<String>>, name: &str| -> Result<Option<Expr>, ScenarioError> {
                let Some(src) = field else { return Ok(None) };
                let k = format!("{key}.{name}");
                let e = Expr::parse(src.get_ref()).map_err(|m| cx.err(Some(src.span()), &k, m))?;
                Ok(Some(e))
            };
        let when = compile(&r.when, "when")?;
        let reject_if = compile(&r.reject_if, "reject_if")?;
        let retry_if = compile(&r.retry_if, "retry_if")?;
        let flag_if = compile(&r.flag_if, "flag_if")?;
        let sql = r.sql.as_ref().map(|s| parse_named(s.get_ref()));
        if let Some(sql) = &sql {
            if sql.text.trim().is_empty() {
                return Err(cx.err(
                    r.sql.as_ref().map(|s| s.span()),
                    &format!("{key}.sql"),
                    "empty SQL",
                ));
            }
            let upper = sql.text.trim_start().to_ascii_uppercase();
            if ["BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "END"]
                .iter()
                .any(|w| upper.starts_with(w))
            {
                return Err(cx.err(
                    r.sql.as_ref().map(|s| s.span()),
                    &format!("{key}.sql"),
                    "transactions are managed by the runner: use `commit = true` on a step to end one",
                ));
            }
        }
        if r.outcome.is_some() && reject_if.is_none() {
            return Err(cx.err(
                r.outcome.as_ref().map(|o| o.span()),
                &format!("{key}.outcome"),
                "`outcome` names what `reject_if` rejects: add `reject_if`",
            ));
        }
        let flag = match (&flag_if, &r.flag) {
            (Some(_), Some(f)) => {
                if !flags.contains(&f.get_ref().as_str()) {
                    return Err(cx.err(
                        Some(f.span()),
                        &format!("{key}.flag"),
                        format!("`{}` is not an invariant observed by this role (declare [[invariant]] with observed_by)", f.get_ref()),
                    ));
                }
                Some(f.get_ref().clone())
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(cx.err(
                    Some(s.span()),
                    &key,
                    "`flag_if` needs `flag = \"invariant name\"`",
                ));
            }
            (None, Some(f)) => {
                return Err(cx.err(
                    Some(f.span()),
                    &format!("{key}.flag"),
                    "`flag` needs `flag_if`",
                ));
            }
        };
        let think = match r.think.as_ref() {
            None => Think::None,
            Some(t) => match t.get_ref() {
                RawThink::Run(false) => Think::None,
                RawThink::Run(true) => Think::Run,
                RawThink::Fixed(d) => Think::Fixed(
                    humantime::parse_duration(d)
                        .map_err(|e| format!("expected true or a duration like 5ms: {e}"))
                        .and_then(crate::limits::think)
                        .map_err(|m| cx.err(Some(t.span()), &format!("{key}.think"), m))?,
                ),
            },
        };
        let commit = r.commit.unwrap_or(false);
        let history = step_history(cx, r, &key, known)?;
        let (node, lock, two_phase, fault) = placed(cx, s, &key, sql.is_some(), commit)?;
        let until = step_until(cx, r, &key, &out, node, known)?;
        let mut lets = Vec::new();
        for (name, src) in &r.lets {
            let k = format!("{key}.let.{name}");
            if !is_identifier(name) || BUILTINS.contains(&name.as_str()) || known.contains(name) {
                return Err(cx.err(
                    Some(src.span()),
                    &k,
                    "a computed variable needs an identifier not used by a parameter, draw or built-in",
                ));
            }
            let e = Expr::parse(src.get_ref()).map_err(|m| cx.err(Some(src.span()), &k, m))?;
            lets.push((name.clone(), e));
        }
        let catch = match &r.catch {
            None => None,
            Some(v) => {
                let k = format!("{key}.catch");
                let name = v.get_ref();
                if !is_identifier(name)
                    || BUILTINS.contains(&name.as_str())
                    || known.contains(name)
                    || lets.iter().any(|(n, _)| n == name)
                {
                    return Err(cx.err(Some(v.span()), &k, "`catch` names a variable for the error's code: an identifier not used by a parameter, draw, built-in or this step's `let`"));
                }
                if sql.is_none() {
                    return Err(cx.err(
                        Some(v.span()),
                        &k,
                        "`catch` catches the failure of the step's statement: add `sql`",
                    ));
                }
                Some(name.clone())
            }
        };
        if sql.is_none()
            && lets.is_empty()
            && reject_if.is_none()
            && retry_if.is_none()
            && flag_if.is_none()
            && think == Think::None
            && !commit
            && lock.is_none()
            && two_phase.is_none()
            && fault.is_none()
        {
            return Err(cx.err(
                Some(s.span()),
                &key,
                "an empty step: give it sql, let, reject_if, retry_if, flag_if, think, commit, lock, a two-phase action or a fault",
            ));
        }
        // Names that cannot be captured columns must be known now.
        for e in [&when, &reject_if, &retry_if, &flag_if]
            .into_iter()
            .flatten()
            .chain(lets.iter().map(|(_, e)| e))
        {
            for v in e.variables() {
                if !known.contains(v) && !is_identifier(v) {
                    return Err(cx.err(
                        Some(s.span()),
                        &key,
                        format!("`{v}` is not a variable name"),
                    ));
                }
            }
        }
        out.push(Step {
            name,
            key: key.clone(),
            line: cx.line(s.span()),
            when,
            sql,
            reject_if,
            outcome: r
                .outcome
                .as_ref()
                .map_or_else(|| "rejected".to_string(), |o| o.get_ref().clone()),
            retry_if,
            flag_if,
            flag,
            think,
            commit,
            lets,
            history,
            node,
            lock,
            two_phase,
            fault,
            until,
            catch,
        });
    }
    Ok(out)
}

/// What places a step among several servers: its node, a lock-service action, a two-phase
/// commit action, a fault; each checked against the node it runs on.
#[allow(clippy::type_complexity)]
fn placed(
    cx: &Ctx,
    s: &Spanned<RawStep>,
    key: &str,
    has_sql: bool,
    commit: bool,
) -> Result<
    (
        usize,
        Option<LockOp>,
        Option<(TwoPhase, Expr)>,
        Option<Fault>,
    ),
    ScenarioError,
> {
    let r = s.get_ref();
    // A step that touches no server (a pause, a think, a condition) needs no node.
    let touches = has_sql
        || commit
        || r.lock.is_some()
        || r.prepare.is_some()
        || r.commit_prepared.is_some()
        || r.rollback_prepared.is_some();
    let node = if touches || r.node.is_some() {
        super::validate::node_index(cx, r.node.as_ref(), s.span(), key)?
    } else {
        0
    };
    let redis = cx.nodes.get(node).is_some_and(|(_, k)| k.is_lock_service());
    let expr = |field: &Spanned<String>, name: &str| {
        Expr::parse(field.get_ref())
            .map_err(|m| cx.err(Some(field.span()), &format!("{key}.{name}"), m))
    };
    let lock = match &r.lock {
        None => None,
        Some(l) => {
            let k = format!("{key}.lock");
            if !redis {
                return Err(cx.err(Some(l.span()), &k, "a lock step runs on a lock-service node: add `node = ` a node with engine = \"redis\" or \"postgres-advisory\""));
            }
            let raw = l.get_ref();
            Some(match (&raw.acquire, &raw.ttl, &raw.release) {
                (Some(a), Some(t), None) => LockOp::Acquire {
                    key: expr(a, "lock.acquire")?,
                    ttl_ms: expr(t, "lock.ttl")?,
                },
                (None, None, Some(rel)) => LockOp::Release {
                    key: expr(rel, "lock.release")?,
                },
                (Some(_), None, None) => {
                    return Err(cx.err(Some(l.span()), &k, "`acquire` needs `ttl` (milliseconds, an expression): a lock without one outlives a crashed holder"));
                }
                _ => {
                    return Err(cx.err(
                        Some(l.span()),
                        &k,
                        "expected `{ acquire = KEY, ttl = MS }` or `{ release = KEY }`",
                    ));
                }
            })
        }
    };
    if redis {
        let bad = if has_sql {
            Some("sql")
        } else if commit {
            Some("commit")
        } else if r.history.is_some() {
            Some("history")
        } else {
            None
        };
        if let Some(field) = bad {
            return Err(cx.err(Some(s.span()), &format!("{key}.{field}"), "a step on a lock-service node has no SQL and no transaction: it takes or releases a lock (`lock = { ... }`)"));
        }
    }
    let mut two_phase = None;
    for (field, op) in [
        (&r.prepare, TwoPhase::Prepare),
        (&r.commit_prepared, TwoPhase::CommitPrepared),
        (&r.rollback_prepared, TwoPhase::RollbackPrepared),
    ] {
        let Some(f) = field else { continue };
        let name = match op {
            TwoPhase::Prepare => "prepare",
            TwoPhase::CommitPrepared => "commit_prepared",
            TwoPhase::RollbackPrepared => "rollback_prepared",
        };
        let k = format!("{key}.{name}");
        if two_phase.is_some() {
            return Err(cx.err(
                Some(f.span()),
                &k,
                "one two-phase action per step (prepare, commit_prepared or rollback_prepared)",
            ));
        }
        if redis {
            return Err(cx.err(
                Some(f.span()),
                &k,
                "two-phase commit runs on a database node",
            ));
        }
        if cx.engine != crate::engine::EngineKind::Postgres {
            return Err(cx.err(Some(f.span()), &k, format!("two-phase commit steps need PostgreSQL (PREPARE TRANSACTION); on {} the scenario cannot run: MariaDB's XA transactions are not supported yet", cx.engine.title())));
        }
        if op == TwoPhase::Prepare && commit {
            return Err(cx.err(
                Some(f.span()),
                &k,
                "`prepare` ends the transaction itself: drop `commit`",
            ));
        }
        if op != TwoPhase::Prepare && (has_sql || commit) {
            return Err(cx.err(Some(f.span()), &k, "COMMIT PREPARED and ROLLBACK PREPARED run outside any transaction: the step can have no `sql` and no `commit`"));
        }
        two_phase = Some((op, expr(f, name)?));
    }
    let given: Vec<&str> = [
        r.pause.as_ref().map(|_| "pause"),
        r.crash.as_ref().map(|_| "crash"),
        r.restart.as_ref().map(|_| "restart"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() > 1 {
        return Err(cx.err(
            Some(s.span()),
            &format!("{key}.{}", given[1]),
            format!("one fault per step: {} and {} given", given[0], given[1]),
        ));
    }
    let duration = |d: &Spanned<String>, field: &str| {
        humantime::parse_duration(d.get_ref()).map_err(|e| {
            cx.err(
                Some(d.span()),
                &format!("{key}.{field}"),
                format!("expected a duration like 300ms: {e}"),
            )
        })
    };
    let fault = if let Some(p) = &r.pause {
        Some(Fault::Pause(duration(p, "pause")?))
    } else if let Some(c) = &r.crash {
        c.get_ref().then_some(Fault::Crash)
    } else if let Some(rs) = &r.restart {
        let raw = rs.get_ref();
        let k = format!("{key}.restart");
        let target = super::validate::node_index(cx, Some(&raw.node), rs.span(), &k)?;
        if cx.nodes[target].1 != NodeKind::Database {
            return Err(cx.err(
                Some(raw.node.span()),
                &format!("{k}.node"),
                "a restart stops a database node's server: this node is a lock service",
            ));
        }
        if target == 0 {
            return Err(cx.err(
                Some(raw.node.span()),
                &format!("{k}.node"),
                format!(
                    "`{}` is the run database (the first node), which every client and check uses: restart another node",
                    raw.node.get_ref()
                ),
            ));
        }
        let down = match &raw.down {
            Some(d) => duration(d, "restart.down")?,
            None => Duration::ZERO,
        };
        Some(Fault::Restart { node: target, down })
    } else {
        None
    };
    Ok((node, lock, two_phase, fault))
}

/// A step's `until` and `poll`. Each run of an `until` step ends its transaction, so the step
/// must start one: it is the role's first SQL step, or the SQL step before it commits (ending a
/// transaction that earlier steps wrote in would commit their writes half-way, unseen).
fn step_until(
    cx: &Ctx,
    r: &RawStep,
    key: &str,
    earlier: &[Step],
    node: usize,
    known: &HashSet<String>,
) -> Result<Option<Until>, ScenarioError> {
    let Some(src) = &r.until else {
        return match &r.poll {
            None => Ok(None),
            Some(p) => Err(cx.err(
                Some(p.span()),
                &format!("{key}.poll"),
                "`poll` is the pause between two runs of an `until` step: add `until`",
            )),
        };
    };
    let k = format!("{key}.until");
    if r.history.is_some() {
        return Err(cx.err(
            Some(src.span()),
            &k,
            "a step with `history` records one statement's result: it cannot run again with `until`",
        ));
    }
    if r.sql.is_none() {
        return Err(cx.err(
            Some(src.span()),
            &k,
            "`until` runs the step's statement again until it holds: the step needs `sql`",
        ));
    }
    if let Some(open) = earlier
        .iter()
        .rev()
        .filter(|s| s.node == node)
        .find(|s| s.sql.is_some() || s.commit)
        && !open.commit
    {
        return Err(cx.err(
            Some(src.span()),
            &k,
            format!(
                "an `until` step starts its own transaction (each run ends it and the next begins a new one), but {} (line {}) leaves one open: give it `commit = true`",
                open.key, open.line
            ),
        ));
    }
    let expr = Expr::parse(src.get_ref()).map_err(|m| cx.err(Some(src.span()), &k, m))?;
    if let Some(v) = expr
        .variables()
        .find(|v| !known.contains(*v) && !is_identifier(v))
    {
        return Err(cx.err(
            Some(src.span()),
            &k,
            format!("`{v}` is not a variable name"),
        ));
    }
    let poll = match &r.poll {
        None => Until::POLL,
        Some(p) => humantime::parse_duration(p.get_ref())
            .map_err(|e| format!("expected a duration like 1ms: {e}"))
            .and_then(|d| {
                if d.is_zero() || d > Until::WAIT {
                    Err(format!(
                        "expected more than 0ms and at most {}, got {}",
                        humantime::format_duration(Until::WAIT),
                        humantime::format_duration(d)
                    ))
                } else {
                    Ok(d)
                }
            })
            .map_err(|m| cx.err(Some(p.span()), &format!("{key}.poll"), m))?,
    };
    Ok(Some(Until { expr, poll }))
}

/// A step's `history` annotation: its function fits `[history] model`, its key and value are
/// expressions, and the step has SQL (the micro-operation is what that statement did).
fn step_history(
    cx: &Ctx,
    r: &RawStep,
    key: &str,
    known: &HashSet<String>,
) -> Result<Option<StepHistory>, ScenarioError> {
    let Some(h) = &r.history else { return Ok(None) };
    let k = format!("{key}.history");
    let Some(model) = cx.history else {
        return Err(cx.err(
            Some(h.span()),
            &k,
            "a step's `history` needs the scenario's `[history] model = \"list-append\"` (or \"rw-register\")",
        ));
    };
    if r.sql.is_none() {
        return Err(cx.err(
            Some(h.span()),
            &k,
            "`history` says what the step's statement did: the step needs `sql`",
        ));
    }
    let h = h.get_ref();
    let f = match (h.f.get_ref().as_str(), model) {
        ("r", _) => MopKind::Read,
        ("append", HistoryModel::ListAppend) => MopKind::Append,
        ("w", HistoryModel::RwRegister) => MopKind::Write,
        (other, model) => {
            let allowed = match model {
                HistoryModel::ListAppend => "append or r",
                HistoryModel::RwRegister => "w or r",
            };
            return Err(cx.err(
                Some(h.f.span()),
                &format!("{k}.f"),
                format!("`{other}`: a {} history has {allowed}", model.name()),
            ));
        }
    };
    let expr = |field: &Spanned<String>, name: &str| -> Result<Expr, ScenarioError> {
        let at = format!("{k}.{name}");
        let e = Expr::parse(field.get_ref()).map_err(|m| cx.err(Some(field.span()), &at, m))?;
        for v in e.variables() {
            if !known.contains(v) && !is_identifier(v) {
                return Err(cx.err(
                    Some(field.span()),
                    &at,
                    format!("`{v}` is not a variable name"),
                ));
            }
        }
        Ok(e)
    };
    Ok(Some(StepHistory {
        f,
        key: expr(&h.key, "key")?,
        value: expr(&h.value, "value")?,
    }))
}

#[cfg(test)]
mod tests {
    use crate::engine::EngineKind;

    /// A strategy that inserts a request, commits, and waits for it: `{wait}` is the waiting
    /// step's extra keys, `{first}` the first step's.
    fn queue(first: &str, wait: &str) -> String {
        format!(
            r#"name = "q"
summary = "a queue"

[setup]
sql = "CREATE TABLE r (id int PRIMARY KEY, status text)"

[strategy.q]
summary = "request, then wait"

[[strategy.q.step]]
sql = "INSERT INTO r VALUES (:client, 'pending') RETURNING id AS request"
{first}

[[strategy.q.step]]
{wait}

[[invariant]]
name = "none"
anomaly = "none"
explain = "never"
sql = "SELECT 0"
"#
        )
    }

    fn load(text: &str) -> Result<crate::scenario::Scenario, String> {
        crate::scenario::load_text(std::path::Path::new("q.toml"), text, EngineKind::Postgres)
            .map_err(|e| e.to_string())
    }

    /// The error for the text, which must name the file, the line holding `marker` and `key`.
    fn refused(text: &str, marker: &str, key: &str, needle: &str) {
        let err = load(text).expect_err("refused");
        let at = text.find(marker).expect("marker");
        let line = text[..at].lines().count() + usize::from(text[..at].ends_with('\n'));
        assert!(
            err.contains(&format!("q.toml:{line}:")),
            "line {line}: {err}"
        );
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }

    const WAIT: &str =
        "sql = \"SELECT status FROM r WHERE id = :request\"\nuntil = \"status != \\\"pending\\\"\"";

    #[test]
    fn until_and_poll_load() {
        let s = load(&queue("commit = true", &format!("{WAIT}\npoll = \"5ms\""))).unwrap();
        let until = s.strategies["q"].steps[1].until.as_ref().unwrap();
        assert_eq!(until.poll, std::time::Duration::from_millis(5));
        assert_eq!(until.expr.source, "status != \"pending\"");
        let s = load(&queue("commit = true", WAIT)).unwrap();
        let until = s.strategies["q"].steps[1].until.as_ref().unwrap();
        assert_eq!(until.poll, crate::scenario::Until::POLL);
    }

    #[test]
    fn until_must_start_its_own_transaction() {
        refused(
            &queue("", WAIT),
            "until =",
            "strategy.q.step[2].until",
            "strategy.q.step[1] (line 10) leaves one open: give it `commit = true`",
        );
    }

    #[test]
    fn until_needs_sql_and_poll_needs_until() {
        refused(
            &queue("commit = true", "think = \"1ms\"\nuntil = \"true\""),
            "until =",
            "strategy.q.step[2].until",
            "needs `sql`",
        );
        refused(
            &queue(
                "commit = true",
                "sql = \"SELECT status FROM r WHERE id = :request\"\npoll = \"1ms\"",
            ),
            "poll =",
            "strategy.q.step[2].poll",
            "add `until`",
        );
    }

    #[test]
    fn bad_until_and_poll_values_are_located() {
        for (poll, needle) in [
            ("0ms", "more than 0ms"),
            ("1h", "at most 10s"),
            ("soon", "expected a duration"),
        ] {
            refused(
                &queue("commit = true", &format!("{WAIT}\npoll = \"{poll}\"")),
                "poll =",
                "strategy.q.step[2].poll",
                needle,
            );
        }
        refused(
            &queue(
                "commit = true",
                "sql = \"SELECT status FROM r WHERE id = :request\"\nuntil = \"status ==\"",
            ),
            "until =",
            "strategy.q.step[2].until",
            "cannot parse",
        );
        // A name nothing sets is refused as in any other condition, at the step's header.
        refused(
            &queue(
                "commit = true",
                "sql = \"SELECT status FROM r WHERE id = :request\"\nuntil = \"stauts != 1\"",
            ),
            "[[strategy.q.step]]\nsql = \"SELECT status",
            "strategy.q.step[2].until",
            "`stauts` in until is set by nothing",
        );
    }
}
