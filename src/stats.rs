//! Counters and latency histograms of one client, merged with `+=` into a cell's totals.
//!
//! Each client owns its [`Stats`] counters (no sharing on the hot path); the runner merges them
//! when the clients stop. Latencies of a group of clients go into one [`SharedLatency`] instead
//! (a few shards, each behind its own lock, held for one record): a histogram exact to 3
//! significant digits costs 16 to 100 KiB, too much for each of 10,000 clients. A [`Latency`]
//! allocates nothing until its first value. This module counts; it must not decide what counts
//! as what (the runner does) nor print anything.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::sync::Mutex;
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
    /// Operations whose COMMIT lost its connection: committed or not, the client cannot know.
    /// Counted neither as committed nor as aborted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unknown: u64,
    /// Operations whose final COMMIT succeeded on some nodes and failed on a later one (a
    /// scenario on several servers without two-phase commit). Not retried.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub partial: u64,
    /// Operations that lost a connection (or could not reach a node) outside a COMMIT, without
    /// a `catch`: rolled back by the servers, not retried; the client reconnected.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost: u64,
    /// Faults the steps injected, in the order they happened (at most [`FAULTS_KEPT`] kept;
    /// `faults_total` counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultEvent>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub faults_total: u64,
    /// Latency of committed operations, retries included, in microseconds.
    #[serde(serialize_with = "ser_histogram", deserialize_with = "de_histogram")]
    pub latency: Latency,
}

/// How many injected faults a cell lists one by one (the rest are counted).
pub const FAULTS_KEPT: usize = 200;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One injected fault: when (from the start of the cell), who, where, what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultEvent {
    /// Milliseconds since the clients were released.
    pub at_ms: f64,
    /// `client 3`, `auditor sweeper 0`, or a replay session's name.
    pub who: String,
    /// The step after which it happened (`strategy.lock-only.step[2]`).
    pub step: String,
    /// `pause 300ms`, `crash`.
    pub fault: String,
}

/// Latencies in microseconds, exact to 3 significant digits: a histogram allocated at the first
/// value and grown as slower ones arrive (most cells never need more than a few seconds' range;
/// a fixed 1 µs - 1 h range costs 190 KiB).
#[derive(Debug, Clone, Default)]
pub struct Latency(Option<Box<Histogram<u64>>>);

impl Latency {
    pub fn record(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_MAX_US);
        self.histogram().record(us).expect("the histogram resizes");
    }

    /// The histogram, allocated if it was not yet.
    fn histogram(&mut self) -> &mut Histogram<u64> {
        self.0
            .get_or_insert_with(|| Box::new(Histogram::new(3).expect("valid precision")))
    }

    pub fn add(&mut self, other: &Latency) {
        if let Some(o) = other.0.as_deref().filter(|o| !o.is_empty()) {
            self.histogram().add(o).expect("the histogram resizes");
        }
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The histogram, if it holds any value.
    fn recorded(&self) -> Option<&Histogram<u64>> {
        self.0.as_deref().filter(|h| !h.is_empty())
    }
}

/// The latencies of a group of clients (a role of a cell), recorded concurrently: each client
/// records into the shard its index picks, so two clients wait for the same lock only when
/// they finish an operation at the same instant on two threads and share a shard.
#[derive(Debug)]
pub struct SharedLatency {
    shards: Box<[Mutex<Latency>]>,
}

impl SharedLatency {
    /// Shards for `clients` clients: a few per thread of the machine, at most one per client.
    pub fn new(clients: u32) -> SharedLatency {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let n = (threads * 4).min(clients.max(1) as usize);
        SharedLatency {
            shards: (0..n).map(|_| Mutex::default()).collect(),
        }
    }

    /// Records client `client`'s latency.
    pub fn record(&self, client: u32, latency: Duration) {
        let shard = &self.shards[client as usize % self.shards.len()];
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .record(latency);
    }

    /// Everything recorded so far, merged (and taken out).
    pub fn take(&self) -> Latency {
        let mut all = Latency::default();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            all.add(&std::mem::take(&mut *shard));
        }
        all
    }
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
            unknown: 0,
            partial: 0,
            lost: 0,
            faults: Vec::new(),
            faults_total: 0,
            latency: Latency::default(),
        }
    }
}

impl Stats {
    pub fn record_commit(&mut self, latency: Duration) {
        self.committed += 1;
        self.latency.record(latency);
    }

    /// Counts a commit here and records its latency into the clients' shared histogram
    /// (client `client`'s shard).
    pub fn record_shared_commit(&mut self, latency: Duration, into: &SharedLatency, client: u32) {
        self.committed += 1;
        into.record(client, latency);
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

    /// An injected fault (kept in the list while it has room).
    pub fn record_fault(&mut self, event: FaultEvent) {
        self.faults_total += 1;
        if self.faults.len() < FAULTS_KEPT {
            self.faults.push(event);
        }
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
        self.latency
            .recorded()
            .map_or(0.0, |h| h.value_at_quantile(quantile) as f64 / 1000.0)
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
        self.unknown += other.unknown;
        self.partial += other.partial;
        self.lost += other.lost;
        self.faults_total += other.faults_total;
        for f in &other.faults {
            if self.faults.len() < FAULTS_KEPT {
                self.faults.push(f.clone());
            }
        }
        self.faults.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        self.latency.add(&other.latency);
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
fn de_histogram<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Latency, D::Error> {
    #[derive(Deserialize)]
    struct Buckets {
        #[serde(default)]
        buckets: Vec<(u64, u64)>,
    }
    let mut latency = Latency::default();
    for (value, count) in Buckets::deserialize(d)?.buckets {
        latency
            .histogram()
            .record_n(value, count)
            .map_err(serde::de::Error::custom)?;
    }
    Ok(latency)
}

/// The histogram as percentiles plus its non-empty buckets (value in µs, count), so a report
/// can be re-analysed later.
fn ser_histogram<S: serde::Serializer>(latency: &Latency, s: S) -> Result<S::Ok, S::Error> {
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
    let h = latency.recorded();
    let q = |x: f64| h.map_or(0, |h| h.value_at_quantile(x));
    Summary {
        unit: "us",
        count: latency.len(),
        min: h.map_or(0, |h| h.min()),
        mean: h.map_or(0.0, |h| h.mean()),
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        max: h.map_or(0, |h| h.max()),
        buckets: h
            .into_iter()
            .flat_map(|h| h.iter_recorded())
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
    fn shared_latency_is_the_merge_of_its_clients() {
        let shared = SharedLatency::new(7);
        let mut alone = Latency::default();
        for client in 0..20u32 {
            let d = Duration::from_micros(u64::from(client) * 1_337 + 5);
            shared.record(client, d);
            alone.record(d);
        }
        let merged = shared.take();
        assert_eq!(merged.len(), 20);
        let (a, b) = (merged.recorded().unwrap(), alone.recorded().unwrap());
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q));
        }
        assert!(shared.take().is_empty(), "taken out");
        assert_eq!(Stats::default().latency_ms(0.5), 0.0);
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
