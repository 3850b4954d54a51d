//! `contention report`: a sweep's plot as SVG and PNG, and one self-contained HTML page from a
//! real run, a sweep fixture and a real replay, opened in headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{run, run_json, scratch, stderr, stdout};

/// A small sweep (ticketmaster, clients 1..16, 2 runs per point) in the format `sweep` writes
/// (two sweeps' points in one document; the cells' latency buckets emptied to keep it small).
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep-ticketmaster-clients.json")
}

fn report(args: &[&str]) {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(
        out.status.success(),
        "report {args:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn a_sweep_plots_as_svg_and_png() {
    let dir = scratch();
    let svg = dir.path().join("sweep.svg");
    let png = dir.path().join("sweep.png");
    let fixture = fixture();
    let fixture = fixture.to_str().unwrap();
    report(&[fixture, "--plot", svg.to_str().unwrap()]);
    report(&[fixture, "--plot", png.to_str().unwrap()]);

    let text = std::fs::read_to_string(&svg).unwrap();
    let xml = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let root = xml.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let texts: Vec<&str> = xml
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for needle in [
        "Throughput",
        "p99 latency",
        "Abort rate",
        "Anomaly rate",
        "naive @ rc",
        "naive @ serializable",
        "clients (log₂ scale)",
        "16",
    ] {
        assert!(
            texts.iter().any(|t| t.contains(needle)),
            "no text {needle:?} in the SVG: {texts:?}"
        );
    }
    // Four panels of lines: at least one polyline per series and panel (6 series).
    let lines = xml
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines >= 24, "{lines} polylines");

    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 30_000,
        "suspiciously small PNG: {} bytes",
        bytes.len()
    );
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1600, 1000));
}

#[test]
fn plot_refuses_unknown_extensions_and_non_sweeps() {
    let dir = scratch();
    let fixture = fixture();
    let out = run(&[
        "report",
        fixture.to_str().unwrap(),
        "--plot",
        dir.path().join("x.jpg").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(".svg or .png"), "{}", stderr(&out));

    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, r#"{"hello": 1}"#).unwrap();
    let out = run(&["report", bogus.to_str().unwrap(), "--html", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a contention document"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_shows_report_examples() {
    let out = run(&["report", "--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("contention report r.json --html report.html"),
        "{text}"
    );
}

/// Chromium's binary, or None when the test may skip the browser (CONTENTION_SKIP_BROWSER).
fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return Some(name.to_string());
        }
    }
    if std::env::var_os("CONTENTION_SKIP_BROWSER").is_some() {
        return None;
    }
    panic!(
        "headless Chromium is needed to check the HTML report: apt-get install -y chromium \
         (or set CONTENTION_SKIP_BROWSER=1 to skip this check)"
    );
}

/// Runs headless Chromium on a page with extra arguments; returns its stdout.
fn headless(browser: &str, profile: &Path, page: &Path, args: &[String]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

#[test]
fn one_html_page_for_a_run_a_sweep_and_a_replay_renders_in_chromium() {
    let dir = scratch();
    let (code, run_report) = run_json(&[
        "ticketmaster",
        "--strategy",
        "naive,conditional,serializable",
        "--isolation",
        "rc",
    ]);
    assert_eq!(code, 0);
    let run_path = dir.path().join("run.json");
    std::fs::write(
        &run_path,
        serde_json::to_string_pretty(&run_report).unwrap(),
    )
    .unwrap();

    let out = run(&["replay", "ticketmaster", "--format", "json", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let replay_path = dir.path().join("replay.json");
    std::fs::write(&replay_path, &out.stdout).unwrap();

    let page = dir.path().join("report.html");
    report(&[
        run_path.to_str().unwrap(),
        fixture().to_str().unwrap(),
        replay_path.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch, nothing to run.
    for banned in [
        "<script",
        "<link",
        "<img",
        "<iframe",
        "src=\"http",
        "url(http",
        "@import",
    ] {
        assert!(!html.contains(banned), "the page contains {banned}");
    }
    let without_svg_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !without_svg_ns.contains("http://") && !without_svg_ns.contains("https://"),
        "the page refers to the network"
    );

    let Some(browser) = chromium() else {
        eprintln!("skipping the browser check: CONTENTION_SKIP_BROWSER is set");
        return;
    };
    let profile = dir.path().join("chromium-profile");
    let dom = headless(&browser, &profile, &page, &["--dump-dom".to_string()]);
    for needle in [
        "<table class=\"matrix\"",
        "<table class=\"points\"",
        "<table class=\"timeline\"",
        "<svg",
        "<polyline",
        "naive @ serializable",
        "oversold",
        "seat_count_mismatch",
        "possible",
        "session a",
        "session b",
        "SELECT available FROM concerts WHERE id = 1",
    ] {
        assert!(dom.contains(needle), "the rendered DOM lacks {needle:?}");
    }
    // The matrix has one body row per cell.
    let matrix = &dom[dom.find("<table class=\"matrix\"").unwrap()..];
    let matrix = &matrix[..matrix.find("</table>").unwrap()];
    assert_eq!(matrix.matches("<tr>").count(), 1 + 3, "{matrix}");

    let shot = dir.path().join("report.png");
    headless(
        &browser,
        &profile,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,2400".to_string(),
        ],
    );
    let bytes = std::fs::read(&shot).expect("chromium wrote a screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(
        bytes.len() > 50_000,
        "blank screenshot? {} bytes",
        bytes.len()
    );
    if let Some(keep) = std::env::var_os("CONTENTION_KEEP_REPORT") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&page, keep.join("report.html")).unwrap();
        std::fs::copy(&shot, keep.join("report.png")).unwrap();
    }
}
