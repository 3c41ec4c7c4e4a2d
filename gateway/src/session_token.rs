//! Session tokens: what lets a browser that reconnects stay the same member.
//!
//! `welcome` hands every connection a token: 32 random bytes, URL-safe
//! base64. A browser that comes back with `/ws?session=<token>` (to any
//! gateway: nothing is stored, every gateway derives the same) is the same
//! member in every room. The member id is a one-way hash of the token, so
//! the ids everyone sees in member lists do not give tokens away, and a
//! token cannot be made for someone else's id. With JWTs on, the hash also
//! covers the token's `sub`: another user presenting the token is another
//! member.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Characters of a token: `TOKEN_BYTES` in base64 without padding.
pub(crate) const TOKEN_CHARS: usize = 43;

/// A browser session's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionToken(String);

impl SessionToken {
    /// A fresh token for a new session.
    pub(crate) fn new() -> Self {
        Self(URL_SAFE_NO_PAD.encode(rand::random::<[u8; TOKEN_BYTES]>()))
    }

    /// A token a browser sent back: exactly what [`SessionToken::new`] makes.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let decodes = URL_SAFE_NO_PAD.decode(text).is_ok_and(|bytes| bytes.len() == TOKEN_BYTES);
        if text.len() == TOKEN_CHARS && decodes {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "session is not a session token: send back the {TOKEN_CHARS}-character `session` of a welcome frame, or leave it out to start a new session"
            ))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The member id of this session, for the user `subject` (the JWT's
    /// `sub`, when tokens are checked): 24 hex digits.
    pub(crate) fn member_id(&self, subject: Option<&str>) -> String {
        let mut hash = Sha256::new();
        hash.update(b"chat member\0");
        hash.update(subject.unwrap_or_default().as_bytes());
        hash.update(b"\0");
        hash.update(self.0.as_bytes());
        hash.finalize()[..12].iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl Default for SessionToken {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_parses_and_keeps_its_member_id() {
        let token = SessionToken::new();
        assert_eq!(token.as_str().len(), TOKEN_CHARS);
        let back = SessionToken::parse(token.as_str()).expect("a token we made");
        assert_eq!(back.member_id(None), token.member_id(None));
        assert_eq!(token.member_id(None).len(), 24);
        assert_ne!(SessionToken::new().member_id(None), token.member_id(None), "tokens are random");
    }

    #[test]
    fn the_member_id_depends_on_the_user() {
        let token = SessionToken::new();
        assert_ne!(token.member_id(Some("u1")), token.member_id(Some("u2")));
        assert_ne!(token.member_id(Some("u1")), token.member_id(None));
    }

    #[test]
    fn anything_else_is_refused_with_what_to_send() {
        let good = SessionToken::new();
        let short = &good.as_str()[..42];
        let padded = format!("{}=", &good.as_str()[..42]);
        for bad in ["", "garbage", short, &padded, &"!".repeat(TOKEN_CHARS), &"A".repeat(200)] {
            let error = SessionToken::parse(bad).expect_err(bad);
            assert!(error.contains("welcome"), "{error}");
        }
    }
}
