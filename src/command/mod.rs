//! The subcommands: each takes parsed arguments and writers for its output, and returns an
//! [`Exit`]. Results go to `out` (stdout); progress and errors to `err` (stderr). This is the
//! only layer that sees every stage; it must not parse arguments or format tables itself.

mod anomalies;
mod bench;
mod new;
mod progress;
mod replay;
mod report;
mod run;
mod show;
mod spec;
mod step;
mod sweep;
mod workspace;

use std::io::Write;

use crate::cli::{Cli, Command};
use crate::scenario::{self, catalog};

pub use run::run;
pub use workspace::Interrupted;

/// The process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Ran, and every expectation held.
    Ok = 0,
    /// Ran, and an expectation failed.
    ExpectationFailed = 1,
    /// Could not run: bad input, no database, a broken scenario.
    CouldNotRun = 2,
    /// Interrupted by SIGINT (Ctrl-C): 128 + 2.
    Interrupted = 130,
    /// Stopped by SIGTERM: 128 + 15.
    Terminated = 143,
}

impl Exit {
    /// The exit of a run that a signal stopped: 130 for SIGINT, 143 for SIGTERM.
    pub fn signalled() -> Exit {
        if workspace::terminated() {
            Exit::Terminated
        } else {
            Exit::Interrupted
        }
    }
}

pub async fn execute(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let result = match cli.command {
        Command::Run(args) => run(args, out, err).await,
        Command::Replay(args) => replay::replay(args, out, err).await,
        Command::Anomalies(args) => anomalies::anomalies(args, out, err).await,
        Command::Sweep(args) => sweep::sweep(args, out, err).await,
        Command::Compare(args) => compare(&args.before, &args.after, out),
        Command::Bench(args) => bench::bench(args, out, err).await,
        Command::List => list(out),
        Command::Show(args) => show::show(&args, out),
        Command::New(args) => new::new(&args.target, out),
        Command::Validate(args) => validate(&args.scenarios, out, err),
        Command::Report(args) => report::report(&args, out),
    };
    match result {
        Ok(exit) => exit,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Exit::Ok
        }
        Err(e) if e.downcast_ref::<workspace::Interrupted>().is_some() => {
            let exit = Exit::signalled();
            let signal = if exit == Exit::Terminated {
                "SIGTERM"
            } else {
                "SIGINT"
            };
            let _ = writeln!(err, "contention: {e:#} ({signal}); exit {}", exit as u8);
            exit
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            Exit::CouldNotRun
        }
    }
}

fn compare(before: &str, after: &str, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let (a, b) = (
        crate::report::compare::read(before)?,
        crate::report::compare::read(after)?,
    );
    crate::report::compare::render((before, &a), (after, &b), out)?;
    Ok(Exit::Ok)
}

fn list(out: &mut dyn Write) -> anyhow::Result<Exit> {
    let mut b = tabled::builder::Builder::default();
    b.push_record(["scenario", "strategies", "summary"]);
    for name in catalog::builtin_names() {
        let s = scenario::load(&name, &[])?;
        b.push_record([
            name,
            s.strategies.keys().cloned().collect::<Vec<_>>().join(", "),
            s.summary,
        ]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::blank());
    writeln!(out, "{t}")?;
    writeln!(
        out,
        "\nRun one: contention run NAME   Replay one step by step: contention replay NAME   Read one: contention show NAME"
    )?;
    let anomalies = catalog::anomaly_names();
    if !anomalies.is_empty() {
        let mut b = tabled::builder::Builder::default();
        b.push_record(["anomaly", "id", "summary"]);
        for name in anomalies {
            let s = scenario::load(&name, &[])?;
            b.push_record([name, s.anomaly.map(|a| a.id).unwrap_or_default(), s.summary]);
        }
        let mut t = b.build();
        t.with(tabled::settings::Style::blank());
        writeln!(
            out,
            "\nThe classic anomaly catalogue (contention anomalies; contention replay NAME --isolation all):\n{t}"
        )?;
    }
    Ok(Exit::Ok)
}

fn validate(names: &[String], out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Exit> {
    let mut exit = Exit::Ok;
    for name in names {
        // Every engine's dialect: an override is checked as that engine would run it.
        // A scenario whose nodes pin an engine is checked on that one.
        let loaded = scenario::engines_of(name).and_then(|engines| {
            engines
                .into_iter()
                .map(|engine| scenario::load_on(name, &[], engine))
                .collect::<Result<Vec<_>, _>>()
                .map(|mut all| all.remove(0))
        });
        match loaded {
            Ok(s) => writeln!(
                out,
                "ok: {} ({}: {} strategies, {} invariants)",
                name,
                s.name,
                s.strategies.len(),
                s.invariants.len()
            )?,
            Err(e) => {
                writeln!(err, "error: {e}")?;
                exit = Exit::CouldNotRun;
            }
        }
    }
    Ok(exit)
}
