//! `gateway`: parse flags, start logging (and traces), bind, run until
//! Ctrl+C or SIGTERM, then flush the last spans.

use clap::Parser;
use gateway::Config;

fn main() -> std::process::ExitCode {
    chat_runtime::main("gateway", async {
        let config = Config::parse();
        let traces = chat_runtime::traces::Traces::start(&config.traces, "chat-gateway")?;
        chat_runtime::logging::init(config.log_format, traces.as_ref());
        let addr = format!("{}:{}", config.host, config.port);
        let listener = gateway::listen(&addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr}: {e} (is another gateway on that port? set --port)")
        })?;
        let result = gateway::run(config, listener, chat_runtime::shutdown_signal()).await;
        if let Some(traces) = traces {
            traces.shutdown();
        }
        result
    })
}
