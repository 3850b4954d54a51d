//! The `contention` binary: parse the command line, run the command on a tokio runtime, map the
//! result to an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use contention::cli::Cli;
use contention::command::{self, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
