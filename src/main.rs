//! The `contention` binary: parse the command line, run the command on a tokio runtime, map the
//! result to an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use contention::cli::Cli;
use contention::command::{self, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // The clients cost little CPU (about 0.1 ms per pgbench-like transaction) but the server they
    // measure usually shares the machine: a quarter of the CPUs as workers (at least one) leaves
    // it the rest and spares cross-thread wake-ups. TOKIO_WORKER_THREADS overrides it.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        builder.worker_threads((cpus / 4).max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::CouldNotRun as u8);
        }
    };
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let exit = runtime.block_on(command::execute(cli, &mut out, &mut err));
    ExitCode::from(exit as u8)
}
