//! Histories in the format of Jepsen's Elle (`--history FILE.jsonl`): every attempt of every
//! client as an `invoke` and its completion (`ok`, `fail`, `info`), with the micro-operations
//! that the scenario's `history` step annotations name, for an independent checker (`adya
//! check`, `elle-cli`).
//!
//! Besides Elle's keys, each event carries `steps`: for each micro-operation, the number of the
//! scenario step that did it (from 1), so a report can show a checker's transactions as the
//! lab's own steps (checkers ignore keys they do not know).
//!
//! Each client records into its own [`Recorder`] (no locks, nothing shared while it runs); when
//! the client ends, its log joins the cell's [`Sink`], which merges the logs by time and writes
//! one JSON line per event. A run without `--history` creates no recorder and does no work here.
//! This module records and writes; it must not decide how an attempt ended (the client loop
//! does) nor run a checker (see `report::checker`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use serde_json::{Value as Json, json};

use crate::engine::EngineKind;
use crate::isolation::Isolation;
use crate::scenario::{HistoryModel, MopKind, Value};

/// How an attempt ended, as the history says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Committed.
    Ok,
    /// Certainly not committed: aborted, rolled back, rejected.
    Fail,
    /// Unknown: cut at the deadline, interrupted, the connection lost.
    Info,
}

impl Completion {
    fn name(self) -> &'static str {
        match self {
            Completion::Ok => "ok",
            Completion::Fail => "fail",
            Completion::Info => "info",
        }
    }
}

/// One micro-operation: `["append", k, v]`, `["r", k, [..]]`, `["w", k, v]`, `["r", k, v]`.
/// Kept as the lab's values while the client runs; turned into JSON when the history is written.
#[derive(Debug, Clone)]
struct Mop {
    f: MopKind,
    key: Value,
    value: Value,
    /// The step that did it (from 1, as schedules number them).
    step: u32,
}

/// A micro-operation as an event shows it: a read's value only on an `ok` completion (`null`
/// on an invocation, where it is not known yet, and on `fail` and `info`, where it never
/// happened).
struct Shown<'a> {
    mop: &'a Mop,
    model: HistoryModel,
    read_known: bool,
}

impl serde::Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let m = self.mop;
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(m.f.name())?;
        t.serialize_element(&scalar(&m.key))?;
        match (m.f, self.read_known, self.model) {
            (MopKind::Read, false, _) => t.serialize_element(&Json::Null)?,
            (MopKind::Read, true, HistoryModel::ListAppend) => {
                t.serialize_element(&list(&m.value))?
            }
            _ => t.serialize_element(&scalar(&m.value))?,
        }
        t.end()
    }
}

/// One event of the history, as written.
#[derive(serde::Serialize)]
struct Event<'a> {
    index: usize,
    #[serde(rename = "type")]
    kind: &'static str,
    process: u32,
    f: &'static str,
    time: u64,
    value: Vec<Shown<'a>>,
    steps: Vec<u32>,
}

/// One attempt: when it was invoked and completed (ns since the cell's origin), how it ended.
#[derive(Debug)]
struct Op {
    invoked: u64,
    completed: u64,
    how: Completion,
    mops: Vec<Mop>,
}

/// Process ids of clients that are not writers (auditors) start here.
pub const OTHER_PROCESSES: u32 = 1_000_000;

/// Where the clients of one cell leave their logs.
#[derive(Debug)]
pub struct Sink {
    origin: Instant,
    model: HistoryModel,
    next_process: AtomicU32,
    logs: Mutex<Vec<(u32, Vec<Op>)>>,
}

impl Sink {
    pub fn new(model: HistoryModel) -> Sink {
        Sink {
            origin: Instant::now(),
            model,
            next_process: AtomicU32::new(0),
            logs: Mutex::new(Vec::new()),
        }
    }

    /// A recorder for one client, under a process id of its own: `process` (a writer's client
    /// number, a replay session's index), or else one from [`OTHER_PROCESSES`] on (auditors).
    pub fn recorder(self: &std::sync::Arc<Self>, process: Option<u32>) -> Recorder {
        Recorder {
            sink: self.clone(),
            process: process.unwrap_or_else(|| {
                OTHER_PROCESSES + self.next_process.fetch_add(1, Ordering::Relaxed)
            }),
            ops: Vec::new(),
            open: None,
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// The merged history, ordered by time and indexed from 0, one event at a time.
    fn each_event(
        &self,
        mut f: impl FnMut(Event<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let logs = self
            .logs
            .lock()
            .map_err(|_| anyhow::anyhow!("a client panicked while recording the history"))?;
        // (time, process, sequence in the process, op, completion?)
        let mut order: Vec<(u64, u32, usize, &Op, bool)> = Vec::new();
        for (process, ops) in logs.iter() {
            for (i, op) in ops.iter().enumerate() {
                order.push((op.invoked, *process, 2 * i, op, false));
                order.push((op.completed, *process, 2 * i + 1, op, true));
            }
        }
        order.sort_unstable_by_key(|&(t, p, s, _, _)| (t, p, s));
        let operations = order.len() / 2;
        for (index, (time, process, _, op, done)) in order.into_iter().enumerate() {
            let kind = match (done, op.how) {
                (false, _) => "invoke",
                (true, how) => how.name(),
            };
            let read_known = done && op.how == Completion::Ok;
            f(Event {
                index,
                kind,
                process,
                f: "txn",
                time,
                value: op
                    .mops
                    .iter()
                    .map(|mop| Shown {
                        mop,
                        model: self.model,
                        read_known,
                    })
                    .collect(),
                steps: op.mops.iter().map(|m| m.step).collect(),
            })?;
        }
        Ok(operations)
    }

    /// The merged history as JSON values (for tests and small histories).
    pub fn events(&self) -> Vec<Json> {
        let mut out = Vec::new();
        self.each_event(|e| {
            out.push(serde_json::to_value(&e)?);
            Ok(())
        })
        .expect("events serialize");
        out
    }

    /// Writes the merged history as JSON lines; returns the number of operations (invocations).
    pub fn write(&self, path: &Path) -> anyhow::Result<usize> {
        let shown = || format!("--history {}", path.display());
        let file = std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", shown()))?;
        let mut out = std::io::BufWriter::new(file);
        let operations = self.each_event(|e| {
            serde_json::to_writer(&mut out, &e)?;
            out.write_all(b"\n")?;
            Ok(())
        })?;
        out.flush()
            .map_err(|e| anyhow::anyhow!("{}: {e}", shown()))?;
        Ok(operations)
    }

    pub fn model(&self) -> HistoryModel {
        self.model
    }
}

/// One client's log. Dropped with the client: an attempt still open then (cut at the deadline,
/// interrupted, its connection lost) is completed as `info`, and the log joins the sink.
#[derive(Debug)]
pub struct Recorder {
    sink: std::sync::Arc<Sink>,
    process: u32,
    ops: Vec<Op>,
    open: Option<(u64, Vec<Mop>)>,
}

impl Recorder {
    /// An attempt begins.
    pub fn invoke(&mut self) {
        self.open = Some((self.sink.now(), Vec::new()));
    }

    /// Step `step` (from 1) of the attempt did `f` on `key` with `value` (for a read: the column
    /// read).
    pub fn mop(&mut self, step: usize, f: MopKind, key: &Value, value: &Value) {
        let Some((_, mops)) = &mut self.open else {
            return;
        };
        mops.push(Mop {
            f,
            key: key.clone(),
            value: value.clone(),
            step: step as u32,
        });
    }

    /// The attempt ended.
    pub fn complete(&mut self, how: Completion) {
        if let Some((invoked, mops)) = self.open.take() {
            self.ops.push(Op {
                invoked,
                completed: self.sink.now(),
                how,
                mops,
            });
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.complete(Completion::Info);
        let ops = std::mem::take(&mut self.ops);
        if let Ok(mut logs) = self.sink.logs.lock() {
            logs.push((self.process, ops));
        }
    }
}

/// A key or a register's value: an integer or a string (`null` for SQL NULL).
fn scalar(v: &Value) -> Json {
    match v {
        Value::Int(i) => json!(i),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_or_else(|_| json!(s), |i| json!(i)),
        Value::Empty => Json::Null,
        other => crate::scenario::expr::to_json(other),
    }
}

/// A list read: a text column `1,2,3` (or empty, or NULL: the empty list), elements integers
/// where they parse.
fn list(v: &Value) -> Json {
    match v {
        Value::Empty => json!([]),
        Value::Tuple(t) => t.iter().map(scalar).collect(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| e.parse::<i64>().map_or_else(|_| json!(e), |i| json!(i)))
            .collect(),
        other => json!([scalar(other)]),
    }
}

/// The history file of one cell: `h.jsonl` -> `h.STRATEGY.LEVEL.ENGINE.jsonl`.
pub fn cell_path(base: &Path, strategy: &str, level: Isolation, engine: EngineKind) -> PathBuf {
    tagged(
        base,
        &format!("{strategy}.{}.{}", level.short(), engine.name()),
    )
}

/// `h.jsonl` with a tag before the extension: `h.TAG.jsonl` (a sweep's point: `clients=8`).
pub fn tagged(base: &Path, tag: &str) -> PathBuf {
    let stem = match base.extension().and_then(|e| e.to_str()) {
        Some("jsonl") | Some("json") => base.with_extension(""),
        _ => base.to_path_buf(),
    };
    let mut name = stem
        .file_name()
        .map_or_else(|| "history".into(), |n| n.to_string_lossy().into_owned());
    name.push('.');
    name.push_str(&tag.replace(['/', ' ', ','], "_"));
    name.push_str(".jsonl");
    stem.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn events_pair_and_order() {
        let sink = Arc::new(Sink::new(HistoryModel::ListAppend));
        {
            let mut a = sink.recorder(Some(0));
            let mut b = sink.recorder(Some(1));
            a.invoke();
            a.mop(1, MopKind::Append, &Value::Int(1), &Value::Int(11));
            b.invoke();
            b.mop(
                1,
                MopKind::Read,
                &Value::Int(1),
                &Value::String("11,12".into()),
            );
            a.complete(Completion::Ok);
            b.complete(Completion::Fail);
            b.invoke();
            b.mop(2, MopKind::Read, &Value::Int(2), &Value::Empty);
            // b is dropped with an open attempt: info.
        }
        let ev = sink.events();
        assert_eq!(ev.len(), 6);
        let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["invoke", "invoke", "ok", "fail", "invoke", "info"]);
        assert_eq!(ev[1]["value"], json!([["r", 1, null]]));
        assert_eq!(ev[3]["value"], json!([["r", 1, null]]));
        assert_eq!(ev[2]["value"], json!([["append", 1, 11]]));
        assert_eq!(ev[5]["value"], json!([["r", 2, null]]));
        for (i, e) in ev.iter().enumerate() {
            assert_eq!(e["index"], json!(i));
        }
    }

    #[test]
    fn list_reads_parse() {
        assert_eq!(list(&Value::String("1, 2,x".into())), json!([1, 2, "x"]));
        assert_eq!(list(&Value::String(String::new())), json!([]));
        assert_eq!(list(&Value::Empty), json!([]));
    }

    #[test]
    fn one_file_per_cell() {
        let p = cell_path(
            Path::new("out/h.jsonl"),
            "txn",
            Isolation::Rc,
            EngineKind::Postgres,
        );
        assert_eq!(p, Path::new("out/h.txn.rc.postgres.jsonl"));
    }

    /// What recording costs per operation (four micro-operations): while the clients run
    /// (invoke, micro-operations, complete) and after the cell (merge and write). The README's
    /// figures: `cargo test --release --lib history::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn cost() {
        let (clients, per_client) = (1u32, 400_000usize);
        let sink = Arc::new(Sink::new(HistoryModel::ListAppend));
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let mut r = sink.recorder(None);
                    let list = Value::String("1,2,3,4,5,6,7,8,9,10".into());
                    let t = Instant::now();
                    for op in 0..per_client as i64 {
                        r.invoke();
                        r.mop(1, MopKind::Read, &Value::Int(op % 5), &list);
                        r.mop(2, MopKind::Append, &Value::Int(2), &Value::Int(op));
                        r.mop(5, MopKind::Read, &Value::Int(3), &list);
                        r.mop(8, MopKind::Append, &Value::Int(4), &Value::Int(op));
                        r.complete(Completion::Ok);
                    }
                    t.elapsed()
                })
            })
            .collect();
        let per_thread: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let ops = f64::from(clients) * per_client as f64;
        let recording: f64 = per_thread.iter().map(|d| d.as_secs_f64()).sum::<f64>() / ops;
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let n = sink.write(&dir.path().join("h.jsonl")).unwrap();
        let writing = t.elapsed().as_secs_f64() / ops;
        assert_eq!(n, ops as usize);
        println!(
            "recording: {:.2} µs per operation in its client; merging and writing: {:.2} µs per operation after the cell",
            recording * 1e6,
            writing * 1e6
        );
    }
}
