//! Histories in the format of Jepsen's Elle (`--history FILE.jsonl`): every attempt of every
//! client as an `invoke` and its completion (`ok`, `fail`, `info`), with the micro-operations
//! that the scenario's `history` step annotations name, for an independent checker (`adya
//! check`, `elle-cli`).
//!
//! Besides Elle's keys, each event carries `steps`: for each micro-operation, the number (from
//! 1) of the scenario step that did it, so a report can show a checker's transactions as the
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
#[derive(Debug, Clone)]
struct Mop {
    f: MopKind,
    key: Json,
    value: Json,
    /// The step that did it (from 1, as schedules number them).
    step: u32,
}

impl Mop {
    /// As the invocation shows it: a read's value is not known yet.
    fn invoked(&self) -> Json {
        match self.f {
            MopKind::Read => json!([self.f.name(), self.key, null]),
            _ => json!([self.f.name(), self.key, self.value]),
        }
    }

    fn completed(&self) -> Json {
        json!([self.f.name(), self.key, self.value])
    }
}

/// One attempt: when it was invoked and completed (ns since the cell's origin), how it ended.
#[derive(Debug)]
struct Op {
    invoked: u64,
    completed: u64,
    how: Completion,
    mops: Vec<Mop>,
}

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

    /// A recorder for one client, under a process id of its own.
    pub fn recorder(self: &std::sync::Arc<Self>) -> Recorder {
        Recorder {
            sink: self.clone(),
            process: self.next_process.fetch_add(1, Ordering::Relaxed),
            ops: Vec::new(),
            open: None,
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// The merged history: one JSON object per event, ordered by time, indexed from 0.
    pub fn events(&self) -> Vec<Json> {
        let logs = self
            .logs
            .lock()
            .expect("a client panicked holding the history");
        // (time, process, sequence in the process, op, completion?)
        let mut order: Vec<(u64, u32, usize, &Op, bool)> = Vec::new();
        for (process, ops) in logs.iter() {
            for (i, op) in ops.iter().enumerate() {
                order.push((op.invoked, *process, 2 * i, op, false));
                order.push((op.completed, *process, 2 * i + 1, op, true));
            }
        }
        order.sort_by_key(|&(t, p, s, _, _)| (t, p, s));
        order
            .into_iter()
            .enumerate()
            .map(|(index, (time, process, _, op, done))| {
                let steps: Vec<u32> = op.mops.iter().map(|m| m.step).collect();
                let (kind, value): (&str, Vec<Json>) = match (done, op.how) {
                    (false, _) => ("invoke", op.mops.iter().map(Mop::invoked).collect()),
                    (true, Completion::Ok) => ("ok", op.mops.iter().map(Mop::completed).collect()),
                    (true, how) => (how.name(), op.mops.iter().map(Mop::invoked).collect()),
                };
                json!({
                    "index": index,
                    "type": kind,
                    "process": process,
                    "f": "txn",
                    "time": time,
                    "value": value,
                    "steps": steps,
                })
            })
            .collect()
    }

    /// Writes the merged history as JSON lines; returns the number of operations (invocations).
    pub fn write(&self, path: &Path) -> anyhow::Result<usize> {
        let events = self.events();
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("--history {}: {e}", path.display()))?,
        );
        for e in &events {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
        out.flush()
            .map_err(|e| anyhow::anyhow!("--history {}: {e}", path.display()))?;
        Ok(events.len() / 2)
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
        let value = match (f, self.sink.model) {
            (MopKind::Read, HistoryModel::ListAppend) => list(value),
            _ => scalar(value),
        };
        mops.push(Mop {
            f,
            key: scalar(key),
            value,
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
            let mut a = sink.recorder();
            let mut b = sink.recorder();
            a.invoke();
            a.mop(1, MopKind::Append, &Value::Int(1), &Value::Int(11));
            b.invoke();
            b.mop(
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
}
