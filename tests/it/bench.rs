//! `contention bench` against pgbench, the tpcb scenario it runs, and the initdb template cache
//! that makes private servers start fast. Shapes only: no timing is asserted.

use crate::support::{
    cell, contention, json, run, run_json, scratch, stderr, stdout, writer_damage,
};

#[test]
fn bench_prints_a_ratio_row() {
    let out = run(&[
        "bench",
        "--clients",
        "1",
        "--duration",
        "1s",
        "--rounds",
        "2",
    ]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout:\n{text}\nstderr:\n{err}");
    assert!(
        text.contains("pgbench tps") && text.contains("contention ops/s") && text.contains("ratio"),
        "{text}"
    );
    // │ 1 │ 1234 │ 1100 │ 0.89 (0.85-0.93) │ 95 │ 110 │
    let row: Vec<&str> = text
        .lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .find(|l| l.starts_with("1 "))
        .unwrap_or_else(|| panic!("no row for 1 client:\n{text}"))
        .split('│')
        .map(str::trim)
        .collect();
    assert_eq!(row.len(), 6, "{row:?}");
    let positive = |s: &str| s.parse::<f64>().is_ok_and(|v| v > 0.0);
    for i in [1, 2, 4, 5] {
        assert!(positive(row[i]), "column {i}: {row:?}");
    }
    // Two rounds: the median ratio, then the rounds' range.
    let (median, range) = row[3]
        .split_once(" (")
        .unwrap_or_else(|| panic!("no range in {row:?}"));
    let (low, high) = range
        .trim_end_matches(')')
        .split_once('-')
        .unwrap_or_else(|| panic!("no min-max in {row:?}"));
    let [median, low, high] = [median, low, high].map(|v| v.parse::<f64>().unwrap());
    assert!(low > 0.0 && low <= median && median <= high, "{row:?}");
    assert!(
        err.contains("pgbench database contention_pgbench_"),
        "{err}"
    );
}

#[test]
fn bench_refuses_what_pgbench_cannot_match() {
    for (args, needle) in [
        (
            &["bench", "--duration", "1500ms"][..],
            "--duration must be whole seconds",
        ),
        (&["bench", "--clients", "0"], "--clients"),
        (&["bench", "--rounds", "0"], "--rounds"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn tpcb_runs_without_anomalies_pipelined_or_not() {
    for extra in [None, Some("--no-pipeline")] {
        let mut args = vec!["tpcb", "--operations", "50", "--expect", "declared"];
        args.extend(extra);
        let (code, report) = run_json(&args);
        assert_eq!(code, 0, "{extra:?}: {}", json(&report));
        let c = cell(&report, "tpcb", "rc");
        assert_eq!(c.stats.committed, 50, "{extra:?}: {}", json(&c));
        assert_eq!(writer_damage(c), 0, "{extra:?}: {}", json(&c));
        assert_eq!(
            report.settings.pipeline,
            extra.is_none(),
            "{extra:?}: {}",
            json(&report.settings)
        );
    }
}

#[test]
fn the_second_private_start_copies_the_cached_template() {
    let cache = scratch();
    let start = || {
        contention()
            .env("XDG_CACHE_HOME", cache.path())
            .env_remove("CONTENTION_PG_TEMPLATE")
            .args([
                "run",
                "ticketmaster",
                "--strategy",
                "conditional",
                "--operations",
                "4",
            ])
            .output()
            .expect("the binary runs")
    };
    let first = start();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        !stderr(&first).contains("cached initdb template"),
        "{}",
        stderr(&first)
    );
    let templates: Vec<_> = std::fs::read_dir(cache.path().join("contention"))
        .expect("a cache directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        templates.len() == 1 && templates[0].starts_with("pg"),
        "{templates:?}"
    );
    let second = start();
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("copied from the cached initdb template"),
        "{}",
        stderr(&second)
    );
    assert!(
        stdout(&second).contains("conditional"),
        "{}",
        stdout(&second)
    );
}
