//! Engine dialects in scenario files. Any table that holds SQL or expectations may have
//! `on.<engine>` with the keys that differ on that engine:
//!
//! ```toml
//! [[strategy.table-lock.step]]
//! sql = "LOCK TABLE concerts IN EXCLUSIVE MODE"
//! on.mariadb.sql = "SELECT id FROM concerts WHERE id = :concert FOR UPDATE"
//!
//! [strategy.naive]
//! expect.rr = ["no-anomalies", "aborts:serialization"]
//! on.mariadb.expect.rr = ["anomalies"]
//! ```
//!
//! Steps and invariants may override `sql`; `[setup]` its `files` and `sql`; strategies and
//! auditors `expect` (per level: the levels not named keep the common expectations); strategies
//! and the top level `settings`. Without an override, every engine runs the same text. [`resolve`] applies
//! one engine's overrides to the raw file before it is validated, and checks the others' keys,
//! so a typo in an engine name or a misplaced key is an error on every engine.
//!
//! It rewrites the raw file; it must not read files, parse SQL or talk to a database.

use std::str::FromStr;

use indexmap::IndexMap;
use toml::Spanned;

use super::ScenarioError;
use super::raw::{RawOn, RawScenario, RawSetup, RawStep};
use super::validate::Ctx;
use crate::engine::EngineKind;

/// Which keys of `on.<engine>` a table may use.
#[derive(Clone, Copy)]
struct Allowed {
    sql: bool,
    files: bool,
    expect: bool,
    settings: bool,
}

const STEP: Allowed = Allowed {
    sql: true,
    files: false,
    expect: false,
    settings: false,
};
const SETUP: Allowed = Allowed {
    files: true,
    ..STEP
};
const ROLE: Allowed = Allowed {
    sql: false,
    files: false,
    expect: true,
    settings: true,
};
const AUDITOR: Allowed = Allowed {
    settings: false,
    ..ROLE
};
const TOP: Allowed = Allowed {
    sql: false,
    files: false,
    expect: false,
    settings: true,
};

/// Checks every `on` table of the file and takes out the one for `engine`.
fn take(
    cx: &Ctx,
    on: &mut IndexMap<String, Spanned<RawOn>>,
    key: &str,
    allowed: Allowed,
    engine: EngineKind,
) -> Result<Option<RawOn>, ScenarioError> {
    let mut mine = None;
    for (name, table) in std::mem::take(on) {
        let k = if key.is_empty() {
            format!("on.{name}")
        } else {
            format!("{key}.on.{name}")
        };
        let kind = EngineKind::from_str(&name).map_err(|m| cx.err(Some(table.span()), &k, m))?;
        let span = table.span();
        let t = table.into_inner();
        for (set, ok, what) in [
            (t.sql.is_some(), allowed.sql, "sql"),
            (t.files.is_some(), allowed.files, "files"),
            (t.expect.is_some(), allowed.expect, "expect"),
            (t.settings.is_some(), allowed.settings, "settings"),
        ] {
            if set && !ok {
                return Err(cx.err(
                    Some(span.clone()),
                    &format!("{k}.{what}"),
                    format!("`{what}` cannot be overridden here"),
                ));
            }
        }
        if kind == engine {
            mine = Some(t);
        }
    }
    Ok(mine)
}

fn steps(
    cx: &Ctx,
    steps: &mut [Spanned<RawStep>],
    key: &str,
    engine: EngineKind,
) -> Result<(), ScenarioError> {
    for (i, s) in steps.iter_mut().enumerate() {
        let key = format!("{key}.step[{}]", i + 1);
        let s = s.get_mut();
        if let Some(o) = take(cx, &mut s.on, &key, STEP, engine)?
            && let Some(sql) = o.sql
        {
            s.sql = Some(sql);
        }
    }
    Ok(())
}

fn expect(
    target: &mut IndexMap<String, Spanned<Vec<String>>>,
    over: Option<IndexMap<String, Spanned<Vec<String>>>>,
) {
    for (level, list) in over.into_iter().flatten() {
        target.insert(level, list);
    }
}

/// A setup table's `on.<engine>` `files` and `sql`.
fn setup(cx: &Ctx, s: &mut RawSetup, key: &str, engine: EngineKind) -> Result<(), ScenarioError> {
    if let Some(o) = take(cx, &mut s.on, key, SETUP, engine)? {
        if let Some(files) = o.files {
            s.files = files;
        }
        if let Some(sql) = o.sql {
            s.sql = Some(sql);
        }
    }
    Ok(())
}

/// Applies the overrides for `engine` to the raw file (and checks everyone's).
pub(super) fn resolve(
    cx: &Ctx,
    raw: &mut RawScenario,
    engine: EngineKind,
) -> Result<(), ScenarioError> {
    if let Some(o) = take(cx, &mut raw.on, "", TOP, engine)?
        && let Some(settings) = o.settings
    {
        raw.settings = settings;
    }
    setup(cx, &mut raw.setup, "setup", engine)?;
    for (name, t) in &mut raw.template {
        steps(
            cx,
            &mut t.get_mut().step,
            &format!("template.{name}"),
            engine,
        )?;
    }
    for (name, s) in raw.strategy.iter_mut().flat_map(|s| s.get_mut()) {
        let key = format!("strategy.{name}");
        let s = s.get_mut();
        if let Some(own) = &mut s.setup {
            setup(cx, own.get_mut(), &format!("{key}.setup"), engine)?;
        }
        if let Some(o) = take(cx, &mut s.on, &key, ROLE, engine)? {
            expect(&mut s.expect, o.expect);
            if let Some(settings) = o.settings {
                s.settings = settings;
            }
        }
        steps(cx, &mut s.step, &key, engine)?;
    }
    for (name, a) in &mut raw.auditor {
        let key = format!("auditor.{name}");
        let a = a.get_mut();
        let o = take(cx, &mut a.on, &key, AUDITOR, engine)?;
        expect(&mut a.expect, o.and_then(|o| o.expect));
        steps(cx, &mut a.step, &key, engine)?;
    }
    for (name, s) in &mut raw.session {
        steps(
            cx,
            &mut s.get_mut().step,
            &format!("session.{name}"),
            engine,
        )?;
    }
    for (i, inv) in raw.invariant.iter_mut().enumerate() {
        let key = format!("invariant[{}]", i + 1);
        let inv = inv.get_mut();
        if let Some(o) = take(cx, &mut inv.on, &key, STEP, engine)?
            && let Some(sql) = o.sql
        {
            inv.sql = Some(sql);
        }
    }
    Ok(())
}
