//! A private, throw-away MariaDB server started from the local binaries.
//!
//! A fresh directory (`contention-mariadb-XXXXXX/{data,sock,tmp}`, in `/dev/shm` when it is a
//! roomy tmpfs, else the temp dir; `CONTENTION_MARIADB_DIR` chooses) gets its data directory by
//! copying the cached template (made by the first start with `mariadb-install-db`, kept under
//! `~/.cache/contention/mariadb<major.minor>-install-<hash>`, keyed by `mariadbd --version`;
//! `CONTENTION_MARIADB_TEMPLATE=off` disables it), or by running `mariadb-install-db` when there
//! is no usable template (which then stores one). Then `mariadbd` runs with no TCP listener at
//! all (`--skip-networking`), a Unix socket in its own directory, no durability
//! (`innodb_flush_log_at_trx_commit=0`, no doublewrite buffer, no binary log) and a 128 MiB
//! buffer pool; the caller's settings (`max_connections`, `innodb_lock_wait_timeout`, ...) come
//! last and win. The grant tables are real: `root@localhost` has an empty password
//! (`--auth-root-authentication-method=normal`), so the lab connects as `root` over the socket
//! whichever OS user it runs as. As root, both tools run as the `mysql` system user. The server
//! gets its own process group, so a terminal's Ctrl-C reaches only the lab, which then stops it.
//! Stopping (or dropping) sends SIGTERM (a normal shutdown), waits, kills what is left and
//! removes the directory. A directory left by a lab killed outright (SIGKILL) is swept by the
//! next start, with the PostgreSQL module's helpers (owner file with pid and pid namespace).
//!
//! It must not read any option file (`--no-defaults` is always the first argument, so
//! `/etc/mysql/my.cnf` and `~/.my.cnf` are ignored), touch the machine's own MariaDB (port
//! 3306, the default socket, `/var/lib/mysql`) or any directory it did not create, nor listen on
//! a network port; callers cannot override the options that ensure this.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::Signal;
use nix::unistd::User;
use std::os::unix::process::CommandExt;

use crate::engine::local::template::{self, Template};
use crate::engine::local::{
    create_top, kill_and_wait, prepare, run_as, run_tool, stop_server, sweep_orphans, wait_ready,
};

/// Prefix of every directory the lab creates for a private MariaDB.
const DIR_PREFIX: &str = "contention-mariadb-";
/// The environment variable choosing where private servers are made.
const DIR_VAR: &str = "CONTENTION_MARIADB_DIR";
/// The server's pid file, relative to its directory (for the orphan sweep).
const PID_FILE: &str = "mariadbd.pid";
/// The socket's file name in the `sock` subdirectory.
const SOCKET: &str = "mariadbd.sock";
/// Variables that could point MariaDB's tools at another server or option file.
const MARIADB_ENV: &[&str] = &[
    "MYSQL_HOME",
    "MYSQL_HOST",
    "MYSQL_TCP_PORT",
    "MYSQL_UNIX_PORT",
    "MYSQL_PWD",
    "MYSQL_TEST_LOGIN_FILE",
    "MARIADB_HOME",
];
/// How `mariadb-install-db` makes every private data directory (part of the template's key).
/// `normal`: `root@localhost` without a password instead of unix_socket authentication, which
/// would admit only the OS user root. `--cross-bootstrap` leaves the host name out of the grant
/// tables (and skips resolving it), so a template is the same on every machine.
const INSTALL_ARGS: &[&str] = &[
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
    "--cross-bootstrap",
];
/// Server options that keep it private; they come before the caller's settings, which may not
/// name any of [`RESERVED`].
const FIXED: &[&str] = &["--skip-networking", "--skip-log-bin", "--skip-name-resolve"];
/// Settings every private server gets; the caller's settings come after and win.
const SETTINGS: &[(&str, &str)] = &[
    ("innodb_flush_log_at_trx_commit", "0"),
    ("innodb_doublewrite", "0"),
    ("innodb_buffer_pool_size", "128M"),
    ("max_connections", "300"),
    ("character_set_server", "utf8mb4"),
    ("collation_server", "utf8mb4_general_ci"),
];
/// Options a caller may not set: they decide where the server listens, which files it uses and
/// which option files it reads.
const RESERVED: &[&str] = &[
    "skip_networking",
    "networking",
    "port",
    "bind_address",
    "socket",
    "datadir",
    "basedir",
    "pid_file",
    "tmpdir",
    "user",
    "log_error",
    "no_defaults",
    "defaults_file",
    "defaults_extra_file",
    "defaults_group_suffix",
    "log_bin",
    "skip_log_bin",
];
/// Where the kernel stops: `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running private MariaDB. Stopped and removed by [`Ephemeral::stop`] or on drop.
#[derive(Debug)]
pub struct Ephemeral {
    top: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    mariadbd: PathBuf,
    version: String,
    server: Option<Child>,
    from_template: bool,
    /// The options it was started with (a restart uses them again).
    settings: Vec<(String, String)>,
}

impl Ephemeral {
    /// Creates, starts and waits for a private MariaDB; `settings` are extra server options
    /// (`("max_connections", "1020")` becomes `--max_connections=1020`; an empty value gives a
    /// bare `--name`). Blocking.
    pub fn start(settings: &[(String, String)]) -> anyhow::Result<Ephemeral> {
        check_settings(settings)?;
        sweep_orphans(DIR_PREFIX, DIR_VAR, PID_FILE, Signal::SIGKILL);
        let mariadbd = find_program("mariadbd")?;
        let install_db = find_program("mariadb-install-db")?;
        let (version, line) = server_version(&mariadbd)?;
        let user = run_as("mysql", "MariaDB")?;
        let top = create_top(
            DIR_PREFIX,
            DIR_VAR,
            &["data", "sock", "tmp"],
            user.as_ref(),
            "MariaDB",
        )?;
        let mut eph = Ephemeral {
            data: top.join("data"),
            socket: top.join("sock").join(SOCKET),
            top,
            mariadbd,
            version,
            server: None,
            from_template: false,
            settings: settings.to_vec(),
        };
        if eph.socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the private MariaDB's socket path {} is longer than {MAX_SOCKET_PATH} bytes: \
                 choose a shorter {DIR_VAR}",
                eph.socket.display()
            );
        }
        let series = eph.version.split('.').take(2).collect::<Vec<_>>().join(".");
        let template = Template::locate(
            "CONTENTION_MARIADB_TEMPLATE",
            &format!("mariadb{series}-install"),
            format!(
                "{line}\nmariadbd {}\ninstall {} {}\n",
                eph.mariadbd.display(),
                install_db.display(),
                INSTALL_ARGS.join(" ")
            ),
            vec![
                ("mysql/global_priv.frm", None),
                ("ibdata1", None),
                ("ib_logfile0", None),
            ],
        );
        eph.from_template = template::fill(template.as_ref(), &eph.data, user.as_ref(), || {
            eph.install(&install_db, user.as_ref())
        })?;
        eph.launch(user.as_ref())?;
        eph.wait_ready()?;
        Ok(eph)
    }

    /// The server's Unix socket (connect as `root`, no password).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's version as `mariadbd --version` gives it, without the distribution's
    /// suffix: `10.11.19-MariaDB`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether the data directory was copied from the cached template (rather than made by
    /// running `mariadb-install-db`).
    pub fn from_template(&self) -> bool {
        self.from_template
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// SIGTERM (a normal shutdown), then SIGKILL after a grace period, then remove the
    /// directory. Idempotent.
    pub fn stop(&mut self) {
        stop_server(&mut self.server, Signal::SIGTERM, STOP_TIMEOUT, &self.top);
    }

    fn install(&self, install_db: &Path, user: Option<&User>) -> anyhow::Result<()> {
        let mut cmd = Command::new(install_db);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.data.display()))
            .args(INSTALL_ARGS)
            // The script runs the server it finds itself unless told which one.
            .env("MYSQLD_BOOTSTRAP", &self.mariadbd);
        run_tool(self.prepare(&mut cmd, user), install_db)
    }

    /// SIGKILL (a crash: InnoDB recovers at the next start), `down` of nothing, then the same
    /// server again.
    pub fn restart(&mut self, down: Duration, stopped: &mut dyn FnMut()) -> anyhow::Result<()> {
        if self.server.is_none() {
            bail!("the private MariaDB is not running");
        }
        kill_and_wait(&mut self.server, Signal::SIGKILL, STOP_TIMEOUT);
        stopped();
        std::thread::sleep(down);
        let user = run_as("mysql", "MariaDB")?;
        self.launch(user.as_ref())?;
        self.wait_ready()
    }

    fn launch(&mut self, user: Option<&User>) -> anyhow::Result<()> {
        let log = fs::File::create(self.log_path())?;
        let mut cmd = Command::new(&self.mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.data.display()))
            .arg(format!("--socket={}", self.socket.display()))
            .arg(format!("--pid-file={}", self.top.join(PID_FILE).display()))
            .arg(format!("--tmpdir={}", self.top.join("tmp").display()))
            .args(FIXED);
        let extra = self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (name, value) in SETTINGS.iter().copied().chain(extra) {
            cmd.arg(if value.is_empty() {
                format!("--{name}")
            } else {
                format!("--{name}={value}")
            });
        }
        // Without --log-error the server logs to stderr: the log file.
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = self
            .prepare(&mut cmd, user)
            .spawn()
            .with_context(|| format!("cannot run {}", self.mariadbd.display()))?;
        self.server = Some(child);
        Ok(())
    }

    /// Ready once the socket exists and the server has said so (it binds the socket just
    /// before it starts accepting).
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let (socket, log) = (self.socket.clone(), self.log_path());
        wait_ready(&mut self.server, "MariaDB", &log, READY_TIMEOUT, || {
            socket.exists()
                && fs::read_to_string(&log).is_ok_and(|l| l.contains("ready for connections"))
        })
    }

    /// Runs as the mysql user when the lab is root, in the server's directory, without the
    /// variables that could point the tools elsewhere.
    fn prepare<'c>(&self, cmd: &'c mut Command, user: Option<&User>) -> &'c mut Command {
        prepare(cmd, &self.top, user, MARIADB_ENV)
    }

    fn log_path(&self) -> PathBuf {
        self.top.join("mariadbd.log")
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        self.stop();
    }
}

impl crate::engine::local::Stop for Ephemeral {
    fn stop(&mut self) {
        Ephemeral::stop(self);
    }

    fn restart(&mut self, down: Duration, stopped: &mut dyn FnMut()) -> anyhow::Result<()> {
        Ephemeral::restart(self, down, stopped)
    }
}

/// Refuses settings that would open a port, move the server's files or read option files.
fn check_settings(settings: &[(String, String)]) -> anyhow::Result<()> {
    for (name, _) in settings {
        let norm = name.trim_start_matches('-').replace('-', "_");
        if RESERVED.contains(&norm.as_str()) {
            bail!("the private MariaDB's `{name}` is fixed: it keeps the server private");
        }
    }
    Ok(())
}

/// Where a MariaDB program is (see [`local::find_program`](crate::engine::local::find_program)).
fn find_program(name: &str) -> anyhow::Result<PathBuf> {
    crate::engine::local::find_program(
        name,
        "CONTENTION_MARIADB_BINDIR",
        &["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"],
        "Install MariaDB's server (Debian/Ubuntu: apt-get install mariadb-server)",
    )
}

/// The short version (`10.11.19-MariaDB`) and the whole `mariadbd --version` line.
fn server_version(mariadbd: &Path) -> anyhow::Result<(String, String)> {
    let out = Command::new(mariadbd)
        .arg("--no-defaults")
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", mariadbd.display()))?;
    // "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text)
        .map(|v| (v, text.trim().to_string()))
        .ok_or_else(|| {
            anyhow!(
                "cannot read a MariaDB version from `{} --version`: {text}",
                mariadbd.display()
            )
        })
}

fn parse_version(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == "Ver")?;
    let full = words.next()?;
    let end = full.find("-MariaDB")? + "-MariaDB".len();
    full[..end]
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| full[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_drops_the_distribution_suffix() {
        assert_eq!(
            parse_version(
                "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)\n"
            )
            .as_deref(),
            Some("10.11.19-MariaDB")
        );
        assert_eq!(
            parse_version("mariadbd  Ver 11.4.2-MariaDB for Linux on x86_64 (MariaDB Server)")
                .as_deref(),
            Some("11.4.2-MariaDB")
        );
        assert_eq!(
            parse_version("mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)"),
            None
        );
    }

    #[test]
    fn settings_that_would_make_it_public_are_refused() {
        let s = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(check_settings(&s("max_connections", "50")).is_ok());
        assert!(check_settings(&s("innodb_lock_wait_timeout", "3")).is_ok());
        for bad in [
            "port",
            "skip-networking",
            "--socket",
            "bind_address",
            "datadir",
        ] {
            assert!(check_settings(&s(bad, "1")).is_err(), "{bad}");
        }
    }
}
