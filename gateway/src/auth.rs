//! Tokens (`JWT_SECRET`, `JWT_PUBLIC_KEY`): who a browser is, checked before
//! its WebSocket is upgraded.
//!
//! A token is a JWT in the `/ws` URL (`?token=…`), signed by whoever runs the
//! site's logins: HS256 with the shared `JWT_SECRET`, or RS256/ES256 with
//! the private key whose public half is in the PEM file `JWT_PUBLIC_KEY`.
//! Its claims: `sub` (the stable user id, required), `name` (the name shown,
//! default `sub`), `exp` (required), `rooms` (the rooms it may join;
//! absent = any), and `admin` (true) or `roles` (listing "moderator" or
//! "admin"): the user moderates every room. With tokens in force the shown name is the token's,
//! whatever a `join` frame asks for.

use std::path::Path;

use anyhow::Context;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Seconds of clock difference tolerated on `exp`.
pub(crate) const LEEWAY_SECS: u64 = 30;

/// The claims this gateway reads.
#[derive(Debug, Clone, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    roles: Vec<String>,
}

/// Who a token says the browser is, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The stable user id (`sub`).
    pub user: String,
    /// The name to show (`name`, or `sub` without one).
    pub name: String,
    /// The rooms it may join; `None` = any.
    pub rooms: Option<Vec<String>>,
    /// The token's `admin` claim is true, or its `roles` list "moderator"
    /// or "admin": a moderator of every room.
    pub moderates_everywhere: bool,
}

/// The keys tokens are checked with; one per algorithm.
pub(crate) struct TokenKeys {
    keys: Vec<(Algorithm, DecodingKey)>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<_> = self.keys.iter().map(|(a, _)| a).collect();
        f.debug_struct("TokenKeys").field("algorithms", &algorithms).finish()
    }
}

/// Why a token was not accepted: the words of the 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    #[error("this chat needs a token: open /ws?token=<JWT> (ask the site that sent you here for one)")]
    Missing,
    #[error("the token has expired: get a new one and reconnect")]
    Expired,
    #[error("the token's signature does not match this gateway's key: get a token from this site")]
    BadSignature,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

impl TokenKeys {
    /// The keys `JWT_SECRET` and `JWT_PUBLIC_KEY` give; `None` when neither is
    /// set (the chat is open to anyone, as without this module).
    pub(crate) fn from_config(secret: Option<&str>, public_key: Option<&Path>) -> anyhow::Result<Option<Self>> {
        let mut keys = Vec::new();
        // Empty counts as unset (compose passes `JWT_SECRET=` when .env has none).
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            anyhow::ensure!(
                secret.len() >= 16,
                "JWT_SECRET is {} bytes: use at least 16 random bytes (e.g. `openssl rand -hex 32`)",
                secret.len()
            );
            keys.push((Algorithm::HS256, DecodingKey::from_secret(secret.as_bytes())));
        }
        if let Some(path) = public_key {
            let pem = std::fs::read(path).with_context(|| {
                format!("cannot read JWT_PUBLIC_KEY {}: give the path of a PEM file", path.display())
            })?;
            if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                keys.push((Algorithm::RS256, key));
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                keys.push((Algorithm::ES256, key));
            } else {
                anyhow::bail!(
                    "JWT_PUBLIC_KEY {} holds neither an RSA nor an EC (P-256) public key in PEM form",
                    path.display()
                );
            }
        }
        Ok((!keys.is_empty()).then_some(Self { keys }))
    }

    /// Checks a token: a signature by one of the keys, with that key's
    /// algorithm (the header cannot pick another), not expired, with a `sub`.
    pub(crate) fn verify(&self, token: Option<&str>) -> Result<Identity, Rejected> {
        let token = token.filter(|t| !t.is_empty()).ok_or(Rejected::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| Rejected::Invalid(e.to_string()))?;
        let (algorithm, key) = self.keys.iter().find(|(a, _)| *a == header.alg).ok_or_else(|| {
            let accepted: Vec<String> = self.keys.iter().map(|(a, _)| format!("{a:?}")).collect();
            Rejected::Invalid(format!(
                "it is signed with {:?}; this gateway accepts {}",
                header.alg,
                accepted.join(", ")
            ))
        })?;
        let mut validation = Validation::new(*algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Rejected::Expired,
                ErrorKind::InvalidSignature => Rejected::BadSignature,
                _ => Rejected::Invalid(e.to_string()),
            })?
            .claims;
        if claims.sub.trim().is_empty() {
            return Err(Rejected::Invalid("its \"sub\" claim is empty".into()));
        }
        let name = claims.name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| claims.sub.clone());
        let moderates_everywhere = claims.admin || claims.roles.iter().any(|r| r == "moderator" || r == "admin");
        Ok(Identity { user: claims.sub, name, rooms: claims.rooms, moderates_everywhere })
    }
}

/// The `token` parameter of a query string, percent-decoded.
pub(crate) fn token_param(query: Option<&str>) -> Option<String> {
    query_param(query, "token")
}

/// The value of `key` in a query string, percent-decoded.
pub(crate) fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| percent_decode(v))
}

fn percent_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(hi, lo)| (hi * 16 + lo) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "a-test-secret-of-enough-bytes";

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .expect("encodes")
    }

    fn keys() -> TokenKeys {
        TokenKeys::from_config(Some(SECRET), None).expect("valid").expect("tokens on")
    }

    #[test]
    fn a_good_token_says_who_and_where() {
        let t = token(json!({"sub": "u1", "name": "Ada", "exp": now() + 60, "rooms": ["general"]}), SECRET);
        assert_eq!(
            keys().verify(Some(&t)),
            Ok(Identity {
                user: "u1".into(),
                name: "Ada".into(),
                rooms: Some(vec!["general".into()]),
                moderates_everywhere: false
            })
        );
        let t = token(json!({"sub": "u2", "exp": now() + 60}), SECRET);
        assert_eq!(keys().verify(Some(&t)).map(|i| (i.name, i.rooms)), Ok(("u2".into(), None)));
    }

    #[test]
    fn bad_tokens_are_told_apart() {
        let cases = [
            (None, Rejected::Missing),
            (Some(token(json!({"sub": "u", "exp": now() - 3600}), SECRET)), Rejected::Expired),
            (Some(token(json!({"sub": "u", "exp": now() + 60}), "another-secret-entirely")), Rejected::BadSignature),
        ];
        for (t, rejected) in cases {
            assert_eq!(keys().verify(t.as_deref()), Err(rejected.clone()), "{rejected:?}");
        }
        for (claims, why) in [
            (json!({"sub": "u"}), "no exp"),
            (json!({"exp": now() + 60}), "no sub"),
            (json!({"sub": "", "exp": now() + 60}), "empty sub"),
        ] {
            let t = token(claims, SECRET);
            assert!(matches!(keys().verify(Some(&t)), Err(Rejected::Invalid(_))), "{why}");
        }
        assert!(matches!(keys().verify(Some("not.a.jwt")), Err(Rejected::Invalid(_))));
    }

    #[test]
    fn no_key_means_no_tokens_and_a_short_secret_is_refused() {
        assert!(TokenKeys::from_config(None, None).expect("fine").is_none());
        assert!(TokenKeys::from_config(Some(""), None).expect("fine").is_none());
        let err = TokenKeys::from_config(Some("short"), None).expect_err("too short").to_string();
        assert!(err.contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn the_token_comes_from_the_query() {
        assert_eq!(token_param(Some("a=1&token=x.y%2Dz&b=2")), Some("x.y-z".into()));
        assert_eq!(token_param(Some("a=1")), None);
        assert_eq!(token_param(None), None);
        assert_eq!(token_param(Some("token=%zz%")), Some("%zz%".into()));
    }
}
