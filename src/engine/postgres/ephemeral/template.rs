//! The initdb template cache: a pristine data directory, made once by initdb and kept under
//! `$XDG_CACHE_HOME/contention/` (else `~/.cache/contention/`), that new private clusters copy
//! instead of running initdb (copying is several times faster).
//!
//! A template is keyed by the `postgres --version` line, the binaries' directory, the major
//! version and initdb's arguments (a hash of them names its directory), and verified before use:
//! its `KEY` file must hold the whole key, its `PG_VERSION` the major version, and `global/pg_control`
//! must exist. It is built in a temporary directory next to it and renamed into place, so a
//! concurrent start sees either no template or a complete one; the loser of a race discards its
//! copy. On any problem the caller falls back to initdb; `CONTENTION_PG_TEMPLATE=off` disables
//! the cache. As root the copy is handed to the `postgres` user, with mode 0700 on the data
//! directory.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::unistd::{User, chown};

use super::INITDB_ARGS;

/// The file in a template holding its full key.
const KEY_FILE: &str = "contention-template-key";
/// Leftovers of a build interrupted by SIGKILL are removed after this long.
const STALE_TMP: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct Template {
    root: PathBuf,
    dir: PathBuf,
    key: String,
    major: u32,
}

impl Template {
    /// Where the template for these binaries lives (whether or not it exists yet); `None` when
    /// there is no cache directory or the cache is switched off.
    pub fn locate(bindir: &Path, major: u32, version: &str) -> Option<Template> {
        if std::env::var("CONTENTION_PG_TEMPLATE").is_ok_and(|v| v == "off" || v == "0") {
            return None;
        }
        let root = cache_root()?.join("contention");
        let key = format!(
            "{version}\nbindir {}\nmajor {major}\ninitdb {}\n",
            bindir.display(),
            INITDB_ARGS.join(" ")
        );
        let dir = root.join(format!("pg{major}-initdb-{:016x}", fnv1a(key.as_bytes())));
        Some(Template {
            root,
            dir,
            key,
            major,
        })
    }

    /// Whether a complete template for exactly this key is in place.
    fn valid(&self) -> bool {
        fs::read_to_string(self.dir.join(KEY_FILE)).is_ok_and(|k| k == self.key)
            && fs::read_to_string(self.dir.join("PG_VERSION"))
                .is_ok_and(|v| v.trim() == self.major.to_string())
            && self.dir.join("global").join("pg_control").is_file()
    }

    /// Copies the template into the empty directory `data` (owned by `user` when given).
    /// Returns false, leaving `data` empty again, if there is no valid template or the copy
    /// failed: the caller then runs initdb.
    pub fn copy_into(&self, data: &Path, user: Option<&User>) -> bool {
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
    /// valid one is already there. Best effort: errors only mean the next start runs initdb too.
    pub fn store(&self, data: &Path) {
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
