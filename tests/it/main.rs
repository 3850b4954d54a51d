//! Integration tests: the `contention` binary against real PostgreSQL, provisioned by the tool
//! itself (a private ephemeral cluster per run), plus scenario-file validation and the private
//! MariaDB's provisioning.

mod bench;
mod builtins;
mod cli;
mod distributed;
mod engines;
mod experiments;
mod faults;
mod fuzz;
mod history;
mod hot_item;
mod limits;
mod mariadb_provisioning;
mod matrix;
mod provisioning;
mod redis_locks;
mod replay;
mod report;
mod scenario_files;
mod seat_hold;
mod specs;
mod support;
mod waits;
mod wire;
