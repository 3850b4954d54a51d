//! `contention show`: a scenario explained for people (story, parameters, strategies with their
//! SQL and expectations, invariants, auditors), or the resolved scenario as JSON.

use std::io::Write;

use super::Exit;
use crate::cli::ShowArgs;
use crate::scenario::{self, DrawKind, InvariantSource, Step, Think, expr::to_text};

pub fn show(args: &ShowArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let s = scenario::load_on(&args.scenario, &args.params, args.engine)?;
    if args.format == "json" {
        crate::report::json(out, &s)?;
        return Ok(Exit::Ok);
    }
    writeln!(out, "{} — {}\n", s.name, s.summary)?;
    if let Some(a) = &s.anomaly {
        writeln!(out, "{}: {}\n({})\n", a.id, a.definition, a.reference)?;
    }
    if !s.story.is_empty() {
        writeln!(out, "{}\n", s.story)?;
    }
    if !s.params.is_empty() {
        writeln!(out, "Parameters (override with --param NAME=VALUE):")?;
    }
    for (name, p) in &s.params {
        let v = to_text(&p.value).unwrap_or_default();
        writeln!(
            out,
            "  {name} = {v}{}",
            if p.help.is_empty() {
                String::new()
            } else {
                format!("    {}", p.help)
            }
        )?;
    }
    if !s.nodes.is_empty() {
        writeln!(
            out,
            "\nServers (each a private one unless --node NAME=URL names it; the first is the run database):"
        )?;
        for n in &s.nodes {
            let what = match n.kind {
                scenario::NodeKind::Database => s.engine.title().to_string(),
                scenario::NodeKind::Redis => "Redis, a lock service".to_string(),
                scenario::NodeKind::Advisory => {
                    "PostgreSQL's advisory locks, a lock service".to_string()
                }
            };
            let settings: Vec<String> =
                n.server.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let settings = if settings.is_empty() {
                String::new()
            } else {
                format!(" (server: {})", settings.join(", "))
            };
            writeln!(out, "  {}: {what}{settings}", n.name)?;
        }
    }
    if !s.draws.is_empty() {
        writeln!(out, "\nRandom draws per operation (seeded by --seed):")?;
        for d in &s.draws {
            let kind = match d.kind {
                DrawKind::Uniform { low, high } => format!("uniform {low}..={high}"),
                DrawKind::Zipf { n, s } => format!("zipf over 1..={n}, s = {s}"),
                DrawKind::Chance { p } => format!("true with probability {p}"),
            };
            let distinct = d
                .distinct_from
                .as_ref()
                .map(|o| format!(", distinct from {o}"))
                .unwrap_or_default();
            writeln!(out, "  {} : {kind}{distinct}", d.name)?;
        }
    }
    if !s.settings.is_empty() {
        writeln!(out, "\nSession settings:")?;
        for (k, v) in &s.settings {
            writeln!(out, "  SET {k} = {v}")?;
        }
    }
    let r = &s.run;
    if !s.is_replay_only() {
        writeln!(
            out,
            "\nDefaults: {} clients, {}, think {}, max {} tries, isolation {}",
            r.clients,
            r.operations.map_or_else(
                || humantime::format_duration(r.duration).to_string(),
                |n| format!("{n} operations")
            ),
            humantime::format_duration(r.think),
            r.max_tries,
            r.isolation
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )?;
        writeln!(out, "\nStrategies:")?;
    }
    for st in s.strategies.values() {
        writeln!(out, "\n  {} — {}", st.name, st.summary)?;
        if let Some(level) = st.isolation {
            writeln!(out, "    isolation pinned to {level}")?;
        }
        writeln!(
            out,
            "    retries on: {}",
            st.retry
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        for (code, outcome) in &st.on_error.reject {
            writeln!(out, "    error {code} is the outcome {outcome}")?;
        }
        if !st.on_error.retry.is_empty() {
            writeln!(
                out,
                "    errors retried as conflicts: {}",
                st.on_error.retry.join(", ")
            )?;
        }
        for (label, sql) in &st.setup {
            writeln!(out, "    setup ({label}): {}", sql.trim())?;
        }
        steps(out, &st.steps)?;
        for (level, exps) in &st.expect {
            let list: Vec<String> = exps.iter().map(|e| e.to_string()).collect();
            writeln!(out, "    expect at {level}: {}", list.join(", "))?;
        }
    }
    for a in &s.auditors {
        writeln!(
            out,
            "\n  auditor {} ({} client{}) — {}",
            a.name,
            a.clients,
            if a.clients == 1 { "" } else { "s" },
            a.summary
        )?;
        steps(out, &a.steps)?;
        for (level, exps) in &a.expect {
            let list: Vec<String> = exps.iter().map(|e| e.to_string()).collect();
            writeln!(out, "    expect at {level}: {}", list.join(", "))?;
        }
    }
    if !s.schedules.is_empty() {
        writeln!(out, "\nReplay sessions (contention replay {}):", s.name)?;
        for sess in &s.sessions {
            let bind: Vec<String> = sess
                .bind
                .iter()
                .map(|(k, v)| format!("{k} = {}", to_text(v).unwrap_or_default()))
                .collect();
            let bind = if bind.is_empty() {
                String::new()
            } else {
                format!(" [{}]", bind.join(", "))
            };
            writeln!(out, "\n  session {}{bind} — {}", sess.name, sess.summary)?;
            match &sess.steps {
                Some(own) => steps(out, own)?,
                None => writeln!(out, "    runs the strategy replayed")?,
            }
        }
        writeln!(out, "\nSchedules:")?;
        for sch in s.schedules.values() {
            let tokens: Vec<&str> = sch.tokens.iter().map(|t| t.text.as_str()).collect();
            let default = sch
                .strategy
                .as_ref()
                .map(|st| format!(" (strategy {st})"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {}{default}: {}\n    {}",
                sch.name,
                tokens.join(" "),
                sch.summary
            )?;
        }
    }
    writeln!(
        out,
        "\nInvariants (0 = holds; otherwise the size of the damage):"
    )?;
    for inv in &s.invariants {
        let how = match &inv.source {
            InvariantSource::Sql(sql) => match s.nodes.get(inv.node) {
                Some(node) if s.nodes.len() > 1 => {
                    format!("SQL on node {}: {}", node.name, one_line(sql))
                }
                _ => format!("SQL: {}", one_line(sql)),
            },
            InvariantSource::Reads { reads, value } => {
                let reads: Vec<String> = reads
                    .iter()
                    .map(|(n, sql)| format!("{} = {}", s.nodes[*n].name, one_line(sql)))
                    .collect();
                format!("reads {}; damage = {}", reads.join("; "), value.source)
            }
            InvariantSource::Observed { auditor } => format!("flags raised by auditor {auditor}"),
            InvariantSource::Expr(e) => format!("observed in replays: {}", e.source),
        };
        writeln!(
            out,
            "  {} — {} ({:?} side)\n    {}\n    {how}",
            inv.name, inv.anomaly, inv.side, inv.explain
        )?;
    }
    if let Some(notes) = &s.notes {
        writeln!(out, "\nWhat PostgreSQL does:\n{notes}")?;
    }
    Ok(Exit::Ok)
}

fn steps(out: &mut dyn Write, steps: &[Step]) -> std::io::Result<()> {
    for (i, st) in steps.iter().enumerate() {
        let mut parts = Vec::new();
        if let Some(w) = &st.when {
            parts.push(format!("when {}", w.source));
        }
        if let Some(sql) = &st.sql {
            parts.push(one_line(&sql.source));
        }
        if let Some(u) = &st.until {
            parts.push(format!(
                "again every {} until {}",
                humantime::format_duration(u.poll),
                u.expr.source
            ));
        }
        if let Some(r) = &st.reject_if {
            parts.push(format!("reject {} if {}", st.outcome, r.source));
        }
        if let Some(r) = &st.retry_if {
            parts.push(format!("conflict (retry) if {}", r.source));
        }
        if let (Some(f), Some(name)) = (&st.flag_if, &st.flag) {
            parts.push(format!("flag {name} if {}", f.source));
        }

        match st.think {
            Think::None => {}
            Think::Run => parts.push("think".into()),
            Think::Fixed(d) => parts.push(format!("think {}", humantime::format_duration(d))),
        }
        if st.commit {
            parts.push("COMMIT".into());
        }
        writeln!(out, "    {}. {}", i + 1, parts.join("; "))?;
    }
    Ok(())
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
