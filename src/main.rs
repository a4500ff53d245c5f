//! The `sign-action` binary: CLI and GitHub Action edges over the library.

#[allow(dead_code, unused_imports)]
mod action;
mod cli;
mod run;
mod run_check;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run::run(cli));
    ExitCode::from(code as u8)
}
