//! `contention report`: JSON documents in, one HTML page and/or a sweep's plot out.

use std::io::Write;

use anyhow::{Context, bail};

use super::Exit;
use crate::cli::ReportArgs;
use crate::report::html::{self, Kind, Source};
use crate::report::plot;

pub fn report(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let mut sources = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        Kind::of(&doc).with_context(|| path.display().to_string())?;
        sources.push(Source {
            name: path.display().to_string(),
            doc,
        });
    }
    if let Some(target) = &args.plot {
        let sweeps: Vec<&Source> = sources
            .iter()
            .filter(|s| Kind::of(&s.doc).is_ok_and(|k| k == Kind::Sweep))
            .collect();
        let [sweep] = sweeps.as_slice() else {
            bail!(
                "--plot draws one sweep, and {} of the files are sweeps",
                sweeps.len()
            );
        };
        plot::render(&sweep.doc, target).with_context(|| sweep.name.clone())?;
        writeln!(out, "wrote {}", target.display())?;
    }
    if let Some(target) = &args.html {
        let page = html::render(&sources)?;
        std::fs::write(target, page).with_context(|| format!("writing {}", target.display()))?;
        writeln!(out, "wrote {}", target.display())?;
    }
    Ok(Exit::Ok)
}
