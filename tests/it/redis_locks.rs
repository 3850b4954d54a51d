//! The Redis lock service on a private `redis-server` the test starts: mutual exclusion, fencing
//! tokens that only grow, release only by the holder's token, a holder that outlives its TTL,
//! and a server that is gone with its directory once stopped.

use std::time::Duration;

use contention::engine::redis::ephemeral::Ephemeral;
use contention::engine::redis::lock::LockService;

#[test]
fn locks_with_fencing_tokens_on_a_private_redis() {
    let mut server = Ephemeral::start().expect("a private redis-server");
    let dir = server.dir().to_path_buf();
    let pid = server.pid().expect("running") as i32;
    assert!(
        server.url().starts_with("redis+unix://"),
        "{}",
        server.url()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut a = LockService::connect(&server.url(), "t:").await.unwrap();
        let mut b = LockService::connect(&server.url(), "t:").await.unwrap();
        let ttl = Duration::from_millis(300);
        let first = a.acquire("seat", "a-1", ttl).await.unwrap();
        assert_eq!(first, Some(1));
        // Held: b is refused, and a release with the wrong token deletes nothing.
        assert_eq!(b.acquire("seat", "b-1", ttl).await.unwrap(), None);
        assert!(!b.release("seat", "b-1").await.unwrap());
        assert_eq!(b.acquire("seat", "b-1", ttl).await.unwrap(), None);
        // Released by its holder, the next holder's token is larger.
        assert!(a.release("seat", "a-1").await.unwrap());
        assert_eq!(b.acquire("seat", "b-2", ttl).await.unwrap(), Some(2));
        // b pauses past its TTL: a takes the lock with a newer token, and b's late release
        // cannot free a's lock.
        tokio::time::sleep(ttl + Duration::from_millis(200)).await;
        assert_eq!(a.acquire("seat", "a-2", ttl).await.unwrap(), Some(3));
        assert!(!b.release("seat", "b-2").await.unwrap());
        assert_eq!(b.acquire("seat", "b-3", ttl).await.unwrap(), None);
        // Locks are independent; each has its own counter.
        assert_eq!(b.acquire("other", "b-4", ttl).await.unwrap(), Some(1));
    });
    server.stop();
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
        "redis-server {pid} still runs"
    );
}

#[test]
fn a_private_redis_listens_on_no_tcp_port() {
    let server = Ephemeral::start().expect("a private redis-server");
    assert_eq!(
        crate::support::tcp_listeners_of(server.pid().unwrap()),
        Vec::<String>::new()
    );
    assert!(server.socket().starts_with(server.dir()));
}

/// Set for the child process of the sweep test: it starts a server and waits to be killed.
const ORPHAN_CHILD: &str = "CONTENTION_TEST_REDIS_ORPHAN_CHILD";

/// Only does something in the child process started by
/// [`a_redis_left_by_a_killed_lab_is_swept_by_the_next_start`].
#[test]
fn orphan_child() {
    if std::env::var_os(ORPHAN_CHILD).is_none() {
        return;
    }
    let server = Ephemeral::start().expect("a private redis-server");
    println!("orphan top: {}", server.dir().display());
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_redis_left_by_a_killed_lab_is_swept_by_the_next_start() {
    crate::support::orphan_is_swept(
        "redis_locks::orphan_child",
        ORPHAN_CHILD,
        || Ephemeral::start().expect("a private redis-server"),
        |s| s.dir().to_path_buf(),
    );
}
