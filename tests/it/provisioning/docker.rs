//! `--db docker:IMAGE`: a run in a throw-away container when a Docker daemon answers, and a
//! quick, clear exit 2 when none does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use contention::engine::docker;
use testcontainers::bollard::container::ListContainersOptions;

use crate::support::{contention, run, stderr};

const RUN: &[&str] = &[
    "run",
    "ticketmaster",
    "--db",
    "docker:postgres:15",
    "--isolation",
    "rc",
    "--strategy",
    "conditional",
];

/// The containers (running or not) the lab process `pid` labelled as its own.
fn containers_of(rt: &tokio::runtime::Runtime, pid: u32) -> Vec<String> {
    rt.block_on(async {
        let docker = testcontainers::core::client::docker_client_instance()
            .await
            .expect("a Docker client");
        let filters = HashMap::from([("label".to_string(), vec![format!("contention.pid={pid}")])]);
        docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
            .expect("the container list")
            .into_iter()
            .filter_map(|c| c.id)
            .collect()
    })
}

#[test]
fn docker_db_runs_in_a_container_and_leaves_none_or_says_no_daemon_answered() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    match rt.block_on(docker::check_daemon()) {
        Ok(()) => {
            let child = contention()
                .args(RUN)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let pid = child.id();
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            assert!(
                stderr(&out).contains("in a Docker container"),
                "{}",
                stderr(&out)
            );
            assert_eq!(containers_of(&rt, pid), Vec::<String>::new());
        }
        Err(why) => {
            eprintln!(
                "skipped the run in a container: no Docker daemon answers here ({why:#}); \
                 checking the exit-2 message instead"
            );
            let started = Instant::now();
            let out = run(RUN);
            let took = started.elapsed();
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            let err = stderr(&out);
            assert!(err.contains("no Docker daemon answered"), "{err}");
            assert!(err.contains("DOCKER_HOST"), "{err}");
            assert!(err.contains("Without --db"), "{err}");
            assert!(err.contains("--engine mariadb"), "{err}");
            assert!(took < Duration::from_secs(15), "took {took:?}:\n{err}");
        }
    }
}

#[test]
fn an_unanswered_docker_host_exits_2_quickly_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/docker.sock", dir.path().display());
    let started = Instant::now();
    let out = contention()
        .env("DOCKER_HOST", &host)
        .args(["run", "ticketmaster", "--db", "docker:mariadb:10.11"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("no Docker daemon answered at DOCKER_HOST={host}")),
        "{err}"
    );
    assert!(err.contains("--db docker:mariadb:10.11"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_docker_specs_exit_2_naming_the_flag() {
    for (args, says) in [
        (&["--db", "docker:"][..], "no image"),
        (&["--db", "docker:redis:7"], "cannot tell the engine"),
        (&["--db", "docker:postgres:"], "empty tag"),
        (
            &["--db", "docker:postgres:15", "--engine", "mariadb"],
            "--engine mariadb",
        ),
        (&["--db", "docker:mariadb:10.11", "--keep"], "--keep"),
    ] {
        let mut all = vec!["run", "ticketmaster"];
        all.extend_from_slice(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("--db docker:") || err.contains("--keep"),
            "{all:?}: {err}"
        );
        assert!(err.contains(says), "{all:?}: {err}");
    }
}
