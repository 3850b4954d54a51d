//! The template cache for private servers: a pristine data directory, made once by the engine's
//! own initialiser (PostgreSQL's initdb, `mariadb-install-db`) and kept under
//! `$XDG_CACHE_HOME/contention/` (else `~/.cache/contention/`), that new private servers copy
//! instead of running the initialiser (copying is several times faster).
//!
//! The engine gives a template its name (e.g. `pg15-initdb`, `mariadb10.11-install`: engines
//! never share a directory), its key (the server's `--version` line, the binaries and the
//! initialiser's arguments; a hash of the key completes the directory's name) and the files a
//! complete data directory has. A template is verified before use: its `KEY` file must hold the
//! whole key and each of those files must exist (with the given content, where one is given). It
//! is built in a temporary directory next to it and renamed into place, so a concurrent start
//! sees either no template or a complete one; the loser of a race discards its copy. On any
//! problem the caller falls back to the initialiser; the engine's switch variable (e.g.
//! `CONTENTION_PG_TEMPLATE=off`) disables the cache. As root the copy is handed to the server's
//! system user, with mode 0700 on the data directory.
//!
//! It must not hold anything but pristine, never started data directories, nor write outside
//! its cache directory.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::unistd::{User, chown};

/// The file in a template holding its full key.
const KEY_FILE: &str = "contention-template-key";
/// Leftovers of a build interrupted by SIGKILL are removed after this long.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// A file every complete data directory of an engine has: its path relative to the data
/// directory and, when given, its content (compared trimmed).
pub(crate) type Required = (&'static str, Option<String>);

#[derive(Debug)]
pub(crate) struct Template {
    root: PathBuf,
    dir: PathBuf,
    key: String,
    required: Vec<Required>,
}

impl Template {
    /// Where the template called `name` with this `key` lives (whether or not it exists yet);
    /// `None` when there is no cache directory or `switch` (an environment variable) is `off`
    /// or `0`.
    pub(crate) fn locate(
        switch: &str,
        name: &str,
        key: String,
        required: Vec<Required>,
    ) -> Option<Template> {
        if std::env::var(switch).is_ok_and(|v| v == "off" || v == "0") {
            return None;
        }
        let root = cache_root()?.join("contention");
        let dir = root.join(format!("{name}-{:016x}", fnv1a(key.as_bytes())));
        Some(Template {
            root,
            dir,
            key,
            required,
        })
    }

    /// Whether a complete template for exactly this key is in place.
    fn valid(&self) -> bool {
        fs::read_to_string(self.dir.join(KEY_FILE)).is_ok_and(|k| k == self.key)
            && self.required.iter().all(|(file, content)| {
                let path = self.dir.join(file);
                match content {
                    Some(c) => fs::read_to_string(&path).is_ok_and(|t| t.trim() == c),
                    None => path.is_file(),
                }
            })
    }

    /// Copies the template into the empty directory `data` (owned by `user` when given).
    /// Returns false, leaving `data` empty again, if there is no valid template or the copy
    /// failed: the caller then runs initialiser.
    pub(crate) fn copy_into(&self, data: &Path, user: Option<&User>) -> bool {
        if !self.valid() {
            return false;
        }
        let copied = copy_tree(&self.dir, data, user)
            .and_then(|()| fs::set_permissions(data, fs::Permissions::from_mode(0o700)));
        if copied.is_ok() {
            return true;
        }
        let _ = fs::remove_dir_all(data);
        let _ = fs::create_dir(data);
        if let Some(u) = user {
            let _ = chown(data, Some(u.uid), Some(u.gid));
        }
        false
    }

    /// Saves a freshly initialised (never started) data directory as the template, unless a
    /// valid one is already there. Best effort: errors only mean the next start runs the initialiser too.
    pub(crate) fn store(&self, data: &Path) {
        if self.valid() {
            return;
        }
        let _ = self.try_store(data);
    }

    fn try_store(&self, data: &Path) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)?;
        sweep_stale(&self.root);
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&self.root)?
            .keep();
        let built = copy_tree(data, &tmp, None)
            .and_then(|()| fs::write(tmp.join(KEY_FILE), &self.key))
            .and_then(|()| self.publish(&tmp));
        if built.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        built
    }

    /// Renames the finished copy into place; a valid template put there meanwhile by another
    /// start wins, an invalid one is moved aside first.
    fn publish(&self, tmp: &Path) -> io::Result<()> {
        if fs::rename(tmp, &self.dir).is_ok() {
            return Ok(());
        }
        if self.valid() {
            fs::remove_dir_all(tmp)?;
            return Ok(());
        }
        let trash = tempfile::Builder::new()
            .prefix(".tmp-old-")
            .tempdir_in(&self.root)?
            .keep();
        fs::rename(&self.dir, trash.join("t"))?;
        let _ = fs::remove_dir_all(&trash);
        fs::rename(tmp, &self.dir)
    }
}

/// Fills the empty data directory `data` (owned by `user` when given): a copy of the template
/// when there is a valid one, else by running `init` (the engine's initialiser), whose result is
/// then stored as the template. Returns whether it was copied.
pub(crate) fn fill(
    template: Option<&Template>,
    data: &Path,
    user: Option<&User>,
    init: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    if template.is_some_and(|t| t.copy_into(data, user)) {
        return Ok(true);
    }
    init()?;
    if let Some(t) = template {
        t.store(data);
    }
    Ok(false)
}

/// `$XDG_CACHE_HOME` (if absolute), else `$HOME/.cache`.
fn cache_root() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from)
        && x.is_absolute()
    {
        return Some(x);
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    home.is_absolute().then(|| home.join(".cache"))
}

/// Copies the directory tree `src` into the existing directory `dst`: directories and regular
/// files with their permission bits, owned by `user` when given. Anything else is an error.
fn copy_tree(src: &Path, dst: &Path, user: Option<&User>) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == KEY_FILE {
            continue;
        }
        let (from, to) = (entry.path(), dst.join(&name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir(&to)?;
            fs::set_permissions(&to, entry.metadata()?.permissions())?;
            copy_tree(&from, &to, user)?;
        } else if kind.is_file() {
            fs::copy(&from, &to)?;
        } else {
            return Err(io::Error::other(format!(
                "{}: not a file or directory",
                from.display()
            )));
        }
        if let Some(u) = user {
            chown(&to, Some(u.uid), Some(u.gid)).map_err(io::Error::from)?;
        }
    }
    Ok(())
}

/// Removes leftovers of builds that were killed before they could clean up.
fn sweep_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let stale = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(".tmp-"))
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_TMP));
        if stale {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// FNV-1a: a hash that stays the same across Rust versions (directory names must).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn the_key_hash_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
