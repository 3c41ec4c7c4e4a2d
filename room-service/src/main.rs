//! `room-service`: parse flags, start logging, bind, run until Ctrl+C or SIGTERM.

use clap::Parser;
use room_service::Config;
use tokio::net::TcpListener;

fn main() -> std::process::ExitCode {
    chat_runtime::main("room-service", async {
        let config = Config::parse();
        chat_runtime::logging::init();
        let addr = format!("{}:{}", config.host, config.grpc_port);
        let listener = TcpListener::bind(&addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr}: {e} (is another room-service on that port? set --grpc-port)")
        })?;
        room_service::run(config, listener, chat_runtime::shutdown_signal()).await
    })
}
