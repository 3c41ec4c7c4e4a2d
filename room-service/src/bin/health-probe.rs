//! `health-probe [URL] [SERVICE]`: asks a gRPC server's `grpc.health.v1`
//! whether it is SERVING and exits 0 if so, 1 if not (with the reason on
//! stderr). The container health check of docker-compose.yml: it fails while
//! the room-service cannot reach Redis, which asking `/metrics` would not
//! notice. Defaults: `http://127.0.0.1:50051` and the server as a whole (`""`).

use std::process::ExitCode;
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let service = args.next().unwrap_or_default();
    match check(&url, &service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("health-probe: {url} {service:?}: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn check(url: &str, service: &str) -> Result<(), String> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("not a URL ({e}); give e.g. http://127.0.0.1:50051"))?
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.to_owned() })
        .await
        .map_err(|status| format!("health check failed: {}", status.message()))?;
    let status = reply.into_inner().status;
    if status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        let name = ServingStatus::try_from(status).map(|s| s.as_str_name()).unwrap_or("UNKNOWN");
        Err(format!("{name} (for a room-service: its broker, Redis, is not answering)"))
    }
}
