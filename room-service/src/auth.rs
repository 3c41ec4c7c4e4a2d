//! `GRPC_TOKEN`: with it set, every `chat.v1.RoomService` call must carry
//! `authorization: Bearer <token>` metadata, or it is refused with
//! UNAUTHENTICATED. The service can post as anyone and remove anyone, so on
//! a network it must not be open: a room-service listening on anything but
//! loopback without a token refuses to start ([`refuse_open_api`]) unless
//! `ALLOW_OPEN_GRPC` says that is meant. Health and reflection stay open:
//! probes and `grpcurl list` need no token, and say nothing about the rooms.
//!
//! A tonic interceptor rather than a tower layer: the check needs only the
//! call's metadata, and wrapping the one service (`InterceptedService`) is
//! what leaves health and reflection open. A layer on the whole server
//! (`Server::builder().layer(..)`) would see every call and have to exempt
//! the others by path; a per-service tower layer (`named_layer`) would be a
//! hand-written `Service` doing what the interceptor does already, before
//! the request body is read either way.

use std::net::SocketAddr;

use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Checks the bearer token on each call; lets everything through without one.
#[derive(Clone)]
pub(crate) struct RequireToken {
    expected: Option<Vec<u8>>,
}

impl std::fmt::Debug for RequireToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.expected.is_some() { "RequireToken(***)" } else { "RequireToken(off)" })
    }
}

impl RequireToken {
    /// `None` or empty: no check.
    pub(crate) fn new(token: Option<&str>) -> Self {
        Self { expected: token.filter(|t| !t.is_empty()).map(|t| t.as_bytes().to_vec()) }
    }

    /// Whether calls need a token at all.
    pub(crate) fn is_on(&self) -> bool {
        self.expected.is_some()
    }

    pub(crate) fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let Some(expected) = &self.expected else { return Ok(()) };
        let Some(value) = metadata.get("authorization") else {
            return Err(Status::unauthenticated(
                "this room-service needs its token: send metadata `authorization: Bearer <GRPC_TOKEN>` \
                 (grpcurl: -H \"authorization: Bearer $GRPC_TOKEN\")",
            ));
        };
        let given = value.as_bytes().strip_prefix(b"Bearer ").unwrap_or_default();
        // Constant time over the bytes, so how long a refusal takes does not
        // tell an attacker how much of a guess was right (only its length).
        if bool::from(given.ct_eq(expected)) {
            Ok(())
        } else {
            Err(Status::unauthenticated(
                "the bearer token is wrong: use this room-service's GRPC_TOKEN in `authorization: Bearer <token>`",
            ))
        }
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request.metadata())?;
        Ok(request)
    }
}

/// A start that would serve the API without a token to whoever can reach a
/// non-loopback address, refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to serve chat.v1.RoomService on {addr} without GRPC_TOKEN: anyone who can reach it could post as \
     \"system\" and remove members. Set GRPC_TOKEN (the gateways send the same), listen on loopback only \
     (HOST=127.0.0.1), or set ALLOW_OPEN_GRPC=1 to serve it open on purpose"
)]
pub(crate) struct OpenApi {
    addr: SocketAddr,
}

/// Lets the API be served at `addr` if it needs a token, listens on
/// loopback only, or is meant to be open (`allow_open`).
pub(crate) fn refuse_open_api(addr: SocketAddr, token: &RequireToken, allow_open: bool) -> Result<(), OpenApi> {
    if token.is_on() || addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    if allow_open {
        tracing::warn!(%addr, "ALLOW_OPEN_GRPC: chat.v1.RoomService needs no token; anyone who can reach it can post and remove members");
        return Ok(());
    }
    Err(OpenApi { addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(authorization: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(a) = authorization {
            m.insert("authorization", a.parse().expect("ascii"));
        }
        m
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let check = RequireToken::new(Some("s3cret"));
        assert!(check.check(&metadata(Some("Bearer s3cret"))).is_ok());
        for bad in [None, Some("Bearer wrong"), Some("s3cret"), Some("Bearer s3cre"), Some("Basic s3cret")] {
            let status = check.check(&metadata(bad)).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
        assert!(RequireToken::new(None).check(&metadata(None)).is_ok());
        assert!(RequireToken::new(Some("")).check(&metadata(None)).is_ok());
    }

    #[test]
    fn an_open_api_is_served_on_loopback_only_unless_meant() {
        let addr = |text: &str| text.parse::<SocketAddr>().expect("an address");
        let (on, off) = (RequireToken::new(Some("t")), RequireToken::new(Some("")));
        let cases = [
            ("127.0.0.1:50051", &off, false, true),
            ("[::1]:50051", &off, false, true),
            ("[::ffff:127.0.0.1]:50051", &off, false, true),
            ("0.0.0.0:50051", &off, false, false),
            ("[::]:50051", &off, false, false),
            ("10.1.2.3:50051", &off, false, false),
            ("0.0.0.0:50051", &on, false, true),
            ("0.0.0.0:50051", &off, true, true),
        ];
        for (at, token, allow_open, served) in cases {
            let outcome = refuse_open_api(addr(at), token, allow_open);
            assert_eq!(outcome.is_ok(), served, "{at} token {token:?} allow_open {allow_open}: {outcome:?}");
        }
        let said = refuse_open_api(addr("0.0.0.0:50051"), &off, false).expect_err("refused").to_string();
        for hint in ["0.0.0.0:50051", "GRPC_TOKEN", "HOST=127.0.0.1", "ALLOW_OPEN_GRPC=1"] {
            assert!(said.contains(hint), "says {hint}: {said}");
        }
    }
}
