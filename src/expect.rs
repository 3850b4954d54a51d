//! Expectations: what a cell of a run (one strategy at one isolation level) must show.
//!
//! The same vocabulary is used in scenario files (`expect.rc = ["anomalies"]`), by `--expect`
//! and by the tests: `anomalies`, `no-anomalies`, `anomaly:NAME`, `aborts:CLASS`,
//! `no-aborts:CLASS`, and for CI the measured ones: `aborts<=5%` (aborted attempts / attempts)
//! and `ops/s>=N` or `ops/s>=0.5*STRATEGY@LEVEL` (a ratio of another cell of the same run).
//! This module parses and checks; it must not run anything.

use std::fmt;
use std::str::FromStr;

use crate::outcome::Abort;
use crate::scenario::Side;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Expectation {
    /// At least one invariant of this side is broken.
    Anomalies,
    /// Every invariant of this side holds.
    NoAnomalies,
    /// This invariant is broken.
    Anomaly(String),
    /// At least one attempt failed with this class.
    Aborts(Abort),
    /// No attempt failed with this class.
    NoAborts(Abort),
    /// Aborted attempts / attempts at most this share (0..1).
    AbortRateAtMost(f64),
    /// Committed operations per second at least `n`, or `n` times another cell's.
    OpsAtLeast { n: f64, of: Option<String> },
}

impl Eq for Expectation {}

impl FromStr for Expectation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("aborts<=") {
            let (num, scale) = match rest.strip_suffix('%') {
                Some(n) => (n, 100.0),
                None => (rest, 1.0),
            };
            let v: f64 = num
                .trim()
                .parse()
                .map_err(|_| format!("`{s}`: expected a share like aborts<=5% or aborts<=0.05"))?;
            return Ok(Expectation::AbortRateAtMost(v / scale));
        }
        if let Some(rest) = s.strip_prefix("ops/s>=") {
            let bad = || format!("`{s}`: expected ops/s>=N or ops/s>=FACTOR*STRATEGY@LEVEL");
            return Ok(match rest.split_once('*') {
                Some((f, cell)) if cell.contains('@') => Expectation::OpsAtLeast {
                    n: f.trim().parse().map_err(|_| bad())?,
                    of: Some(cell.trim().to_string()),
                },
                Some(_) => return Err(bad()),
                None => Expectation::OpsAtLeast {
                    n: rest.trim().parse().map_err(|_| bad())?,
                    of: None,
                },
            });
        }
        Ok(match s.split_once(':') {
            None if s == "anomalies" => Expectation::Anomalies,
            None if s == "no-anomalies" => Expectation::NoAnomalies,
            Some(("anomaly", name)) if !name.is_empty() => Expectation::Anomaly(name.to_string()),
            Some(("aborts", class)) => Expectation::Aborts(class.parse()?),
            Some(("no-aborts", class)) => Expectation::NoAborts(class.parse()?),
            _ => {
                return Err(format!(
                    "unknown expectation `{s}`: expected anomalies, no-anomalies, anomaly:NAME, aborts:CLASS, no-aborts:CLASS, aborts<=5% or ops/s>=N (or N*STRATEGY@LEVEL)"
                ));
            }
        })
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Anomalies => f.write_str("anomalies"),
            Expectation::NoAnomalies => f.write_str("no-anomalies"),
            Expectation::Anomaly(n) => write!(f, "anomaly:{n}"),
            Expectation::Aborts(a) => write!(f, "aborts:{a}"),
            Expectation::NoAborts(a) => write!(f, "no-aborts:{a}"),
            Expectation::AbortRateAtMost(r) => write!(f, "aborts<={}%", r * 100.0),
            Expectation::OpsAtLeast { n, of: None } => write!(f, "ops/s>={n}"),
            Expectation::OpsAtLeast { n, of: Some(c) } => write!(f, "ops/s>={n}*{c}"),
        }
    }
}

impl TryFrom<String> for Expectation {
    type Error = String;
    fn try_from(s: String) -> Result<Expectation, String> {
        s.parse()
    }
}

impl From<Expectation> for String {
    fn from(e: Expectation) -> String {
        e.to_string()
    }
}

/// What a check needs to know of a cell.
pub trait Observed {
    /// (invariant name, side, damage) for every invariant.
    fn invariants(&self) -> Vec<(&str, Side, i64)>;
    fn aborts(&self, class: Abort) -> u64;
    /// Aborted attempts / attempts.
    fn abort_rate(&self) -> f64 {
        0.0
    }
    fn ops_per_s(&self) -> f64 {
        0.0
    }
}

impl Expectation {
    /// `None` when it holds, otherwise why not. `side` says whose invariants
    /// `anomalies`/`no-anomalies` look at.
    pub fn check(&self, cell: &impl Observed, side: Side) -> Option<String> {
        self.check_among(cell, side, &|_| None)
    }

    /// Like `check`, with `ops_of("strategy@level")` giving other cells' throughput.
    pub fn check_among(
        &self,
        cell: &impl Observed,
        side: Side,
        ops_of: &dyn Fn(&str) -> Option<f64>,
    ) -> Option<String> {
        let broken: Vec<String> = cell
            .invariants()
            .into_iter()
            .filter(|(_, s, v)| *s == side && *v != 0)
            .map(|(n, _, v)| format!("{n} = {v}"))
            .collect();
        match self {
            Expectation::Anomalies if broken.is_empty() => Some(format!(
                "expected anomalies, none observed on the {} side",
                side_name(side)
            )),
            Expectation::NoAnomalies if !broken.is_empty() => {
                Some(format!("expected no anomalies, saw {}", broken.join(", ")))
            }
            Expectation::Anomaly(name) => {
                match cell.invariants().into_iter().find(|(n, _, _)| n == name) {
                    None => Some(format!("no invariant named `{name}`")),
                    Some((_, _, 0)) => Some(format!("expected {name} > 0, it held")),
                    Some(_) => None,
                }
            }
            Expectation::Aborts(c) if cell.aborts(*c) == 0 => {
                Some(format!("expected {c} aborts, saw none"))
            }
            Expectation::NoAborts(c) if cell.aborts(*c) > 0 => {
                Some(format!("expected no {c} aborts, saw {}", cell.aborts(*c)))
            }
            Expectation::AbortRateAtMost(max) if cell.abort_rate() > *max => Some(format!(
                "expected aborts <= {:.1}% of attempts, saw {:.1}%",
                max * 100.0,
                cell.abort_rate() * 100.0
            )),
            Expectation::OpsAtLeast { n, of: None } if cell.ops_per_s() < *n => Some(format!(
                "expected ops/s >= {n}, saw {:.1}",
                cell.ops_per_s()
            )),
            Expectation::OpsAtLeast { n, of: Some(other) } => match ops_of(other) {
                None => Some(format!("ops/s>={n}*{other}: no cell {other} in this run")),
                Some(base) if cell.ops_per_s() < n * base => Some(format!(
                    "expected ops/s >= {n} x {other} ({:.1}), saw {:.1}",
                    n * base,
                    cell.ops_per_s()
                )),
                Some(_) => None,
            },
            _ => None,
        }
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Writer => "writer",
        Side::Reader => "reader",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cell(Vec<(&'static str, Side, i64)>, u64);
    impl Observed for Cell {
        fn invariants(&self) -> Vec<(&str, Side, i64)> {
            self.0.clone()
        }
        fn aborts(&self, class: Abort) -> u64 {
            if class == Abort::Serialization {
                self.1
            } else {
                0
            }
        }
    }

    #[test]
    fn parses_the_vocabulary() {
        for s in [
            "anomalies",
            "no-anomalies",
            "anomaly:oversold",
            "aborts:serialization",
            "no-aborts:deadlock",
        ] {
            assert_eq!(s.parse::<Expectation>().unwrap().to_string(), s);
        }
        assert!("aborts:sometimes".parse::<Expectation>().is_err());
        assert_eq!(
            "aborts<=5%".parse::<Expectation>().unwrap(),
            Expectation::AbortRateAtMost(0.05)
        );
        assert_eq!(
            "ops/s>=0.5*for-update@rc".parse::<Expectation>().unwrap(),
            Expectation::OpsAtLeast {
                n: 0.5,
                of: Some("for-update@rc".into())
            }
        );
        assert!("ops/s>=fast".parse::<Expectation>().is_err());
        assert!("maybe".parse::<Expectation>().is_err());
    }

    #[test]
    fn checks_by_side() {
        let cell = Cell(
            vec![
                ("oversold", Side::Writer, 0),
                ("skew_seen", Side::Reader, 3),
            ],
            2,
        );
        assert_eq!(Expectation::NoAnomalies.check(&cell, Side::Writer), None);
        assert!(
            Expectation::NoAnomalies
                .check(&cell, Side::Reader)
                .is_some()
        );
        assert!(Expectation::Anomalies.check(&cell, Side::Writer).is_some());
        assert_eq!(
            Expectation::Aborts(Abort::Serialization).check(&cell, Side::Writer),
            None
        );
        assert!(
            Expectation::Aborts(Abort::Deadlock)
                .check(&cell, Side::Writer)
                .is_some()
        );
        assert!(
            Expectation::Anomaly("oversold".into())
                .check(&cell, Side::Writer)
                .is_some()
        );
    }
}
