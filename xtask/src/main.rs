//! `cargo xtask …`: developer commands for this workspace (see the crate docs in `lib.rs`).

use std::process::ExitCode;

use clap::Parser;
use xtask::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Up(args) => xtask::up::run(args).await,
        Command::Test(args) => xtask::test::run(args).await,
        Command::Token(args) => xtask::token::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The message says what went wrong and what to do; a backtrace
            // (anyhow adds one under RUST_BACKTRACE) would only bury it.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
