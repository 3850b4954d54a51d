//! A private, throw-away Redis started from the local `redis-server`.
//!
//! A fresh directory (`contention-redis-XXXXXX`, in `/dev/shm` when it is a roomy tmpfs, else the
//! temp dir; `CONTENTION_REDIS_DIR` chooses) holds the socket, the pid file and the log. The
//! server listens on that Unix socket only (`--port 0`), keeps nothing on disk (no RDB
//! snapshots, no append-only file) and reads no configuration file. It gets its own process
//! group, so a terminal's Ctrl-C reaches only the lab, which then stops it; stopping (or
//! dropping) sends SIGTERM, waits, kills what is left and removes the directory. A directory
//! left by a lab killed outright is swept by the next start (owner file, as for the other
//! engines).
//!
//! It must not listen on a network port, read a configuration file, or touch the machine's own
//! Redis (port 6379) or any directory it did not create.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::Signal;

use crate::engine::local::{create_top, prepare, stop_server, sweep_orphans, wait_ready};

const DIR_PREFIX: &str = "contention-redis-";
const DIR_VAR: &str = "CONTENTION_REDIS_DIR";
const PID_FILE: &str = "redis.pid";
const SOCKET: &str = "redis.sock";
/// Variables that could point Redis tools elsewhere.
const REDIS_ENV: &[&str] = &["REDISCLI_AUTH", "REDISCLI_HISTFILE"];
const MAX_SOCKET_PATH: usize = 107;
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running private Redis. Stopped and removed by [`Ephemeral::stop`] or on drop.
#[derive(Debug)]
pub struct Ephemeral {
    top: PathBuf,
    socket: PathBuf,
    version: String,
    server: Option<Child>,
}

impl Ephemeral {
    /// Creates, starts and waits for a private Redis. Blocking.
    pub fn start() -> anyhow::Result<Ephemeral> {
        sweep_orphans(DIR_PREFIX, DIR_VAR, PID_FILE, Signal::SIGKILL);
        let program = find_program()?;
        let version = server_version(&program)?;
        let top = create_top(DIR_PREFIX, DIR_VAR, &[], None, "Redis")?;
        let mut eph = Ephemeral {
            socket: top.join(SOCKET),
            top,
            version,
            server: None,
        };
        if eph.socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the private Redis's socket path {} is longer than {MAX_SOCKET_PATH} bytes: choose a shorter {DIR_VAR}",
                eph.socket.display()
            );
        }
        eph.launch(&program)?;
        let (socket, log) = (eph.socket.clone(), eph.log_path());
        wait_ready(&mut eph.server, "Redis", &log, READY_TIMEOUT, || {
            socket.exists()
                && fs::read_to_string(&log).is_ok_and(|l| {
                    l.to_ascii_lowercase()
                        .contains("ready to accept connections")
                })
        })?;
        Ok(eph)
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The URL the `redis` crate connects with.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// `redis-server --version`'s version: `7.0.15`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's directory (removed when it stops).
    pub fn dir(&self) -> &Path {
        &self.top
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// SIGTERM, then SIGKILL after a grace period, then remove the directory. Idempotent.
    pub fn stop(&mut self) {
        stop_server(&mut self.server, Signal::SIGTERM, STOP_TIMEOUT, &self.top);
    }

    fn launch(&mut self, program: &Path) -> anyhow::Result<()> {
        let log = self.log_path();
        fs::File::create(&log)?;
        let mut cmd = Command::new(program);
        // No configuration file: the first argument is an option, not a path.
        cmd.args(["--port", "0", "--unixsocket"])
            .arg(&self.socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--protected-mode", "yes", "--dir"])
            .arg(&self.top)
            .arg("--pidfile")
            .arg(self.top.join(PID_FILE))
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = prepare(&mut cmd, &self.top, None, REDIS_ENV)
            .spawn()
            .with_context(|| format!("cannot run {}", program.display()))?;
        self.server = Some(child);
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.top.join("redis.log")
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
}

/// `redis-server` (see [`local::find_program`](crate::engine::local::find_program)).
fn find_program() -> anyhow::Result<PathBuf> {
    crate::engine::local::find_program(
        "redis-server",
        "CONTENTION_REDIS_BINDIR",
        &["/usr/bin", "/usr/local/bin", "/usr/sbin"],
        "Install it (Debian/Ubuntu: apt-get install redis-server)",
    )
}

/// `Redis server v=7.0.15 sha=... malloc=...` -> `7.0.15`.
fn server_version(program: &Path) -> anyhow::Result<String> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", program.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| {
        anyhow!(
            "cannot read a Redis version from `{} --version`: {text}",
            program.display()
        )
    })
}

fn parse_version(text: &str) -> Option<String> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_is_read_from_its_banner() {
        assert_eq!(
            super::parse_version(
                "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d"
            )
            .as_deref(),
            Some("7.0.15")
        );
        assert_eq!(super::parse_version("redis-server 6"), None);
    }
}
