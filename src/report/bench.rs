//! `contention bench`'s results as data ([`BenchReport`]): the lab against its peer program
//! ([`Peer`]: pgbench on PostgreSQL, sysbench on MariaDB) round by round with the figures the
//! table shows (mean throughput, the median of the rounds' ratios and their
//! range, CPU per transaction and its ratio with the rounds' range), or `--footprint`'s CPU, peak memory and start-up
//! of child `contention run`s; rendered as a table,
//! Markdown, CSV or JSON. It aggregates and formats; it must not run or time anything (the
//! command measures).

use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use tabled::builder::Builder;
use tabled::settings::Alignment;
use tabled::settings::object::Columns;

use super::Format;
use super::document::Kind;
use crate::engine::ServerInfo;

/// Everything one `contention bench` printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`Kind::Bench`].
    pub kind: Kind,
    #[serde(default)]
    pub version: u32,
    pub tool: String,
    pub server: ServerInfo,
    /// The program the lab is compared with (files without it are pgbench's).
    #[serde(default)]
    pub peer: Peer,
    /// The scenario the lab ran (`tpcb`) and pgbench's scale factor, for both sides.
    pub scenario: String,
    pub scale: u32,
    /// Length of each run, in seconds.
    pub duration_s: f64,
    pub seed: u64,
    /// The lab sent BEGIN and COMMIT with the neighbouring statement (`--no-pipeline`, and
    /// always on MariaDB: off).
    pub pipeline: bool,
    /// The peer against the lab (not with `--footprint`).
    pub comparison: Option<Comparison>,
    /// `--footprint`: the lab's own CPU, memory and start-up.
    pub footprint: Option<Footprint>,
    pub interrupted: bool,
}

/// The program that runs pgbench's TPC-B-like transaction beside the lab: each engine's own
/// benchmark client.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    /// PostgreSQL's pgbench and its built-in script.
    #[default]
    Pgbench,
    /// sysbench with the repository's `bench/tpcb.lua` (MariaDB/MySQL).
    Sysbench,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Pgbench => "pgbench",
            Peer::Sysbench => "sysbench",
        }
    }

    /// What it runs.
    pub fn script(self) -> &'static str {
        match self {
            Peer::Pgbench => "pgbench's TPC-B-like script",
            Peer::Sysbench => "sysbench with bench/tpcb.lua, pgbench's TPC-B-like script",
        }
    }
}

/// The peer and the lab at each client count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// Rounds asked for (a row has fewer when interrupted).
    pub rounds: u32,
    pub rows: Vec<BenchRow>,
}

/// One side's run: throughput (the peer's tps, the lab's committed ops/s) and the client
/// program's own CPU time (user + sys) per transaction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub per_sec: f64,
    pub cpu_us_per_txn: f64,
}

/// One round: a peer run and a lab run, back to back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Round {
    #[serde(alias = "pgbench")]
    pub peer: Sample,
    pub contention: Sample,
}

/// The median of the rounds' ratios and their range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// One client count: its rounds and the figures of its table row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub clients: u32,
    pub rounds: Vec<Round>,
    /// Means over the rounds.
    #[serde(alias = "pgbench_tps")]
    pub peer_tps: f64,
    pub contention_ops_per_s: f64,
    /// contention / peer: the median of the rounds (none when the peer did nothing).
    pub ratio: Option<Ratio>,
    #[serde(alias = "pgbench_cpu_us_per_txn")]
    pub peer_cpu_us_per_txn: f64,
    pub contention_cpu_us_per_op: f64,
    /// contention's CPU per operation / the peer's per transaction, of the means (none when
    /// the peer's is 0; files written before it: none).
    #[serde(default)]
    pub cpu_ratio: Option<f64>,
    /// The same ratio round by round: its median and range, which say how far `cpu_ratio` can
    /// be read (a range across 1.00 is level). None when no round's peer spent CPU; files
    /// written before it: none.
    #[serde(default)]
    pub cpu_ratios: Option<Ratio>,
}

impl BenchRow {
    /// The row's figures from its rounds (at least one). The ratio is the median of the rounds'
    /// ratios: each round's two runs are neighbours in time, so their ratio is steadier on a
    /// shared machine than a ratio of means.
    pub fn new(clients: u32, rounds: Vec<Round>) -> BenchRow {
        let mean = |f: &dyn Fn(&Round) -> f64| {
            rounds.iter().map(f).sum::<f64>() / rounds.len().max(1) as f64
        };
        let ratio = Ratio::of(&rounds, |r| r.contention.per_sec, |r| r.peer.per_sec);
        let cpu_ratios = Ratio::of(
            &rounds,
            |r| r.contention.cpu_us_per_txn,
            |r| r.peer.cpu_us_per_txn,
        );
        let (peer_cpu, lab_cpu) = (
            mean(&|r| r.peer.cpu_us_per_txn),
            mean(&|r| r.contention.cpu_us_per_txn),
        );
        BenchRow {
            clients,
            peer_tps: mean(&|r| r.peer.per_sec),
            contention_ops_per_s: mean(&|r| r.contention.per_sec),
            ratio,
            peer_cpu_us_per_txn: peer_cpu,
            contention_cpu_us_per_op: lab_cpu,
            cpu_ratio: (peer_cpu > 0.0).then(|| lab_cpu / peer_cpu),
            cpu_ratios,
            rounds,
        }
    }
}

impl Ratio {
    /// The median and range of `lab / peer` over the rounds whose `peer` figure is not 0.
    fn of(rounds: &[Round], lab: fn(&Round) -> f64, peer: fn(&Round) -> f64) -> Option<Ratio> {
        let mut ratios: Vec<f64> = rounds
            .iter()
            .filter(|r| peer(r) > 0.0)
            .map(|r| lab(r) / peer(r))
            .collect();
        ratios.sort_by(f64::total_cmp);
        (!ratios.is_empty()).then(|| Ratio {
            median: median(&ratios),
            min: ratios[0],
            max: ratios[ratios.len() - 1],
        })
    }
}

/// The median of sorted values (not empty).
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// `--footprint`: the lab's own resources at many clients, each size in a child `contention run`
/// of one cell on the bench's server (so the child's memory is the lab's alone, not a private
/// server's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Footprint {
    /// Many logical clients sharing a pool of connections (`--connections`).
    pub pooled: FootprintRun,
    /// Clients with a connection each.
    pub connections: FootprintRun,
}

/// One child `contention run`: one tpcb cell at rc.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FootprintRun {
    pub clients: u32,
    /// The pool's size (none: a connection per client).
    pub connections: Option<u32>,
    pub committed: u64,
    pub ops_per_s: f64,
    /// CPU of the child, from its start to its exit (reset, connecting, the run, the report).
    pub user_s: f64,
    pub sys_s: f64,
    /// (user + sys) per 1,000 committed operations (none when nothing committed).
    pub cpu_s_per_1000_ops: Option<f64>,
    /// The clients' start-up: from the reset database to the start barrier (compiling the
    /// statements, connecting or pooling the clients, starting their tasks).
    pub startup_s: f64,
    /// The child's peak resident memory (`VmHWM`).
    pub peak_rss_mib: f64,
}

impl FootprintRun {
    /// `cpu_s_per_1000_ops` follows from the others.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        clients: u32,
        connections: Option<u32>,
        committed: u64,
        ops_per_s: f64,
        user_s: f64,
        sys_s: f64,
        startup_s: f64,
        peak_rss_mib: f64,
    ) -> FootprintRun {
        FootprintRun {
            clients,
            connections,
            committed,
            ops_per_s,
            user_s,
            sys_s,
            cpu_s_per_1000_ops: (committed > 0)
                .then(|| (user_s + sys_s) * 1000.0 / committed as f64),
            startup_s,
            peak_rss_mib,
        }
    }

    /// The pool's size, or `own` (a connection per client).
    fn connections_text(&self) -> String {
        self.connections
            .map_or_else(|| "own".into(), |n| n.to_string())
    }
}

impl Footprint {
    pub fn runs(&self) -> [&FootprintRun; 2] {
        [&self.pooled, &self.connections]
    }
}

fn ratio_note(peer: Peer) -> String {
    let peer = peer.name();
    format!(
        "ratio: contention / {peer}, the median of the rounds (their range in brackets); \
         throughput and CPU: means of the rounds; CPU: each client program's own user + sys time \
         ({peer}'s from connecting to exiting, the lab's from resetting its tables to the end); \
         CPU ratio: contention's / {peer}'s, of the means (the rounds' range in brackets: a range \
         across 1.00 is level)"
    )
}

impl BenchReport {
    /// `PostgreSQL 15.20 (Debian ...)`, without the platform.
    fn server_line(&self) -> &str {
        self.server
            .version
            .split(" on ")
            .next()
            .unwrap_or(&self.server.version)
    }

    fn duration(&self) -> String {
        humantime::format_duration(std::time::Duration::from_secs_f64(self.duration_s)).to_string()
    }
}

pub fn render(r: &BenchReport, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => render_table(r, false, out),
        Format::Markdown => render_table(r, true, out),
        Format::Csv => render_csv(r, out),
        Format::Json => super::json(out, r),
    }
}

fn ratio_text(r: Option<Ratio>, rounds: usize) -> String {
    match r {
        None => "-".into(),
        Some(r) if rounds == 1 => format!("{:.2}", r.median),
        Some(r) => format!("{:.2} ({:.2}-{:.2})", r.median, r.min, r.max),
    }
}

/// The CPU ratio of the means, with the rounds' range when there are several.
fn cpu_ratio_text(row: &BenchRow) -> String {
    match (row.cpu_ratio, row.cpu_ratios) {
        (None, _) => "-".into(),
        (Some(c), Some(r)) if row.rounds.len() > 1 => {
            format!("{c:.2} ({:.2}-{:.2})", r.min, r.max)
        }
        (Some(c), _) => format!("{c:.2}"),
    }
}

fn render_table(r: &BenchReport, markdown: bool, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", r.server_line())?;
    if let Some(c) = &r.comparison {
        let framing = match (r.peer, r.pipeline) {
            (Peer::Pgbench, true) => {
                "the lab sends BEGIN and COMMIT with the neighbouring statement (5 round trips per \
                 transaction, pgbench 7; --no-pipeline for 7)"
            }
            (Peer::Pgbench, false) => {
                "the lab sends every statement on its own, as pgbench does (7 round trips per transaction)"
            }
            (Peer::Sysbench, _) => {
                "the lab sends every statement on its own, as sysbench does (7 round trips per \
                 transaction: the MySQL protocol has no pipelining)"
            }
        };
        writeln!(
            out,
            "{} ({}), scale {}, {} per run, {} round{}, rc;\n{framing}",
            r.scenario,
            r.peer.script(),
            r.scale,
            r.duration(),
            c.rounds,
            if c.rounds == 1 { "" } else { "s" },
        )?;
        let mut b = Builder::default();
        let peer = r.peer.name();
        b.push_record([
            "clients".to_string(),
            format!("{peer} tps"),
            "contention ops/s".into(),
            "ratio".into(),
            format!("{peer} CPU µs/txn"),
            "contention CPU µs/op".into(),
            "CPU ratio".into(),
        ]);
        for row in c.rows.iter().filter(|row| !row.rounds.is_empty()) {
            b.push_record([
                row.clients.to_string(),
                format!("{:.0}", row.peer_tps),
                format!("{:.0}", row.contention_ops_per_s),
                ratio_text(row.ratio, row.rounds.len()),
                format!("{:.0}", row.peer_cpu_us_per_txn),
                format!("{:.0}", row.contention_cpu_us_per_op),
                cpu_ratio_text(row),
            ]);
        }
        let mut t = b.build();
        super::style(&mut t, markdown);
        t.modify(Columns::new(1..), Alignment::right());
        writeln!(out, "{t}\n{}", ratio_note(r.peer))?;
    }
    if let Some(f) = &r.footprint {
        writeln!(
            out,
            "contention's own footprint: {}, scale {}, {} run, rc, each size in a child `contention run` (CPU = the child, start to exit; start-up = the reset database to the start barrier; peak RSS = the child's VmHWM)",
            r.scenario,
            r.scale,
            r.duration(),
        )?;
        let mut b = Builder::default();
        b.push_record([
            "clients",
            "connections",
            "committed",
            "ops/s",
            "start-up s",
            "user s",
            "sys s",
            "CPU s per 1000 ops",
            "peak RSS MiB",
        ]);
        for run in f.runs() {
            b.push_record([
                run.clients.to_string(),
                run.connections_text(),
                run.committed.to_string(),
                format!("{:.0}", run.ops_per_s),
                format!("{:.2}", run.startup_s),
                format!("{:.2}", run.user_s),
                format!("{:.2}", run.sys_s),
                run.cpu_s_per_1000_ops
                    .map_or_else(|| "-".into(), |c| format!("{c:.3}")),
                format!("{:.1}", run.peak_rss_mib),
            ]);
        }
        let mut t = b.build();
        super::style(&mut t, markdown);
        t.modify(Columns::new(0..), Alignment::right());
        writeln!(out, "{t}")?;
    }
    if r.interrupted {
        writeln!(out, "interrupted: partial results")?;
    }
    Ok(())
}

/// One line per client count (or per footprint size), every figure of the table; the
/// peer's columns carry its name (`pgbench_tps`, `sysbench_tps`).
pub fn render_csv(r: &BenchReport, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let f3 = |x: f64| format!("{x:.3}");
    if let Some(c) = &r.comparison {
        let peer = r.peer.name();
        w.write_record([
            "clients".to_string(),
            "rounds".into(),
            format!("{peer}_tps"),
            "contention_ops_per_s".into(),
            "ratio_median".into(),
            "ratio_min".into(),
            "ratio_max".into(),
            format!("{peer}_cpu_us_per_txn"),
            "contention_cpu_us_per_op".into(),
            "cpu_ratio".into(),
            "cpu_ratio_min".into(),
            "cpu_ratio_max".into(),
            "pipeline".into(),
        ])?;
        for row in &c.rows {
            let ratio = |f: fn(&Ratio) -> f64| {
                row.ratio
                    .as_ref()
                    .map_or(String::new(), |r| format!("{:.4}", f(r)))
            };
            let cpu = |f: fn(&Ratio) -> f64| {
                row.cpu_ratios
                    .as_ref()
                    .map_or(String::new(), |r| format!("{:.4}", f(r)))
            };
            w.write_record([
                row.clients.to_string(),
                row.rounds.len().to_string(),
                f3(row.peer_tps),
                f3(row.contention_ops_per_s),
                ratio(|r| r.median),
                ratio(|r| r.min),
                ratio(|r| r.max),
                f3(row.peer_cpu_us_per_txn),
                f3(row.contention_cpu_us_per_op),
                row.cpu_ratio.map_or(String::new(), |c| format!("{c:.4}")),
                cpu(|r| r.min),
                cpu(|r| r.max),
                r.pipeline.to_string(),
            ])?;
        }
    }
    if let Some(f) = &r.footprint {
        w.write_record([
            "clients",
            "connections",
            "committed",
            "ops_per_s",
            "startup_s",
            "user_s",
            "sys_s",
            "cpu_s_per_1000_ops",
            "peak_rss_mib",
        ])?;
        for run in f.runs() {
            w.write_record([
                run.clients.to_string(),
                run.connections_text(),
                run.committed.to_string(),
                f3(run.ops_per_s),
                f3(run.startup_s),
                f3(run.user_s),
                f3(run.sys_s),
                run.cpu_s_per_1000_ops.map_or(String::new(), f3),
                f3(run.peak_rss_mib),
            ])?;
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(pg: f64, lab: f64) -> Round {
        cpu_round(pg, lab, 100.0, 80.0)
    }

    fn cpu_round(pg: f64, lab: f64, pg_cpu: f64, lab_cpu: f64) -> Round {
        Round {
            peer: Sample {
                per_sec: pg,
                cpu_us_per_txn: pg_cpu,
            },
            contention: Sample {
                per_sec: lab,
                cpu_us_per_txn: lab_cpu,
            },
        }
    }

    #[test]
    fn files_written_before_the_peer_read_as_pgbench() {
        let sample = r#"{"per_sec": 100.0, "cpu_us_per_txn": 90.0}"#;
        let row = format!(
            r#"{{"clients": 1, "rounds": [{{"pgbench": {sample}, "contention": {sample}}}],
            "pgbench_tps": 100.0, "contention_ops_per_s": 100.0, "ratio": null,
            "pgbench_cpu_us_per_txn": 90.0, "contention_cpu_us_per_op": 90.0}}"#
        );
        let row: BenchRow = serde_json::from_str(&row).unwrap();
        assert_eq!((row.peer_tps, row.peer_cpu_us_per_txn), (100.0, 90.0));
        assert_eq!(row.rounds[0].peer.per_sec, 100.0);
        assert_eq!(Peer::default(), Peer::Pgbench);
        let written = serde_json::to_string(&row).unwrap();
        assert!(
            written.contains("\"peer_tps\"") && !written.contains("pgbench"),
            "{written}"
        );
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[0.9]), 0.9);
        assert_eq!(median(&[0.8, 1.0, 1.3]), 1.0);
        assert_eq!(median(&[0.8, 1.0, 1.2, 1.3]), 1.1);
    }

    #[test]
    fn a_row_is_the_rounds_means_and_median_ratio() {
        let row = BenchRow::new(
            8,
            vec![round(100.0, 150.0), round(200.0, 200.0), round(100.0, 90.0)],
        );
        assert!((row.peer_tps - 400.0 / 3.0).abs() < 1e-9);
        assert!((row.contention_ops_per_s - 440.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            row.ratio,
            Some(Ratio {
                median: 1.0,
                min: 0.9,
                max: 1.5
            })
        );
        let none = BenchRow::new(1, vec![round(0.0, 10.0)]);
        assert_eq!(none.ratio, None);
        assert_eq!(ratio_text(none.ratio, 1), "-");
        assert_eq!(ratio_text(row.ratio, 3), "1.00 (0.90-1.50)");
    }

    #[test]
    fn the_cpu_ratio_is_of_the_means_with_the_rounds_range() {
        let row = BenchRow::new(
            1,
            vec![
                cpu_round(100.0, 100.0, 100.0, 96.0),
                cpu_round(100.0, 100.0, 50.0, 54.0),
                cpu_round(100.0, 100.0, 150.0, 150.0),
            ],
        );
        // Means 100 against 100; rounds 0.96, 1.08 and 1.00.
        assert!((row.cpu_ratio.unwrap() - 1.0).abs() < 1e-9);
        let r = row.cpu_ratios.unwrap();
        assert!((r.median - 1.0).abs() < 1e-9 && (r.min - 0.96).abs() < 1e-9);
        assert!((r.max - 1.08).abs() < 1e-9);
        assert_eq!(cpu_ratio_text(&row), "1.00 (0.96-1.08)");
        let one = BenchRow::new(1, vec![cpu_round(100.0, 100.0, 100.0, 90.0)]);
        assert_eq!(cpu_ratio_text(&one), "0.90");
        let idle = BenchRow::new(1, vec![cpu_round(100.0, 100.0, 0.0, 90.0)]);
        assert_eq!(
            (idle.cpu_ratios, cpu_ratio_text(&idle).as_str()),
            (None, "-")
        );
    }
}
