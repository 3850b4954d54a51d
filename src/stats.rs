//! Counters and latency histograms of one client, merged with `+=` into a cell's totals.
//!
//! Each client owns its [`Stats`] (no sharing, no locks on the hot path); the runner merges them
//! when the clients stop. This module counts; it must not decide what counts as what (the runner
//! does) nor print anything.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::outcome::Abort;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    /// Operations that committed.
    pub committed: u64,
    /// Operations the business logic refused, by outcome name (`sold_out`, ...).
    pub rejected: BTreeMap<String, u64>,
    /// Failed attempts by class (every attempt counts, retried or not).
    #[serde(serialize_with = "ser_aborts", deserialize_with = "de_aborts")]
    pub aborts: [u64; Abort::ALL.len()],
    /// Attempts that were a retry of an earlier failed attempt.
    pub retries: u64,
    /// Operations given up: out of tries, or failed with a class the strategy does not retry.
    pub failed: u64,
    /// Operations that needed more than one attempt and then committed or were rejected.
    pub retried_operations: u64,
    /// Operations in flight when the cell's deadline passed: their statement was cancelled and
    /// they count neither as committed nor as aborted.
    #[serde(default)]
    pub cut: u64,
    /// Flags raised by `flag_if` steps, by name.
    pub flags: BTreeMap<String, u64>,
    /// Attempts that failed with class `other`, by the engine's error code (SQLSTATE or error
    /// number): what the scenario did not map with `reject_on` or `retry_on`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_codes: BTreeMap<String, u64>,
    /// Latency of committed operations, retries included, in microseconds.
    #[serde(serialize_with = "ser_histogram", deserialize_with = "de_histogram")]
    pub latency: Histogram<u64>,
}

/// Latencies are recorded up to an hour (longer ones count as an hour).
const LATENCY_MAX_US: u64 = 3_600_000_000;

impl Default for Stats {
    fn default() -> Self {
        Stats {
            committed: 0,
            rejected: BTreeMap::new(),
            aborts: [0; Abort::ALL.len()],
            retries: 0,
            cut: 0,
            failed: 0,
            retried_operations: 0,
            flags: BTreeMap::new(),
            other_codes: BTreeMap::new(),
            // Grows as slower operations arrive (most cells never need more than a few
            // seconds' range): at 1,000 clients a fixed 1 µs - 1 h range costs 190 KiB each.
            latency: Histogram::new(3).expect("valid precision"),
        }
    }
}

impl Stats {
    pub fn record_commit(&mut self, latency: Duration) {
        self.committed += 1;
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_MAX_US);
        self.latency.record(us).expect("the histogram resizes");
    }

    pub fn record_rejection(&mut self, outcome: &str) {
        bump(&mut self.rejected, outcome);
    }

    pub fn record_flag(&mut self, flag: &str) {
        bump(&mut self.flags, flag);
    }

    /// An attempt failed with class `other` and this error code.
    pub fn record_other_code(&mut self, code: &str) {
        bump(
            &mut self.other_codes,
            if code.is_empty() { "?" } else { code },
        );
    }

    pub fn abort(&self, class: Abort) -> u64 {
        self.aborts[class.index()]
    }

    pub fn total_rejected(&self) -> u64 {
        self.rejected.values().sum()
    }

    pub fn total_aborts(&self) -> u64 {
        self.aborts.iter().sum()
    }

    /// Latency percentile in milliseconds (0 when nothing committed).
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.value_at_quantile(quantile) as f64 / 1000.0
        }
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

impl AddAssign<&Stats> for Stats {
    fn add_assign(&mut self, other: &Stats) {
        self.committed += other.committed;
        for (k, v) in &other.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        for (a, b) in self.aborts.iter_mut().zip(other.aborts) {
            *a += b;
        }
        self.retries += other.retries;
        self.failed += other.failed;
        self.retried_operations += other.retried_operations;
        self.cut += other.cut;
        for (k, v) in &other.flags {
            *self.flags.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.other_codes {
            *self.other_codes.entry(k.clone()).or_default() += v;
        }
        self.latency
            .add(&other.latency)
            .expect("the histogram resizes");
    }
}

fn ser_aborts<S: serde::Serializer>(a: &[u64; Abort::ALL.len()], s: S) -> Result<S::Ok, S::Error> {
    let map: BTreeMap<&str, u64> = Abort::ALL
        .iter()
        .map(|c| (c.name(), a[c.index()]))
        .collect();
    map.serialize(s)
}

/// Classes missing from the map (written before they existed) count 0.
fn de_aborts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u64; Abort::ALL.len()], D::Error> {
    let map = BTreeMap::<Abort, u64>::deserialize(d)?;
    Ok(Abort::ALL.map(|c| map.get(&c).copied().unwrap_or(0)))
}

/// The histogram rebuilt from its buckets (the percentiles written beside them follow from them).
fn de_histogram<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Buckets {
        #[serde(default)]
        buckets: Vec<(u64, u64)>,
    }
    let mut h = Histogram::new(3).map_err(serde::de::Error::custom)?;
    for (value, count) in Buckets::deserialize(d)?.buckets {
        h.record_n(value, count).map_err(serde::de::Error::custom)?;
    }
    Ok(h)
}

/// The histogram as percentiles plus its non-empty buckets (value in µs, count), so a report
/// can be re-analysed later.
fn ser_histogram<S: serde::Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Summary {
        unit: &'static str,
        count: u64,
        min: u64,
        mean: f64,
        p50: u64,
        p95: u64,
        p99: u64,
        max: u64,
        buckets: Vec<(u64, u64)>,
    }
    let empty = h.is_empty();
    let q = |x: f64| if empty { 0 } else { h.value_at_quantile(x) };
    Summary {
        unit: "us",
        count: h.len(),
        min: if empty { 0 } else { h.min() },
        mean: if empty { 0.0 } else { h.mean() },
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        max: if empty { 0 } else { h.max() },
        buckets: h
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
    }
    .serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_everything() {
        let mut a = Stats::default();
        a.record_commit(Duration::from_millis(2));
        a.record_rejection("sold_out");
        a.aborts[Abort::Deadlock.index()] += 1;
        let mut b = Stats::default();
        b.record_commit(Duration::from_millis(4));
        b.record_rejection("sold_out");
        b.record_flag("skew");
        b.retries = 3;
        a += &b;
        assert_eq!(a.committed, 2);
        assert_eq!(a.rejected["sold_out"], 2);
        assert_eq!(a.abort(Abort::Deadlock), 1);
        assert_eq!(a.flags["skew"], 1);
        assert_eq!(a.retries, 3);
        assert_eq!(a.latency.len(), 2);
        assert!(a.latency_ms(1.0) >= 3.9);
    }

    #[test]
    fn reads_back_what_it_writes() {
        let mut a = Stats::default();
        for ms in [1, 2, 2, 3, 5, 8, 13, 210, 3400] {
            a.record_commit(Duration::from_micros(ms * 997));
        }
        a.record_rejection("sold_out");
        a.aborts[Abort::LockUnavailable.index()] = 4;
        let b: Stats = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(b.committed, 9);
        assert_eq!(b.rejected["sold_out"], 1);
        assert_eq!(b.abort(Abort::LockUnavailable), 4);
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            assert_eq!(a.latency_ms(q), b.latency_ms(q), "quantile {q}");
        }
        assert_eq!(a.latency.len(), b.latency.len());
    }
}
