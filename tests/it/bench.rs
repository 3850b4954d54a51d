//! `contention bench` against pgbench and, on MariaDB, sysbench; the tpcb scenario it runs, and
//! the initdb template cache that makes private servers start fast. Shapes only: no timing is
//! asserted.

use contention::report::bench::Peer;
use contention::report::document::Document;

use crate::support::{
    cell, contention, document, json, run, run_json, scratch, stderr, stdout, writer_damage,
};

#[test]
fn bench_prints_a_ratio_row() {
    let dir = scratch();
    let file = dir.path().join("bench.json");
    let out = run(&[
        "bench",
        "--clients",
        "1",
        "--duration",
        "1s",
        "--rounds",
        "2",
        "--output",
        file.to_str().unwrap(),
    ]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout:\n{text}\nstderr:\n{err}");
    assert!(
        text.contains("pgbench tps") && text.contains("contention ops/s") && text.contains("ratio"),
        "{text}"
    );
    let row = ratio_row(&text, 1);
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
    // The file carries every figure of the table, and its rounds.
    let Document::Bench(doc) = Document::read(&file).unwrap() else {
        panic!("not a bench document");
    };
    let c = doc.comparison.as_ref().expect("pgbench against the lab");
    assert_eq!((c.rounds, c.rows.len()), (2, 1));
    let r = &c.rows[0];
    assert_eq!((r.clients, r.rounds.len()), (1, 2));
    let ratio = r.ratio.expect("a ratio");
    assert_eq!(
        [ratio.median, ratio.min, ratio.max].map(|v| format!("{v:.2}")),
        [
            row[3].split(' ').next().unwrap(),
            &format!("{low:.2}"),
            &format!("{high:.2}")
        ]
        .map(str::to_string)
    );
    for (figure, column) in [
        (r.peer_tps, 1),
        (r.contention_ops_per_s, 2),
        (r.peer_cpu_us_per_txn, 4),
        (r.contention_cpu_us_per_op, 5),
    ] {
        assert_eq!(
            format!("{figure:.0}"),
            row[column],
            "column {column}: {row:?}"
        );
    }
    let cpu_ratio = r.cpu_ratio.expect("a CPU ratio");
    assert!(
        (cpu_ratio - r.contention_cpu_us_per_op / r.peer_cpu_us_per_txn).abs() < 1e-9,
        "{}",
        json(&doc)
    );
    // The CPU ratio of the means, then the range of the rounds' own ratios.
    let rounds: Vec<f64> = r
        .rounds
        .iter()
        .map(|x| x.contention.cpu_us_per_txn / x.peer.cpu_us_per_txn)
        .collect();
    let range = r.cpu_ratios.expect("the rounds' CPU ratios");
    // Through JSON a figure may come back one unit in the last place off.
    assert!(
        (range.min - rounds[0].min(rounds[1])).abs() < 1e-9
            && (range.max - rounds[0].max(rounds[1])).abs() < 1e-9,
        "{}",
        json(&doc)
    );
    assert_eq!(
        format!("{cpu_ratio:.2} ({:.2}-{:.2})", range.min, range.max),
        row[6],
        "{row:?}"
    );
    let mean = (r.rounds[0].peer.per_sec + r.rounds[1].peer.per_sec) / 2.0;
    assert!((mean - r.peer_tps).abs() < 1e-6, "{}", json(&doc));
    assert!(doc.pipeline && doc.comparison.is_some() && doc.footprint.is_none());
    let csv = std::fs::read_to_string(file.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.starts_with("clients,rounds,pgbench_tps,"), "{csv}");
    assert!(
        err.contains("pgbench database contention_pgbench_"),
        "{err}"
    );
}

/// The table's row for `clients`, its seven columns (`│ 1 │ 1234 │ 1100 │ 0.89 (0.85-0.93) │ 95 │
/// 110 │ 1.16 (1.10-1.21) │`; one round: no ranges), every figure but the ratio positive (of
/// the CPU ratio, its first).
fn ratio_row(text: &str, clients: u32) -> Vec<&str> {
    let row: Vec<&str> = text
        .lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .find(|l| l.starts_with(&format!("{clients} ")))
        .unwrap_or_else(|| panic!("no row for {clients} clients:\n{text}"))
        .split('│')
        .map(str::trim)
        .collect();
    assert_eq!(row.len(), 7, "{row:?}");
    let positive = |s: &str| {
        let first = s.split(' ').next().unwrap_or_default();
        first.parse::<f64>().is_ok_and(|v| v > 0.0)
    };
    for i in [1, 2, 4, 5, 6] {
        assert!(positive(row[i]), "column {i}: {row:?}");
    }
    row
}

#[test]
fn bench_on_mariadb_compares_with_sysbench() {
    let dir = scratch();
    let file = dir.path().join("bench.json");
    let out = run(&[
        "bench",
        "--engine",
        "mariadb",
        "--clients",
        "2",
        "--duration",
        "1s",
        "--rounds",
        "1",
        "--output",
        file.to_str().unwrap(),
    ]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout:\n{text}\nstderr:\n{err}");
    assert!(
        text.contains("sysbench tps")
            && text.contains("sysbench CPU µs/txn")
            && text.contains("contention CPU µs/op")
            && text.contains("no pipelining"),
        "{text}"
    );
    // The private server, reached through its socket.
    assert!(
        err.contains("private MariaDB") && err.contains("sysbench database contention_sysbench_"),
        "{err}"
    );
    let row = ratio_row(&text, 2);
    let ratio: f64 = row[3].parse().expect("one round: the ratio alone");
    assert!(ratio > 0.0, "{row:?}");
    let Document::Bench(doc) = Document::read(&file).unwrap() else {
        panic!("not a bench document");
    };
    assert_eq!(doc.peer, Peer::Sysbench, "{}", json(&doc));
    assert!(!doc.pipeline, "{}", json(&doc));
    assert!(doc.server.version.contains("MariaDB"), "{}", json(&doc));
    let c = doc.comparison.as_ref().expect("sysbench against the lab");
    assert_eq!((c.rounds, c.rows.len()), (1, 1));
    let r = &c.rows[0];
    assert_eq!((r.clients, r.rounds.len()), (2, 1));
    assert_eq!(r.rounds[0].peer.per_sec, r.peer_tps, "{}", json(&doc));
    assert_eq!(format!("{:.2}", r.ratio.expect("a ratio").median), row[3]);
    for (figure, column) in [
        (r.peer_tps, 1),
        (r.contention_ops_per_s, 2),
        (r.peer_cpu_us_per_txn, 4),
        (r.contention_cpu_us_per_op, 5),
    ] {
        assert!(figure > 0.0, "column {column}: {}", json(&doc));
        assert_eq!(
            format!("{figure:.0}"),
            row[column],
            "column {column}: {row:?}"
        );
    }
    let csv = std::fs::read_to_string(file.with_extension("csv")).unwrap();
    assert!(csv.starts_with("clients,rounds,sysbench_tps,"), "{csv}");
}

#[test]
fn bench_footprint_writes_json() {
    // Small sizes (hidden --footprint-sizes): 20 clients sharing 4 connections, 5 on their own.
    let out = run(&[
        "bench",
        "--footprint",
        "--footprint-sizes",
        "20,4,5",
        "--duration",
        "1s",
        "--format",
        "json",
        "--quiet",
    ]);
    let Document::Bench(doc) = document(&out) else {
        panic!("not a bench document: {}", stdout(&out));
    };
    let f = doc.footprint.as_ref().expect("the footprint");
    assert!(doc.comparison.is_none());
    assert_eq!(
        (f.pooled.clients, f.pooled.connections),
        (20, Some(4)),
        "{}",
        json(&doc)
    );
    assert_eq!(
        (f.connections.clients, f.connections.connections),
        (5, None),
        "{}",
        json(&doc)
    );
    for r in f.runs() {
        assert!(r.committed > 0 && r.ops_per_s > 0.0, "{}", json(&doc));
        assert!(
            r.user_s + r.sys_s > 0.0 && r.peak_rss_mib > 1.0 && r.startup_s > 0.0,
            "{}",
            json(&doc)
        );
        let per_1000 = r.cpu_s_per_1000_ops.expect("something committed");
        assert!(
            (per_1000 - (r.user_s + r.sys_s) * 1000.0 / r.committed as f64).abs() < 1e-9,
            "{}",
            json(&doc)
        );
    }
    let text = serde_json::to_string(&doc).unwrap();
    for field in [
        "\"startup_s\"",
        "\"peak_rss_mib\"",
        "\"user_s\"",
        "\"sys_s\"",
    ] {
        assert!(text.contains(field), "{field}: {text}");
    }
    let md = run(&[
        "bench",
        "--footprint",
        "--footprint-sizes",
        "6,2,3",
        "--duration",
        "1s",
        "--format",
        "markdown",
        "--quiet",
    ]);
    assert!(md.status.success(), "{}", stderr(&md));
    let text = stdout(&md);
    assert!(text.contains("| clients |"), "{text}");
    assert!(text.contains("start-up s"), "{text}");
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
        (
            &["bench", "--engine", "mariadb", "--no-pipeline"],
            "no pipelining",
        ),
        (
            &["bench", "--engine", "mariadb", "--duration", "1500ms"],
            "sysbench's --time",
        ),
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
