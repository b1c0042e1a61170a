//! Stage 1, read: a local container engine's HTTP API (the Docker Engine API,
//! which Podman's service speaks too) → an image's docker-save archive as a
//! stream ([`Engine::export`]), which the one-pass stream reader reads like
//! standard input. No `docker` CLI, no temp file.
//!
//! The API is HTTP/1.1 over a unix socket (or TCP). There is no widely used
//! blocking HTTP client for unix sockets in Rust, so this module has a small
//! one: one connection per request (`Connection: close`), the response head
//! parsed by `httparse`, and a body reader of its own for `Content-Length`,
//! chunked and read-to-close bodies. Everything the engine sends is bounded:
//! the head, each chunk-size line, JSON bodies; a malformed answer is an
//! error, never a panic or an endless read.
//!
//! Endpoints used (Docker Engine API, all present since 1.24):
//! `GET /_ping`, `GET /version`, `GET /images/json`,
//! `GET /images/{name}/json`, `GET /images/{name}/get`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::source::reference::{DockerRef, EngineKind};

/// The oldest Engine API version mlsize speaks (Docker 1.12, 2016): every
/// endpoint above exists with the fields read here.
const MIN_API: (u32, u32) = (1, 24);
/// The longest response head accepted (status line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most headers accepted in one response.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE_BYTES: usize = 4096;
/// The largest JSON body accepted (an image list of a busy host is a few MB).
const MAX_JSON_BYTES: u64 = 64 * 1024 * 1024;
/// The most of an error body kept for the message.
const MAX_ERROR_BYTES: u64 = 64 * 1024;
/// Default time to wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a read may wait for the engine's next bytes. An export of a
/// large image takes as long as it takes; only a stall this long is an error.
const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A local Docker or Podman engine, reached through its API socket.
///
/// ```no_run
/// use mlsize::source::engine::Engine;
/// let docker = Engine::docker()?;
/// docker.ping()?;
/// let image = docker.find_image("app:dev")?;
/// let archive = docker.export(&image)?; // a docker-save tar, streamed
/// let source = mlsize::source::open_reader("docker-daemon:app:dev", archive);
/// # Ok::<(), mlsize::Error>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    kind: EngineKind,
    endpoint: Endpoint,
    connect_timeout: Duration,
    stall_timeout: Duration,
    /// `/v1.41`: the API version negotiated by [`Engine::ping`].
    api: OnceLock<String>,
}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// What the engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The engine's product name: `Engine` (Docker) or `Podman Engine`.
    pub engine: String,
    /// Its version: `20.10.24+dfsg1`, `4.3.1`.
    pub version: String,
    /// The Engine API version it speaks, which mlsize uses: `1.41`.
    pub api_version: String,
    /// The oldest API version it accepts, when it says.
    pub min_api_version: Option<String>,
}

/// An image found in an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its ID, `sha256:<hex>` (the config digest).
    pub id: String,
    /// Its names (`app:dev`, `localhost/app:dev`), the one asked for first.
    pub names: Vec<String>,
    /// Its size as the engine counts it (the layers unpacked).
    pub size: Option<u64>,
}

impl Engine {
    /// The Docker Engine at `DOCKER_HOST` (`unix:///PATH` or
    /// `tcp://HOST:PORT`), by default `unix:///var/run/docker.sock`.
    pub fn docker() -> Result<Engine> {
        match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => {
                if h.starts_with("tcp://")
                    && std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty())
                {
                    return Err(Error::Usage(format!(
                        "DOCKER_HOST '{h}' with DOCKER_TLS_VERIFY: mlsize does not speak TLS to the engine; use its unix socket"
                    )));
                }
                Engine::at(EngineKind::Docker, &h)
                    .map_err(|e| Error::Usage(format!("DOCKER_HOST: {e}")))
            }
            _ => Engine::at(EngineKind::Docker, "unix:///var/run/docker.sock"),
        }
    }

    /// Podman's API service at `CONTAINER_HOST`, else the first socket that
    /// exists of `$XDG_RUNTIME_DIR/podman/podman.sock` (rootless) and
    /// `/run/podman/podman.sock` (root).
    pub fn podman() -> Result<Engine> {
        if let Ok(h) = std::env::var("CONTAINER_HOST")
            && !h.is_empty()
        {
            return Engine::at(EngineKind::Podman, &h)
                .map_err(|e| Error::Usage(format!("CONTAINER_HOST: {e}")));
        }
        let mut candidates = Vec::new();
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            candidates.push(PathBuf::from(x).join("podman/podman.sock"));
        }
        candidates.push(PathBuf::from("/run/podman/podman.sock"));
        let found = candidates
            .iter()
            .find(|p| p.symlink_metadata().is_ok())
            .or(candidates.first())
            .cloned()
            .unwrap_or_default();
        Ok(Engine::new(EngineKind::Podman, Endpoint::Unix(found)))
    }

    /// The engine at `endpoint`: `unix:///PATH` or `tcp://HOST[:PORT]` (port
    /// 2375 when left out). Nothing is connected until a request.
    pub fn at(kind: EngineKind, endpoint: &str) -> Result<Engine> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "invalid {} engine address '{endpoint}': {why}",
                kind.name()
            ))
        };
        let ep = if let Some(path) = endpoint.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad("expected unix:///PATH/TO/SOCKET"));
            }
            Endpoint::Unix(PathBuf::from(path))
        } else if let Some(addr) = endpoint.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() || addr.contains(['/', '?', '#', '@']) {
                return Err(bad("expected tcp://HOST:PORT"));
            }
            // `host`, `host:port`, `[::1]`, `[::1]:port`.
            let has_port = match addr.rsplit_once(']') {
                Some((_, after)) => after.starts_with(':'),
                None => addr.contains(':'),
            };
            let addr = if has_port {
                addr.to_string()
            } else {
                format!("{addr}:2375")
            };
            Endpoint::Tcp(addr)
        } else if let Some((scheme, _)) = endpoint.split_once("://") {
            return Err(bad(&format!(
                "mlsize reaches engines over unix:// or tcp://, not {scheme}://"
            )));
        } else {
            return Err(bad("expected unix:///PATH or tcp://HOST:PORT"));
        };
        Ok(Engine::new(kind, ep))
    }

    fn new(kind: EngineKind, endpoint: Endpoint) -> Engine {
        Engine {
            kind,
            endpoint,
            connect_timeout: CONNECT_TIMEOUT,
            stall_timeout: STALL_TIMEOUT,
            api: OnceLock::new(),
        }
    }

    /// The same engine with other timeouts: `connect` for a TCP connection,
    /// `stall` for any read to get its next bytes (by default 10 s and
    /// 120 s). A long export is never cut while bytes keep coming.
    pub fn with_timeouts(mut self, connect: Duration, stall: Duration) -> Engine {
        self.connect_timeout = connect;
        self.stall_timeout = stall;
        self
    }

    /// Which engine this is.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Where it listens, as `unix:///PATH` or `tcp://HOST:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    /// Checks the engine answers (`/_ping`) and speaks a new enough API
    /// (`/version`), and sets the API version every later request uses.
    pub fn ping(&self) -> Result<Version> {
        let mut r = self.get("/_ping")?;
        if r.status != 200 {
            let msg = r.error_message();
            return Err(self.fail(format!(
                "GET /_ping answered {} {}{msg}: is this a Docker or Podman API socket?",
                r.status, r.reason
            )));
        }
        let body: VersionDoc = self.json("/version")?;
        let engine = body
            .components
            .iter()
            .find(|c| c.name.contains("Engine"))
            .map(|c| c.name.clone())
            .unwrap_or_else(|| format!("{} Engine", self.kind.name()));
        let version = Version {
            engine,
            version: body.version,
            api_version: body.api_version,
            min_api_version: body.min_api_version,
        };
        let Some(api) = parse_api(&version.api_version) else {
            return Err(self.fail(format!(
                "/version gives API version '{}', which is not MAJOR.MINOR",
                version.api_version
            )));
        };
        if api < MIN_API {
            return Err(self.fail(format!(
                "{} {} speaks Engine API {}, older than {}.{}, the oldest mlsize speaks (Docker 1.12): upgrade the engine",
                version.engine, version.version, version.api_version, MIN_API.0, MIN_API.1
            )));
        }
        // The engine's own version is one it surely serves: a newer engine
        // may no longer accept an old pinned version (Docker 29 refuses
        // anything before 1.44), and every field read here is in all of them.
        let _ = self.api.set(format!("/v{}.{}", api.0, api.1));
        Ok(version)
    }

    /// Finds an image by name (`app:dev`, `app` for `app:latest`,
    /// `docker.io/library/app:dev`, `localhost/app:dev` in Podman,
    /// `reg:5000/team/app@sha256:…`) or ID (`sha256:<hex>`, the hex alone, or
    /// a short prefix), as the engine resolves names. For Podman, a name
    /// without a registry is also tried under `localhost/`, as `podman`
    /// does.
    ///
    /// A missing or ambiguous image is an [`Error::Selection`] naming close
    /// matches; other errors mean the engine could not be asked.
    pub fn find_image(&self, name: &str) -> Result<ImageInfo> {
        let api = self.api()?;
        let mut tried = vec![name.to_string()];
        if self.kind == EngineKind::Podman
            && let Ok(r) = DockerRef::parse(name)
            && r.domain.is_none()
        {
            tried.push(format!("localhost/{name}"));
        }
        for n in &tried {
            if let Some(info) = self.inspect(&api, n)? {
                return Ok(info.first_named(n));
            }
        }
        Err(self.not_found(&api, name))
    }

    /// Streams the image as a docker-save archive (`GET /images/{name}/get`),
    /// straight from the socket: nothing is written to disk. It is asked for
    /// by its first name, so the archive's `RepoTags` name it (by ID they
    /// would be empty), and by ID when it has none. A read fails when the
    /// engine sends nothing for the stall timeout or closes the stream early.
    pub fn export(&self, image: &ImageInfo) -> Result<Box<dyn Read + Send>> {
        let api = self.api()?;
        let what = image.names.first().unwrap_or(&image.id);
        let path = format!("{api}/images/{}/get", encode_path(what));
        let mut r = self.get(&path)?;
        if r.status != 200 {
            return Err(r.status_error(self, &path));
        }
        Ok(Box::new(r.body))
    }

    /// The negotiated API prefix, pinging first when no one has.
    fn api(&self) -> Result<String> {
        if let Some(a) = self.api.get() {
            return Ok(a.clone());
        }
        self.ping()?;
        Ok(self.api.get().cloned().unwrap_or_default())
    }

    /// `GET /images/{name}/json`: `None` when the engine has no such image.
    fn inspect(&self, api: &str, name: &str) -> Result<Option<ImageInfo>> {
        let path = format!("{api}/images/{}/json", encode_path(name));
        let mut r = self.get(&path)?;
        match r.status {
            200 => {
                let doc: InspectDoc = r.read_json(self, &path)?;
                Ok(Some(ImageInfo {
                    id: doc.id,
                    names: real_names(doc.repo_tags),
                    size: doc.size.and_then(|s| u64::try_from(s).ok()),
                }))
            }
            404 => Ok(None),
            _ => Err(r.status_error(self, &path)),
        }
    }

    /// The error for an image the engine does not have: close matches from
    /// `/images/json`, or the images sharing an ID prefix.
    fn not_found(&self, api: &str, name: &str) -> Error {
        let origin = format!("{}:{name}", self.kind.transport());
        let listed: Vec<ListedDoc> = match self.json(&format!("{api}/images/json")) {
            Ok(l) => l,
            Err(e) => return e,
        };
        let id_prefix = name.strip_prefix("sha256:").unwrap_or(name);
        let by_id: Vec<&ListedDoc> =
            if !id_prefix.is_empty() && id_prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                listed
                    .iter()
                    .filter(|l| l.id.trim_start_matches("sha256:").starts_with(id_prefix))
                    .collect()
            } else {
                Vec::new()
            };
        let place = format!("the {} engine at {}", self.kind.name(), self.endpoint);
        if by_id.len() > 1 {
            let ids: Vec<String> = by_id.iter().map(|l| describe_listed(l)).collect();
            return Error::Selection {
                path: origin,
                what: format!(
                    "the ID prefix matches {} images in {place}: {} (give more digits)",
                    by_id.len(),
                    ids.join(", ")
                ),
            };
        }
        let names: Vec<String> = listed
            .into_iter()
            .flat_map(|l| real_names(l.repo_tags))
            .collect();
        let close = close_matches(name, &names);
        let hint = if !close.is_empty() {
            format!("close matches: {}", close.join(", "))
        } else if names.is_empty() {
            "it has no tagged images".to_string()
        } else {
            let mut some: Vec<&String> = names.iter().collect();
            some.sort();
            some.dedup();
            let n = some.len();
            let shown: Vec<&str> = some.iter().take(5).map(|s| s.as_str()).collect();
            format!(
                "none is close; it has {n} names: {}{}",
                shown.join(", "),
                if n > 5 { ", …" } else { "" }
            )
        };
        Error::Selection {
            path: origin,
            what: format!("no such image in {place} ({hint})"),
        }
    }

    /// GETs a JSON document, which must come with status 200.
    fn json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T> {
        let mut r = self.get(path)?;
        if r.status != 200 {
            return Err(r.status_error(self, path));
        }
        r.read_json(self, path)
    }

    /// Sends `GET path` on a new connection and reads the response head.
    fn get(&self, path: &str) -> Result<Response> {
        let mut conn = self.connect()?;
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "localhost",
            Endpoint::Tcp(a) => a.as_str(),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mlsize/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        conn.write_all(request.as_bytes())
            .and_then(|()| conn.flush())
            .map_err(|e| self.io_error(e, "sending a request"))?;
        let origin = self.endpoint.to_string();
        let mut reader = BufReader::with_capacity(256 * 1024, conn);
        let head = read_head(&mut reader).map_err(|e| self.io_error(e, "reading the answer"))?;
        parse_head(&head, reader, origin, self.stall_timeout)
            .map_err(|e| self.io_error(e, "reading the answer"))
    }

    fn connect(&self) -> Result<Conn> {
        let conn = match &self.endpoint {
            Endpoint::Unix(p) => UnixStream::connect(p).map(Conn::Unix),
            Endpoint::Tcp(a) => {
                let addrs: Vec<_> = a
                    .to_socket_addrs()
                    .map_err(|e| self.io_error(e, "resolving the address"))?
                    .collect();
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                let mut found = None;
                for addr in addrs {
                    match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                found.map(Conn::Tcp).ok_or(last)
            }
        }
        .map_err(|e| self.connect_error(e))?;
        conn.set_timeouts(self.stall_timeout)
            .map_err(|e| self.io_error(e, "setting timeouts"))?;
        Ok(conn)
    }

    /// A connection failure, worded with what to do about it.
    fn connect_error(&self, e: io::Error) -> Error {
        let (daemon, env) = match self.kind {
            EngineKind::Docker => ("is dockerd running?", "DOCKER_HOST"),
            EngineKind::Podman => (
                "is the podman API service running? start it with 'systemctl --user start podman.socket' or 'podman system service --time=0 &', or",
                "CONTAINER_HOST",
            ),
        };
        let what = match e.kind() {
            io::ErrorKind::NotFound => {
                format!("no such socket ({daemon} set {env} to the engine's socket)")
            }
            io::ErrorKind::ConnectionRefused => format!(
                "connection refused: nothing listens there ({daemon} set {env} to the engine's socket)"
            ),
            io::ErrorKind::PermissionDenied => match self.kind {
                EngineKind::Docker => {
                    "permission denied (add your user to the docker group, or run with sudo)"
                        .to_string()
                }
                EngineKind::Podman => "permission denied (use your own user's socket, $XDG_RUNTIME_DIR/podman/podman.sock, or run with sudo)".to_string(),
            },
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
                "no connection within {} s ({daemon} set {env} to the engine's address)",
                self.connect_timeout.as_secs_f32()
            ),
            _ => format!("cannot connect: {}", lower(&e.to_string())),
        };
        Error::Io {
            path: self.endpoint.to_string(),
            kind: e.kind(),
            what,
        }
    }

    /// An I/O failure after connecting.
    fn io_error(&self, e: io::Error, doing: &str) -> Error {
        let what = match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
                "the {} engine sent nothing for {} s while {doing} (is it hung? restart it)",
                self.kind.name(),
                self.stall_timeout.as_secs_f32()
            ),
            _ => format!("{doing}: {}", lower(&e.to_string())),
        };
        Error::Io {
            path: self.endpoint.to_string(),
            kind: e.kind(),
            what,
        }
    }

    /// The engine answered, but not as the API does.
    fn fail(&self, what: String) -> Error {
        Error::Format {
            path: self.endpoint.to_string(),
            what,
        }
    }
}

impl ImageInfo {
    /// Puts the name that answers to `asked` first.
    fn first_named(mut self, asked: &str) -> ImageInfo {
        let want = familiar(asked);
        if let Some(i) = self.names.iter().position(|n| familiar(n) == want) {
            let n = self.names.remove(i);
            self.names.insert(0, n);
        }
        self
    }
}

#[derive(Deserialize)]
struct VersionDoc {
    #[serde(rename = "Version", default)]
    version: String,
    #[serde(rename = "ApiVersion", default)]
    api_version: String,
    #[serde(rename = "MinAPIVersion")]
    min_api_version: Option<String>,
    #[serde(rename = "Components", default, deserialize_with = "null_as_default")]
    components: Vec<ComponentDoc>,
}

#[derive(Deserialize)]
struct ComponentDoc {
    #[serde(rename = "Name", default)]
    name: String,
}

#[derive(Deserialize)]
struct InspectDoc {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "RepoTags", default, deserialize_with = "null_as_default")]
    repo_tags: Vec<String>,
    #[serde(rename = "Size")]
    size: Option<i64>,
}

#[derive(Deserialize)]
struct ListedDoc {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "RepoTags", default, deserialize_with = "null_as_default")]
    repo_tags: Vec<String>,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Names without Docker's `<none>:<none>` placeholder.
fn real_names(tags: Vec<String>) -> Vec<String> {
    tags.into_iter()
        .filter(|t| !t.is_empty() && !t.contains("<none>"))
        .collect()
}

fn describe_listed(l: &ListedDoc) -> String {
    let short: String =
        l.id.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect();
    match l.repo_tags.iter().find(|t| !t.contains("<none>")) {
        Some(n) => format!("{short} ({n})"),
        None => short,
    }
}

/// A name as people write it: `docker.io/library/`, `docker.io/` and
/// Podman's `localhost/` dropped, `:latest` added when there is no tag.
fn familiar(name: &str) -> String {
    let s = name.strip_prefix("docker.io/").unwrap_or(name);
    let s = s.strip_prefix("library/").unwrap_or(s);
    let s = s.strip_prefix("localhost/").unwrap_or(s);
    let last = s.rsplit('/').next().unwrap_or(s);
    if last.contains(':') || s.contains('@') {
        s.to_string()
    } else {
        format!("{s}:latest")
    }
}

/// Up to five names close to `want`: the same repository with another tag,
/// a repository that contains or is contained in it, or one a few edits
/// away; closest first.
fn close_matches(want: &str, names: &[String]) -> Vec<String> {
    let repo = |n: &str| -> String {
        let f = familiar(n);
        let f = f.split('@').next().unwrap_or(&f).to_string();
        match f.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => r.to_string(),
            _ => f,
        }
    };
    let want_repo = repo(want);
    let want_last = want_repo
        .rsplit('/')
        .next()
        .unwrap_or(&want_repo)
        .to_string();
    let limit = (want_last.len() / 3).max(2);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .filter_map(|n| {
            let r = repo(n);
            let last = r.rsplit('/').next().unwrap_or(&r);
            let d = edit_distance(&r, &want_repo).min(edit_distance(last, &want_last));
            let related = r.contains(want_last.as_str()) || want_repo.contains(last);
            (d <= limit || related).then_some((d, n))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, n)| n.clone()).collect()
}

/// Levenshtein distance of two short strings (names are at most 255 bytes;
/// longer input is cut there).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(256).collect();
    let b: Vec<char> = b.chars().take(256).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(usize::MAX - 1) + usize::from(ca != cb);
            let del = prev.get(j + 1).copied().unwrap_or(usize::MAX - 1) + 1;
            let ins = cur.last().copied().unwrap_or(usize::MAX - 1) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// Percent-encodes a name for a URL path; `/`, `:` and `@` stay (the API
/// routes `/images/{name:.*}/json`).
fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_api(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// `Connection refused (os error 111)` → `connection refused (os error 111)`.
fn lower(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A connection to the engine.
#[derive(Debug)]
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn set_timeouts(&self, stall: Duration) -> io::Result<()> {
        match self {
            Conn::Unix(s) => {
                s.set_read_timeout(Some(stall))?;
                s.set_write_timeout(Some(stall))
            }
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(stall))?;
                s.set_write_timeout(Some(stall))
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

fn invalid_data(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads one line (up to and with its `\n`) of at most `max` bytes.
fn read_line_bounded<R: BufRead>(r: &mut R, max: usize, line: &mut Vec<u8>) -> io::Result<()> {
    let start = line.len();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the engine closed the connection in the middle of a line",
            ));
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(buf.get(..take).unwrap_or_default());
        r.consume(take);
        if line.len() - start > max {
            return Err(invalid_data(format!(
                "the engine sent a line longer than {max} bytes"
            )));
        }
        if done {
            return Ok(());
        }
    }
}

/// Reads the response head, up to and with the empty line that ends it.
fn read_head<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        let room = MAX_HEAD_BYTES.saturating_sub(start);
        read_line_bounded(r, room, &mut head).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData {
                invalid_data(format!(
                    "the engine's response head is larger than {} KiB",
                    MAX_HEAD_BYTES / 1024
                ))
            } else {
                e
            }
        })?;
        let line = head.get(start..).unwrap_or_default();
        if line == b"\r\n" || line == b"\n" {
            return Ok(head);
        }
    }
}

/// A response: status and a reader of its body.
struct Response {
    status: u16,
    reason: String,
    body: Body,
}

impl Response {
    /// Reads a JSON body of at most [`MAX_JSON_BYTES`].
    fn read_json<T: for<'de> Deserialize<'de>>(
        &mut self,
        engine: &Engine,
        path: &str,
    ) -> Result<T> {
        let mut bytes = Vec::new();
        (&mut self.body)
            .take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| engine.io_error(e, &format!("reading GET {path}")))?;
        if bytes.len() as u64 > MAX_JSON_BYTES {
            return Err(engine.fail(format!(
                "GET {path}: the answer is larger than {} MiB",
                MAX_JSON_BYTES >> 20
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            engine.fail(format!(
                "GET {path}: the answer is not the JSON expected: {e}"
            ))
        })
    }

    /// `: <message>` from an error body (`{"message": …}` or text), one
    /// line, at most 300 characters; empty when there is none.
    fn error_message(&mut self) -> String {
        let mut bytes = Vec::new();
        let _ = (&mut self.body)
            .take(MAX_ERROR_BYTES)
            .read_to_end(&mut bytes);
        #[derive(Deserialize)]
        struct Msg {
            message: String,
        }
        let text = match serde_json::from_slice::<Msg>(&bytes) {
            Ok(m) => m.message,
            Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
        };
        let one_line: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(300)
            .collect();
        if one_line.is_empty() {
            String::new()
        } else {
            format!(": {one_line}")
        }
    }

    fn status_error(&mut self, engine: &Engine, path: &str) -> Error {
        let msg = self.error_message();
        engine.fail(format!(
            "the {} engine answered GET {path} with {} {}{msg}",
            engine.kind.name(),
            self.status,
            self.reason
        ))
    }
}

/// Parses a response head and sets up the body reader after it.
fn parse_head(
    head: &[u8],
    reader: BufReader<Conn>,
    origin: String,
    stall: Duration,
) -> io::Result<Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(invalid_data(
                "the engine's response head is incomplete".into(),
            ));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(invalid_data(format!(
                "the engine sent more than {MAX_HEADERS} headers"
            )));
        }
        Err(e) => {
            return Err(invalid_data(format!(
                "the answer is not HTTP ({e}): is this a Docker or Podman API socket?"
            )));
        }
    }
    let status = resp.code.unwrap_or(0);
    let reason = resp.reason.unwrap_or("").to_string();
    let framing = framing(status, resp.headers)?;
    Ok(Response {
        status,
        reason,
        body: Body {
            inner: reader,
            framing,
            read_bytes: 0,
            origin,
            stall,
        },
    })
}

/// How the body ends (RFC 9112 section 6.3): chunked coding wins over a
/// length; with neither, the body runs to the end of the connection.
fn framing(status: u16, headers: &[httparse::Header<'_>]) -> io::Result<Framing> {
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in headers {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| invalid_data(format!("the engine's {} header is not text", h.name)))?
            .trim();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(invalid_data(format!(
                    "the engine sent Transfer-Encoding '{value}', which mlsize does not decode"
                )));
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| invalid_data(format!("the engine sent Content-Length '{value}'")))?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid_data(
                    "the engine sent two different Content-Length headers".into(),
                ));
            }
            length = Some(n);
        }
    }
    Ok(if chunked {
        Framing::Chunked(Chunk::Size)
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    })
}

/// How a body is delimited, and where its reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Bytes still to come of a `Content-Length` body.
    Length(u64),
    /// A chunked body.
    Chunked(Chunk),
    /// Everything until the engine closes the connection.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Bytes still to come of the current chunk.
    Data(u64),
    /// Before the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk and its trailers.
    Done,
}

/// A response body as a stream, decoded from its framing.
struct Body<R = BufReader<Conn>> {
    inner: R,
    framing: Framing,
    read_bytes: u64,
    /// The engine's address, for messages.
    origin: String,
    stall: Duration,
}

impl<R: BufRead> Body<R> {
    fn early_end(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the engine at {} closed the connection after {} bytes, before the end of the answer",
                self.origin, self.read_bytes
            ),
        )
    }

    /// Reads the next chunk-size line; `Ok(0)` for the last chunk.
    fn chunk_size(&mut self) -> io::Result<u64> {
        let mut line = Vec::new();
        read_line_bounded(&mut self.inner, MAX_LINE_BYTES, &mut line).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                self.early_end()
            } else {
                e
            }
        })?;
        let text = String::from_utf8_lossy(&line);
        // `1a2b;ext=x\r\n`: extensions are ignored.
        let hex = text.split(';').next().unwrap_or("").trim();
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid_data(format!(
                "the engine sent a bad chunk size '{}'",
                text.trim().chars().take(40).collect::<String>()
            )));
        }
        u64::from_str_radix(hex, 16)
            .map_err(|_| invalid_data(format!("the engine sent a bad chunk size '{hex}'")))
    }

    /// Reads trailer lines up to the empty one that ends the body.
    fn trailers(&mut self) -> io::Result<()> {
        let mut total = 0;
        loop {
            let mut line = Vec::new();
            read_line_bounded(&mut self.inner, MAX_LINE_BYTES, &mut line)?;
            total += line.len();
            if line == b"\r\n" || line == b"\n" {
                return Ok(());
            }
            if total > MAX_HEAD_BYTES {
                return Err(invalid_data("the engine sent too many trailers".into()));
            }
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.framing {
            Framing::UntilClose => self.inner.read(buf),
            Framing::Length(0) => Ok(0),
            Framing::Length(left) => {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
                if n == 0 && want > 0 {
                    return Err(self.early_end());
                }
                self.framing = Framing::Length(left - n as u64);
                Ok(n)
            }
            Framing::Chunked(_) => loop {
                let Framing::Chunked(state) = self.framing else {
                    return Ok(0);
                };
                match state {
                    Chunk::Size => {
                        let size = self.chunk_size()?;
                        if size == 0 {
                            self.trailers().map_err(|e| match e.kind() {
                                io::ErrorKind::UnexpectedEof => self.early_end(),
                                _ => e,
                            })?;
                            self.framing = Framing::Chunked(Chunk::Done);
                            return Ok(0);
                        }
                        self.framing = Framing::Chunked(Chunk::Data(size));
                    }
                    Chunk::Data(left) => {
                        if buf.is_empty() {
                            return Ok(0);
                        }
                        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
                        if n == 0 {
                            return Err(self.early_end());
                        }
                        let left = left - n as u64;
                        self.framing = Framing::Chunked(if left == 0 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left)
                        });
                        return Ok(n);
                    }
                    Chunk::DataEnd => {
                        let mut line = Vec::new();
                        read_line_bounded(&mut self.inner, MAX_LINE_BYTES, &mut line).map_err(
                            |e| match e.kind() {
                                io::ErrorKind::UnexpectedEof => self.early_end(),
                                _ => e,
                            },
                        )?;
                        if line != b"\r\n" && line != b"\n" {
                            return Err(invalid_data(
                                "the engine sent a chunk longer than its size".into(),
                            ));
                        }
                        self.framing = Framing::Chunked(Chunk::Size);
                    }
                    Chunk::Done => return Ok(0),
                }
            },
        }
    }
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_inner(buf).map_err(|e| match e.kind() {
            // A read timeout shows as WouldBlock on unix sockets.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the engine at {} sent nothing for {} s after {} bytes (is it hung? restart it)",
                    self.origin,
                    self.stall.as_secs_f32(),
                    self.read_bytes
                ),
            ),
            _ => e,
        })?;
        self.read_bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(raw: &[u8], framing: Framing) -> Body<io::Cursor<Vec<u8>>> {
        Body {
            inner: io::Cursor::new(raw.to_vec()),
            framing,
            read_bytes: 0,
            origin: "unix:///x.sock".into(),
            stall: Duration::from_secs(1),
        }
    }

    fn read_all(mut b: Body<io::Cursor<Vec<u8>>>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // Small reads, so chunk boundaries fall inside buffers too.
        let mut buf = [0u8; 3];
        loop {
            let n = b.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn chunked_bodies_decode() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"0\r\n\r\n", b""),
            (
                b"A;name=v\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
                b"0123456789",
            ),
            (b"3\nabc\n0\n\n", b"abc"),
            (b"00000000000000ff\r\n", b""),
        ];
        for (raw, want) in &cases[..4] {
            let got = read_all(body(raw, Framing::Chunked(Chunk::Size))).unwrap();
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(raw));
        }
        let (raw, _) = cases[4];
        let e = read_all(body(raw, Framing::Chunked(Chunk::Size))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn hostile_chunked_bodies_are_errors() {
        let cases: [(&[u8], &str); 7] = [
            (
                b"zz\r\nhello\r\n0\r\n\r\n",
                "the engine sent a bad chunk size 'zz'",
            ),
            (b"\r\n", "the engine sent a bad chunk size ''"),
            (
                b"10000000000000000\r\n",
                "the engine sent a bad chunk size '10000000000000000'",
            ),
            (b"-1\r\n", "the engine sent a bad chunk size '-1'"),
            (
                b"3\r\nabcdef\r\n0\r\n\r\n",
                "the engine sent a chunk longer than its size",
            ),
            (
                b"5\r\nhel",
                "the engine at unix:///x.sock closed the connection after 3 bytes, before the end of the answer",
            ),
            (
                b"5\r\nhello\r\n",
                "the engine at unix:///x.sock closed the connection after 5 bytes, before the end of the answer",
            ),
        ];
        for (raw, want) in cases {
            let e = read_all(body(raw, Framing::Chunked(Chunk::Size))).unwrap_err();
            assert_eq!(e.to_string(), want, "{}", String::from_utf8_lossy(raw));
        }
        let mut long = vec![b'1'; MAX_LINE_BYTES + 10];
        long.extend_from_slice(b"\r\n");
        let e = read_all(body(&long, Framing::Chunked(Chunk::Size))).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the engine sent a line longer than {MAX_LINE_BYTES} bytes"),
            "an endless chunk-size line is cut"
        );
    }

    #[test]
    fn length_bodies_end_where_they_say() {
        let got = read_all(body(b"hello, and more", Framing::Length(5))).unwrap();
        assert_eq!(got, b"hello", "bytes past the length are not read");
        let e = read_all(body(b"hel", Framing::Length(5))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "a short body: {e}");
        let got = read_all(body(b"to the end", Framing::UntilClose)).unwrap();
        assert_eq!(got, b"to the end");
    }

    fn head_framing(raw: &[u8]) -> io::Result<(u16, Framing)> {
        let mut r = io::Cursor::new(raw.to_vec());
        let head = read_head(&mut r)?;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            other => return Err(invalid_data(format!("{other:?}"))),
        }
        let status = resp.code.unwrap_or(0);
        Ok((status, framing(status, resp.headers)?))
    }

    #[test]
    fn response_heads_choose_the_framing() {
        let cases: [(&[u8], u16, Framing); 5] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
                200,
                Framing::Length(2),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
                200,
                Framing::Chunked(Chunk::Size),
            ),
            (b"HTTP/1.0 200 OK\r\n\r\n", 200, Framing::UntilClose),
            (b"HTTP/1.1 204 No Content\r\n\r\n", 204, Framing::Length(0)),
            (
                b"HTTP/1.1 404 Not Found\nContent-Length: 3\nContent-length: 3\n\n",
                404,
                Framing::Length(3),
            ),
        ];
        for (raw, status, want) in cases {
            assert_eq!(
                head_framing(raw).unwrap(),
                (status, want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn hostile_response_heads_are_errors() {
        let many: Vec<u8> = {
            let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..MAX_HEADERS + 1 {
                v.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
            }
            v.extend_from_slice(b"\r\n");
            v
        };
        let huge: Vec<u8> = {
            let mut v = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
            v.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
            v.extend_from_slice(b"\r\n\r\n");
            v
        };
        let endless = b"HTTP/1.1 200 OK\r\nX: y\r\n".to_vec();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (huge, "the engine's response head is larger than 64 KiB"),
            (
                endless,
                "the engine closed the connection in the middle of a line",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".to_vec(),
                "the engine sent Content-Length '-1'",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
                "the engine sent Content-Length '99999999999999999999'",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
                "the engine sent two different Content-Length headers",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
                "the engine sent Transfer-Encoding 'gzip', which mlsize does not decode",
            ),
        ];
        for (raw, want) in cases {
            let e = head_framing(&raw).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        assert_eq!(
            resp.parse(&many).unwrap_err(),
            httparse::Error::TooManyHeaders,
            "more headers than room is an error, not a panic"
        );
    }

    #[test]
    fn endpoints_parse() {
        use EngineKind::{Docker, Podman};
        let cases = [
            ("unix:///var/run/docker.sock", "unix:///var/run/docker.sock"),
            ("unix://rel.sock", "unix://rel.sock"),
            ("tcp://127.0.0.1:2375", "tcp://127.0.0.1:2375"),
            ("tcp://localhost", "tcp://localhost:2375"),
            ("tcp://[::1]", "tcp://[::1]:2375"),
            ("tcp://[::1]:1234/", "tcp://[::1]:1234"),
        ];
        for (arg, want) in cases {
            assert_eq!(Engine::at(Docker, arg).unwrap().endpoint(), want, "{arg}");
        }
        let bad = [
            ("unix://", "expected unix:///PATH/TO/SOCKET"),
            ("tcp://", "expected tcp://HOST:PORT"),
            (
                "ssh://me@host",
                "mlsize reaches engines over unix:// or tcp://, not ssh://",
            ),
            (
                "/var/run/docker.sock",
                "expected unix:///PATH or tcp://HOST:PORT",
            ),
        ];
        for (arg, why) in bad {
            assert_eq!(
                Engine::at(Podman, arg).unwrap_err().to_string(),
                format!("invalid Podman engine address '{arg}': {why}")
            );
        }
    }

    #[test]
    fn close_matches_rank_near_names_first() {
        let names: Vec<String> = [
            "engtest:1.0",
            "engtest:latest",
            "localhost/engtest:2",
            "busybox:latest",
            "docker.io/library/python:3.11",
            "team/engtest-gpu:1",
            "zzz:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cases: [(&str, &[&str]); 5] = [
            (
                "engtset:1.0",
                &["engtest:1.0", "engtest:latest", "localhost/engtest:2"],
            ),
            (
                "engtest:9",
                &[
                    "engtest:1.0",
                    "engtest:latest",
                    "localhost/engtest:2",
                    "team/engtest-gpu:1",
                ],
            ),
            ("pyton", &["docker.io/library/python:3.11"]),
            ("docker.io/library/busybox:1", &["busybox:latest"]),
            ("nothing-like-it", &[]),
        ];
        for (want, close) in cases {
            assert_eq!(close_matches(want, &names), close.to_vec(), "{want}");
        }
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(familiar("docker.io/library/app"), "app:latest");
        assert_eq!(familiar("localhost/app:1"), "app:1");
        assert_eq!(familiar("reg:5000/app"), "reg:5000/app:latest");
        assert_eq!(familiar("app@sha256:ab"), "app@sha256:ab");
        assert_eq!(
            encode_path("reg:5000/a/b:c@sha256:0f"),
            "reg:5000/a/b:c@sha256:0f"
        );
        assert_eq!(encode_path("a b?#%"), "a%20b%3F%23%25");
        assert_eq!(parse_api("1.41"), Some((1, 41)));
        assert!(parse_api("1.9") < Some(MIN_API), "1.9 is older than 1.24");
        assert_eq!(parse_api("x"), None);
        assert_eq!(edit_distance("engtest", "engtset"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        let info = ImageInfo {
            id: "sha256:1".into(),
            names: vec!["b:1".into(), "localhost/a:latest".into()],
            size: None,
        };
        assert_eq!(
            info.first_named("a").names,
            vec!["localhost/a:latest", "b:1"],
            "the name asked for comes first, so export uses it"
        );
    }
}
