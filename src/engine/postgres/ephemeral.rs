//! A private, throw-away PostgreSQL cluster started from the local binaries.
//!
//! A fresh directory (`contention-pg-XXXXXX/{data,sock}`, in `/dev/shm` when it is a roomy
//! tmpfs, else the temp dir; `CONTENTION_PG_DIR` chooses) gets its data
//! directory by copying the cached initdb template (`template`: made by the first start, kept
//! under `~/.cache/contention/`, keyed by `postgres --version`), or by running `initdb` when
//! there is no usable template (which then stores one); then
//! `postgres` listening only on a private Unix socket (no TCP), with durability switched off
//! (fsync, synchronous_commit, full_page_writes): the lab measures concurrency control, not
//! disks. As root, both run as the `postgres` system user (PostgreSQL refuses to run as root).
//! The postmaster gets its own process group, so a terminal's Ctrl-C reaches the lab, which then
//! stops the server itself. Stopping (or dropping) sends a fast shutdown, waits, kills what is
//! left and removes the directory. A directory left by a lab process that was killed outright
//! (SIGKILL) is swept by the next start.
//!
//! It must not touch any cluster it did not create, nor listen on a network port.
//!
//! The engine-neutral parts (the directory with its owner file, the orphan sweep, running as a
//! system user, waiting for readiness, stopping) are `pub(crate)` here and shared with the
//! private MariaDB ([`super::mariadb_ephemeral`]); only what differs lives in each engine's module.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::engine::local::template::{self, Template};
use crate::engine::local::{
    create_top, kill_and_wait, prepare, run_as, run_tool, stop_server, sweep_orphans, wait_ready,
};
use anyhow::{Context, anyhow, bail};
use nix::sys::signal::Signal;
use nix::unistd::User;

/// Prefix of every directory the lab creates for a private cluster.
const DIR_PREFIX: &str = "contention-pg-";
/// The environment variable choosing where private clusters are made.
const DIR_VAR: &str = "CONTENTION_PG_DIR";
/// The postmaster's pid file, relative to the cluster's directory (for the orphan sweep).
const PID_FILE: &str = "data/postmaster.pid";
/// Variables that could point PostgreSQL's tools at another cluster.
const PG_ENV: &[&str] = &["PGDATA", "PGHOST", "PGPORT"];
/// The file in a private server's directory naming the lab process that owns it.
/// Settings every private cluster gets; the caller's settings come after and win.
const SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", ""),
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "300"),
    ("max_prepared_transactions", "50"),
    ("max_locks_per_transaction", "128"),
    ("shared_buffers", "128MB"),
    ("log_min_messages", "warning"),
];
/// How initdb makes every private cluster (part of the template cache's key).
const INITDB_ARGS: &[&str] = &[
    "-U",
    "postgres",
    "--auth=trust",
    "--no-sync",
    "-E",
    "UTF8",
    "--locale=C",
];
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running private cluster. Stopped and removed by [`Ephemeral::stop`] or on drop.
#[derive(Debug)]
pub struct Ephemeral {
    top: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    bindir: PathBuf,
    major: u32,
    port: u16,
    postmaster: Option<Child>,
    from_template: bool,
    /// The `-c` settings it was started with (a restart uses them again).
    settings: Vec<(String, String)>,
}

impl Ephemeral {
    /// Creates, starts and waits for a private cluster; `settings` are extra `-c name=value`.
    pub fn start(settings: &[(String, String)]) -> anyhow::Result<Ephemeral> {
        sweep_orphans(DIR_PREFIX, DIR_VAR, PID_FILE, Signal::SIGQUIT);
        let bindir = find_bindir()?;
        let (major, version) = major_version(&bindir)?;
        let user = run_as("postgres", "PostgreSQL")?;
        let top = create_top(
            DIR_PREFIX,
            DIR_VAR,
            &["data", "sock"],
            user.as_ref(),
            "PostgreSQL",
        )?;
        let (data, sock) = (top.join("data"), top.join("sock"));
        let mut eph = Ephemeral {
            top,
            data,
            sock,
            bindir,
            major,
            port: free_port(),
            postmaster: None,
            from_template: false,
            settings: settings.to_vec(),
        };
        let template = Template::locate(
            "CONTENTION_PG_TEMPLATE",
            &format!("pg{major}-initdb"),
            format!(
                "{version}\nbindir {}\nmajor {major}\ninitdb {}\n",
                eph.bindir.display(),
                INITDB_ARGS.join(" ")
            ),
            vec![
                ("PG_VERSION", Some(major.to_string())),
                ("global/pg_control", None),
            ],
        );
        eph.from_template = template::fill(template.as_ref(), &eph.data, user.as_ref(), || {
            eph.initdb(user.as_ref())
        })?;
        eph.launch(user.as_ref())?;
        eph.wait_ready()?;
        Ok(eph)
    }

    /// Connection settings for the superuser on the maintenance database, over the socket.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host_path(self.socket_dir())
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .application_name("contention")
            .connect_timeout(Duration::from_secs(10));
        c
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    pub fn major_version(&self) -> u32 {
        self.major
    }

    /// Whether the data directory was copied from the cached initdb template (rather than
    /// made by running initdb).
    pub fn from_template(&self) -> bool {
        self.from_template
    }

    /// Fast shutdown, then SIGKILL after a grace period, then remove the directory. Idempotent.
    pub fn stop(&mut self) {
        stop_server(
            &mut self.postmaster,
            Signal::SIGINT,
            STOP_TIMEOUT,
            &self.top,
        );
    }

    fn initdb(&self, user: Option<&User>) -> anyhow::Result<()> {
        let initdb = self.bindir.join("initdb");
        let mut cmd = Command::new(&initdb);
        cmd.arg("-D").arg(self.data_dir()).args(INITDB_ARGS);
        run_tool(self.prepare(&mut cmd, user), &initdb)
    }

    /// An immediate shutdown (SIGQUIT: every backend killed, crash recovery at the next start,
    /// as `pg_ctl stop -m immediate`), `down` of nothing, then the same server again.
    /// Prepared transactions survive it, as they survive a crash.
    pub fn restart(&mut self, down: Duration, stopped: &mut dyn FnMut()) -> anyhow::Result<()> {
        if self.postmaster.is_none() {
            bail!("the private PostgreSQL is not running");
        }
        kill_and_wait(&mut self.postmaster, Signal::SIGQUIT, STOP_TIMEOUT);
        stopped();
        std::thread::sleep(down);
        // Left behind only if the postmaster had to be killed outright.
        let _ = fs::remove_file(self.data.join("postmaster.pid"));
        let user = run_as("postgres", "PostgreSQL")?;
        self.launch(user.as_ref())?;
        self.wait_ready()
    }

    fn launch(&mut self, user: Option<&User>) -> anyhow::Result<()> {
        let postgres = self.bindir.join("postgres");
        let log = fs::File::create(self.log_path())?;
        let mut cmd = Command::new(&postgres);
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string());
        let extra = self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (name, value) in SETTINGS.iter().copied().chain(extra) {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = self
            .prepare(&mut cmd, user)
            .spawn()
            .with_context(|| format!("cannot run {}", postgres.display()))?;
        self.postmaster = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let (pidfile, log) = (self.data.join("postmaster.pid"), self.log_path());
        // Line 8 of postmaster.pid is the server's status once it accepts connections.
        wait_ready(
            &mut self.postmaster,
            "PostgreSQL",
            &log,
            READY_TIMEOUT,
            || {
                fs::read_to_string(&pidfile)
                    .is_ok_and(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
            },
        )
    }

    /// Runs as the postgres user when the lab is root, in the cluster's directory, without
    /// libpq variables that could point the tools elsewhere.
    fn prepare<'c>(&self, cmd: &'c mut Command, user: Option<&User>) -> &'c mut Command {
        prepare(cmd, &self.top, user, PG_ENV)
    }

    fn log_path(&self) -> PathBuf {
        self.top.join("postgres.log")
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

/// Where the PostgreSQL server binaries are: `CONTENTION_PG_BINDIR`, then `PATH`, then
/// `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin` (Debian, Ubuntu).
pub fn find_bindir() -> anyhow::Result<PathBuf> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os("CONTENTION_PG_BINDIR").map(PathBuf::from) {
        if has_server(&dir) {
            return Ok(dir);
        }
        bail!(
            "CONTENTION_PG_BINDIR={} holds no initdb and postgres",
            dir.display()
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }
    tried.push("initdb and postgres on PATH".to_string());
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
        tried.push(format!("pg_config --bindir ({})", dir.display()));
    } else {
        tried.push("pg_config --bindir".to_string());
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_server(d))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    tried.push("/usr/lib/postgresql/*/bin".to_string());
    Err(anyhow!(
        "no PostgreSQL server binaries found (tried {}).\n\
         Install them (Debian/Ubuntu: apt-get install postgresql), set CONTENTION_PG_BINDIR, \
         or give an existing server with --db URL",
        tried.join(", ")
    ))
}

/// The major version and the full `postgres --version` line.
fn major_version(bindir: &Path) -> anyhow::Result<(u32, String)> {
    let postgres = bindir.join("postgres");
    let out = Command::new(&postgres)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", postgres.display()))?;
    // "postgres (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)"
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .map(|m| (m, text.trim().to_string()))
        .ok_or_else(|| {
            anyhow!(
                "cannot read the version from `{} --version`: {text}",
                postgres.display()
            )
        })
}

/// A port number nobody listens on. The server listens only on its private socket, whose name
/// carries the port, so this is hygiene rather than a necessity.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5432)
}
