//! `cargo xtask token`: mints a development token for a gateway started with
//! `JWT_SECRET` (HS256), to open the page as `/?token=<token>`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use crate::cli::TokenArgs;

#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<&'a [String]>,
}

/// The token for `args`, signed with `secret`, expiring `args.ttl_secs` from `now`.
pub fn mint(args: &TokenArgs, secret: &str, now: u64) -> anyhow::Result<String> {
    anyhow::ensure!(!args.sub.trim().is_empty(), "--sub is empty: give the user's stable id");
    let claims = Claims {
        sub: &args.sub,
        name: args.name.as_deref(),
        exp: now + args.ttl_secs,
        rooms: (!args.rooms.is_empty()).then_some(args.rooms.as_slice()),
    };
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .context("signing the token")
}

/// Prints a token for the `JWT_SECRET` in the environment.
pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let secret = std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty()).context(
        "JWT_SECRET is not set: export the same secret the gateways run with (e.g. JWT_SECRET=$(openssl rand -hex 32))",
    )?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    println!("{}", mint(args, &secret, now)?);
    eprintln!("open the page as http://127.0.0.1:3000/?token=<the token above>; it expires in {} s", args.ttl_secs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_carries_the_claims_a_gateway_reads() {
        let args =
            TokenArgs { sub: "ada".into(), name: Some("Ada".into()), rooms: vec!["general".into()], ttl_secs: 60 };
        let token = mint(&args, "secret-of-sixteen-bytes", 1_000).expect("mints");
        let payload = token.split('.').nth(1).expect("three parts");
        let mut validation = jsonwebtoken::Validation::default();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"secret-of-sixteen-bytes"),
            &validation,
        )
        .expect("verifies")
        .claims;
        assert!(!payload.is_empty());
        assert_eq!(claims, serde_json::json!({"sub": "ada", "name": "Ada", "exp": 1060, "rooms": ["general"]}));
    }
}
