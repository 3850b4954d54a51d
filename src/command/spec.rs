//! `contention replay FILE.spec`: an isolation-tester spec, each permutation replayed on the
//! run database (PostgreSQL only), printed like any replay; with `--expected FILE.out`, the
//! server's behaviour compared with the recorded output, permutation by permutation (exit 1
//! on a difference). Reading the spec is `crate::spec`; scheduling is `crate::replay`; this
//! module must not schedule steps or draw timelines itself.

use std::io::Write;

use anyhow::{Context, anyhow, bail};

use super::Exit;
use super::workspace::Workspace;
use crate::cli::{ReplayArgs, TimelineFormat};
use crate::engine::EngineKind;
use crate::isolation::Isolation;
use crate::replay::{self, Options};
use crate::scenario::Schedule;
use crate::spec::{self, out};

pub async fn replay_spec(
    args: ReplayArgs,
    stdout: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Exit> {
    let path = std::path::PathBuf::from(&args.scenario);
    let engines = args.common.db.engines()?;
    if engines.iter().any(|e| *e != EngineKind::Postgres) {
        bail!(
            "{}: isolation-tester specs are PostgreSQL's format (their steps rely on PostgreSQL's SQL and lock-wait reporting); run them with --engine postgres",
            path.display()
        );
    }
    if args.strategy.is_some() {
        bail!("--strategy: a spec has no strategies; its sessions bring their own steps");
    }
    if args.isolation.on(EngineKind::Postgres) != [Isolation::Rc] {
        bail!(
            "--isolation: a spec's sessions choose their own level (BEGIN ISOLATION LEVEL ... in a step or a session's setup); steps outside a transaction run at the server's default"
        );
    }
    if !args.params.is_empty() {
        bail!("--param: a spec has no parameters");
    }
    let (spec, scenario) = spec::load(&path)?;
    let schedules = pick(&scenario.schedules, args.schedule.as_deref())?;
    let expected = match &args.expected {
        Some(p) => Some((
            p.clone(),
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )),
        None => None,
    };
    let quiet = args.common.quiet;
    let mut say = |msg: String| {
        if !quiet {
            let _ = writeln!(err, "contention: {msg}");
        }
    };
    let opts = Options {
        seed: args.seed,
        step_timeout: args.common.step_timeout,
        max_tries: 1,
        history: false,
        pause: super::step::pause(args.step, &scenario, args.common.color.enabled())?,
    };
    let ws = Workspace::open(
        &args.common.db,
        EngineKind::Postgres,
        &scenario.name,
        scenario.sessions.len() as u32 + 2,
        &mut say,
    )
    .await?;
    let mut replays = Vec::new();
    let mut failure = None;
    let mut interrupted = false;
    for schedule in &schedules {
        say(format!(
            "permutation {}: {}",
            schedule.name,
            schedule
                .tokens
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        let targets = ws.targets();
        tokio::select! {
            r = replay::replay(&targets, &scenario, None, Isolation::Rc, schedule, &opts) => match r {
                Ok(r) => replays.push(r),
                Err(e) => { failure = Some(e.context(format!("permutation {}", schedule.name))); break; }
            },
            _ = ws.abort.cancelled() => { interrupted = true; break; }
        }
    }
    let info = ws.info.clone();
    ws.close_after(failure, &mut say).await?;
    super::replay::print(
        &replays,
        &scenario,
        &info,
        args.common.format,
        args.common.color.enabled(),
        stdout,
    )?;
    if interrupted {
        return Ok(Exit::signalled());
    }
    if let Some(p) = &args.record {
        std::fs::write(p, out::render(spec.sessions.len(), &replays))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let Some((file, text)) = expected else {
        return Ok(Exit::Ok);
    };
    let sqls: Vec<(String, String)> = spec
        .sessions
        .iter()
        .flat_map(|s| s.steps.iter().map(|st| (st.name.clone(), st.sql.clone())))
        .collect();
    let got = out::render(spec.sessions.len(), &replays);
    let mut agreements = out::compare(&text, &got, &sqls);
    if args.schedule.is_some() {
        // Only some permutations ran: compare those with the recorded ones of the same steps.
        let ran: Vec<String> = replays.iter().map(|r| r.tokens.join(" ")).collect();
        agreements.retain(|a| ran.contains(&a.steps));
    }
    // The report goes where it does not break a JSON document.
    let to: &mut dyn Write = if args.common.format == TimelineFormat::Json {
        err
    } else {
        stdout
    };
    writeln!(to, "\nCompared with {}:", file.display())?;
    let mut differ = 0;
    for a in &agreements {
        if a.differences.is_empty() {
            writeln!(to, "  permutation {} ({}): as recorded", a.index, a.steps)?;
        } else {
            differ += 1;
            writeln!(to, "  permutation {} ({}): DIFFERS", a.index, a.steps)?;
            for d in &a.differences {
                writeln!(to, "    - {d}")?;
            }
        }
    }
    writeln!(
        to,
        "{} of {} permutations behave as recorded",
        agreements.len() - differ,
        agreements.len()
    )?;
    Ok(if differ > 0 {
        Exit::ExpectationFailed
    } else {
        Exit::Ok
    })
}

/// All permutations, or the one `--schedule` names: its number, or its steps.
fn pick(
    all: &indexmap::IndexMap<String, Schedule>,
    arg: Option<&str>,
) -> anyhow::Result<Vec<Schedule>> {
    let Some(arg) = arg else {
        return Ok(all.values().cloned().collect());
    };
    if let Some(s) = all.get(arg.trim()) {
        return Ok(vec![s.clone()]);
    }
    let words: Vec<&str> = arg.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    all.values()
        .find(|s| s.tokens.iter().map(|t| t.text.as_str()).eq(words.iter().copied()))
        .map(|s| vec![s.clone()])
        .ok_or_else(|| {
            anyhow!(
                "--schedule {arg}: expected a permutation number (1 to {}) or the steps of one of the spec's permutations",
                all.len()
            )
        })
}
