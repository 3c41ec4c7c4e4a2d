//! Which web pages may open a WebSocket on this gateway (`ALLOWED_ORIGINS`).
//!
//! Browsers send the page's origin with every WebSocket upgrade and do not
//! apply the same-origin rule to WebSockets themselves, so without this any
//! site a member visits could open a chat connection in their name. Clients
//! that are not browsers (CLIs, bots) send no `Origin` and are let through:
//! the header protects browsers, it is not an authentication.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

/// Who may open `/ws`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginPolicy {
    /// `ALLOWED_ORIGINS` unset: a browser's origin must be the gateway's own
    /// host (as the request's `Host` header names it).
    SameOrigin,
    /// `ALLOWED_ORIGINS=*`: any page.
    Any,
    /// `ALLOWED_ORIGINS=https://chat.example,https://www.example`: these, exactly.
    Listed(Vec<String>),
}

impl OriginPolicy {
    /// The policy `ALLOWED_ORIGINS` (already split at commas) asks for.
    pub(crate) fn from_list(list: &[String]) -> Self {
        let list: Vec<String> = list
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        if list.is_empty() {
            OriginPolicy::SameOrigin
        } else if list.iter().any(|o| o == "*") {
            OriginPolicy::Any
        } else {
            OriginPolicy::Listed(list)
        }
    }

    /// `Ok` when a request with these headers may upgrade; otherwise the
    /// reason, for the 403's body.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(origin) = headers.get(ORIGIN) else {
            return Ok(()); // not a browser
        };
        let origin = origin.to_str().unwrap_or("").trim_end_matches('/').to_ascii_lowercase();
        let allowed = match self {
            OriginPolicy::Any => true,
            OriginPolicy::Listed(list) => list.contains(&origin),
            OriginPolicy::SameOrigin => {
                let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_ascii_lowercase();
                same_host(&origin, &host)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(match self {
                OriginPolicy::SameOrigin => format!(
                    "pages from origin {origin:?} may not open a chat connection here (only this gateway's own \
                     pages may); the operator can allow it with ALLOWED_ORIGINS"
                ),
                _ => format!(
                    "pages from origin {origin:?} may not open a chat connection here; the operator can add it to \
                     ALLOWED_ORIGINS"
                ),
            })
        }
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port
/// as a `Host` header, default ports counted. `null` (sandboxed frames,
/// `file:` pages) never does.
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    if host.is_empty() || authority.is_empty() {
        return false;
    }
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let strip = |a: &str| a.strip_suffix(default_port).map(str::to_owned).unwrap_or_else(|| a.to_owned());
    strip(authority) == strip(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).expect("header"));
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(origin).expect("header"));
        }
        headers
    }

    #[test]
    fn each_policy_decides_as_documented() {
        let same = OriginPolicy::from_list(&[]);
        let any = OriginPolicy::from_list(&["*".into()]);
        let listed = OriginPolicy::from_list(&["https://chat.example/".into(), " http://localhost:8080".into()]);
        let cases = [
            (&same, None, "localhost:3000", true),
            (&same, Some("http://localhost:3000"), "localhost:3000", true),
            (&same, Some("http://LOCALHOST:3000"), "localhost:3000", true),
            (&same, Some("https://chat.example"), "chat.example:443", true),
            (&same, Some("http://localhost:3001"), "localhost:3000", false),
            (&same, Some("http://evil.example"), "localhost:3000", false),
            (&same, Some("null"), "localhost:3000", false),
            (&any, Some("http://evil.example"), "localhost:3000", true),
            (&any, Some("null"), "localhost:3000", true),
            (&listed, Some("https://chat.example"), "gw:3000", true),
            (&listed, Some("http://localhost:8080"), "gw:3000", true),
            (&listed, Some("http://evil.example"), "gw:3000", false),
            (&listed, Some("null"), "gw:3000", false),
            (&listed, None, "gw:3000", true),
        ];
        for (policy, origin, host, ok) in cases {
            assert_eq!(policy.check(&headers(origin, host)).is_ok(), ok, "{policy:?} origin {origin:?} host {host}");
        }
    }
}
