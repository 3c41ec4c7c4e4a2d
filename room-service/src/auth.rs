//! `GRPC_TOKEN`: with it set, every `chat.v1.RoomService` call must carry
//! `authorization: Bearer <token>` metadata, or it is refused with
//! UNAUTHENTICATED. The service can post as anyone and remove anyone, so on
//! a network it must not be open. Health and reflection stay open: probes
//! and `grpcurl list` need no token, and say nothing about the rooms.
//!
//! A tonic interceptor rather than a tower layer: the check needs only the
//! call's metadata, and wrapping the one service (`InterceptedService`) is
//! what leaves health and reflection open. A layer on the whole server
//! (`Server::builder().layer(..)`) would see every call and have to exempt
//! the others by path; a per-service tower layer (`named_layer`) would be a
//! hand-written `Service` doing what the interceptor does already, before
//! the request body is read either way.

use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Checks the bearer token on each call; lets everything through without one.
#[derive(Clone)]
pub struct RequireToken {
    expected: Option<Vec<u8>>,
}

impl std::fmt::Debug for RequireToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.expected.is_some() { "RequireToken(***)" } else { "RequireToken(off)" })
    }
}

impl RequireToken {
    /// `None` or empty: no check.
    pub fn new(token: Option<&str>) -> Self {
        Self { expected: token.filter(|t| !t.is_empty()).map(|t| t.as_bytes().to_vec()) }
    }

    pub fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
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
}
