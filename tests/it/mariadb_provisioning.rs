//! The private MariaDB: reachable as root without a password over its own socket only (no TCP
//! listener), real grant tables, the caller's settings applied, gone after stop; a second start
//! copies the cached template; a server left by a lab killed with SIGKILL is swept by the next
//! start. Talks to it with the `mariadb` command-line client (`--no-defaults`: the machine's
//! option files, which point at its shared server, are never read).

use std::path::{Path, PathBuf};
use std::time::Duration;

use contention::engine::mariadb::ephemeral::Ephemeral;

use crate::support::{mariadb_query, orphan_is_swept, processes_using, tcp_listeners_of};

fn top_of(server: &Ephemeral) -> PathBuf {
    server.data_dir().parent().unwrap().to_path_buf()
}

#[test]
fn a_private_mariadb_answers_on_its_socket_only_and_leaves_nothing() {
    let mut server =
        Ephemeral::start(&[("max_connections".into(), "77".into())]).expect("a private MariaDB");
    let top = top_of(&server);
    assert!(
        top.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("contention-mariadb-"),
        "{}",
        top.display()
    );
    assert!(server.socket().starts_with(&top));
    assert_eq!(mariadb_query(server.socket(), "select 1"), "1");

    // Root without a password, over the socket, with real accounts (no --skip-grant-tables).
    assert_eq!(
        mariadb_query(server.socket(), "select current_user()"),
        "root@localhost"
    );
    // Password-less root, not unix_socket authentication (which admits only the OS user root).
    assert_eq!(
        mariadb_query(
            server.socket(),
            "select count(*) from mysql.global_priv where user = 'root' and host = 'localhost' \
             and priv not like '%unix_socket%' and coalesce(json_value(priv, '$.authentication_string'), '') = ''"
        ),
        "1"
    );
    mariadb_query(server.socket(), "create user lab@localhost");
    assert_eq!(
        mariadb_query(
            server.socket(),
            "select user from mysql.global_priv where user = 'lab'"
        ),
        "lab"
    );

    // The version as the server reports it, without the distribution's suffix.
    let reported = mariadb_query(server.socket(), "select version()");
    assert!(
        server.version().ends_with("-MariaDB") && reported.starts_with(server.version()),
        "{} vs {reported}",
        server.version()
    );

    // No network, no durability, the caller's max_connections, the default lock wait timeout.
    assert_eq!(
        mariadb_query(
            server.socket(),
            "select @@skip_networking, @@port, @@log_bin, @@innodb_flush_log_at_trx_commit, \
             @@innodb_doublewrite, @@innodb_buffer_pool_size, @@max_connections, \
             @@innodb_lock_wait_timeout, @@datadir"
        ),
        format!(
            "1\t0\t0\t0\t0\t134217728\t77\t50\t{}/",
            server.data_dir().display()
        )
    );
    let pid = server.pid().expect("running");
    assert_eq!(tcp_listeners_of(pid), Vec::<String>::new());

    server.stop();
    assert!(!top.exists(), "{} is left behind", top.display());
    assert_eq!(processes_using(&top), 0, "a server process is left behind");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the server still runs"
    );
    server.stop(); // idempotent
}

#[test]
fn a_second_private_mariadb_copies_the_cached_template() {
    let first = Ephemeral::start(&[]).expect("a private MariaDB");
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
        .join("contention");
    let templates: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("mariadb"))
        .collect();
    assert!(
        templates.iter().any(|n| n.contains("-install-")),
        "no template in {}: {templates:?}",
        cache.display()
    );
    let top = top_of(&first);
    drop(first);
    assert!(!top.exists(), "{} is left behind", top.display());

    let second = Ephemeral::start(&[("innodb_lock_wait_timeout".into(), "3".into())])
        .expect("a second private MariaDB");
    assert!(second.from_template(), "the second start ran install-db");
    assert_eq!(
        mariadb_query(second.socket(), "select @@innodb_lock_wait_timeout"),
        "3"
    );
}

/// Set for the child process of the sweep test: it starts a server and waits to be killed.
const ORPHAN_CHILD: &str = "CONTENTION_TEST_MARIADB_ORPHAN_CHILD";

/// Only does something in the child process started by
/// [`a_mariadb_left_by_a_killed_lab_is_swept_by_the_next_start`].
#[test]
fn orphan_child() {
    if std::env::var_os(ORPHAN_CHILD).is_none() {
        return;
    }
    let server = Ephemeral::start(&[]).expect("a private MariaDB");
    println!("orphan top: {}", top_of(&server).display());
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_mariadb_left_by_a_killed_lab_is_swept_by_the_next_start() {
    orphan_is_swept(
        "mariadb_provisioning::orphan_child",
        ORPHAN_CHILD,
        || Ephemeral::start(&[]).expect("a private MariaDB"),
        top_of,
    );
}
