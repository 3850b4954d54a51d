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

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, Uid, User, chown};

mod template;

/// Prefix of every directory the lab creates for a private cluster.
const DIR_PREFIX: &str = "contention-pg-";
/// The file in that directory naming the lab process that owns it.
const OWNER_FILE: &str = "owner.pid";
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
}

impl Ephemeral {
    /// Creates, starts and waits for a private cluster; `settings` are extra `-c name=value`.
    pub fn start(settings: &[(String, String)]) -> anyhow::Result<Ephemeral> {
        sweep_orphans();
        let bindir = find_bindir()?;
        let (major, version) = major_version(&bindir)?;
        let user = run_as()?;
        let base = base_dir();
        let top = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(&base)
            .with_context(|| {
                format!(
                    "cannot create a directory for the private PostgreSQL in {}",
                    base.display()
                )
            })?
            .keep();
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
        };
        fs::write(
            eph.top.join(OWNER_FILE),
            format!("{}\n{}\n", std::process::id(), pid_namespace()),
        )?;
        fs::create_dir(&eph.data)?;
        fs::create_dir(&eph.sock)?;
        if let Some(u) = &user {
            for path in [&eph.top, &eph.data, &eph.sock] {
                chown(path, Some(u.uid), Some(u.gid)).with_context(|| {
                    format!("cannot hand {} to the postgres user", path.display())
                })?;
            }
        }
        let template = template::Template::locate(&eph.bindir, major, &version);
        eph.from_template = template
            .as_ref()
            .is_some_and(|t| t.copy_into(&eph.data, user.as_ref()));
        if !eph.from_template {
            eph.initdb(user.as_ref())?;
            if let Some(t) = &template {
                t.store(&eph.data);
            }
        }
        eph.launch(user.as_ref(), settings)?;
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
        if let Some(mut child) = self.postmaster.take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGINT);
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = killpg(pid, Signal::SIGKILL);
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        if self.top.exists() {
            let _ = fs::remove_dir_all(&self.top);
        }
    }

    fn initdb(&self, user: Option<&User>) -> anyhow::Result<()> {
        let initdb = self.bindir.join("initdb");
        let mut cmd = Command::new(&initdb);
        cmd.arg("-D").arg(self.data_dir()).args(INITDB_ARGS);
        let out = self
            .prepare(&mut cmd, user)
            .output()
            .with_context(|| format!("cannot run {}", initdb.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed ({}):\n{}{}",
                initdb.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn launch(&mut self, user: Option<&User>, settings: &[(String, String)]) -> anyhow::Result<()> {
        let postgres = self.bindir.join("postgres");
        let log = fs::File::create(self.log_path())?;
        let mut cmd = Command::new(&postgres);
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string());
        let extra = settings.iter().map(|(k, v)| (k.as_str(), v.as_str()));
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
        let pidfile = self.data_dir().join("postmaster.pid");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.postmaster.as_mut().expect("launched");
            if let Some(status) = child.try_wait()? {
                self.postmaster = None;
                bail!(
                    "the private PostgreSQL exited during start-up ({status}); its log ends:\n{}",
                    self.log_tail()
                );
            }
            // Line 8 of postmaster.pid is the server's status once it accepts connections.
            let ready = fs::read_to_string(&pidfile)
                .map(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the private PostgreSQL was not ready within {READY_TIMEOUT:?}; its log ends:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs as the postgres user when the lab is root, in the cluster's directory, without
    /// libpq variables that could point the tools elsewhere.
    fn prepare<'c>(&self, cmd: &'c mut Command, user: Option<&User>) -> &'c mut Command {
        cmd.current_dir(&self.top)
            .env_remove("PGDATA")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env("LC_ALL", "C");
        if let Some(u) = user {
            cmd.uid(u.uid.as_raw())
                .gid(u.gid.as_raw())
                .env("HOME", &self.top)
                .env("USER", &u.name);
        }
        cmd
    }

    fn log_path(&self) -> PathBuf {
        self.top.join("postgres.log")
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        self.stop();
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

/// The user to run PostgreSQL as: `None` (the current user) unless the lab runs as root.
fn run_as() -> anyhow::Result<Option<User>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres")? {
        Some(u) => Ok(Some(u)),
        None => bail!(
            "PostgreSQL will not run as root and there is no `postgres` system user to run it as: \
             create one (useradd --system postgres), run the lab as another user, or give --db URL"
        ),
    }
}

/// A port number nobody listens on. The server listens only on its private socket, whose name
/// carries the port, so this is hygiene rather than a necessity.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5432)
}

/// Memory-backed and present on nearly every Linux system.
const SHM: &str = "/dev/shm";
/// The least free space in `/dev/shm` for the lab to put clusters there: containers often give
/// it 64 MiB, too little for a scenario's tables; its pages are RAM, and PostgreSQL keeps its
/// dynamic shared memory there too. Bigger data (say `bench --scale 100`, 1.5 GB per database)
/// belongs on disk: `CONTENTION_PG_DIR`.
const SHM_MIN_FREE: u64 = 4 << 30;

/// Where private clusters are made: `CONTENTION_PG_DIR` if set; else `/dev/shm` when it is a
/// tmpfs with at least 4 GiB free (nothing is synced anyway, and copying the template's ~1000
/// files there takes a tenth of the time it takes on a disk); else the temp dir.
fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONTENTION_PG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let roomy_tmpfs = nix::sys::statfs::statfs(SHM).is_ok_and(|fs| {
        fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
            && fs
                .blocks_available()
                .saturating_mul(u64::try_from(fs.block_size()).unwrap_or(0))
                >= SHM_MIN_FREE
    });
    if roomy_tmpfs {
        PathBuf::from(SHM)
    } else {
        std::env::temp_dir()
    }
}

/// Removes clusters whose owning lab process no longer exists (it was killed with SIGKILL, or
/// the machine lost power): stops their postmaster, if it is still running, and the directory.
fn sweep_orphans() {
    let mut bases = vec![base_dir(), std::env::temp_dir(), PathBuf::from(SHM)];
    bases.sort();
    bases.dedup();
    for entry in bases
        .iter()
        .filter_map(|b| fs::read_dir(b).ok())
        .flatten()
        .flatten()
    {
        let top = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        let Some(owner) = is_ours.then(|| read_pid(&top.join(OWNER_FILE))).flatten() else {
            continue;
        };
        // A pid means something only in its own pid namespace: a directory made by a lab in
        // another container sharing this directory is not ours to judge.
        let owner_ns = fs::read_to_string(top.join(OWNER_FILE))
            .ok()
            .and_then(|t| t.lines().nth(1).map(str::to_string));
        if owner_ns.is_some_and(|ns| ns != pid_namespace()) || alive(owner) {
            continue;
        }
        if let Some(pm) = read_pid(&top.join("data").join("postmaster.pid"))
            && alive(pm)
            && cmdline(pm).contains(&*top.to_string_lossy())
        {
            // Immediate shutdown first: the postmaster stops its backends and removes its
            // shared memory (SIGKILL would leave a segment in /dev/shm and one in SysV IPC).
            let _ = kill(Pid::from_raw(pm), Signal::SIGQUIT);
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(pm) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if alive(pm) {
                let _ = killpg(Pid::from_raw(pm), Signal::SIGKILL);
            }
        }
        let _ = fs::remove_dir_all(&top);
    }
}

/// This process's pid namespace, e.g. `pid:[4026531836]` (empty if unknown).
fn pid_namespace() -> String {
    fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Whether a process exists and is not a zombie (a killed lab not yet reaped counts as gone).
pub(crate) fn alive(pid: i32) -> bool {
    let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    // EPERM: it exists, owned by someone else.
    pid > 0
        && !zombie
        && !matches!(
            kill(Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
