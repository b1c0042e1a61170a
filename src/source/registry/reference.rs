//! Image references as docker normalises them: `python:3.11` →
//! `docker.io/library/python:3.11`, fetched from `registry-1.docker.io`.
//!
//! Grammar from distribution's `reference` package (`reference.go`,
//! `normalize.go`): the first `/`-separated component is a registry host iff it
//! contains `.` or `:`, is `localhost`, or has an upper-case letter; otherwise
//! the registry is `docker.io`, and a one-component name gets `library/`.

use crate::error::{Error, Result};

/// The registry docker means by `docker.io` (and `index.docker.io`).
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The name users see for Docker Hub.
const DOCKER_HUB_NAME: &str = "docker.io";

/// A parsed, normalised image reference in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `host[:port]` to connect to; `docker.io` is normalised to
    /// `registry-1.docker.io`.
    pub registry: String,
    /// Repository path, e.g. `library/python`.
    pub repository: String,
    /// Tag, when one was given.
    pub tag: Option<String>,
    /// Digest (`sha256:…`), when one was given; it wins over the tag.
    pub digest: Option<String>,
}

impl RegistryRef {
    /// Parses `NAME[:TAG][@DIGEST]`, with or without a leading `docker://`.
    ///
    /// ```
    /// use mlsize::source::registry::RegistryRef;
    /// let r = RegistryRef::parse("python:3.11").unwrap();
    /// assert_eq!(r.registry, "registry-1.docker.io");
    /// assert_eq!(r.repository, "library/python");
    /// assert_eq!(r.display(), "docker.io/library/python:3.11");
    /// ```
    pub fn parse(s: &str) -> Result<RegistryRef> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "invalid image reference '{s}': {why} (expected [HOST[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. 'python:3.11' or 'ghcr.io/org/app@sha256:…')"
            ))
        };
        let body = s.strip_prefix("docker://").unwrap_or(s);
        if body.is_empty() {
            return Err(bad("empty name"));
        }
        let (name_tag, digest) = match body.split_once('@') {
            Some((n, d)) => {
                if !is_digest(d) {
                    return Err(bad(&format!(
                        "'{d}' is not a digest (sha256: and 64 hex digits, or sha512: and 128)"
                    )));
                }
                (n, Some(d.to_string()))
            }
            None => (body, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_tag[..at], Some(name_tag[at + 1..].to_string()))
            }
            None => (name_tag, None),
        };
        if let Some(t) = &tag
            && !is_tag(t)
        {
            return Err(bad(&format!(
                "'{t}' is not a tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')"
            )));
        }
        let (host, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB_NAME.to_string(), name.to_string()),
        };
        if !is_host(&host) {
            return Err(bad(&format!("'{host}' is not a registry host")));
        }
        let hub = matches!(
            host.as_str(),
            DOCKER_HUB_NAME | "index.docker.io" | DOCKER_HUB_HOST
        );
        let repository = if hub && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if !is_repository(&repository) {
            return Err(bad(&format!(
                "'{repository}' is not a repository name (lower-case letters, digits and separators '.', '_', '__', '-', '/')"
            )));
        }
        Ok(RegistryRef {
            registry: if hub {
                DOCKER_HUB_HOST.to_string()
            } else {
                host
            },
            repository,
            tag,
            digest,
        })
    }

    /// The registry as users name it: `docker.io` for Docker Hub, else `host[:port]`.
    pub fn registry_name(&self) -> &str {
        if self.registry == DOCKER_HUB_HOST {
            DOCKER_HUB_NAME
        } else {
            &self.registry
        }
    }

    /// What to put after `/manifests/`: the digest if given, else the tag,
    /// else `latest` (as docker defaults).
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Canonical form: `docker.io/library/python:3.11`,
    /// `ghcr.io/org/app:1@sha256:…`; with neither tag nor digest, `:latest`.
    pub fn display(&self) -> String {
        let mut s = format!("{}/{}", self.registry_name(), self.repository);
        match (&self.tag, &self.digest) {
            (Some(t), _) => {
                s.push(':');
                s.push_str(t);
            }
            (None, None) => s.push_str(":latest"),
            (None, Some(_)) => {}
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl std::fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// `sha256:` + 64 lower-case hex digits, or `sha512:` + 128.
pub fn is_digest(d: &str) -> bool {
    let hex_len = |h: &str, n: usize| {
        h.len() == n
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match d.split_once(':') {
        Some(("sha256", h)) => hex_len(h, 64),
        Some(("sha512", h)) => hex_len(h, 128),
        _ => false,
    }
}

/// `[\w][\w.-]{0,127}` (distribution `reference.TagRegexp`).
fn is_tag(t: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !t.is_empty()
        && t.len() <= 128
        && t.bytes().next().is_some_and(ok)
        && t.bytes().all(|b| ok(b) || b == b'.' || b == b'-')
}

/// Components of `[a-z0-9]+` joined by `.`, `_`, `__` or `-`+, separated by `/`.
fn is_repository(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|c| {
            let b = c.as_bytes();
            let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
            if b.is_empty() || !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
                return false;
            }
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    x if alnum(&x) => i += 1,
                    b'.' => i += 1,
                    b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
                    b'-' => {
                        while b.get(i) == Some(&b'-') {
                            i += 1;
                        }
                    }
                    _ => return false,
                }
                // A separator must be followed by an alphanumeric.
                if i > 0 && !alnum(&b[i - 1]) && !b.get(i).is_some_and(alnum) {
                    return false;
                }
            }
            true
        })
}

/// A DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
fn is_host(h: &str) -> bool {
    let (name, port) = if let Some(rest) = h.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip6, tail)) => {
                if ip6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, tail.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match h.split_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(h), None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let name_ok = name.is_none_or(|n| {
        !n.is_empty()
            && n.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Input, registry, repository, tag, whether a digest is set, display.
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        bool,
        &'static str,
    );

    #[test]
    fn normalises_like_docker() {
        let cases: &[Case] = &[
            // input, registry, repository, tag, has digest, display
            (
                "python",
                "registry-1.docker.io",
                "library/python",
                None,
                false,
                "docker.io/library/python:latest",
            ),
            (
                "python:3.11",
                "registry-1.docker.io",
                "library/python",
                Some("3.11"),
                false,
                "docker.io/library/python:3.11",
            ),
            (
                "docker.io/python:3.11-slim",
                "registry-1.docker.io",
                "library/python",
                Some("3.11-slim"),
                false,
                "docker.io/library/python:3.11-slim",
            ),
            (
                "index.docker.io/pytorch/pytorch",
                "registry-1.docker.io",
                "pytorch/pytorch",
                None,
                false,
                "docker.io/pytorch/pytorch:latest",
            ),
            (
                "docker://ghcr.io/org/sub/app:v1",
                "ghcr.io",
                "org/sub/app",
                Some("v1"),
                false,
                "ghcr.io/org/sub/app:v1",
            ),
            (
                "localhost/app",
                "localhost",
                "app",
                None,
                false,
                "localhost/app:latest",
            ),
            (
                "127.0.0.1:5000/my_app__x/a-b:1",
                "127.0.0.1:5000",
                "my_app__x/a-b",
                Some("1"),
                false,
                "127.0.0.1:5000/my_app__x/a-b:1",
            ),
            (
                "localhost:5000/app@DIGEST",
                "localhost:5000",
                "app",
                None,
                true,
                "localhost:5000/app@DIGEST",
            ),
            (
                "org/app:t@DIGEST",
                "registry-1.docker.io",
                "org/app",
                Some("t"),
                true,
                "docker.io/org/app:t@DIGEST",
            ),
            (
                "[::1]:5000/app",
                "[::1]:5000",
                "app",
                None,
                false,
                "[::1]:5000/app:latest",
            ),
        ];
        for (input, registry, repository, tag, has_digest, display) in cases {
            let input = input.replace("DIGEST", D);
            let r = RegistryRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry, *registry, "{input}");
            assert_eq!(r.repository, *repository, "{input}");
            assert_eq!(r.tag.as_deref(), *tag, "{input}");
            assert_eq!(r.digest.is_some(), *has_digest, "{input}");
            assert_eq!(r.display(), display.replace("DIGEST", D), "{input}");
        }
    }

    #[test]
    fn digest_wins_over_tag() {
        let r = RegistryRef::parse(&format!("app:1@{D}")).unwrap();
        assert_eq!(r.reference(), D);
        assert_eq!(RegistryRef::parse("app").unwrap().reference(), "latest");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "docker://",
            "Python:3",
            "app:",
            "app:-x",
            "app@sha256:abc",
            "app@md5:0123",
            "a//b",
            "app/",
            "host:99999/app",
            "ex ample.com/app",
            "a..b",
            "-app",
            "app-",
            "ghcr.io/",
        ] {
            let e = RegistryRef::parse(bad).err();
            assert!(
                matches!(e, Some(Error::Usage(ref m)) if m.starts_with("invalid image reference")),
                "'{bad}' is refused: {e:?}"
            );
        }
    }
}
