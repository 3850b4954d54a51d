//! The `contention` binary: parse the command line, run the command on a tokio runtime, map the
//! result to an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use contention::cli::Cli;
use contention::command::{self, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The clients cost little CPU (some 0.03 ms per pgbench-like transaction) but the server they
    // measure usually shares the machine: a quarter of the CPUs as workers (at least one) leaves
    // it the rest and spares cross-thread wake-ups. One worker is the current-thread scheduler,
    // which runs every task on this thread without the work-stealing machinery (its parking
    // and per-batch statistics were 5,000 of 40,000 instructions per `--no-pipeline` TPC-B
    // transaction, callgrind). TOKIO_WORKER_THREADS=N asks for N workers of the multi-thread
    // scheduler.
    let workers = std::env::var_os("TOKIO_WORKER_THREADS")
        .is_some()
        .then_some(0);
    let workers = workers.unwrap_or_else(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cpus / 4).max(1)
    });
    let mut builder = match workers {
        1 => tokio::runtime::Builder::new_current_thread(),
        // 0: the builder reads TOKIO_WORKER_THREADS itself.
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.enable_all();
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::CouldNotRun as u8);
        }
    };
    // Not locked for the whole command: a step's pause (`replay --step`) draws from a blocking
    // thread while the command waits for it.
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let exit = runtime.block_on(command::execute(cli, &mut out, &mut err));
    ExitCode::from(exit as u8)
}
