//! Redis as a lock service: a private, throw-away `redis-server` ([`ephemeral`]) and the lock
//! primitives that distributed scenarios build on ([`lock`]): acquire with a TTL and a fencing
//! token taken in the same atomic step, release only by the holder's own token.
//!
//! It is the groundwork for several servers in one scenario (a lock node beside the database
//! nodes). It must not be reached by anything outside `src/engine/` except through these
//! types, and it must not touch a Redis it did not start.

pub mod ephemeral;
pub mod lock;
