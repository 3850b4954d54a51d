//! The values the lab accepts, one range per knob, and the connections a server can give.
//!
//! A scenario file's `[run]` table and the command line (`run`, `sweep`, `bench`) check their
//! values with the same functions, so both accept the same values and say the same range.
//! Each check returns the value or `expected <range>, got <value>`; the caller adds where the
//! value came from (a flag, or the file, line and key). This module must not touch a database:
//! [`server_connections`] only reads the settings a server already reported.

use std::time::Duration;

use crate::engine::{EngineKind, ServerInfo};

/// Concurrent clients (and pooled connections) per cell.
pub const MAX_CLIENTS: u32 = 100_000;
/// A cell's `--duration`.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The shortest `--duration`: a cell of 0 s runs nothing.
pub const MIN_DURATION: Duration = Duration::from_millis(1);
/// A `think` pause.
pub const MAX_THINK: Duration = Duration::from_secs(3600);
/// Total operations per cell.
pub const MAX_OPERATIONS: u64 = 1_000_000_000;
/// Attempts per operation.
pub const MAX_TRIES: u32 = 1_000_000;
/// Connections the lab opens besides the clients' own: the administrative connection, the one
/// that learns the statements' columns, the one that measures invariants.
pub const LAB_CONNECTIONS: u32 = 3;
/// A setup file's size.
pub const MAX_SETUP_FILE: u64 = 16 * 1024 * 1024;

pub fn clients(n: u32) -> Result<u32, String> {
    in_range(n, 1, MAX_CLIENTS)
}

pub fn connections(n: usize) -> Result<usize, String> {
    in_range(n, 1, MAX_CLIENTS as usize)
}

pub fn operations(n: u64) -> Result<u64, String> {
    in_range(n, 1, MAX_OPERATIONS)
}

pub fn max_tries(n: u32) -> Result<u32, String> {
    in_range(n, 1, MAX_TRIES)
}

pub fn duration(d: Duration) -> Result<Duration, String> {
    if (MIN_DURATION..=MAX_DURATION).contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "expected 1ms to 24h, got {}",
            humantime::format_duration(d)
        ))
    }
}

pub fn think(d: Duration) -> Result<Duration, String> {
    if d <= MAX_THINK {
        Ok(d)
    } else {
        Err(format!(
            "expected 0ms to 1h, got {}",
            humantime::format_duration(d)
        ))
    }
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(n: T, low: T, high: T) -> Result<T, String> {
    if n >= low && n <= high {
        Ok(n)
    } else {
        Err(format!("expected {low} to {high}, got {n}"))
    }
}

/// How many connections the lab may open on this server: its `max_connections`, minus those
/// reserved for superusers (PostgreSQL's `superuser_reserved_connections` and
/// `reserved_connections`) and the lab's own [`LAB_CONNECTIONS`]. `None` when the server did
/// not report `max_connections`.
pub fn available_connections(info: &ServerInfo) -> Option<u32> {
    let setting = |name: &str| {
        info.settings
            .get(name)
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let max = setting("max_connections")?;
    let reserved = match info.engine {
        EngineKind::Postgres => {
            setting("superuser_reserved_connections").unwrap_or(3)
                + setting("reserved_connections").unwrap_or(0)
        }
        // MariaDB keeps one connection beyond max_connections for SUPER; nothing is subtracted.
        EngineKind::Mariadb => 0,
    };
    Some(max.saturating_sub(reserved).saturating_sub(LAB_CONNECTIONS))
}

/// The connections a cell opens: `clients` writers (sharing `pooled` connections when
/// `--connections` is given) and `auditors` auditor clients, each on its own connection.
pub fn connections_needed(clients: u32, auditors: u32, pooled: Option<usize>) -> u32 {
    let writers = pooled.map_or(clients, |n| {
        clients.min(u32::try_from(n).unwrap_or(u32::MAX))
    });
    writers.saturating_add(auditors)
}

/// Refuses a cell that needs more connections than the server can give, before it starts:
/// `clients` writers (sharing `pooled` connections when `--connections` is given) and
/// `auditors` auditor clients, each on its own connection.
pub fn server_connections(
    info: &ServerInfo,
    clients: u32,
    auditors: u32,
    pooled: Option<usize>,
) -> Result<(), String> {
    let Some(available) = available_connections(info) else {
        return Ok(());
    };
    let needed = connections_needed(clients, auditors, pooled);
    if needed <= available {
        return Ok(());
    }
    let max = info
        .settings
        .get("max_connections")
        .map_or("?", String::as_str);
    let what = match (pooled, auditors) {
        (Some(n), 0) => format!("--connections {n}"),
        (Some(n), a) => format!("--connections {n} and {a} auditor clients"),
        (None, 0) => format!("{clients} clients"),
        (None, a) => format!("{clients} clients and {a} auditor clients"),
    };
    let pool = available.saturating_sub(auditors);
    let advice = if pool == 0 {
        "raise the server's max_connections".to_string()
    } else {
        format!(
            "share a pool with --connections {pool} (or fewer), or raise the server's max_connections"
        )
    };
    Err(format!(
        "{what} need {needed} connections, but the server takes {available} from this lab \
         (max_connections {max}, minus reserved connections and {LAB_CONNECTIONS} of the lab's own): {advice}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(engine: EngineKind, settings: &[(&str, &str)]) -> ServerInfo {
        ServerInfo {
            engine,
            version: String::new(),
            version_num: 0,
            ephemeral: false,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn ranges_are_named_in_the_error() {
        assert_eq!(clients(0).unwrap_err(), "expected 1 to 100000, got 0");
        assert_eq!(clients(100_000), Ok(100_000));
        assert!(clients(100_001).is_err());
        assert_eq!(
            operations(0).unwrap_err(),
            "expected 1 to 1000000000, got 0"
        );
        assert!(
            duration(Duration::from_secs(25 * 3600))
                .unwrap_err()
                .contains("expected 1ms to 24h, got 1day 1h")
        );
        assert!(duration(Duration::ZERO).is_err());
        assert_eq!(think(Duration::ZERO), Ok(Duration::ZERO));
        assert!(think(Duration::from_secs(7200)).is_err());
        assert!(max_tries(0).is_err());
        assert!(connections(0).is_err());
    }

    #[test]
    fn postgres_reserves_superuser_connections() {
        let pg = info(
            EngineKind::Postgres,
            &[
                ("max_connections", "100"),
                ("superuser_reserved_connections", "3"),
                ("reserved_connections", "2"),
            ],
        );
        assert_eq!(
            available_connections(&pg),
            Some(100 - 3 - 2 - LAB_CONNECTIONS)
        );
        assert!(server_connections(&pg, 92, 0, None).is_ok());
        let e = server_connections(&pg, 93, 0, None).unwrap_err();
        assert!(e.contains("93 clients need 93 connections"), "{e}");
        assert!(e.contains("--connections 92"), "{e}");
        // The pool caps what the clients open; auditors keep their own.
        assert!(server_connections(&pg, 10_000, 2, Some(90)).is_ok());
        let e = server_connections(&pg, 10_000, 2, Some(91)).unwrap_err();
        assert!(e.contains("--connections 90"), "{e}");
    }

    #[test]
    fn mariadb_and_unknown_servers() {
        let my = info(EngineKind::Mariadb, &[("max_connections", "151")]);
        assert_eq!(available_connections(&my), Some(148));
        assert!(server_connections(&my, 149, 0, None).is_err());
        let unknown = info(EngineKind::Mariadb, &[]);
        assert!(server_connections(&unknown, 100_000, 0, None).is_ok());
        let tiny = info(EngineKind::Postgres, &[("max_connections", "5")]);
        let e = server_connections(&tiny, 1, 0, None).unwrap_err();
        assert!(e.contains("raise the server's max_connections"), "{e}");
    }
}
