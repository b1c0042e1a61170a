//! Registry client (used by stage 1, read): a [`RegistryRef`] → manifests,
//! configs ([`Fetched`], bytes) and layer blobs (a streaming `Read`), over the
//! OCI distribution API v1.1 / Docker registry API v2.
//!
//! The client resolves documents and opens blobs; planning, verifying layer
//! digests and scanning stay in the shared loader. It is blocking (ureq):
//! each layer worker thread reads its blob as a plain [`Read`], so memory does
//! not depend on blob size and nothing is written to disk.
//!
//! - Auth: anonymous, `Basic`, or a bearer token from the `WWW-Authenticate`
//!   challenge (scope `repository:<repo>:pull`), shared by all threads and
//!   fetched again before it expires (`expires_in`) or when the registry
//!   answers 401 to it. Credentials: see [`creds`].
//! - TLS: the system roots (`SSL_CERT_FILE`, `SSL_CERT_DIR` honoured) plus
//!   `cert_dir/*.crt` (skopeo's `--cert-dir` layout). Without verification
//!   (`tls_verify = Some(false)`, and by default for `localhost`, `127.0.0.0/8`
//!   and `::1`, as docker treats them as insecure registries) HTTPS is tried
//!   first and plain HTTP after it.
//! - Redirects (blob storage on another host) are followed by hand, and the
//!   `Authorization` header goes only to the registry's own origin.
//! - Faults: 429 (honouring `Retry-After`, at most [`MAX_RETRY_AFTER`]) and
//!   502/503/504 are retried with backoff; a blob stream whose connection drops
//!   or stalls resumes with `Range: bytes=N-`; every retry is bounded by
//!   [`RegistryOptions::retries`].
//! - Plain HTTP (a CI job's `localhost:5000`): a layer blob's body is read
//!   from the socket straight into the scan's buffers, without ureq's copy
//!   (module `plain`); anything but a simple answer goes back to ureq.

mod auth;
mod blob;
pub mod creds;
mod image;
mod plain;
mod reference;

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256, Sha512};
use ureq::Agent;
use ureq::http::Response;

use crate::error::{Error, Result};
use auth::{Challenge, Token};
pub use creds::{CredentialEnv, Credentials, Lookup, creds_from_env, parse_creds};
pub(crate) use image::RegistryImage;
pub use reference::{DOCKER_HUB_HOST, RegistryRef, is_digest};

/// Largest manifest or index accepted (containerd's limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest token-service response read.
const MAX_TOKEN_BYTES: u64 = 1 << 20;
/// Largest error body read (for the message), and skipped to reuse a connection.
const MAX_ERROR_BYTES: u64 = 64 << 10;
/// Longest `Retry-After` honoured; a longer one is waited this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// What mlsize calls itself in requests.
const USER_AGENT: &str = concat!("mlsize/", env!("CARGO_PKG_VERSION"));
/// Redirect hops followed per request.
const MAX_REDIRECTS: usize = 5;

/// Media types asked for, most wanted first: OCI index and manifest, Docker
/// list and schema 2, and Docker schema 1 (signed and not) for old images.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// How to reach a registry.
#[derive(Clone)]
pub struct RegistryOptions {
    /// `None`: verify certificates, except for `localhost`, `127.0.0.0/8` and
    /// `::1`, which may also be plain HTTP (docker's default insecure
    /// registries). `Some(true)`: always verify. `Some(false)`: never verify,
    /// and fall back to plain HTTP.
    pub tls_verify: Option<bool>,
    /// Extra CA certificates: every `*.crt` in the directory (skopeo's
    /// `--cert-dir`, e.g. `DIR/ca.crt`).
    pub cert_dir: Option<PathBuf>,
    /// User and password given explicitly (`--creds`, or
    /// [`creds_from_env`]); they win over every credential file.
    pub creds: Option<(String, String)>,
    /// Where credential files and helpers are looked for.
    pub credential_env: CredentialEnv,
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for any one read (response headers, or the next bytes of
    /// a body): a stalled transfer fails (or resumes) after this long.
    pub read_timeout: Duration,
    /// Retries of one request or of one blob stream without progress.
    pub retries: u32,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            tls_verify: None,
            cert_dir: None,
            creds: None,
            credential_env: CredentialEnv::from_process(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            retries: 5,
        }
    }
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("tls_verify", &self.tls_verify)
            .field("cert_dir", &self.cert_dir)
            .field(
                "creds",
                &self.creds.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("credential_env", &self.credential_env)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

/// A document read whole from the registry.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The bytes exactly as served.
    pub bytes: Vec<u8>,
    /// The `Content-Type` media type, parameters removed.
    pub media_type: Option<String>,
    /// Digest of `bytes` (`sha256:…`, or the algorithm of the digest asked for).
    pub digest: String,
}

/// A connection to one repository of one registry. `Send + Sync` and cheap to
/// clone: layer workers share it and read blobs at once.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// The client's state; blob streams hold it too.
struct Inner {
    agent: Agent,
    /// `https://host[:port]` or `http://host[:port]`.
    base: String,
    /// The registry as users name it (`docker.io`, `host:port`).
    registry: String,
    repository: String,
    /// How errors name the image: `docker.io/library/python:3.11`.
    label: String,
    creds: Lookup,
    retries: u32,
    read_timeout: Duration,
    cert_hint: bool,
    auth: Mutex<AuthState>,
    /// Blob bodies read from the socket: a plain-HTTP registry reached
    /// without a proxy (see [`plain`]).
    plain: Option<plain::Target>,
}

/// What the registry asked for, and the current token.
#[derive(Debug, Default)]
struct AuthState {
    challenge: Option<Challenge>,
    token: Option<Token>,
    /// Tokens fetched so far (for messages).
    fetched: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.inner;
        f.debug_struct("Client")
            .field("base", &s.base)
            .field("repository", &s.repository)
            .field("creds", &s.creds)
            .finish_non_exhaustive()
    }
}

/// A request that did not give a usable response.
#[derive(Debug)]
enum Fail {
    /// The server answered with this status (after retries).
    Status {
        code: u16,
        /// The registry's error text (`errors[0].message`), if any.
        detail: String,
    },
    /// No HTTP answer (connection, TLS, timeout).
    Transport(ureq::Error),
    /// A response we refuse (bad redirect, hostile header).
    Protocol(String),
}

impl Client {
    /// Connects to `r.registry` (pinging `/v2/` to pick HTTPS or plain HTTP
    /// and learn the auth challenge) and looks up credentials.
    pub fn new(r: &RegistryRef, opts: &RegistryOptions) -> Result<Client> {
        Ok(Client {
            inner: Arc::new(Inner::new(r, opts)?),
        })
    }

    /// The base URL in use (`https://host:port` or `http://host:port`).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The credential lookup made for this registry (its `Debug` never shows
    /// a secret).
    pub fn credentials(&self) -> &Lookup {
        &self.inner.creds
    }

    /// Bearer tokens fetched so far by this client.
    pub fn tokens_fetched(&self) -> u32 {
        self.inner.auth.lock().map(|s| s.fetched).unwrap_or(0)
    }

    /// `GET /v2/<repo>/manifests/<reference>` (a tag or a digest) with
    /// `Accept` for OCI index and manifest, Docker list, schema 2 and schema 1.
    ///
    /// Refuses bodies over [`MAX_MANIFEST_BYTES`], and checks the bytes
    /// against `reference` when it is a digest.
    pub fn manifest(&self, reference: &str) -> Result<Fetched> {
        self.inner.manifest(reference)
    }

    /// A small blob (an image config) read whole, refused over `max` bytes,
    /// and checked against `digest`.
    pub fn blob_bytes(&self, digest: &str, max: u64) -> Result<Vec<u8>> {
        self.inner.blob_bytes(digest, max)
    }

    /// A layer blob as a stream of at most `size` bytes (the descriptor's
    /// size; `None` trusts `Content-Length`).
    ///
    /// A dropped or stalled connection is resumed with `Range: bytes=N-`
    /// (at most [`RegistryOptions::retries`] times in a row without progress,
    /// with backoff); a body that ends early is an
    /// [`std::io::ErrorKind::UnexpectedEof`] error. The digest is not checked
    /// here: the caller hashes what it reads.
    pub fn blob(&self, digest: &str, size: Option<u64>) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(blob::BlobStream::open(
            self.inner.clone(),
            digest,
            size,
        )?))
    }
}

impl Inner {
    /// Connects to `r.registry` (pinging `/v2/` to pick HTTPS or plain HTTP
    /// and learn the auth challenge) and looks up credentials.
    fn new(r: &RegistryRef, opts: &RegistryOptions) -> Result<Inner> {
        let label = r.display();
        let host = r.registry.as_str();
        let insecure = match opts.tls_verify {
            Some(v) => !v,
            None => is_loopback(host),
        };
        let roots = load_roots(opts.cert_dir.as_deref(), &label)?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(roots)
            .disable_verification(insecure)
            .build();
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .timeout_per_write(Some(opts.read_timeout))
            .user_agent(USER_AGENT)
            .tls_config(tls)
            .build()
            .into();
        let registry = r.registry_name().to_string();
        let creds = creds::find_credentials(
            &registry,
            &r.repository,
            opts.creds.as_ref(),
            &opts.credential_env,
        );
        let mut client = Inner {
            agent,
            base: String::new(),
            registry,
            repository: r.repository.clone(),
            label,
            creds,
            retries: opts.retries,
            read_timeout: opts.read_timeout,
            cert_hint: opts.cert_dir.is_none(),
            auth: Mutex::new(AuthState::default()),
            plain: None,
        };
        let schemes: &[&str] = if insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last = None;
        for scheme in schemes {
            client.base = format!("{scheme}://{host}");
            match client.ping() {
                Ok(()) => {
                    if client.agent.config().proxy().is_none() {
                        client.plain = plain::Target::new(
                            &client.base,
                            opts.connect_timeout,
                            opts.read_timeout,
                            USER_AGENT,
                        );
                    }
                    return Ok(client);
                }
                Err(Fail::Transport(e)) if is_tls_or_protocol(&e) && scheme == &"https" => {
                    last = Some(Fail::Transport(e));
                }
                Err(f) => return Err(client.error(f, "/v2/")),
            }
        }
        Err(client.error(
            last.unwrap_or(Fail::Protocol("no scheme to try".into())),
            "/v2/",
        ))
    }

    /// `GET /v2/`: any HTTP answer tells the scheme works; a 401 carries the
    /// challenge.
    fn ping(&self) -> std::result::Result<(), Fail> {
        let url = format!("{}/v2/", self.base);
        let resp = self.call(&url, &[], None).map_err(Fail::Transport)?;
        if resp.status().as_u16() == 401 {
            let ch = header(&resp, "www-authenticate").and_then(auth::parse_challenge);
            if let Ok(mut st) = self.auth.lock() {
                st.challenge = ch;
            }
        }
        drain(resp);
        Ok(())
    }

    /// `GET /v2/<repo>/manifests/<reference>` (a tag or a digest).
    ///
    /// Refuses bodies over [`MAX_MANIFEST_BYTES`], and checks the bytes
    /// against `reference` when it is a digest.
    fn manifest(&self, reference: &str) -> Result<Fetched> {
        let by_digest = is_digest(reference);
        if !by_digest && reference.contains(['/', '?', '#', ' ']) {
            return Err(Error::Usage(format!(
                "invalid tag '{reference}' for '{}'",
                self.label
            )));
        }
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let resp = match self.get(&path, &[("Accept", MANIFEST_ACCEPT.to_string())]) {
            Ok(r) => r,
            Err(Fail::Status { code: 404, .. }) => return Err(self.manifest_not_found(reference)),
            Err(f) => return Err(self.error(f, &path)),
        };
        let media_type = header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
            .filter(|c| !c.is_empty());
        let what = format!("manifest '{reference}'");
        let bytes = self.read_capped(resp, MAX_MANIFEST_BYTES, &what, &path)?;
        let digest = digest_of(
            &bytes,
            if reference.starts_with("sha512:") {
                "sha512"
            } else {
                "sha256"
            },
        );
        if by_digest && digest != reference {
            return Err(Error::Format {
                path: self.label.clone(),
                what: format!(
                    "the registry served a manifest whose digest is {digest}, not the {reference} asked for (a broken registry or proxy; try again)"
                ),
            });
        }
        Ok(Fetched {
            bytes,
            media_type,
            digest,
        })
    }

    /// A small blob (an image config) read whole, refused over `max` bytes,
    /// and checked against `digest`.
    fn blob_bytes(&self, digest: &str, max: u64) -> Result<Vec<u8>> {
        if !is_digest(digest) {
            return Err(Error::Format {
                path: self.label.clone(),
                what: format!("'{digest}' is not a digest"),
            });
        }
        let path = format!("/v2/{}/blobs/{digest}", self.repository);
        let resp = self.get(&path, &[]).map_err(|f| match f {
            Fail::Status { code: 404, .. } => self.blob_not_found(digest),
            f => self.error(f, &path),
        })?;
        let what = format!("blob {}", short(digest));
        let bytes = self.read_capped(resp, max, &what, &path)?;
        let algo = digest.split(':').next().unwrap_or("sha256");
        let found = digest_of(&bytes, algo);
        if found != digest {
            return Err(Error::Format {
                path: self.label.clone(),
                what: format!(
                    "blob {digest} read from the registry hashes to {found} (a broken registry or proxy; try again)"
                ),
            });
        }
        Ok(bytes)
    }

    /// `GET base+path` with auth, retries and redirects; `Err` for any status
    /// but 2xx (and 206).
    fn get(
        &self,
        path: &str,
        headers: &[(&str, String)],
    ) -> std::result::Result<Response<ureq::Body>, Fail> {
        self.get_url(&format!("{}{path}", self.base), headers)
    }

    /// [`Inner::get`] of a whole URL: where a registry redirected a request
    /// made elsewhere ([`plain`]).
    fn get_url(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> std::result::Result<Response<ureq::Body>, Fail> {
        let mut reauthed = false;
        let mut attempt = 0u32;
        loop {
            let auth = self.authorization()?;
            let resp = match self.follow(url, headers, auth.as_deref()) {
                Ok(r) => r,
                Err(Fail::Transport(e)) if attempt < self.retries && is_transient(&e) => {
                    attempt += 1;
                    std::thread::sleep(backoff(attempt));
                    continue;
                }
                Err(f) => return Err(f),
            };
            let code = resp.status().as_u16();
            match code {
                200..=299 => return Ok(resp),
                401 if !reauthed => {
                    // A first challenge, or an expired or revoked token: ask again, once.
                    reauthed = true;
                    let ch = header(&resp, "www-authenticate").and_then(auth::parse_challenge);
                    drain(resp);
                    if let Ok(mut st) = self.auth.lock() {
                        if ch.is_some() {
                            st.challenge = ch;
                        }
                        st.token = None;
                    }
                    if auth.is_none() && !self.can_answer() {
                        return Err(Fail::Status {
                            code: 401,
                            detail: String::new(),
                        });
                    }
                }
                429 | 502 | 503 | 504 if attempt < self.retries => {
                    attempt += 1;
                    let wait = header(&resp, "retry-after")
                        .and_then(parse_retry_after)
                        .unwrap_or_else(|| backoff(attempt));
                    drain(resp);
                    std::thread::sleep(wait);
                }
                _ => {
                    let detail = error_detail(resp);
                    return Err(Fail::Status { code, detail });
                }
            }
        }
    }

    /// Whether a 401 could be answered: a challenge we speak and, for Basic,
    /// credentials.
    fn can_answer(&self) -> bool {
        match self.auth.lock().ok().and_then(|s| s.challenge.clone()) {
            Some(Challenge::Bearer { .. }) => true,
            Some(Challenge::Basic) => self.creds.found.is_some(),
            None => false,
        }
    }

    /// One request, following redirects by hand: `Authorization` is sent only
    /// to the registry's own origin, never to blob storage elsewhere.
    fn follow(
        &self,
        url: &str,
        headers: &[(&str, String)],
        auth: Option<&str>,
    ) -> std::result::Result<Response<ureq::Body>, Fail> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let same = origin(&url) == Some(self.base.as_str());
            let resp = self
                .call(&url, headers, if same { auth } else { None })
                .map_err(Fail::Transport)?;
            let code = resp.status().as_u16();
            if !matches!(code, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let next = header(&resp, "location")
                .and_then(|l| resolve(&url, l))
                .ok_or_else(|| {
                    Fail::Protocol(format!("redirect {code} without a usable Location"))
                })?;
            drain(resp);
            url = next;
        }
        Err(Fail::Protocol(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    fn call(
        &self,
        url: &str,
        headers: &[(&str, String)],
        auth: Option<&str>,
    ) -> std::result::Result<Response<ureq::Body>, ureq::Error> {
        let mut req = self.agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.call()
    }

    /// The `Authorization` value for the registry, fetching a token when the
    /// registry asked for one and the current one is missing or old.
    fn authorization(&self) -> std::result::Result<Option<String>, Fail> {
        let mut st = self
            .auth
            .lock()
            .map_err(|_| Fail::Protocol("auth state poisoned".into()))?;
        match st.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.found.as_ref().map(basic)),
            Some(Challenge::Bearer { realm, service }) => {
                if let Some(t) = &st.token
                    && Instant::now() < t.refresh_at
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                // Held across the request on purpose: threads wait for one refresh.
                let t = self.fetch_token(&realm, service.as_deref())?;
                st.fetched += 1;
                let v = format!("Bearer {}", t.value);
                st.token = Some(t);
                Ok(Some(v))
            }
        }
    }

    /// `GET realm?service=…&scope=repository:<repo>:pull`, with Basic
    /// credentials when there are some.
    fn fetch_token(&self, realm: &str, service: Option<&str>) -> std::result::Result<Token, Fail> {
        let mut url = realm.to_string();
        url.push(if realm.contains('?') { '&' } else { '?' });
        if let Some(s) = service {
            url.push_str(&format!("service={}&", auth::query_escape(s)));
        }
        url.push_str(&format!(
            "scope={}",
            auth::query_escape(&format!("repository:{}:pull", self.repository))
        ));
        let cred = self.creds.found.as_ref().map(basic);
        let mut attempt = 0;
        let resp = loop {
            match self.agent.get(&url).header_opt(cred.as_deref()).call() {
                Ok(r)
                    if matches!(r.status().as_u16(), 429 | 502 | 503 | 504)
                        && attempt < self.retries =>
                {
                    attempt += 1;
                    drain(r);
                    std::thread::sleep(backoff(attempt));
                }
                Ok(r) => break r,
                Err(e) if attempt < self.retries && is_transient(&e) => {
                    attempt += 1;
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) => return Err(Fail::Transport(e)),
            }
        };
        let code = resp.status().as_u16();
        if code != 200 {
            drain(resp);
            return Err(Fail::Status {
                code: if matches!(code, 401 | 403) { 401 } else { code },
                detail: format!(
                    "token service {} answered {code}",
                    origin(realm).unwrap_or(realm)
                ),
            });
        }
        let mut body = Vec::new();
        let read = resp
            .into_body()
            .into_with_config()
            .limit(MAX_TOKEN_BYTES)
            .reader()
            .read_to_end(&mut body);
        match read {
            Ok(_) => auth::parse_token(&body, Instant::now()).ok_or_else(|| {
                Fail::Protocol(format!(
                    "the token service {} answered without a usable token",
                    origin(realm).unwrap_or(realm)
                ))
            }),
            Err(e) => Err(Fail::Protocol(format!(
                "reading a token from {}: {e}",
                origin(realm).unwrap_or(realm)
            ))),
        }
    }

    /// Reads a response body of at most `max` bytes.
    fn read_capped(
        &self,
        resp: Response<ureq::Body>,
        max: u64,
        what: &str,
        path: &str,
    ) -> Result<Vec<u8>> {
        let too_big = || Error::Format {
            path: self.label.clone(),
            what: format!(
                "{what} is larger than {}, the most mlsize accepts (is it really a manifest or config?)",
                if max >= 1 << 20 && max.is_multiple_of(1 << 20) {
                    format!("{} MiB", max >> 20)
                } else {
                    format!("{max} bytes")
                }
            ),
        };
        if content_length(&resp).is_some_and(|n| n > max) {
            return Err(too_big());
        }
        let mut bytes = Vec::new();
        resp.into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader()
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io_error(e, path))?;
        if bytes.len() as u64 > max {
            return Err(too_big());
        }
        Ok(bytes)
    }

    /// 404 on a manifest: does the repository exist? `tags/list` tells.
    fn manifest_not_found(&self, reference: &str) -> Error {
        let path = format!("/v2/{}/tags/list?n=20", self.repository);
        let what = match self.get(&path, &[]) {
            Ok(resp) => {
                let mut body = Vec::new();
                let _ = resp
                    .into_body()
                    .into_with_config()
                    .limit(MAX_ERROR_BYTES)
                    .reader()
                    .read_to_end(&mut body);
                let tags: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("tags").cloned())
                    .and_then(|t| serde_json::from_value(t).ok())
                    .unwrap_or_default();
                let list = if tags.is_empty() {
                    "it has no tags".to_string()
                } else {
                    let shown: Vec<&str> = tags.iter().take(10).map(String::as_str).collect();
                    format!(
                        "its tags include {}",
                        shown
                            .iter()
                            .map(|t| format!("'{t}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                format!(
                    "repository '{}' exists on '{}' but has no manifest '{reference}' ({list})",
                    self.repository, self.registry
                )
            }
            Err(Fail::Status { code: 404, .. }) => format!(
                "repository '{}' not found on '{}' (check the name; private repositories also need credentials)",
                self.repository, self.registry
            ),
            Err(_) => format!(
                "manifest '{reference}' not found in repository '{}' on '{}' (whether the repository exists is unknown: its tag list is not readable)",
                self.repository, self.registry
            ),
        };
        Error::Io {
            path: self.label.clone(),
            kind: std::io::ErrorKind::NotFound,
            what,
        }
    }

    fn blob_not_found(&self, digest: &str) -> Error {
        Error::Io {
            path: self.label.clone(),
            kind: std::io::ErrorKind::NotFound,
            what: format!(
                "blob {digest} not found in repository '{}' on '{}' (the manifest names a blob the registry does not have)",
                self.repository, self.registry
            ),
        }
    }

    /// The one-line message for a failed request.
    fn error(&self, f: Fail, path: &str) -> Error {
        let (kind, what) = self.describe(f, path);
        Error::Io {
            path: self.label.clone(),
            kind,
            what,
        }
    }

    fn io_error(&self, e: std::io::Error, path: &str) -> Error {
        Error::Io {
            path: self.label.clone(),
            kind: e.kind(),
            what: format!("reading {path} from '{}': {e}", self.registry),
        }
    }

    /// Wording for a failure, naming what to do.
    fn describe(&self, f: Fail, path: &str) -> (std::io::ErrorKind, String) {
        use std::io::ErrorKind as K;
        let host = self.base.split("://").nth(1).unwrap_or(&self.base);
        match f {
            Fail::Status {
                code: 401 | 403,
                detail,
            } => {
                let code_text = if detail.starts_with("token service") {
                    detail
                } else {
                    format!("{} {}", path_kind(path), "answered 401/403")
                };
                let how = match &self.creds.found {
                    Some(c) => format!(
                        "the credentials of user '{}' from {} were refused",
                        c.user, c.source
                    ),
                    None => format!(
                        "no credentials found; tried {}",
                        self.creds.tried.join(", ")
                    ),
                };
                (
                    K::PermissionDenied,
                    format!(
                        "registry '{}' denied access to '{}' ({code_text}): {how} (log in with 'docker login {}' or 'podman login', or pass --creds USER:PASSWORD)",
                        self.registry, self.repository, self.registry
                    ),
                )
            }
            Fail::Status { code, detail } => {
                let extra = if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                };
                (
                    K::Other,
                    format!(
                        "registry '{}' answered {code} to GET {path}{extra}",
                        self.registry
                    ),
                )
            }
            Fail::Protocol(m) => (K::InvalidData, format!("registry '{}': {m}", self.registry)),
            Fail::Transport(e) => describe_transport(&e, host, self.cert_hint, self.read_timeout),
        }
    }
}

/// Wording for a transport error talking to `host`.
fn describe_transport(
    e: &ureq::Error,
    host: &str,
    cert_hint: bool,
    read_timeout: Duration,
) -> (std::io::ErrorKind, String) {
    use std::io::ErrorKind as K;
    if is_tls_or_protocol(e) {
        let text = e.to_string();
        let hint = if text.contains("CaUsedAsEndEntity") {
            "the registry presents a CA certificate as its own, which rustls refuses: issue it a server certificate signed by that CA (or re-create it with -addext basicConstraints=critical,CA:FALSE), or pass --tls-verify=false"
        } else if cert_hint {
            "if the registry uses a private CA, pass --cert-dir DIR with its ca.crt (skopeo's layout: DIR/*.crt); --tls-verify=false skips verification"
        } else {
            "check that --cert-dir holds the CA that signed the registry's certificate, or pass --tls-verify=false to skip verification"
        };
        return (
            K::InvalidData,
            format!(
                "TLS connection to '{host}' failed: {} ({hint})",
                lower(&e.to_string())
            ),
        );
    }
    match e {
        ureq::Error::Io(io) if io.kind() == K::ConnectionRefused => (
            K::ConnectionRefused,
            format!(
                "cannot connect to '{host}': connection refused (is a registry listening there?)"
            ),
        ),
        ureq::Error::HostNotFound => (
            K::NotFound,
            format!("cannot resolve host '{host}' (check the registry name and your DNS)"),
        ),
        ureq::Error::Timeout(t) => (
            K::TimedOut,
            format!(
                "'{host}' did not answer in time ({t}; waited {} s per read)",
                read_timeout.as_secs_f32()
            ),
        ),
        e => (
            K::Other,
            format!("talking to '{host}': {}", lower(&e.to_string())),
        ),
    }
}

fn path_kind(path: &str) -> &'static str {
    if path.contains("/manifests/") {
        "manifest request"
    } else if path.contains("/blobs/") {
        "blob request"
    } else {
        "request"
    }
}

/// First letter lower-cased, to fit inside a message.
fn lower(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `Authorization: Basic …`.
fn basic(c: &Credentials) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.secret))
    )
}

/// Adds an optional `Authorization` header.
trait HeaderOpt: Sized {
    fn header_opt(self, auth: Option<&str>) -> Self;
}

impl<B> HeaderOpt for ureq::RequestBuilder<B> {
    fn header_opt(self, auth: Option<&str>) -> Self {
        match auth {
            Some(a) => self.header("Authorization", a),
            None => self,
        }
    }
}

/// A header as text; `None` when absent or not visible ASCII.
fn header<'a>(resp: &'a Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn content_length(resp: &Response<ureq::Body>) -> Option<u64> {
    header(resp, "content-length").and_then(|v| v.trim().parse().ok())
}

/// Reads and drops a small body so the connection can be reused.
fn drain(resp: Response<ureq::Body>) {
    let mut sink = [0u8; 8192];
    let mut r = resp
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader()
        .take(MAX_ERROR_BYTES);
    while matches!(r.read(&mut sink), Ok(n) if n > 0) {}
}

/// The registry's error text: `{"errors":[{"code":…,"message":…}]}`.
fn error_detail(resp: Response<ureq::Body>) -> String {
    let mut body = Vec::new();
    let _ = resp
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader()
        .take(MAX_ERROR_BYTES)
        .read_to_end(&mut body);
    let v: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let e = v.as_ref().and_then(|v| v.get("errors")?.get(0));
    let text = match e {
        Some(e) => {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            format!("{code} {msg}")
        }
        None => String::new(),
    };
    // One line, printable, short: the server is not trusted.
    text.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

/// `Retry-After: <seconds>` (an HTTP date is rare from registries and is
/// treated as absent), capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// 250 ms, 500 ms, 1 s, … at most 8 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64 << attempt.saturating_sub(1).min(5)).min(Duration::from_secs(8))
}

/// Errors worth a retry: the network, not the server's answer.
fn is_transient(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => !matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        ),
        _ => false,
    }
}

/// A TLS failure, or an HTTPS request answered by a plain-HTTP server
/// (rustls errors reach us as `io::ErrorKind::InvalidData`).
fn is_tls_or_protocol(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Whether docker treats the host as an insecure registry by default.
fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..scheme.len() + 3 + end])
}

/// A `Location` resolved against the URL it came from; only http(s).
fn resolve(base: &str, loc: &str) -> Option<String> {
    let loc = loc.trim();
    if loc.is_empty() || loc.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return None;
    }
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return origin(loc).map(|_| loc.to_string());
    }
    let o = origin(base)?;
    if let Some(rest) = loc.strip_prefix("//") {
        let scheme = base.split("://").next()?;
        return Some(format!("{scheme}://{rest}"));
    }
    if loc.starts_with('/') {
        return Some(format!("{o}{loc}"));
    }
    if loc.contains("://") {
        return None;
    }
    let path = &base[o.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    Some(format!("{o}{dir}/{loc}"))
}

/// `algo:hex` of bytes.
fn digest_of(bytes: &[u8], algo: &str) -> String {
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    if algo == "sha512" {
        format!("sha512:{}", hex(&Sha512::digest(bytes)))
    } else {
        format!("sha256:{}", hex(&Sha256::digest(bytes)))
    }
}

/// `sha256:0123456789ab`.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// System roots (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus every
/// `*.crt` in `cert_dir`; Mozilla's roots (bundled) when the system has none.
fn load_roots(cert_dir: Option<&std::path::Path>, label: &str) -> Result<ureq::tls::RootCerts> {
    use ureq::tls::{Certificate, PemItem, RootCerts};
    let mut certs: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if let Some(dir) = cert_dir {
        let entries =
            std::fs::read_dir(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::Usage(format!(
                "--cert-dir '{}' holds no *.crt file (expected the registry's CA as ca.crt, as skopeo and docker read it)",
                dir.display()
            )));
        }
        for f in files {
            let pem = std::fs::read(&f).map_err(|e| Error::io(f.display().to_string(), e))?;
            let mut any = false;
            for item in ureq::tls::parse_pem(&pem) {
                if let Ok(PemItem::Certificate(c)) = item {
                    certs.push(c);
                    any = true;
                }
            }
            if !any {
                return Err(Error::Format {
                    path: f.display().to_string(),
                    what: format!("no PEM certificate in it (needed to reach '{label}')"),
                });
            }
        }
    }
    if certs.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve() {
        let b = "https://reg:5000/v2/app/blobs/sha256:ab?x=1";
        let cases = [
            (
                "https://s3.example/bucket/k?sig=1",
                Some("https://s3.example/bucket/k?sig=1"),
            ),
            ("/other/path", Some("https://reg:5000/other/path")),
            ("//cdn.example/x", Some("https://cdn.example/x")),
            ("rel", Some("https://reg:5000/v2/app/blobs/rel")),
            ("file:///etc/passwd", None),
            (
                "javascript:x",
                Some("https://reg:5000/v2/app/blobs/javascript:x"),
            ),
            ("", None),
            ("https://a\r\nb", None),
        ];
        for (loc, want) in cases {
            assert_eq!(resolve(b, loc).as_deref(), want, "{loc}");
        }
        assert_eq!(origin(b), Some("https://reg:5000"));
        assert_eq!(origin("http://h"), Some("http://h"));
        assert_eq!(origin("ftp://h/x"), None);
    }

    #[test]
    fn loopback_hosts() {
        for (h, want) in [
            ("localhost:5000", true),
            ("localhost", true),
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("[::1]:5000", true),
            ("registry-1.docker.io", false),
            ("10.0.0.1:5000", false),
            ("localhost.example.com", false),
        ] {
            assert_eq!(is_loopback(h), want, "{h}");
        }
    }

    #[test]
    fn retry_after_and_backoff() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("99999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(3), Duration::from_secs(1));
        assert_eq!(backoff(40), Duration::from_secs(8));
    }

    #[test]
    fn options_debug_hides_password() {
        let o = RegistryOptions {
            creds: Some(("u".into(), "hunter2".into())),
            ..RegistryOptions::default()
        };
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
