//! The gateway's side of `GRPC_TOKEN`: every call to a room-service carries
//! `authorization: Bearer <token>`, which the room-service requires when it
//! has a token of its own.

use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Adds the bearer token (when there is one) to each outgoing call.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Bearer(***)" } else { "Bearer(none)" })
    }
}

impl Bearer {
    pub fn none() -> Self {
        Self(None)
    }

    /// A token that can go in a header, or an error naming the variable.
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let Some(token) = token.filter(|t| !t.is_empty()) else { return Ok(Self::none()) };
        let mut value: AsciiMetadataValue = format!("Bearer {token}")
            .parse()
            .map_err(|_| anyhow::anyhow!("GRPC_TOKEN must be printable ASCII (e.g. `openssl rand -hex 32`)"))?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}
