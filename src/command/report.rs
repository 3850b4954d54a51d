//! `contention report`: JSON documents in, one HTML page and/or a sweep's plot out.

use std::io::Write;

use anyhow::{Context, bail};

use super::Exit;
use crate::cli::ReportArgs;
use crate::report::document::Document;
use crate::report::html::{self, Source};
use crate::report::plot;

pub fn report(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let mut sources = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let doc = Document::read(path)?;
        // A run's recorded histories, checked by adya or elle-cli if one is on PATH.
        let checks = match &doc {
            Document::Run(r) => crate::checker::check_cells(&r.cells),
            _ => Vec::new(),
        };
        sources.push(Source {
            name: path.display().to_string(),
            doc,
            checks,
        });
    }
    if let Some(target) = &args.plot {
        let sweeps: Vec<(&str, &crate::report::sweep::SweepReport)> = sources
            .iter()
            .filter_map(|s| match &s.doc {
                Document::Sweep(sweep) => Some((s.name.as_str(), &**sweep)),
                _ => None,
            })
            .collect();
        let [(name, sweep)] = sweeps.as_slice() else {
            bail!(
                "--plot draws one sweep, and {} of the files are sweeps",
                sweeps.len()
            );
        };
        plot::render(sweep, target).with_context(|| name.to_string())?;
        writeln!(out, "wrote {}", target.display())?;
    }
    if let Some(target) = &args.html {
        let page = html::render(&sources)?;
        std::fs::write(target, page).with_context(|| format!("writing {}", target.display()))?;
        writeln!(out, "wrote {}", target.display())?;
    }
    Ok(Exit::Ok)
}
