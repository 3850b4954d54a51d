//! From the raw TOML to a [`Scenario`]: apply `--param` overrides, render setup SQL, compile
//! steps, and check every name and expression, with errors that point at file, line and key.
//! It must not touch a database: everything it checks is decidable from the files alone.

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use evalexpr::{ContextWithMutableVariables, HashMapContext};
use indexmap::IndexMap;
use toml::Spanned;

use super::catalog::Source;
use super::raw::*;
use super::sql::{quote_literal, substitute};
use super::steps::{every_name_set, steps, think_params};
use super::*;

pub(super) struct Ctx<'a> {
    src: &'a Source,
    /// `[history] model`, which steps' `history` annotations must fit.
    pub(super) history: Option<HistoryModel>,
    /// `[node.*]` names and kinds, in the order of [`Scenario::nodes`] (empty: one database).
    pub(super) nodes: Vec<(String, NodeKind)>,
    /// The run's engine (two-phase commit steps need PostgreSQL).
    pub(super) engine: EngineKind,
}

impl Ctx<'_> {
    pub(super) fn err(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        msg: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::new(&self.src.path, msg)
            .at(&self.src.text, span)
            .key(key)
    }

    /// An error at a line already known (a validated step's).
    pub(super) fn err_line(&self, line: usize, key: &str, msg: impl Into<String>) -> ScenarioError {
        let mut e = ScenarioError::new(&self.src.path, msg).key(key);
        e.line = Some((line, 1));
        e
    }

    pub(super) fn line(&self, span: Range<usize>) -> usize {
        error::line_col(&self.src.text, span.start).0
    }
}

pub fn validate(
    src: &Source,
    overrides: &[(String, String)],
    engine: EngineKind,
) -> Result<Scenario, ScenarioError> {
    let mut raw: RawScenario = toml::from_str(&src.text).map_err(|e| {
        let key = e.span().and_then(|s| key_of_span(&src.text, s));
        let mut err =
            ScenarioError::new(&src.path, e.message().trim().to_string()).at(&src.text, e.span());
        if let Some(k) = key {
            err = err.key(k);
        }
        err
    })?;
    let history = match &raw.history {
        None => None,
        Some(h) => {
            let m = h.get_ref().model.get_ref();
            Some(match m.as_str() {
                "list-append" => HistoryModel::ListAppend,
                "rw-register" => HistoryModel::RwRegister,
                other => {
                    return Err(ScenarioError::new(
                        &src.path,
                        format!("`{other}`: expected list-append or rw-register"),
                    )
                    .at(&src.text, Some(h.get_ref().model.span()))
                    .key("history.model"));
                }
            })
        }
    };
    let node_order = node_order(src, &raw, engine)?;
    let cx = Ctx {
        src,
        history,
        nodes: node_order.clone(),
        engine,
    };
    super::dialect::resolve(&cx, &mut raw, engine)?;
    super::template::expand(&cx, &mut raw)?;

    let params = params(&cx, &raw, overrides)?;
    think_params(&cx, &mut raw, &params)?;
    let mut param_ctx = HashMapContext::new();
    for (name, p) in &params {
        param_ctx
            .set_value(name.clone(), p.value.clone())
            .expect("fresh context");
    }

    let setup = setup_table(&cx, src, &raw.setup, "setup", &params)?;
    let nodes = nodes(&cx, &raw, &node_order, &params)?;
    let node_setup = nodes.first().is_some_and(|n| !n.setup.is_empty());
    if setup.is_empty() && !node_setup {
        return Err(cx.err(
            None,
            "setup",
            "a scenario needs setup SQL (`files` or `sql`) to create its tables",
        ));
    }

    let settings = session_settings(&cx, &raw.settings, "settings", &params)?;

    let draws = draws(&cx, &raw, &params, &param_ctx)?;
    let run = run_defaults(&cx, &raw.run)?;

    let mut known: HashSet<String> = params.keys().cloned().collect();
    known.extend(draws.iter().map(|d| d.name.clone()));
    known.extend(BUILTINS.iter().map(|s| s.to_string()));

    let invariants = invariants(&cx, &raw, &params)?;
    let invariant_names: Vec<&str> = invariants.iter().map(|i| i.name.as_str()).collect();

    let own_steps =
        !raw.session.is_empty() && raw.session.values().all(|s| !s.get_ref().step.is_empty());
    let no_strategies = raw.strategy.as_ref().is_none_or(|s| s.get_ref().is_empty());
    if no_strategies && !own_steps {
        return Err(cx.err(
            raw.strategy.as_ref().map(|s| s.span()),
            "strategy",
            "at least one strategy is needed (or sessions that all have their own steps, for a replay-only scenario)",
        ));
    }
    let mut strategies = IndexMap::new();
    for (name, s) in raw.strategy.iter().flat_map(|s| s.get_ref()) {
        let key = format!("strategy.{name}");
        check_name(&cx, name, &key, s.span())?;
        let raw_s = s.get_ref();
        let isolation = raw_s
            .isolation
            .as_ref()
            .map(|i| {
                i.get_ref()
                    .parse::<Isolation>()
                    .map_err(|m| cx.err(Some(i.span()), &format!("{key}.isolation"), m))
            })
            .transpose()?;
        let retry = match &raw_s.retry {
            None => Abort::default_retry(),
            Some(list) => list
                .get_ref()
                .iter()
                .map(|c| c.parse::<Abort>())
                .collect::<Result<_, _>>()
                .map_err(|m| cx.err(Some(list.span()), &format!("{key}.retry"), m))?,
        };
        let expect = expectations(&cx, &raw_s.expect, &key, &invariant_names)?;
        let steps = steps(&cx, &raw_s.step, &key, &known, &[])?;
        let on_error = on_error(&cx, raw_s, &key)?;
        let own_setup = match &raw_s.setup {
            None => Vec::new(),
            Some(t) => setup_table(&cx, src, t.get_ref(), &format!("{key}.setup"), &params)?,
        };
        strategies.insert(
            name.clone(),
            Strategy {
                name: name.clone(),
                summary: raw_s.summary.trim().to_string(),
                isolation,
                retry,
                expect,
                steps,
                settings: session_settings(
                    &cx,
                    &raw_s.settings,
                    &format!("{key}.settings"),
                    &params,
                )?,
                on_error,
                setup: own_setup,
            },
        );
    }

    let mut auditors = Vec::new();
    for (name, a) in &raw.auditor {
        let key = format!("auditor.{name}");
        check_name(&cx, name, &key, a.span())?;
        let raw_a = a.get_ref();
        let flags: Vec<&str> = invariants
            .iter()
            .filter(
                |i| matches!(&i.source, InvariantSource::Observed { auditor } if auditor == name),
            )
            .map(|i| i.name.as_str())
            .collect();
        if raw_a.after && !raw_a.step.iter().any(|s| s.get_ref().reject_if.is_some()) {
            return Err(cx.err(
                Some(a.span()),
                &format!("{key}.after"),
                "an `after` auditor runs until an operation is rejected: give a step `reject_if` (nothing left to do)",
            ));
        }
        auditors.push(Auditor {
            name: name.clone(),
            summary: raw_a.summary.trim().to_string(),
            after: raw_a.after,
            clients: match &raw_a.clients {
                None => 1,
                Some(c) => crate::limits::clients(*c.get_ref())
                    .map_err(|m| cx.err(Some(c.span()), &format!("{key}.clients"), m))?,
            },
            expect: expectations(&cx, &raw_a.expect, &key, &invariant_names)?,
            steps: steps(&cx, &raw_a.step, &key, &known, &flags)?,
        });
    }
    for (inv, raw_inv) in invariants.iter().zip(&raw.invariant) {
        if let InvariantSource::Observed { auditor } = &inv.source
            && !auditors.iter().any(|a| &a.name == auditor)
        {
            let span = raw_inv.get_ref().observed_by.as_ref().map(|s| s.span());
            return Err(cx.err(
                span,
                &format!("invariant.{}.observed_by", inv.name),
                format!("no auditor named `{auditor}`"),
            ));
        }
    }

    let (sessions, schedules) =
        schedule::sessions_and_schedules(&cx, &raw, &known, &strategies, &invariants)?;
    every_name_set(&cx, &known, &strategies, &auditors, &sessions)?;
    let anomaly = raw.anomaly.as_ref().map(|a| {
        let a = a.get_ref();
        ClassicAnomaly {
            id: a.id.clone(),
            reference: a.reference.trim().to_string(),
            definition: a.definition.trim().to_string(),
        }
    });

    Ok(Scenario {
        engine,
        sessions,
        schedules,
        anomaly,
        name: raw.name.get_ref().clone(),
        summary: raw.summary.trim().to_string(),
        story: raw.story.trim().to_string(),
        notes: raw.notes.map(|n| n.trim().to_string()),
        file: src.path.clone(),
        params,
        setup,
        settings,
        draws,
        run,
        strategies,
        auditors,
        invariants,
        history,
        nodes,
    })
}

/// The one engine a scenario's nodes pin (`[node.X] engine = "postgres"`), if they pin one: it
/// runs on that engine only. None for a file that does not parse (loading says why).
pub fn pinned_engine(src: &Source) -> Option<EngineKind> {
    let raw: RawScenario = toml::from_str(&src.text).ok()?;
    raw.node
        .values()
        .filter_map(|n| n.get_ref().engine.as_ref())
        .find_map(|e| e.get_ref().parse::<EngineKind>().ok())
}

/// The declared nodes' names and kinds, database nodes first (file order otherwise): the
/// first database node is the run database. A database node must be of the run's engine.
fn node_order(
    src: &Source,
    raw: &RawScenario,
    engine: EngineKind,
) -> Result<Vec<(String, NodeKind)>, ScenarioError> {
    let mut out = Vec::new();
    for (name, n) in &raw.node {
        let key = format!("node.{name}");
        let err = |span: Option<Range<usize>>, key: &str, msg: String| {
            ScenarioError::new(&src.path, msg)
                .at(&src.text, span)
                .key(key)
        };
        if !is_identifier(name) {
            return Err(err(
                Some(n.span()),
                &key,
                format!("`{name}` is not a name: use letters, digits and _"),
            ));
        }
        let kind = match n.get_ref().engine.as_ref() {
            None => NodeKind::Database,
            Some(e) if e.get_ref() == "redis" => NodeKind::Redis,
            Some(e) if e.get_ref() == "postgres-advisory" => NodeKind::Advisory,
            Some(e) => match e.get_ref().parse::<EngineKind>() {
                Ok(k) if k == engine => NodeKind::Database,
                Ok(k) => {
                    return Err(err(
                        Some(e.span()),
                        &format!("{key}.engine"),
                        format!(
                            "this node is {}, but the run is on {}: the scenario runs on {} only (--engine {})",
                            k.title(),
                            engine.title(),
                            k.title(),
                            k.name()
                        ),
                    ));
                }
                Err(m) => {
                    return Err(err(
                        Some(e.span()),
                        &format!("{key}.engine"),
                        format!(
                            "{m}, or a lock service: redis, or postgres-advisory (PostgreSQL's advisory locks)"
                        ),
                    ));
                }
            },
        };
        out.push((name.clone(), kind));
    }
    if !out.is_empty() && !out.iter().any(|(_, k)| *k == NodeKind::Database) {
        let (name, _) = &out[0];
        return Err(ScenarioError::new(
            &src.path,
            "at least one node must be a database (a node without `engine`, or with the run's)",
        )
        .at(&src.text, raw.node.get(name).map(|n| n.span()))
        .key(format!("node.{name}")));
    }
    if out.len() > 64 {
        return Err(ScenarioError::new(
            &src.path,
            format!("{} nodes: a scenario may declare 64 at most", out.len()),
        )
        .key("node"));
    }
    if let Some(name) = out
        .iter()
        .map(|(n, _)| n)
        .find(|n| raw.params.contains_key(*n))
    {
        return Err(ScenarioError::new(
            &src.path,
            format!("`{name}` names both a node and a parameter: an invariant's `value` reads each node's number by its name"),
        )
        .at(&src.text, raw.node.get(name).map(|n| n.span()))
        .key(format!("node.{name}")));
    }
    out.sort_by_key(|(_, k)| *k != NodeKind::Database);
    Ok(out)
}

/// The nodes with their setup and server settings, in `order`.
fn nodes(
    cx: &Ctx,
    raw: &RawScenario,
    order: &[(String, NodeKind)],
    params: &IndexMap<String, Param>,
) -> Result<Vec<Node>, ScenarioError> {
    let mut out = Vec::new();
    for (name, kind) in order {
        let n = raw.node.get(name).expect("ordered from these").get_ref();
        let key = format!("node.{name}");
        let setup = match &n.setup {
            None => Vec::new(),
            Some(t) if kind.is_lock_service() => {
                return Err(cx.err(
                    Some(t.span()),
                    &format!("{key}.setup"),
                    "a lock-service node has no SQL setup (it starts empty)",
                ));
            }
            Some(t) => setup_table(cx, cx.src, t.get_ref(), &format!("{key}.setup"), params)?,
        };
        let mut server = Vec::new();
        for (k, v) in &n.server {
            if *kind == NodeKind::Redis {
                return Err(cx.err(
                    Some(v.span()),
                    &format!("{key}.server.{k}"),
                    "a redis node takes no server settings",
                ));
            }
            if !is_identifier(k) {
                return Err(cx.err(
                    Some(v.span()),
                    &format!("{key}.server.{k}"),
                    "not a setting name",
                ));
            }
            server.push((k.clone(), v.get_ref().clone()));
        }
        out.push(Node {
            name: name.clone(),
            kind: *kind,
            setup,
            server,
        });
    }
    Ok(out)
}

/// The index of the node `name` names (`key` is where, for errors); without a name, the only
/// database node (an error when there are several: say which).
pub(super) fn node_index(
    cx: &Ctx,
    name: Option<&Spanned<String>>,
    span: Range<usize>,
    key: &str,
) -> Result<usize, ScenarioError> {
    match name {
        None => {
            let databases = cx
                .nodes
                .iter()
                .filter(|(_, k)| *k == NodeKind::Database)
                .count();
            if databases > 1 {
                let names: Vec<&str> = cx.nodes.iter().map(|(n, _)| n.as_str()).collect();
                return Err(cx.err(
                    Some(span),
                    key,
                    format!(
                        "the scenario has several nodes: say which this runs on with `node = ` one of {}",
                        names.join(", ")
                    ),
                ));
            }
            Ok(0)
        }
        Some(n) => {
            if cx.nodes.is_empty() {
                return Err(cx.err(
                    Some(n.span()),
                    &format!("{key}.node"),
                    "the scenario declares no [node.*] tables: it runs on one database",
                ));
            }
            cx.nodes
                .iter()
                .position(|(name, _)| name == n.get_ref())
                .ok_or_else(|| {
                    let names: Vec<&str> = cx.nodes.iter().map(|(n, _)| n.as_str()).collect();
                    cx.err(
                        Some(n.span()),
                        &format!("{key}.node"),
                        format!(
                            "no node named `{}`; the scenario has {}",
                            n.get_ref(),
                            names.join(", ")
                        ),
                    )
                })
        }
    }
}

/// The dotted key a TOML error's span points at: the key itself (an unknown field), or the key
/// whose value it is (a type error), under the table header above it (`run.clients`).
fn key_of_span(text: &str, span: Range<usize>) -> Option<String> {
    let start = span.start.min(text.len());
    if !text.is_char_boundary(start) {
        return None;
    }
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..start];
    let is_key = |c: char| c.is_ascii_alphanumeric() || "_-.\"'".contains(c);
    let clean = |k: &str| {
        k.trim()
            .trim_matches(['[', ']', '"', '\'', ' '])
            .to_string()
    };
    let key = match before.rfind('=') {
        // A value: the key before its `=` (in an inline table, after the last `{` or `,`).
        Some(eq) if !before[eq..].contains(['{', ',', '[']) || before.trim_end().ends_with('=') => {
            let head = before[..eq].trim_end();
            let from = head.rfind(|c: char| !is_key(c)).map_or(0, |i| {
                i + head[i..].chars().next().map_or(1, char::len_utf8)
            });
            clean(&head[from..])
        }
        _ => {
            let k = text.get(span)?;
            clean(k)
        }
    };
    if key.is_empty() || key.len() >= 60 || key.contains('\n') {
        return None;
    }
    // The table the key is in: the nearest header above the line (none for a header itself).
    if before.trim_start().starts_with('[') {
        return Some(key);
    }
    let table = text[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        l.starts_with('[').then(|| {
            l.split('#')
                .next()
                .unwrap_or(l)
                .trim()
                .trim_matches(['[', ']'])
                .trim()
                .to_string()
        })
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key,
    })
}

pub(super) fn check_name(
    cx: &Ctx,
    name: &str,
    key: &str,
    span: Range<usize>,
) -> Result<(), ScenarioError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(cx.err(Some(span), key, "names use letters, digits, `-` and `_`"));
    }
    Ok(())
}

pub(super) fn toml_to_value(v: &toml::Value) -> Option<Value> {
    Some(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Boolean(*b),
        _ => return None,
    })
}

fn params(
    cx: &Ctx,
    raw: &RawScenario,
    overrides: &[(String, String)],
) -> Result<IndexMap<String, Param>, ScenarioError> {
    let mut out = IndexMap::new();
    for (name, p) in &raw.params {
        let key = format!("params.{name}");
        if BUILTINS.contains(&name.as_str()) || !is_identifier(name) {
            return Err(cx.err(
                Some(p.span()),
                &key,
                format!(
                    "`{name}` cannot be a parameter name (use letters, digits and `_`; not {})",
                    BUILTINS.join(", ")
                ),
            ));
        }
        let (value, help) = match p.get_ref() {
            RawParam::Described { value, help } => (value, help.clone()),
            RawParam::Plain(v) => (v, String::new()),
        };
        let value = toml_to_value(value)
            .ok_or_else(|| cx.err(Some(p.span()), &key, "expected a number, boolean or string"))?;
        out.insert(
            name.clone(),
            Param {
                default: value.clone(),
                value,
                help,
            },
        );
    }
    for (k, v) in overrides {
        let name = k.replace('-', "_");
        let known = out.keys().cloned().collect::<Vec<_>>().join(", ");
        let p = out.get_mut(&name).ok_or_else(|| {
            ScenarioError::new(
                &cx.src.path,
                format!("--param {k}: this scenario has no such parameter; it has: {known}"),
            )
        })?;
        p.value = parse_override(&p.default, v).map_err(|expected| {
            ScenarioError::new(
                &cx.src.path,
                format!("--param {k}={v}: expected {expected}"),
            )
        })?;
    }
    Ok(out)
}

fn parse_override(default: &Value, v: &str) -> Result<Value, &'static str> {
    match default {
        Value::Int(_) => v.trim().parse().map(Value::Int).map_err(|_| "an integer"),
        Value::Float(_) => v.trim().parse().map(Value::Float).map_err(|_| "a number"),
        Value::Boolean(_) => v
            .trim()
            .parse()
            .map(Value::Boolean)
            .map_err(|_| "true or false"),
        _ => Ok(Value::String(v.to_string())),
    }
}

pub(super) fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn render_setup(sql: &str, params: &IndexMap<String, Param>) -> Result<String, String> {
    substitute(sql, |name| {
        let p = params
            .get(name)
            .ok_or_else(|| format!("`:{name}` is not a parameter of this scenario"))?;
        Ok(match &p.value {
            Value::String(s) => quote_literal(s),
            other => expr::to_text(other).unwrap_or_else(|| "NULL".into()),
        })
    })
}

fn number(
    cx: &Ctx,
    v: &Spanned<toml::Value>,
    key: &str,
    param_ctx: &HashMapContext,
) -> Result<f64, ScenarioError> {
    let value = match v.get_ref() {
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::String(s) => Expr::parse(s)
            .and_then(|e| e.eval(param_ctx))
            .map_err(|m| cx.err(Some(v.span()), key, m))?,
        _ => {
            return Err(cx.err(
                Some(v.span()),
                key,
                "expected a number or an expression over params",
            ));
        }
    };
    value.as_number().map_err(|_| {
        cx.err(
            Some(v.span()),
            key,
            format!("expected a number, got {value:?}"),
        )
    })
}

fn draws(
    cx: &Ctx,
    raw: &RawScenario,
    params: &IndexMap<String, Param>,
    param_ctx: &HashMapContext,
) -> Result<Vec<Draw>, ScenarioError> {
    let mut out: Vec<Draw> = Vec::new();
    for (name, d) in &raw.draw {
        let key = format!("draw.{name}");
        if !is_identifier(name) || BUILTINS.contains(&name.as_str()) || params.contains_key(name) {
            return Err(cx.err(
                Some(d.span()),
                &key,
                "a draw needs an identifier not used by a parameter or built-in variable",
            ));
        }
        let r = d.get_ref();
        let kinds = [r.uniform.is_some(), r.zipf.is_some(), r.chance.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(cx.err(
                Some(d.span()),
                &key,
                "expected exactly one of uniform = [low, high], zipf = [n, s], chance = p",
            ));
        }
        let kind = if let Some([lo, hi]) = &r.uniform {
            let low = number(cx, lo, &format!("{key}.uniform"), param_ctx)? as i64;
            let high = number(cx, hi, &format!("{key}.uniform"), param_ctx)? as i64;
            if low > high {
                return Err(cx.err(
                    Some(d.span()),
                    &format!("{key}.uniform"),
                    format!("empty range [{low}, {high}]"),
                ));
            }
            DrawKind::Uniform { low, high }
        } else if let Some([n, s]) = &r.zipf {
            let n_v = number(cx, n, &format!("{key}.zipf"), param_ctx)?;
            let s_v = number(cx, s, &format!("{key}.zipf"), param_ctx)?;
            if n_v < 1.0 || s_v < 0.0 {
                return Err(cx.err(
                    Some(d.span()),
                    &format!("{key}.zipf"),
                    "expected n >= 1 and s >= 0",
                ));
            }
            DrawKind::Zipf {
                n: n_v as u64,
                s: s_v,
            }
        } else {
            let c = r.chance.as_ref().expect("checked above");
            let p = number(cx, c, &format!("{key}.chance"), param_ctx)?;
            if !(0.0..=1.0).contains(&p) {
                return Err(cx.err(
                    Some(c.span()),
                    &format!("{key}.chance"),
                    "expected a probability between 0 and 1",
                ));
            }
            DrawKind::Chance { p }
        };
        let distinct_from = match &r.distinct_from {
            Some(other) if !out.iter().any(|d| &d.name == other.get_ref()) => {
                return Err(cx.err(
                    Some(other.span()),
                    &format!("{key}.distinct_from"),
                    format!(
                        "`{}` is not a draw declared before `{name}`",
                        other.get_ref()
                    ),
                ));
            }
            Some(other) => {
                if matches!(kind, DrawKind::Uniform { low, high } if low == high)
                    || matches!(kind, DrawKind::Zipf { n: 1, .. })
                {
                    return Err(cx.err(
                        Some(other.span()),
                        &format!("{key}.distinct_from"),
                        "the range has one value: a distinct draw is impossible",
                    ));
                }
                Some(other.get_ref().clone())
            }
            None => None,
        };
        out.push(Draw {
            name: name.clone(),
            kind,
            distinct_from,
        });
    }
    Ok(out)
}

fn duration(cx: &Ctx, s: &Spanned<String>, key: &str) -> Result<Duration, ScenarioError> {
    humantime::parse_duration(s.get_ref()).map_err(|e| {
        cx.err(
            Some(s.span()),
            key,
            format!("expected a duration like 500ms or 2s: {e}"),
        )
    })
}

fn run_defaults(cx: &Ctx, r: &RawRun) -> Result<RunDefaults, ScenarioError> {
    // The command line's flags check the same ranges (`crate::limits`).
    fn limited<T: Copy>(
        cx: &Ctx,
        v: &Option<Spanned<T>>,
        key: &str,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<Option<T>, ScenarioError> {
        v.as_ref()
            .map(|v| check(*v.get_ref()).map_err(|m| cx.err(Some(v.span()), key, m)))
            .transpose()
    }
    let clients = limited(cx, &r.clients, "run.clients", crate::limits::clients)?.unwrap_or(8);
    let operations = limited(
        cx,
        &r.operations,
        "run.operations",
        crate::limits::operations,
    )?;
    let max_tries = limited(cx, &r.max_tries, "run.max_tries", crate::limits::max_tries)?;
    let isolation = match &r.isolation {
        None => vec![Isolation::Rc],
        Some(s) => Isolation::parse_list(s.get_ref())
            .map_err(|m| cx.err(Some(s.span()), "run.isolation", m))?,
    };
    let run_duration = match &r.duration {
        None => Duration::from_secs(1),
        Some(d) => crate::limits::duration(duration(cx, d, "run.duration")?)
            .map_err(|m| cx.err(Some(d.span()), "run.duration", m))?,
    };
    let think = match &r.think {
        None => Duration::ZERO,
        Some(d) => crate::limits::think(duration(cx, d, "run.think")?)
            .map_err(|m| cx.err(Some(d.span()), "run.think", m))?,
    };
    Ok(RunDefaults {
        clients,
        duration: run_duration,
        operations,
        think,
        max_tries: max_tries.unwrap_or(10),
        isolation,
    })
}

/// Session settings (`name = value`, a value may be `:param`), in the order written.
fn session_settings(
    cx: &Ctx,
    raw: &IndexMap<String, Spanned<String>>,
    key: &str,
    params: &IndexMap<String, Param>,
) -> Result<Vec<(String, String)>, ScenarioError> {
    let mut settings = Vec::new();
    for (name, value) in raw {
        let key = format!("{key}.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(cx.err(Some(value.span()), &key, "not a setting name"));
        }
        let v = match value.get_ref().strip_prefix(':') {
            Some(p) => params
                .get(p)
                .and_then(|p| expr::to_text(&p.value))
                .ok_or_else(|| cx.err(Some(value.span()), &key, format!("no parameter `{p}`")))?,
            None => value.get_ref().clone(),
        };
        settings.push((name.clone(), v));
    }
    Ok(settings)
}

fn expectations(
    cx: &Ctx,
    raw: &IndexMap<String, Spanned<Vec<String>>>,
    key: &str,
    invariants: &[&str],
) -> Result<Vec<(Isolation, Vec<Expectation>)>, ScenarioError> {
    let mut out = Vec::new();
    for (level, list) in raw {
        let k = format!("{key}.expect.{level}");
        let level: Isolation = level
            .parse()
            .map_err(|m| cx.err(Some(list.span()), &k, m))?;
        let mut exps = Vec::new();
        for e in list.get_ref() {
            let e: Expectation = e.parse().map_err(|m| cx.err(Some(list.span()), &k, m))?;
            if let Expectation::Anomaly(name) = &e
                && !invariants.contains(&name.as_str())
            {
                return Err(cx.err(
                    Some(list.span()),
                    &k,
                    format!("no invariant named `{name}`"),
                ));
            }
            exps.push(e);
        }
        out.push((level, exps));
    }
    Ok(out)
}

/// A setup table's SQL: files, then inline, with :param literals; labelled for errors.
fn setup_table(
    cx: &Ctx,
    src: &Source,
    table: &RawSetup,
    key: &str,
    params: &IndexMap<String, Param>,
) -> Result<Vec<(String, String)>, ScenarioError> {
    let mut setup = Vec::new();
    for (i, file) in table.files.iter().enumerate() {
        let k = format!("{key}.files[{i}]");
        let text = src
            .read_relative(file.get_ref())
            .map_err(|m| cx.err(Some(file.span()), &k, m))?;
        let rendered = render_setup(&text, params)
            .map_err(|m| cx.err(Some(file.span()), &k, format!("{}: {m}", file.get_ref())))?;
        setup.push((file.get_ref().clone(), rendered));
    }
    if let Some(sql) = &table.sql {
        let k = format!("{key}.sql");
        let rendered =
            render_setup(sql.get_ref(), params).map_err(|m| cx.err(Some(sql.span()), &k, m))?;
        setup.push((k, rendered));
    }
    Ok(setup)
}

/// `reject_on` and `retry_on`: codes are SQLSTATEs (five letters and digits) or MariaDB error
/// numbers; a code is in one of them at most.
fn on_error(cx: &Ctx, raw: &RawStrategy, key: &str) -> Result<OnError, ScenarioError> {
    let code_ok = |c: &str| {
        (c.len() == 5
            && c.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
            || (!c.is_empty() && c.len() <= 5 && c.bytes().all(|b| b.is_ascii_digit()))
    };
    let bad_code = |c: &str| {
        format!(
            "`{c}` is not an error code: expected a SQLSTATE like 23505 or 23P01 (PostgreSQL) or an error number like 1062 (MariaDB)"
        )
    };
    let mut out = OnError::default();
    for (code, outcome) in &raw.reject_on {
        let k = format!("{key}.reject_on.{code}");
        if !code_ok(code) {
            return Err(cx.err(Some(outcome.span()), &k, bad_code(code)));
        }
        check_name(cx, outcome.get_ref(), &k, outcome.span())?;
        out.reject.push((code.clone(), outcome.get_ref().clone()));
    }
    for code in raw.retry_on.iter().flat_map(|l| l.get_ref()) {
        let span = raw.retry_on.as_ref().map(|l| l.span());
        let k = format!("{key}.retry_on");
        if !code_ok(code) {
            return Err(cx.err(span, &k, bad_code(code)));
        }
        if out.reject.iter().any(|(c, _)| c == code) {
            return Err(cx.err(
                span,
                &k,
                format!(
                    "`{code}` is also in reject_on: an error is an outcome or a retry, not both"
                ),
            ));
        }
        out.retry.push(code.clone());
    }
    Ok(out)
}

fn invariants(
    cx: &Ctx,
    raw: &RawScenario,
    params: &IndexMap<String, Param>,
) -> Result<Vec<Invariant>, ScenarioError> {
    let mut out: Vec<Invariant> = Vec::new();
    for (i, inv) in raw.invariant.iter().enumerate() {
        let r = inv.get_ref();
        let name = r.name.get_ref().clone();
        let key = format!("invariant[{}]", i + 1);
        check_name(cx, &name, &format!("{key}.name"), r.name.span())?;
        if out.iter().any(|o| o.name == name) {
            return Err(cx.err(
                Some(r.name.span()),
                &format!("{key}.name"),
                format!("a second invariant named `{name}`"),
            ));
        }
        let mut node = 0;
        let source = match (&r.sql, &r.observed_by, &r.expr) {
            (None, None, None) if !r.reads.is_empty() => {
                let Some(value) = &r.value else {
                    return Err(cx.err(
                        Some(inv.span()),
                        &key,
                        "`reads` needs `value`: an expression over the columns read, giving the damage",
                    ));
                };
                let mut reads = Vec::new();
                for (name, sql) in &r.reads {
                    let k = format!("{key}.reads.{name}");
                    let named = Spanned::new(sql.span(), name.clone());
                    let at = node_index(cx, Some(&named), sql.span(), &k)?;
                    if cx.nodes[at].1 != NodeKind::Database {
                        return Err(cx.err(Some(sql.span()), &k, "reads run SQL: name a database node"));
                    }
                    reads.push((
                        at,
                        render_setup(sql.get_ref(), params).map_err(|m| cx.err(Some(sql.span()), &k, m))?,
                    ));
                }
                InvariantSource::Reads {
                    reads,
                    value: Expr::parse(value.get_ref())
                        .map_err(|m| cx.err(Some(value.span()), &format!("{key}.value"), m))?,
                }
            }
            // Parameters become literals, as in setup: `:seats` is the run's value of seats.
            (Some(sql), None, None) => {
                node = node_index(cx, r.node.as_ref(), sql.span(), &key)?;
                if cx.nodes.get(node).is_some_and(|(_, k)| *k != NodeKind::Database) {
                    return Err(cx.err(Some(sql.span()), &format!("{key}.node"), "an SQL invariant runs on a database node"));
                }
                InvariantSource::Sql(
                    render_setup(sql.get_ref(), params)
                        .map_err(|m| cx.err(Some(sql.span()), &format!("{key}.sql"), m))?,
                )
            }
            (None, Some(a), None) => InvariantSource::Observed { auditor: a.get_ref().clone() },
            (None, None, Some(e)) => InvariantSource::Expr(
                Expr::parse(e.get_ref()).map_err(|m| cx.err(Some(e.span()), &format!("{key}.expr"), m))?,
            ),
            _ => return Err(cx.err(Some(inv.span()), &key, "expected exactly one of `sql` (checked after the run), `reads` with `value` (several nodes), `observed_by` (an auditor's flags) or `expr` (what replay sessions observed)")),
        };
        if !matches!(source, InvariantSource::Sql(_)) && r.node.is_some() {
            return Err(cx.err(
                r.node.as_ref().map(|n| n.span()),
                &format!("{key}.node"),
                "`node` places an `sql` invariant (`reads` name their nodes)",
            ));
        }
        if !matches!(source, InvariantSource::Reads { .. })
            && (r.value.is_some() || !r.reads.is_empty())
        {
            return Err(cx.err(
                Some(inv.span()),
                &key,
                "`reads` and `value` go together, without `sql`, `observed_by` or `expr`",
            ));
        }
        let side = match r.side.as_ref().map(|s| s.get_ref().as_str()) {
            None if matches!(source, InvariantSource::Observed { .. }) => Side::Reader,
            None | Some("writer") => Side::Writer,
            Some("reader") => Side::Reader,
            Some(other) => {
                return Err(cx.err(
                    r.side.as_ref().map(|s| s.span()),
                    &format!("{key}.side"),
                    format!("`{other}`: expected writer or reader"),
                ));
            }
        };
        out.push(Invariant {
            name,
            node,
            anomaly: r.anomaly.clone(),
            explain: r.explain.trim().to_string(),
            side,
            source,
            prevented_by: r.prevented_by.as_ref().map(|p| p.trim().to_string()),
        });
    }
    if out.is_empty() {
        return Err(cx.err(
            None,
            "invariant",
            "a scenario needs at least one [[invariant]] to count damage",
        ));
    }
    Ok(out)
}
