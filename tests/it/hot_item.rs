//! hot-item, on a private PostgreSQL and a private MariaDB side by side: the naive flash sale
//! oversells where each engine allows it, the safe strategies never do, the queue (buyers wait
//! for their own result with `until`, one worker applies the requests) never aborts and answers
//! every request it was given, and the replay shows the lost update step by step.

use contention::report::{Cell, RunReport};

use crate::builtins::{
    MARIADB, PG, cell, damaged, declared, end, find, levels, rejected, replays, safe, verdict,
};
use crate::support::{json, writer_damage};

/// Units on sale (the scenario's `stock`) and purchases tried (its `[run] operations`).
const STOCK: u64 = 100;
const OPERATIONS: u64 = 200;

const SAFE: [&str; 5] = [
    "for-update",
    "conditional",
    "version",
    "serializable",
    "queue",
];

fn aborted(c: &Cell) -> u64 {
    c.stats.aborts.iter().sum()
}

#[test]
fn hot_item_oversells_only_naively_and_the_queue_never_aborts() {
    let r: RunReport = declared("hot-item");
    // Read-then-write loses decrements and sells more than the stock.
    for inv in ["oversold", "lost_updates"] {
        damaged(&r, PG, "naive", "rc", inv);
        for level in ["ru", "rc", "rr"] {
            damaged(&r, MARIADB, "naive", level, inv);
        }
    }
    for level in ["rr", "serializable"] {
        assert_eq!(writer_damage(cell(&r, PG, "naive", level)), 0);
    }
    assert_eq!(writer_damage(cell(&r, MARIADB, "naive", "serializable")), 0);
    for engine in [PG, MARIADB] {
        for strategy in SAFE {
            safe(&r, engine, strategy);
        }
        // The queue: each buyer waited for its own answer (none gave up, none failed), and the
        // worker sold exactly the stock: the rest were told sold_out. No buyer aborts, except
        // at PostgreSQL's serializable, where SSI aborts one now and then (0-3 per cell) and
        // the retry waits for the same request.
        for level in levels(&r, engine, "queue") {
            let c = cell(&r, engine, "queue", &level);
            let at = format!("{}:queue@{level}: {}", engine.name(), json(c));
            if engine == MARIADB || level != "serializable" {
                assert_eq!(aborted(c), 0, "{at}");
            }
            assert_eq!(c.stats.failed, 0, "{at}");
            assert_eq!(rejected(c, "until_timeout"), 0, "{at}");
            assert_eq!(c.stats.committed, STOCK, "{at}");
            assert_eq!(rejected(c, "sold_out"), OPERATIONS - STOCK, "{at}");
            assert!(c.stats.latency_ms(0.99) > 0.0, "{at}");
        }
    }
}

#[test]
fn hot_item_replay_shows_the_lost_update_and_the_queue_answers_both() {
    let rs = replays("hot-item");
    for engine in [PG, MARIADB] {
        verdict(&rs, engine, "naive", "rc", "possible");
    }
    for level in ["rr", "serializable"] {
        verdict(&rs, PG, "naive", level, "prevented by abort (40001)");
    }
    for level in ["ru", "rc", "rr"] {
        verdict(&rs, MARIADB, "naive", level, "possible");
    }
    verdict(
        &rs,
        MARIADB,
        "naive",
        "serializable",
        "prevented by abort (1213)",
    );
    for engine in [PG, MARIADB] {
        for level in ["rc", "rr", "serializable"] {
            // The worker applies each buyer's request before the buyer reads its answer.
            verdict(&rs, engine, "queue", level, "prevented");
            let q = find(&rs, engine, "queue", level);
            assert_eq!(end(q, "a"), "committed", "{}", json(&q.events));
            assert_eq!(end(q, "b"), "committed", "{}", json(&q.events));
        }
    }
}
