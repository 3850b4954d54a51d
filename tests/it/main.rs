//! Integration tests: the `contention` binary against real PostgreSQL, provisioned by the tool
//! itself (a private ephemeral cluster per run), plus scenario-file validation.

mod bench;
mod cli;
mod experiments;
mod matrix;
mod provisioning;
mod replay;
mod report;
mod scenario_files;
mod support;
