//! A lock service on Redis, as distributed scenarios use one: acquire a named lock for a TTL
//! with the holder's own token, taking a fencing token from a counter in the same atomic step
//! (`SET key token NX PX ttl` then `INCR key:fence`, in one script), and release only when the
//! lock still holds that token (compare-and-delete, in one script). A holder that outlives its
//! TTL loses the lock silently: that is the hazard fencing tokens exist for, and what a storage
//! node checks them against.
//!
//! It must not decide what a scenario does with a lock, nor retry: a refused acquire is an
//! answer, not an error.

use std::time::Duration;

use anyhow::Context as _;
use redis::aio::MultiplexedConnection;

/// Takes the lock if it is free, and with it the next fencing token.
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
";

/// Deletes the lock only if it still holds the caller's token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// One connection to a lock service. Every key it writes starts with its prefix, so a run
/// clears only its own keys, even on a Redis that others use.
pub struct LockService {
    conn: MultiplexedConnection,
    acquire: redis::Script,
    release: redis::Script,
    prefix: String,
}

impl LockService {
    /// Connects to the Redis at `url` (`redis+unix:///path/redis.sock`); its keys start with
    /// `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<LockService> {
        let client = redis::Client::open(url).with_context(|| format!("Redis at {url}"))?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
        Ok(LockService {
            conn,
            acquire: redis::Script::new(ACQUIRE),
            release: redis::Script::new(RELEASE),
            prefix: prefix.to_string(),
        })
    }

    /// Takes `lock` for `ttl` as `holder` (a token unique to this attempt). Returns the fencing
    /// token (1, 2, 3, ... per lock, never reused), or `None` when someone holds the lock.
    pub async fn acquire(
        &mut self,
        lock: &str,
        holder: &str,
        ttl: Duration,
    ) -> anyhow::Result<Option<u64>> {
        let ms = ttl.as_millis().max(1) as u64;
        let key = format!("{}{lock}", self.prefix);
        let token: Option<u64> = self
            .acquire
            .key(&key)
            .key(format!("{key}:fence"))
            .arg(holder)
            .arg(ms)
            .invoke_async(&mut self.conn)
            .await
            .with_context(|| format!("acquiring lock `{lock}`"))?;
        Ok(token)
    }

    /// Deletes this service's keys (locks and fencing counters: every key under its prefix),
    /// so a cell starts from nothing; other keys are never touched.
    pub async fn clear(&mut self) -> anyhow::Result<()> {
        // The prefix is the lab's own (letters, digits, `_` and `:`): no glob characters.
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn)
                .await
                .context("listing the run's lock keys (SCAN)")?;
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut self.conn)
                    .await
                    .context("deleting the run's lock keys")?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Releases `lock` if `holder` still holds it; false when it expired or another holder has
    /// it now (nothing is deleted then).
    pub async fn release(&mut self, lock: &str, holder: &str) -> anyhow::Result<bool> {
        let deleted: u64 = self
            .release
            .key(format!("{}{lock}", self.prefix))
            .arg(holder)
            .invoke_async(&mut self.conn)
            .await
            .with_context(|| format!("releasing lock `{lock}`"))?;
        Ok(deleted == 1)
    }
}
