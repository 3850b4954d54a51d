//! Sessions and schedules of a scenario file, validated: which sessions take part in a replay,
//! what each runs (its own steps, or the replayed strategy's), and the step orders.
//!
//! Schedule tokens: `a2` or `a.2` (session `a`, step 2; one past the last step is the final
//! commit), `a.read` (the step named `read`), `a.commit`. Sessions named in schedules but not
//! declared are implied (they run the strategy with seeded draws). Like the rest of `scenario`,
//! this must not touch a database.

use std::collections::HashSet;

use indexmap::IndexMap;

use super::raw::{RawScenario, RawTokens};
use super::steps::steps;
use super::validate::{Ctx, check_name, toml_to_value};
use super::*;

pub(super) fn sessions_and_schedules(
    cx: &Ctx,
    raw: &RawScenario,
    known: &HashSet<String>,
    strategies: &IndexMap<String, Strategy>,
    invariants: &[Invariant],
) -> Result<(Vec<Session>, IndexMap<String, Schedule>), ScenarioError> {
    let mut sessions = Vec::new();
    for (name, s) in &raw.session {
        let key = format!("session.{name}");
        check_name(cx, name, &key, s.span())?;
        if name.contains('.') || name.ends_with(|c: char| c.is_ascii_digit()) {
            return Err(cx.err(
                Some(s.span()),
                &key,
                "session names must not end in a digit (`a2` means session a, step 2)",
            ));
        }
        let r = s.get_ref();
        let mut known = known.clone();
        let mut bind = Vec::new();
        for (var, v) in &r.bind {
            let k = format!("{key}.bind.{var}");
            let value = toml_to_value(v.get_ref()).ok_or_else(|| {
                cx.err(Some(v.span()), &k, "expected a string, number or boolean")
            })?;
            known.insert(var.clone());
            bind.push((var.clone(), value));
        }
        let characteristics = characteristics(cx, r, &key)?;
        let text = |v: &Option<toml::Spanned<String>>| {
            v.as_ref()
                .map(|s| s.get_ref().trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let (setup, teardown) = (text(&r.setup), text(&r.teardown));
        if r.as_written {
            sessions.push(Session {
                name: name.clone(),
                summary: r.summary.trim().to_string(),
                bind: Vec::new(),
                steps: None,
                written: Some(written_steps(cx, r, &key)?),
                setup,
                teardown,
                characteristics,
            });
            continue;
        }
        if let Some(t) = &r.teardown {
            return Err(cx.err(
                Some(t.span()),
                &format!("{key}.teardown"),
                "`teardown` is for sessions that run their steps as written (`as_written = true`): the runner ends this session's transactions itself",
            ));
        }
        let own = if r.step.is_empty() {
            if strategies.is_empty() {
                return Err(cx.err(
                    Some(s.span()),
                    &key,
                    "this scenario has no strategies: give the session its own steps",
                ));
            }
            None
        } else {
            Some(steps(cx, &r.step, &key, &known, &[])?)
        };
        sessions.push(Session {
            name: name.clone(),
            summary: r.summary.trim().to_string(),
            bind,
            steps: own,
            written: None,
            setup,
            teardown,
            characteristics,
        });
    }

    let mut schedules = IndexMap::new();
    for (name, s) in &raw.schedule {
        let key = format!("schedule.{name}");
        check_name(cx, name, &key, s.span())?;
        let r = s.get_ref();
        let err = |m: String| cx.err(Some(r.steps.span()), &format!("{key}.steps"), m);
        let tokens = match r.steps.get_ref() {
            RawTokens::Compact(text) => parse_tokens(text),
            RawTokens::List(list) => list.iter().map(|t| parse_token(t)).collect(),
        }
        .map_err(err)?;
        if tokens.is_empty() {
            return Err(err("an empty schedule".into()));
        }
        for t in &tokens {
            if !sessions.iter().any(|s: &Session| s.name == t.session) {
                if strategies.is_empty() {
                    return Err(err(format!(
                        "`{}`: no session `{}` (declare [session.{}])",
                        t.text, t.session, t.session
                    )));
                }
                sessions.push(Session {
                    name: t.session.clone(),
                    summary: String::new(),
                    bind: Vec::new(),
                    steps: None,
                    written: None,
                    setup: None,
                    teardown: None,
                    characteristics: Characteristics::default(),
                });
            }
            let session = sessions
                .iter()
                .find(|s| s.name == t.session)
                .expect("just added");
            check_target(t, session, strategies).map_err(err)?;
        }
        let strategy = match &r.strategy {
            None => None,
            Some(st) if strategies.contains_key(st.get_ref()) => Some(st.get_ref().clone()),
            Some(st) => {
                return Err(cx.err(
                    Some(st.span()),
                    &format!("{key}.strategy"),
                    format!("no strategy named `{}`", st.get_ref()),
                ));
            }
        };
        let mut params = Vec::new();
        for (p, v) in &r.params {
            let k = format!("{key}.params.{p}");
            if !raw.params.contains_key(p) {
                let names: Vec<&str> = raw.params.keys().map(String::as_str).collect();
                return Err(cx.err(
                    Some(v.span()),
                    &k,
                    format!(
                        "no parameter `{p}` in [params] (it has {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            }
            let text = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(cx.err(Some(v.span()), &k, "expected a string, number or boolean"));
                }
            };
            params.push((p.clone(), text));
        }
        schedules.insert(
            name.clone(),
            Schedule {
                name: name.clone(),
                summary: r.summary.trim().to_string(),
                tokens,
                strategy,
                params,
            },
        );
    }
    if !sessions.is_empty() && schedules.is_empty() {
        return Err(cx.err(
            None,
            "schedule",
            "sessions are declared but no [schedule.NAME] orders their steps",
        ));
    }
    for (i, (inv, raw_inv)) in invariants.iter().zip(&raw.invariant).enumerate() {
        if let InvariantSource::Expr(e) = &inv.source {
            let span = raw_inv.get_ref().expr.as_ref().map(|e| e.span());
            let key = format!("invariant[{}].expr", i + 1);
            for v in e.variables() {
                let session = v.split_once('.').map(|(s, _)| s);
                if !session.is_some_and(|s| sessions.iter().any(|x| x.name == s)) {
                    return Err(cx.err(
                        span,
                        &key,
                        format!(
                            "`{v}`: expected session.variable, with a session of this scenario"
                        ),
                    ));
                }
            }
        }
    }
    Ok((sessions, schedules))
}

/// A schedule given on the command line (`--schedule "a1 b1 a2"`), checked like the file's;
/// sessions it names that the scenario lacks are added (when strategies can run them).
pub fn adhoc_schedule(scenario: &mut Scenario, text: &str) -> Result<Schedule, String> {
    let tokens = parse_tokens(text).map_err(|m| format!("--schedule {m}"))?;
    if tokens.is_empty() {
        return Err("--schedule: no steps given".into());
    }
    for t in &tokens {
        if !scenario.sessions.iter().any(|s| s.name == t.session) {
            if scenario.strategies.is_empty() {
                let names: Vec<&str> = scenario.sessions.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "--schedule `{}`: no session `{}`; this scenario has {}",
                    t.text,
                    t.session,
                    names.join(", ")
                ));
            }
            scenario.sessions.push(Session {
                name: t.session.clone(),
                summary: String::new(),
                bind: Vec::new(),
                steps: None,
                written: None,
                setup: None,
                teardown: None,
                characteristics: Characteristics::default(),
            });
        }
        let session = scenario
            .sessions
            .iter()
            .find(|s| s.name == t.session)
            .expect("present");
        check_target(t, session, &scenario.strategies).map_err(|m| format!("--schedule {m}"))?;
    }
    Ok(Schedule {
        name: "given".into(),
        summary: String::new(),
        tokens,
        strategy: None,
        params: Vec::new(),
    })
}

/// `"a1 b1 a2, b2"`: tokens separated by spaces or commas.
pub fn parse_tokens(text: &str) -> Result<Vec<Token>, String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(parse_token)
        .collect()
}

pub fn parse_token(text: &str) -> Result<Token, String> {
    let t = text.trim();
    let bad = || format!("`{t}`: expected a session and a step, like a2, a.2, a.read or a.commit");
    let (session, target) = match t.split_once('.') {
        Some((s, "commit")) => (s, Target::Commit),
        Some((s, step)) => match step.parse::<usize>() {
            Ok(n) => (s, Target::Step(n)),
            Err(_) => (s, Target::Named(step.to_string())),
        },
        None => {
            let digits = t.trim_start_matches(|c: char| !c.is_ascii_digit());
            let s = &t[..t.len() - digits.len()];
            (s, Target::Step(digits.parse().map_err(|_| bad())?))
        }
    };
    if session.is_empty()
        || !session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad());
    }
    if matches!(target, Target::Step(0)) {
        return Err(format!("`{t}`: steps are numbered from 1"));
    }
    Ok(Token {
        session: session.to_string(),
        target,
        text: t.to_string(),
        blockers: Vec::new(),
    })
}

/// The step exists in what the session can run: its own steps, or at least one strategy.
fn check_target(
    t: &Token,
    session: &Session,
    strategies: &IndexMap<String, Strategy>,
) -> Result<(), String> {
    if let Some(written) = &session.written {
        return check_written_target(t, written);
    }
    let programs: Vec<&[Step]> = match &session.steps {
        Some(own) => vec![own],
        None => strategies.values().map(|s| s.steps.as_slice()).collect(),
    };
    match &t.target {
        Target::Commit => Ok(()),
        Target::Step(n) => {
            let most = programs.iter().map(|p| p.len() + 1).max().unwrap_or(1);
            if *n > most {
                return Err(format!(
                    "`{}`: session {} has at most {} steps and then the commit ({})",
                    t.text,
                    t.session,
                    most - 1,
                    most
                ));
            }
            Ok(())
        }
        Target::Named(name) => {
            if programs
                .iter()
                .any(|p| p.iter().any(|s| s.name.as_deref() == Some(name)))
            {
                Ok(())
            } else {
                Err(format!(
                    "`{}`: no step named `{name}` in what session {} runs",
                    t.text, t.session
                ))
            }
        }
    }
}

/// A token of a session that runs its steps as written names one of them: by name or number,
/// never `commit` (its own steps commit).
pub fn check_written_target(t: &Token, steps: &[WrittenStep]) -> Result<(), String> {
    match &t.target {
        Target::Commit if steps.iter().any(|s| s.name == "commit") => Ok(()),
        Target::Commit => Err(format!(
            "`{}`: session {} runs its steps as written and has no step named `commit`: name the step that commits",
            t.text, t.session
        )),
        Target::Step(n) if *n > steps.len() => Err(format!(
            "`{}`: session {} has {} steps",
            t.text,
            t.session,
            steps.len()
        )),
        Target::Step(_) => Ok(()),
        Target::Named(name) if steps.iter().any(|s| &s.name == name) => Ok(()),
        Target::Named(name) => Err(format!(
            "`{}`: session {} has no step named `{name}`",
            t.text, t.session
        )),
    }
}

/// `isolation`, `read_only`, `deferrable` of a session.
fn characteristics(
    cx: &Ctx,
    r: &super::raw::RawSession,
    key: &str,
) -> Result<Characteristics, ScenarioError> {
    let isolation = match &r.isolation {
        None => None,
        Some(level) => Some(
            level
                .get_ref()
                .parse()
                .map_err(|m: String| cx.err(Some(level.span()), &format!("{key}.isolation"), m))?,
        ),
    };
    Ok(Characteristics {
        isolation,
        read_only: r.read_only,
        deferrable: r.deferrable,
    })
}

/// The steps of an `as_written` session: a name and SQL each, nothing the runner would do.
fn written_steps(
    cx: &Ctx,
    r: &super::raw::RawSession,
    key: &str,
) -> Result<Vec<WrittenStep>, ScenarioError> {
    if r.step.is_empty() {
        return Err(cx.err(None, key, "`as_written` needs the session's own steps"));
    }
    if !r.bind.is_empty() {
        return Err(cx.err(
            None,
            &format!("{key}.bind"),
            "steps run as written take no bind parameters",
        ));
    }
    let mut out: Vec<WrittenStep> = Vec::new();
    for (i, step) in r.step.iter().enumerate() {
        let k = format!("{key}.step[{}]", i + 1);
        let s = step.get_ref();
        let refused = [
            ("when", s.when.is_some()),
            ("reject_if", s.reject_if.is_some()),
            ("outcome", s.outcome.is_some()),
            ("retry_if", s.retry_if.is_some()),
            ("flag_if", s.flag_if.is_some()),
            ("flag", s.flag.is_some()),
            ("think", s.think.is_some()),
            ("commit", s.commit.is_some()),
            ("until", s.until.is_some()),
            ("poll", s.poll.is_some()),
            ("on", !s.on.is_empty()),
        ];
        if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
            return Err(cx.err(
                Some(step.span()),
                &format!("{k}.{field}"),
                format!(
                    "`{field}` is for steps the runner frames; a step run as written is its SQL (write BEGIN, COMMIT or ROLLBACK as steps)"
                ),
            ));
        }
        let name = match &s.name {
            Some(n) => n.get_ref().clone(),
            None => format!("{}", i + 1),
        };
        if out.iter().any(|o| o.name == name) {
            return Err(cx.err(
                s.name.as_ref().map(|n| n.span()),
                &format!("{k}.name"),
                format!("a second step named `{name}`"),
            ));
        }
        let sql = s.sql.as_ref().ok_or_else(|| {
            cx.err(
                Some(step.span()),
                &format!("{k}.sql"),
                "a step run as written needs `sql`",
            )
        })?;
        out.push(WrittenStep {
            name,
            sql: sql.get_ref().trim().to_string(),
            key: k,
            line: cx.line(sql.span()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_dotted_tokens() {
        let t = parse_tokens("a1 b12, a.read b.commit c.3").unwrap();
        let got: Vec<(&str, Target)> = t
            .iter()
            .map(|t| (t.session.as_str(), t.target.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Target::Step(1)),
                ("b", Target::Step(12)),
                ("a", Target::Named("read".into())),
                ("b", Target::Commit),
                ("c", Target::Step(3)),
            ]
        );
    }

    #[test]
    fn bad_tokens_say_what_is_expected() {
        assert!(
            parse_token("a")
                .unwrap_err()
                .contains("expected a session and a step")
        );
        assert!(parse_token("a0").unwrap_err().contains("numbered from 1"));
        assert!(parse_token(".read").is_err());
    }
}
