//! `gateway`: parse flags, start logging, bind, run until Ctrl+C or SIGTERM.

use clap::Parser;
use gateway::Config;

fn main() -> std::process::ExitCode {
    chat_runtime::main("gateway", async {
        let config = Config::parse();
        chat_runtime::logging::init();
        let addr = format!("{}:{}", config.host, config.port);
        let listener = gateway::listen(&addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr}: {e} (is another gateway on that port? set --port)")
        })?;
        gateway::run(config, listener, chat_runtime::shutdown_signal()).await
    })
}
