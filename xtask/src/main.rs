//! `cargo xtask …`: developer commands for this workspace (see the crate docs in `lib.rs`).

use clap::Parser;
use xtask::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up(args) => xtask::up::run(args).await,
    }
}
