//! `contention new`: writes a commented starter scenario that validates and runs as it is.
//!
//! The starter (`new/starter.toml`) is portable SQL, so it runs on every engine. This module
//! only writes a new file; it must never overwrite one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::Exit;
use crate::scenario;

const STARTER: &str = include_str!("new/starter.toml");

/// Writes the starter for `target` (a name, or a path ending in `.toml`).
pub fn new(target: &str, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let path = match target.strip_suffix(".toml") {
        Some(_) => PathBuf::from(target),
        None => PathBuf::from(format!("{target}.toml")),
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("new {target}: a scenario name uses letters, digits, `-` and `_` (e.g. `my-shop`)");
    }
    let text = STARTER
        .replace("{name}", &name)
        .replace("{file}", &path.display().to_string());
    write_new(&path, &text)?;
    // The starter must be what it claims: a scenario that validates as every engine loads it.
    for engine in crate::engine::EngineKind::ALL {
        scenario::load_on(&path.display().to_string(), &[], engine).with_context(|| {
            format!(
                "the starter written to {} does not validate",
                path.display()
            )
        })?;
    }
    writeln!(out, "wrote {}", path.display())?;
    writeln!(
        out,
        "next: contention run {} --isolation all",
        path.display()
    )?;
    Ok(Exit::Ok)
}

/// Creates the file; an existing one is left as it is and named in the error.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow::anyhow!(
                    "{} exists: not overwritten (choose another name)",
                    path.display()
                )
            }
            _ => anyhow::anyhow!("cannot write {}: {e}", path.display()),
        })?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
