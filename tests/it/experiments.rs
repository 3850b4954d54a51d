//! Experiments: sweeps (points, repetitions, result files), CI expectations with scopes and
//! measured rules (a failing one exits 1), and `compare` of two result files.

use contention::report::document::{Document, Kind, VERSION};
use contention::report::sweep::{SweepReport, Swept};

use crate::support::{document, run, scratch, stderr, stdout};

fn sweep_of(doc: Document) -> SweepReport {
    match doc {
        Document::Sweep(s) => *s,
        other => panic!("a {} document, not a sweep", other.kind()),
    }
}

#[test]
fn a_sweep_aggregates_repetitions_and_writes_json_and_csv() {
    let dir = scratch();
    let json = dir.path().join("out/sweep.json");
    let plot = dir.path().join("plots/sweep.svg");
    let out = run(&[
        "sweep",
        "ticketmaster",
        "--strategy",
        "conditional,for-update",
        "--vary",
        "clients=1,4",
        "--param",
        "seats=1000",
        "--operations",
        "20",
        "--think",
        "0ms",
        "--repeat",
        "2",
        "--output",
        json.to_str().unwrap(),
        "--format",
        "json",
        "--quiet",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = sweep_of(document(&out));
    assert_eq!((doc.kind, doc.version), (Kind::Sweep, VERSION));
    assert_eq!(doc.vary, "clients");
    assert_eq!(doc.values, vec![Swept::Int(1), Swept::Int(4)]);
    assert_eq!(doc.points.len(), 4, "2 strategies x 2 values at rc");
    for p in &doc.points {
        assert_eq!(p.runs, 2);
        assert_eq!(p.cells.len(), 2);
        assert!(p.ops_per_s.mean > 0.0);
        assert!(p.ops_per_s.min <= p.ops_per_s.max);
        assert_eq!(p.anomaly_rate.max, 0.0, "correct strategies: no anomalies");
        // Each repetition sold exactly its 20 operations' tickets (seats are plenty).
        for c in &p.cells {
            assert_eq!(c.stats.committed, 20);
        }
    }
    // The file holds the same document, and the CSV one row per point.
    let file = sweep_of(Document::read(&json).unwrap());
    assert_eq!(file.points.len(), 4);
    assert_eq!(
        file.points
            .iter()
            .map(|p| (p.value.clone(), p.ops_per_s))
            .collect::<Vec<_>>(),
        doc.points
            .iter()
            .map(|p| (p.value.clone(), p.ops_per_s))
            .collect::<Vec<_>>()
    );
    let csv = std::fs::read_to_string(json.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.starts_with("scenario,strategy,isolation,vary,value,runs,ops_per_s_mean"),
        "{csv}"
    );
    let svg = std::fs::read_to_string(dir.path().join("plots/sweep.svg"))
        .expect("--plot wrote the figure");
    assert!(
        svg.starts_with("<svg") && svg.contains("Throughput") && svg.contains("for-update @ rc"),
        "{}",
        &svg[..200]
    );
}

#[test]
fn a_sweep_varies_a_parameter_and_names_bad_ones() {
    let out = run(&[
        "sweep",
        "bank-transfer",
        "--strategy",
        "atomic",
        "--vary",
        "hot-accounts=2,8",
        "--duration",
        "200ms",
        "--format",
        "csv",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let csv = stdout(&out);
    assert!(csv.contains("atomic,rc,hot_accounts,2,1"), "{csv}");
    assert!(csv.contains("atomic,rc,hot_accounts,8,1"), "{csv}");
    let bad = run(&["sweep", "ticketmaster", "--vary", "sets=1,2"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--vary sets: neither `clients` nor a parameter of ticketmaster; its parameters: seats, concerts"), "{}", stderr(&bad));
    let bad = run(&["sweep", "ticketmaster", "--vary", "clients=1,two"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--vary clients=two: expected a whole number"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn scoped_and_measured_expectations_exit_1_when_they_fail() {
    let ok = run(&[
        "run",
        "write-skew",
        "--isolation",
        "all",
        "--expect",
        "serializable: no-anomalies",
        "--quiet",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    let bad = run(&[
        "run",
        "write-skew",
        "--isolation",
        "all",
        "--expect",
        "rr: no-anomalies",
        "--quiet",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let text = stdout(&bad);
    assert!(
        text.contains("expectation failed: naive@rr: expected no anomalies, saw uncovered_shifts"),
        "{text}"
    );
    assert!(
        !text.contains("naive@rc: expected"),
        "the scope limits the rule to rr: {text}"
    );
    // Measured rules: abort share and throughput relative to another cell.
    let bad = run(&[
        "run",
        "ticketmaster",
        "--strategy",
        "conditional,version",
        "--expect",
        "version: aborts<=1%",
        "--expect",
        "conditional: ops/s>=1000*version@rc",
        "--quiet",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let text = stdout(&bad);
    assert!(
        text.contains("expectation failed: version@rc: expected aborts <= 1.0% of attempts"),
        "{text}"
    );
    assert!(
        text.contains("expectation failed: conditional@rc: expected ops/s >= 1000 x version@rc"),
        "{text}"
    );
    let unknown = run(&["run", "ticketmaster", "--expect", "ops/s>=fast"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("--expect ops/s>=fast"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn compare_shows_ratios_and_anomaly_changes() {
    let dir = scratch();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    for (file, extra) in [(&a, None), (&b, Some("--no-pipeline"))] {
        let mut args = vec![
            "run",
            "ticketmaster",
            "--strategy",
            "naive,conditional",
            "--output",
            file.to_str().unwrap(),
            "--quiet",
        ];
        args.extend(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(file.with_extension("csv").exists());
    }
    let out = run(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "naive@rc",
        "conditional@rc",
        "ratio",
        "x │",
        "note: settings differ: pipeline true → false",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let missing = run(&["compare", a.to_str().unwrap(), "/nonexistent.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("/nonexistent.json"),
        "{}",
        stderr(&missing)
    );

    // An unknown kind, a newer version and an older file without kind or version.
    let text = std::fs::read_to_string(&a).unwrap();
    let cake = dir.path().join("cake.json");
    std::fs::write(
        &cake,
        text.replacen("\"kind\": \"run\"", "\"kind\": \"cake\"", 1),
    )
    .unwrap();
    let newer = dir.path().join("newer.json");
    let (now, newer_version) = (
        format!("\"version\": {VERSION}"),
        format!("\"version\": {}", VERSION + 1),
    );
    std::fs::write(&newer, text.replacen(&now, &newer_version, 1)).unwrap();
    let newer_text = format!("version {}, written by a newer contention", VERSION + 1);
    for (file, needle) in [
        (&cake, "unknown document kind \"cake\""),
        (&newer, newer_text.as_str()),
    ] {
        let out = run(&["compare", a.to_str().unwrap(), file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(file.to_str().unwrap()) && err.contains(needle),
            "{needle}: {err}"
        );
    }
    let old = dir.path().join("old.json");
    let unversioned =
        text.replacen("\"kind\": \"run\",", "", 1)
            .replacen(&format!("{now},"), "", 1);
    assert!(
        !unversioned.contains("\"kind\": \"run\""),
        "{unversioned:.200}"
    );
    std::fs::write(&old, unversioned).unwrap();
    let out = run(&["compare", old.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("naive@rc"), "{}", stdout(&out));
}

/// A sweep of a scenario on several servers names every node's server, in its JSON, its table
/// and its HTML report.
#[test]
fn a_sweep_on_several_servers_names_every_node() {
    let dir = scratch();
    let json = dir.path().join("saga.json");
    let out = run(&[
        "sweep",
        "saga",
        "--strategy",
        "saga",
        "--vary",
        "clients=1,2",
        "--operations",
        "10",
        "--param",
        "restart_every=0",
        "--output",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("node bank_b: private PostgreSQL"),
        "{}",
        stdout(&out)
    );
    let doc = sweep_of(Document::read(&json).unwrap());
    let names: Vec<&str> = doc.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["bank_a", "bank_b"]);
    let html = dir.path().join("saga.html");
    let out = run(&[
        "report",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("bank_b: private PostgreSQL"), "no nodes row");
}
