//! Provisioning and cleanup: a run against `--db` creates and drops only its own database and
//! leaves other data alone; an interrupted run leaves no server, data directory or database;
//! `--db docker:IMAGE` (in `docker`) leaves no container.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use contention::engine::postgres::ephemeral::Ephemeral;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{contention, run, run_json, stderr};

mod docker;

/// A server standing in for "somebody else's PostgreSQL", with a table the lab must not touch.
struct Foreign {
    server: Ephemeral,
    rt: tokio::runtime::Runtime,
}

impl Foreign {
    fn start() -> Foreign {
        let server = Ephemeral::start(&[]).expect("a private PostgreSQL for the test");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let f = Foreign { server, rt };
        f.exec("CREATE TABLE precious (id int PRIMARY KEY, note text); INSERT INTO precious VALUES (1, 'keep me'), (2, 'me too');");
        f
    }

    fn url(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.server.socket_dir().display(),
            self.server.port()
        )
    }

    fn exec(&self, sql: &str) {
        let config = self.server.config();
        self.rt.block_on(async {
            let (c, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(sql).await.unwrap();
        });
    }

    fn strings(&self, sql: &str) -> Vec<String> {
        let config = self.server.config();
        self.rt.block_on(async {
            let (c, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect()
        })
    }

    fn lab_databases(&self) -> Vec<String> {
        self.strings("SELECT datname::text FROM pg_database WHERE datname LIKE 'contention%'")
    }

    fn precious(&self) -> Vec<String> {
        self.strings("SELECT id || ':' || note FROM precious ORDER BY id")
    }
}

#[test]
fn a_run_against_db_leaves_no_database_and_touches_nothing_else() {
    let f = Foreign::start();
    let url = f.url();
    let (code, report) = run_json(&[
        "ticketmaster",
        "--db",
        &url,
        "--strategy",
        "conditional,naive",
    ]);
    assert_eq!(code, 0);
    assert!(report.database.starts_with("contention_ticketmaster_"));
    assert!(
        f.lab_databases().is_empty(),
        "left behind: {:?}",
        f.lab_databases()
    );
    assert_eq!(f.precious(), vec!["1:keep me", "2:me too"]);

    // DATABASE_URL works the same way; --keep keeps the database (and says so).
    let out = contention()
        .env("DATABASE_URL", &url)
        .args(["run", "ticketmaster", "--strategy", "conditional", "--keep"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kept database contention_ticketmaster_"),
        "{}",
        stderr(&out)
    );
    let kept = f.lab_databases();
    assert_eq!(kept.len(), 1, "{kept:?}");
    f.exec(&format!("DROP DATABASE \"{}\"", kept[0]));
    assert_eq!(f.precious(), vec!["1:keep me", "2:me too"]);
}

#[test]
fn an_unreachable_server_is_a_clear_error_with_exit_2() {
    let out = run(&[
        "run",
        "ticketmaster",
        "--db",
        "postgresql://nobody@127.0.0.1:1/none",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot connect to postgresql://nobody@127.0.0.1:1/none"),
        "{err}"
    );
    let out = run(&["run", "ticketmaster", "--keep"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--keep needs --db"),
        "{}",
        stderr(&out)
    );
}

/// Starts a long run, waits until its clients are running, sends SIGINT, and returns
/// (exit code, stderr, private data directory if any).
fn interrupt(extra: &[&str]) -> (Option<i32>, String, Option<PathBuf>) {
    let (mut child, mut reader, mut seen, data_dir) = start_long_run(extra);
    std::thread::sleep(Duration::from_millis(700));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not stop within 30 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    seen.push_str(&rest);
    (status.code(), seen, data_dir)
}

/// A running lab: the child, the rest of its stderr, what it said so far, and its private
/// server's data directory (if it announced one).
pub(crate) type Started = (
    std::process::Child,
    BufReader<std::process::ChildStderr>,
    String,
    Option<PathBuf>,
);

/// Starts a minute-long bank-transfer run and returns once its clients are running (see
/// [`start`]).
fn start_long_run(extra: &[&str]) -> Started {
    let mut args = vec![
        "run",
        "bank-transfer",
        "--duration",
        "60s",
        "--strategy",
        "for-update",
    ];
    args.extend_from_slice(extra);
    start(&args, "for-update @")
}

/// Spawns the lab and reads its stderr up to a line containing `until`; returns the child, the
/// rest of its stderr, what it said so far and the private server's data directory (if any).
#[expect(
    clippy::zombie_processes,
    reason = "the child is returned: the callers wait for it"
)]
pub(crate) fn start(args: &[&str], until: &str) -> Started {
    let mut child = contention()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut data_dir = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("the run ended before `{until}`:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(rest) = line.split("(ephemeral, ").nth(1) {
            // "(ephemeral, /dev/shm/contention-pg-X/data[, copied from ...])"
            let dir = rest.split([',', ')']).next().unwrap_or_default();
            data_dir = Some(PathBuf::from(dir.trim()));
        }
        if line.contains(until) {
            return (child, reader, seen, data_dir);
        }
    }
}

#[test]
fn a_cluster_left_by_a_killed_lab_is_swept_by_the_next_start() {
    let (mut child, _reader, seen, data_dir) = start_long_run(&[]);
    let top = data_dir
        .unwrap_or_else(|| panic!("no data directory announced:\n{seen}"))
        .parent()
        .unwrap()
        .to_path_buf();
    // SIGKILL: the lab cannot clean up; its server, in its own process group, keeps running.
    child.kill().unwrap();
    child.wait().unwrap();
    // Tests run in parallel: another test's start may sweep it first. Either way, once the
    // next start has run, neither the directory nor its server may be left.
    let out = run(&[
        "run",
        "ticketmaster",
        "--isolation",
        "rc",
        "--operations",
        "1",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!top.exists(), "{} was not swept", top.display());
    assert_eq!(
        server_processes_using(&top),
        0,
        "the orphan server still runs"
    );
}

pub(crate) fn server_processes_using(dir: &std::path::Path) -> usize {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(&needle))
        .count()
}

#[test]
fn interrupting_a_run_removes_its_private_server() {
    let (code, err, data_dir) = interrupt(&[]);
    assert_eq!(code, Some(130), "{err}");
    let data_dir = data_dir.expect("the private server's data directory is announced");
    let top = data_dir.parent().unwrap();
    assert!(!top.exists(), "{} is left behind", top.display());
    assert_eq!(
        server_processes_using(top),
        0,
        "a server process is left behind"
    );
}

#[test]
fn interrupting_a_run_against_db_drops_its_database() {
    let f = Foreign::start();
    let (code, err, _) = interrupt(&["--db", &f.url()]);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        f.lab_databases().is_empty(),
        "left behind: {:?}",
        f.lab_databases()
    );
    assert_eq!(f.precious(), vec!["1:keep me", "2:me too"]);
}

#[test]
fn interrupting_a_mariadb_run_removes_its_private_server() {
    let (code, err, data_dir) = interrupt(&["--engine", "mariadb"]);
    assert_eq!(code, Some(130), "{err}");
    let data_dir = data_dir.expect("the private server's data directory is announced");
    let top = data_dir.parent().unwrap();
    assert!(
        top.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("contention-mariadb-")),
        "{}",
        top.display()
    );
    assert!(!top.exists(), "{} is left behind", top.display());
    assert_eq!(
        server_processes_using(top),
        0,
        "a mariadbd process is left behind"
    );
}
