//! `room-service`: parse flags, start logging (and traces), bind, run until
//! Ctrl+C or SIGTERM, then flush the last spans.

use clap::Parser;
use room_service::Config;
use tokio::net::TcpListener;

fn main() -> std::process::ExitCode {
    chat_runtime::main("room-service", async {
        let config = Config::parse();
        let traces = chat_runtime::traces::Traces::start(&config.traces, "chat-room-service")?;
        chat_runtime::logging::init(config.log_format, traces.as_ref());
        let addr = format!("{}:{}", config.host, config.grpc_port);
        let listener = TcpListener::bind(&addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr}: {e} (is another room-service on that port? set --grpc-port)")
        })?;
        let result = room_service::run(config, listener, chat_runtime::shutdown_signal()).await;
        if let Some(traces) = traces {
            traces.shutdown();
        }
        result
    })
}
