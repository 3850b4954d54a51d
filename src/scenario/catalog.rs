//! Where scenario files come from: the built-in catalogue (scenarios/ and sql/ compiled into the
//! binary, so `contention run ticketmaster` works from anywhere) or a path on disk.
//! This module finds and reads files; it must not interpret them.

use std::path::{Component, Path, PathBuf};

use include_dir::{Dir, include_dir};

use super::ScenarioError;

static SCENARIOS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/scenarios");
static SQL: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sql");

/// The text of a scenario file and a way to read the files it names.
#[derive(Debug, Clone)]
pub struct Source {
    /// Shown in messages: a real path, or `scenarios/NAME.toml` for a built-in.
    pub path: PathBuf,
    pub text: String,
    builtin: bool,
}

impl Source {
    /// Reads a file named relative to the scenario file.
    pub fn read_relative(&self, rel: &str) -> Result<String, String> {
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let full = normalize(&dir.join(rel));
        if self.builtin {
            let inner = full
                .strip_prefix("sql")
                .map_err(|_| format!("built-in files live under sql/, not `{rel}`"))?;
            SQL.get_file(inner)
                .and_then(|f| f.contents_utf8())
                .map(str::to_string)
                .ok_or_else(|| format!("no built-in file `{}`", full.display()))
        } else {
            std::fs::read_to_string(&full)
                .map_err(|e| format!("cannot read `{}`: {e}", full.display()))
        }
    }
}

/// Names of the built-in scenarios, in catalogue order.
pub fn builtin_names() -> Vec<String> {
    let mut names: Vec<String> = SCENARIOS
        .files()
        .filter_map(|f| {
            let p = f.path();
            (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    let order = [
        "ticketmaster",
        "bank-transfer",
        "write-skew",
        "aba",
        "deadlock",
        "tpcb",
    ];
    names.sort_by_key(|n| {
        (
            order.iter().position(|o| o == n).unwrap_or(order.len()),
            n.clone(),
        )
    });
    names
}

/// Names of the classic anomaly catalogue (`scenarios/anomalies/`), in the order of the table:
/// by their Adya id, as the files are named `NN-name.toml`.
pub fn anomaly_names() -> Vec<String> {
    let mut files: Vec<String> = SCENARIOS
        .get_dir("anomalies")
        .into_iter()
        .flat_map(|d| d.files())
        .filter_map(|f| {
            let p = f.path();
            (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| f.split_once('-').map_or(f.clone(), |(_, n)| n.to_string()))
        .collect()
}

fn anomaly_file(name: &str) -> Option<&'static include_dir::File<'static>> {
    SCENARIOS.get_dir("anomalies")?.files().find(|f| {
        f.path()
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.split_once('-'))
            .is_some_and(|(_, n)| n == name)
    })
}

/// Opens a built-in scenario by name, or a file by path.
pub fn open(name_or_path: &str) -> Result<Source, ScenarioError> {
    let looks_like_path = name_or_path.ends_with(".toml") || name_or_path.contains('/');
    if !looks_like_path {
        if let Some(f) = SCENARIOS
            .get_file(format!("{name_or_path}.toml"))
            .or_else(|| anomaly_file(name_or_path))
        {
            return Ok(Source {
                path: PathBuf::from("scenarios").join(f.path()),
                text: f.contents_utf8().unwrap_or_default().to_string(),
                builtin: true,
            });
        }
        if !Path::new(name_or_path).exists() {
            return Err(ScenarioError::new(
                Path::new(name_or_path),
                format!(
                    "no built-in scenario or file of that name; built-in: {}",
                    builtin_names().join(", ")
                ),
            ));
        }
    }
    let path = PathBuf::from(name_or_path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ScenarioError::new(&path, format!("cannot read the scenario file: {e}")))?;
    Ok(Source {
        path,
        text,
        builtin: false,
    })
}

/// Removes `.` and `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_parent_components() {
        assert_eq!(
            normalize(Path::new("scenarios/../sql/a/b.sql")),
            PathBuf::from("sql/a/b.sql")
        );
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }

    #[test]
    fn unknown_name_lists_builtins() {
        let e = open("no-such-scenario").unwrap_err();
        assert!(e.to_string().contains("ticketmaster"), "{e}");
    }
}
