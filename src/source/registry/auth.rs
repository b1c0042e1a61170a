//! `WWW-Authenticate` challenges (RFC 7235) and bearer tokens from a token
//! service (distribution's `docs/spec/auth/token.md`).

use std::time::{Duration, Instant};

use serde_json::Value;

/// What the registry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm=…`: send user and password with every request.
    Basic,
    /// `Bearer realm=…,service=…`: get a token from `realm`.
    Bearer {
        /// Token service URL.
        realm: String,
        /// `service` parameter for the token request.
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value; `None` for a scheme mlsize cannot answer.
/// Bearer is preferred when a header offers both.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let mut basic = false;
    let mut rest = header.trim();
    while !rest.is_empty() {
        let (scheme, after) = match rest.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        let (params, next) = parse_params(after);
        if scheme.eq_ignore_ascii_case("bearer") {
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            if let Some(realm) = get("realm").filter(|r| r.starts_with("http")) {
                return Some(Challenge::Bearer {
                    realm,
                    service: get("service"),
                });
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            basic = true;
        }
        if next.len() >= rest.len() {
            break;
        }
        rest = next.trim_start_matches([',', ' ', '\t']);
    }
    basic.then_some(Challenge::Basic)
}

/// `k=v, k="quoted \" v"` up to the next challenge (a token not followed by
/// `=`); returns the pairs and the remaining input.
fn parse_params(mut s: &str) -> (Vec<(String, String)>, &str) {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([',', ' ', '\t']);
        let Some(eq) = s.find('=') else {
            return (out, s);
        };
        let name = &s[..eq];
        if name.is_empty() || name.contains([' ', ',', '\t', '"']) {
            return (out, s);
        }
        let after = &s[eq + 1..];
        if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            out.push((name.to_string(), value));
            s = q.get(end..).unwrap_or("");
        } else {
            let end = after.find([',', ' ', '\t']).unwrap_or(after.len());
            out.push((name.to_string(), after[..end].to_string()));
            s = &after[end..];
        }
    }
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: String,
    pub(crate) refresh_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

/// Parses a token response: `token` or `access_token`, `expires_in` seconds
/// (60 when absent, as the spec says). The token is refreshed a little before
/// it expires (a tenth of its life, at most 10 s early).
pub(crate) fn parse_token(body: &[u8], now: Instant) -> Option<Token> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let value = ["token", "access_token"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|t| !t.is_empty()))?
        .to_string();
    // A header value must be visible ASCII: a hostile token could smuggle headers.
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let secs = v
        .get("expires_in")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(60.0)
        .min(86_400.0 * 365.0);
    let life = Duration::from_secs_f64(secs);
    let early = (life / 10).min(Duration::from_secs(10));
    Some(Token {
        value,
        refresh_at: now + (life - early),
    })
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let bearer = |realm: &str, service: Option<&str>| {
            Some(Challenge::Bearer {
                realm: realm.to_string(),
                service: service.map(String::from),
            })
        };
        let cases = [
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull""#,
                bearer("https://auth.docker.io/token", Some("registry.docker.io")),
            ),
            (
                r#"bearer realm=https://t.example/x, service="a \"q\" b""#,
                bearer("https://t.example/x", Some("a \"q\" b")),
            ),
            (r#"Basic realm="registry""#, Some(Challenge::Basic)),
            (
                r#"Basic realm="r", Bearer realm="http://127.0.0.1:1/t""#,
                bearer("http://127.0.0.1:1/t", None),
            ),
            // Hostile or unknown values: no panic, nothing usable.
            ("Negotiate", None),
            ("", None),
            (r#"Bearer realm="unterminated"#, None),
            (r#"Bearer realm="file:///etc/passwd""#, None),
            ("Bearer ====,,,\"", None),
            ("Basic", Some(Challenge::Basic)),
        ];
        for (h, want) in cases {
            assert_eq!(parse_challenge(h), want, "{h}");
        }
    }

    #[test]
    fn tokens() {
        let now = Instant::now();
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        assert_eq!(t.value, "abc");
        assert_eq!(t.refresh_at - now, Duration::from_secs(290));
        let t = parse_token(br#"{"access_token":"x","expires_in":1}"#, now).unwrap();
        assert_eq!(t.refresh_at - now, Duration::from_millis(900));
        let t = parse_token(br#"{"token":"y"}"#, now).unwrap();
        assert_eq!(t.refresh_at - now, Duration::from_secs(54));
        for bad in [
            &br#"{"token":""}"#[..],
            br#"{"token":"a\r\nX-Evil: 1"}"#,
            br#"{"expires_in":5}"#,
            b"<html>",
            br#"{"token":5}"#,
        ] {
            assert!(
                parse_token(bad, now).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(
            parse_token(br#"{"token":"z","expires_in":1e300}"#, now).is_some(),
            "a huge lifetime is capped, not a panic"
        );
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
