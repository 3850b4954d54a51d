//! What private servers of every engine share: their directories (`contention-<engine>-XXXXXX`,
//! in `/dev/shm` when it is a roomy tmpfs, else the temp dir), the owner file and the sweep of
//! directories left by a lab that was killed outright, the system user a server runs as when
//! the lab is root, starting a server in its own process group, waiting until it is ready,
//! stopping it, restarting it as a fault ([`Restarter`]), and the initialised-template cache
//! (`template`).
//!
//! It must not know any engine's commands or settings (the engines' `ephemeral` modules do),
//! nor touch a directory or process it did not create.

pub mod template;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, Uid, User, chown};

/// Something the lab started for a server and must stop with it: a private server, a
/// container.
pub trait Stop: Send + Sync {
    /// Stops it and removes what it left; idempotent.
    fn stop(&mut self);

    /// Stops it at once, as a crash would (every session gone, nothing flushed by a shutdown),
    /// calls `stopped`, waits `down`, then starts it again on the same data and waits until it
    /// is ready.
    fn restart(&mut self, down: Duration, stopped: &mut dyn FnMut()) -> anyhow::Result<()> {
        let _ = (down, stopped);
        bail!("only a private server that the lab runs from the local binaries can be restarted")
    }
}

/// What a server stands on, when the lab started it: stopped by `shutdown` or when dropped.
/// Shared with the [`Restarter`]s handed out, which stop working once it is shut down.
#[derive(Default)]
pub struct Started(Option<Shared>);

/// What was started, shared with the restarters; `None` once it is shut down.
type Shared = Arc<Mutex<Option<Box<dyn Stop>>>>;

impl Started {
    pub fn new(what: impl Stop + 'static) -> Started {
        Started(Some(Arc::new(Mutex::new(Some(Box::new(what))))))
    }

    /// The lab started it (a throw-away server).
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// A handle that restarts it (a fault the scenario injects), if the lab started it.
    pub fn restarter(&self) -> Option<Restarter> {
        self.0.clone().map(Restarter)
    }

    /// Stops it (waiting for a restart under way to end first).
    pub fn shutdown(&mut self) {
        if let Some(shared) = self.0.take() {
            let taken = shared.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(mut s) = taken {
                s.stop();
            }
        }
    }
}

/// Restarts a server the lab started (see [`Stop::restart`]); blocking, one restart at a time.
#[derive(Clone)]
pub struct Restarter(Shared);

impl std::fmt::Debug for Restarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Restarter")
    }
}

impl Restarter {
    /// Restarts the server, `down` after stopping it (`stopped` is called once it is down).
    /// `Ok(false)` when a restart is already under way (this one is not made); an error when
    /// the server was shut down or did not come back.
    pub fn restart(&self, down: Duration, stopped: &mut dyn FnMut()) -> anyhow::Result<bool> {
        let mut guard = match self.0.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(false),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        };
        match guard.as_mut() {
            Some(s) => s.restart(down, stopped).map(|()| true),
            None => bail!("the server was already shut down"),
        }
    }

    /// Waits until no restart is under way.
    pub fn settle(&self) {
        drop(self.0.lock());
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The file in a private server's directory naming the lab process that owns it.
pub(crate) const OWNER_FILE: &str = "owner.pid";

/// The user to run a server (`engine`, for messages) as: `None` (the current user) unless the
/// lab runs as root, then the system user `name` (PostgreSQL refuses to run as root, MariaDB
/// needs to be told to, and neither should).
pub(crate) fn run_as(name: &str, engine: &str) -> anyhow::Result<Option<User>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name(name)? {
        Some(u) => Ok(Some(u)),
        None => bail!(
            "{engine} will not run as root and there is no `{name}` system user to run it as: \
             create one (useradd --system {name}), run the lab as another user, or give --db URL"
        ),
    }
}

/// Creates a private server's directory, `<base>/<prefix>XXXXXX` (see [`base_dir`]), with its
/// owner file and the empty subdirectories `subdirs`, all handed to `user` when given. Nothing
/// is left behind on failure.
pub(crate) fn create_top(
    prefix: &str,
    dir_var: &str,
    subdirs: &[&str],
    user: Option<&User>,
    engine: &str,
) -> anyhow::Result<PathBuf> {
    let base = base_dir(dir_var);
    let top = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .with_context(|| {
            format!(
                "cannot create a directory for the private {engine} in {}",
                base.display()
            )
        })?
        .keep();
    let filled = (|| -> anyhow::Result<()> {
        fs::write(
            top.join(OWNER_FILE),
            format!("{}\n{}\n", std::process::id(), pid_namespace()),
        )?;
        let dirs: Vec<PathBuf> = subdirs.iter().map(|d| top.join(d)).collect();
        for d in &dirs {
            fs::create_dir(d)?;
        }
        if let Some(u) = user {
            for path in std::iter::once(&top).chain(&dirs) {
                chown(path, Some(u.uid), Some(u.gid)).with_context(|| {
                    format!("cannot hand {} to the {} user", path.display(), u.name)
                })?;
            }
        }
        Ok(())
    })();
    if let Err(e) = filled {
        let _ = fs::remove_dir_all(&top);
        return Err(e);
    }
    Ok(top)
}

/// Prepares a command of a private server: run in its directory `top`, as `user` when given
/// (with `HOME` in `top`), in the C locale, without the variables in `env_remove` (the ones that
/// could point the engine's tools at another server).
pub(crate) fn prepare<'c>(
    cmd: &'c mut Command,
    top: &Path,
    user: Option<&User>,
    env_remove: &[&str],
) -> &'c mut Command {
    cmd.current_dir(top).env("LC_ALL", "C");
    for var in env_remove {
        cmd.env_remove(var);
    }
    if let Some(u) = user {
        cmd.uid(u.uid.as_raw())
            .gid(u.gid.as_raw())
            .env("HOME", top)
            .env("USER", &u.name);
    }
    cmd
}

/// Set when the lab is interrupted: a private server's start under way gives up (and is
/// stopped and removed like any failed start) instead of waiting until it is ready.
static STARTS_INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes every private server start under way, and every later one, give up.
pub fn interrupt_starts() {
    STARTS_INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Waits until `ready()` holds for the server process in `child` (`engine`, for messages; `log`,
/// its log file, quoted on failure). An error if it exits first (then `child` is emptied) or
/// `timeout` passes.
pub(crate) fn wait_ready(
    child: &mut Option<Child>,
    engine: &str,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let process = child.as_mut().expect("launched");
        if let Some(status) = process.try_wait()? {
            *child = None;
            bail!(
                "the private {engine} exited during start-up ({status}); its log ends:\n{}",
                log_tail(log)
            );
        }
        if ready() {
            return Ok(());
        }
        if STARTS_INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted while waiting for the private {engine} to start");
        }
        if Instant::now() >= deadline {
            bail!(
                "the private {engine} was not ready within {timeout:?}; its log ends:\n{}",
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops a private server: `signal` to the process in `child` (taken, so this is idempotent),
/// SIGKILL to its process group if it is still there after `timeout`; then removes `top`.
pub(crate) fn stop_server(
    child: &mut Option<Child>,
    signal: Signal,
    timeout: Duration,
    top: &Path,
) {
    kill_and_wait(child, signal, timeout);
    if top.exists() {
        let _ = fs::remove_dir_all(top);
    }
}

/// Sends `signal` to the server process in `child` (taken, so this is idempotent) and waits for
/// it to exit; SIGKILL to its process group if it is still there after `timeout`.
pub(crate) fn kill_and_wait(child: &mut Option<Child>, signal: Signal, timeout: Duration) {
    if let Some(mut child) = child.take() {
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, signal);
        let deadline = Instant::now() + timeout;
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
}

/// Runs a tool to completion (`program`, for messages); an error with its output if it fails.
/// The tool runs in its own process group (like the servers, so a terminal's Ctrl-C reaches
/// the lab only); when the lab is interrupted ([`interrupt_starts`]) the whole group (initdb and
/// the bootstrap server it runs) is killed at once and this returns an error, within about
/// 10 ms: the caller then removes the directory.
pub(crate) fn run_tool(cmd: &mut Command, program: &Path) -> anyhow::Result<()> {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", program.display()))?;
    // Drained on their own threads so that a chatty tool never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if STARTS_INTERRUPTED.load(Ordering::Relaxed) {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            bail!("interrupted while running {}", program.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    if !status.success() {
        bail!("{} failed ({status}):\n{out}{err}", program.display());
    }
    Ok(())
}

/// The last 20 lines of a log file.
pub(crate) fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Memory-backed and present on nearly every Linux system.
const SHM: &str = "/dev/shm";
/// The least free space in `/dev/shm` for the lab to put clusters there: containers often give
/// it 64 MiB, too little for a scenario's tables; its pages are RAM, and PostgreSQL keeps its
/// dynamic shared memory there too. Bigger data (say `bench --scale 100`, 1.5 GB per database)
/// belongs on disk: `CONTENTION_PG_DIR`.
const SHM_MIN_FREE: u64 = 4 << 30;

/// Where private servers are made: the directory in the environment variable `dir_var` (e.g.
/// `CONTENTION_PG_DIR`) if set; else `/dev/shm` when it is a tmpfs with at least 4 GiB free
/// (nothing is synced anyway, and copying a template's ~1000 files there takes a tenth of the
/// time it takes on a disk); else the temp dir.
pub(crate) fn base_dir(dir_var: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(dir_var).filter(|d| !d.is_empty()) {
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

/// Removes the directories named `<prefix>*` (in the base directory chosen by `dir_var`, the
/// temp dir and `/dev/shm`) whose owning lab process no longer exists (it was killed with
/// SIGKILL, or the machine lost power): stops their server, if it is still running, and removes
/// the directory. The server is the process named in the pid file `pid_file` (relative to the
/// directory) if its command line names the directory: it gets `signal` (PostgreSQL: SIGQUIT,
/// an immediate shutdown that also removes its shared memory), then SIGKILL after 5 s.
pub(crate) fn sweep_orphans(prefix: &str, dir_var: &str, pid_file: &str, signal: Signal) {
    let mut bases = vec![base_dir(dir_var), std::env::temp_dir(), PathBuf::from(SHM)];
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
            .is_some_and(|n| n.starts_with(prefix));
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
        if let Some(pm) = read_pid(&top.join(pid_file))
            && alive(pm)
            && cmdline(pm).contains(&*top.to_string_lossy())
        {
            let _ = kill(Pid::from_raw(pm), signal);
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

/// Where an engine's program is: in the directory `bindir_var` names when it is set (and only
/// there), else on `PATH`, else in `dirs` (`mariadbd` is in `/usr/sbin`, often not on a user's
/// `PATH`). `install` says how to get it, for the error.
pub(crate) fn find_program(
    name: &str,
    bindir_var: &str,
    dirs: &[&str],
    install: &str,
) -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(bindir_var).map(PathBuf::from) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
        bail!("{bindir_var}={} holds no {name}", dir.display());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(dirs.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no {name} found (tried PATH, {}).\n{install} or set {bindir_var}",
                dirs.join(", ")
            )
        })
}
