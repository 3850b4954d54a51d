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
    /// A scenario file's text from anywhere (a test, an editor): files it names are read
    /// relative to `path`, which is also what its errors name.
    pub fn from_text(path: &Path, text: &str) -> Source {
        Source {
            path: path.to_path_buf(),
            text: text.to_string(),
            builtin: false,
        }
    }

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
            read_bounded(&full)
        }
    }
}

/// Reads a regular file of at most [`crate::limits::MAX_SETUP_FILE`] bytes: a device, a FIFO or
/// a directory is refused before it is opened for reading, and a file that grows past the limit
/// while being read is refused too (the read stops there).
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let limit = crate::limits::MAX_SETUP_FILE;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "`{shown}` is not a regular file (scenario and SQL files must be)"
        ));
    }
    let too_big = || {
        format!(
            "`{shown}` is larger than {} MiB, the limit for scenario and SQL files",
            limit >> 20
        )
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| format!("`{shown}` is not UTF-8 text: {e}"))
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
        "meeting-room",
        "wallet-overdraft",
        "duplicate-callback",
        "job-queue",
        "hot-item",
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
    let text = read_bounded(&path)
        .map_err(|e| ScenarioError::new(&path, format!("the scenario file: {e}")))?;
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
    fn setup_files_must_be_regular_and_bounded() {
        let e = read_bounded(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_bounded(dir.path()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.path().join("big.sql");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(crate::limits::MAX_SETUP_FILE + 1).unwrap();
        let e = read_bounded(&big).unwrap_err();
        assert!(e.contains("larger than 16 MiB"), "{e}");
        let ok = dir.path().join("ok.sql");
        std::fs::write(&ok, "SELECT 1;").unwrap();
        assert_eq!(read_bounded(&ok).unwrap(), "SELECT 1;");
    }

    #[test]
    fn unknown_name_lists_builtins() {
        let e = open("no-such-scenario").unwrap_err();
        assert!(e.to_string().contains("ticketmaster"), "{e}");
    }
}
