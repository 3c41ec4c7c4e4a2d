//! Signed file URLs: `/files/<id>?exp=<unix s>&sig=<b64url>` (and
//! `/files/<id>/thumb?...`). Any gateway that shares `FILES_SECRET` serves
//! them; the signature is HMAC-SHA256 over `<id>/<file|thumb>/<exp>`.
//!
//! `exp` is the next full hour plus 24 h, so every frame that shows one
//! attachment within an hour carries the same URL (the browser caches it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a URL lives past the hour it was made in.
const VALID_SECS: u64 = 24 * 3600;

/// Which of an attachment's objects a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    File,
    Thumb,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::File => "file",
            Part::Thumb => "thumb",
        }
    }
}

/// Why a URL is not served.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadUrl {
    #[error("this link is not signed by this chat (exp and sig are missing or wrong); open the file from its message")]
    Forged,
    #[error("this link expired; open the file from its message again for a fresh one")]
    Expired,
}

/// Signs and checks file URLs with `FILES_SECRET`.
#[derive(Clone)]
pub(crate) struct Signer {
    key: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Signer { key: std::sync::Arc::from(secret) }
    }

    fn mac(&self, id: &str, part: Part, exp: u64) -> Hmac<Sha256> {
        // Hmac takes a key of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(format!("{id}/{}/{exp}", part.as_str()).as_bytes());
        mac
    }

    /// The URL of `part` of attachment `id`, made at `now` (unix seconds).
    pub(crate) fn url(&self, id: &str, part: Part, now: u64) -> String {
        let exp = (now / 3600 + 1) * 3600 + VALID_SECS;
        let sig = URL_SAFE_NO_PAD.encode(self.mac(id, part, exp).finalize().into_bytes());
        let path = match part {
            Part::File => format!("/files/{id}"),
            Part::Thumb => format!("/files/{id}/thumb"),
        };
        format!("{path}?exp={exp}&sig={sig}")
    }

    /// Whether `exp` and `sig` (from the query) allow `part` of `id` at `now`.
    pub(crate) fn check(
        &self,
        id: &str,
        part: Part,
        exp: Option<&str>,
        sig: Option<&str>,
        now: u64,
    ) -> Result<(), BadUrl> {
        let exp: u64 = exp.and_then(|e| e.parse().ok()).ok_or(BadUrl::Forged)?;
        let sig = sig.and_then(|s| URL_SAFE_NO_PAD.decode(s).ok()).ok_or(BadUrl::Forged)?;
        // Constant-time comparison.
        self.mac(id, part, exp).verify_slice(&sig).map_err(|_| BadUrl::Forged)?;
        if exp < now { Err(BadUrl::Expired) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> (String, String) {
        let q = url.split_once('?').expect("query").1;
        let (exp, sig) = q.split_once('&').expect("two params");
        (exp.trim_start_matches("exp=").to_owned(), sig.trim_start_matches("sig=").to_owned())
    }

    #[test]
    fn a_url_is_stable_within_an_hour_and_checks_out_until_it_expires() {
        let signer = Signer::new(b"secret");
        let id = "at-00000000000000000000000000000abc";
        let url = signer.url(id, Part::File, 7200);
        assert_eq!(url, signer.url(id, Part::File, 7200 + 3599), "same hour, same URL");
        assert!(url.starts_with(&format!("/files/{id}?exp={}&sig=", 3 * 3600 + VALID_SECS)));
        let (exp, sig) = query(&url);
        assert_eq!(signer.check(id, Part::File, Some(&exp), Some(&sig), 7200), Ok(()));
        assert_eq!(signer.check(id, Part::File, Some(&exp), Some(&sig), 1_000_000), Err(BadUrl::Expired));
        assert_eq!(
            signer.check(id, Part::Thumb, Some(&exp), Some(&sig), 7200),
            Err(BadUrl::Forged),
            "file sig for thumb"
        );
        assert_eq!(signer.check("at-1", Part::File, Some(&exp), Some(&sig), 7200), Err(BadUrl::Forged));
        let later = (exp.parse::<u64>().expect("exp") + 3600).to_string();
        assert_eq!(signer.check(id, Part::File, Some(&later), Some(&sig), 7200), Err(BadUrl::Forged), "exp moved");
        assert_eq!(Signer::new(b"other").check(id, Part::File, Some(&exp), Some(&sig), 7200), Err(BadUrl::Forged));
        assert_eq!(signer.check(id, Part::File, None, None, 7200), Err(BadUrl::Forged));
    }
}
