//! Step templates: `[[template.NAME.step]]` written once, and `include = "NAME"` in a
//! strategy's, an auditor's or a session's steps, replaced by the template's steps in its
//! place before the steps are validated. This module only expands; it must not validate the
//! steps themselves (`validate` does, with the template's lines in its errors).

use indexmap::IndexMap;
use toml::Spanned;

use super::error::ScenarioError;
use super::raw::{RawScenario, RawStep};
use super::validate::Ctx;

/// Expands every `include` of the scenario's step lists.
pub(super) fn expand(cx: &Ctx, raw: &mut RawScenario) -> Result<(), ScenarioError> {
    let templates: IndexMap<String, Vec<Spanned<RawStep>>> = raw
        .template
        .iter()
        .map(|(name, t)| (name.clone(), t.get_ref().step.clone()))
        .collect();
    for (name, t) in &raw.template {
        for (i, s) in t.get_ref().step.iter().enumerate() {
            if let Some(inc) = &s.get_ref().include {
                return Err(cx.err(
                    Some(inc.span()),
                    &format!("template.{name}.step[{}].include", i + 1),
                    "a template cannot include another template",
                ));
            }
        }
    }
    let mut lists: Vec<(String, &mut Vec<Spanned<RawStep>>)> = Vec::new();
    for (name, s) in raw.strategy.iter_mut().flat_map(|s| s.get_mut()) {
        lists.push((format!("strategy.{name}"), &mut s.get_mut().step));
    }
    for (name, a) in &mut raw.auditor {
        lists.push((format!("auditor.{name}"), &mut a.get_mut().step));
    }
    for (name, s) in &mut raw.session {
        lists.push((format!("session.{name}"), &mut s.get_mut().step));
    }
    for (key, steps) in lists {
        if !steps.iter().any(|s| s.get_ref().include.is_some()) {
            continue;
        }
        let mut out = Vec::with_capacity(steps.len());
        for (i, s) in std::mem::take(steps).into_iter().enumerate() {
            let Some(inc) = s.get_ref().include.clone() else {
                out.push(s);
                continue;
            };
            let k = format!("{key}.step[{}].include", i + 1);
            if !only_include(s.get_ref()) {
                return Err(cx.err(
                    Some(s.span()),
                    &k,
                    "a step with `include` has no other key: the template's steps take its place",
                ));
            }
            let Some(body) = templates.get(inc.get_ref()) else {
                let known: Vec<&str> = templates.keys().map(String::as_str).collect();
                return Err(cx.err(
                    Some(inc.span()),
                    &k,
                    format!(
                        "no template named `{}` (templates: {})",
                        inc.get_ref(),
                        if known.is_empty() {
                            "none; declare [[template.NAME.step]]".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            out.extend(body.iter().cloned());
        }
        *steps = out;
    }
    Ok(())
}

fn only_include(s: &RawStep) -> bool {
    s.name.is_none()
        && s.when.is_none()
        && s.sql.is_none()
        && s.reject_if.is_none()
        && s.outcome.is_none()
        && s.retry_if.is_none()
        && s.flag_if.is_none()
        && s.flag.is_none()
        && s.think.is_none()
        && s.commit.is_none()
        && s.until.is_none()
        && s.poll.is_none()
        && s.lets.is_empty()
        && s.on.is_empty()
}
