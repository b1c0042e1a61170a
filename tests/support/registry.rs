//! A real CNCF distribution registry owned by a test (Debian `docker-registry`),
//! a token issuer that signs real RS256 JWTs (with `openssl`), and a TCP
//! proxy that injects faults (cut, corrupt, stall, 429, redirect) into the
//! response to one kind of request. Everything listens on 127.0.0.1 on a
//! free port and stops when dropped, also when the test fails.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;

use super::tools::run;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates and serves.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Plain HTTP, anonymous.
    Plain,
    /// Plain HTTP with `auth.htpasswd` for one user.
    Basic { user: String, password: String },
    /// HTTPS with a certificate for 127.0.0.1 signed by a private CA (`dir/ca.crt`).
    Tls,
    /// Plain HTTP with `auth.token` trusting `issuer`'s certificate.
    Token { realm: String, cert: PathBuf },
}

/// The token service name and issuer the registry expects.
pub const SERVICE: &str = "mlsize-test-registry";
pub const ISSUER: &str = "mlsize-test-issuer";

/// A `docker-registry serve` process.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Registry {
    /// Starts a registry storing blobs in `storage` (shared by registries
    /// that serve the same images differently), config and logs in `dir`.
    pub fn start(dir: &Path, storage: &Path, mode: &Mode) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut http = format!("  addr: 127.0.0.1:{port}\n  secret: mlsize-test\n");
        let mut auth = String::new();
        match mode {
            Mode::Plain => {}
            Mode::Basic { user, password } => {
                let out = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                std::fs::write(dir.join("htpasswd"), out).unwrap();
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: mlsize-test\n    path: {}\n",
                    dir.join("htpasswd").display()
                );
            }
            Mode::Tls => {
                // A private CA (dir/ca.crt) and a server certificate it signed.
                self_signed(dir, "ca", "/CN=mlsize-test-ca", None);
                run(Command::new("openssl")
                    .args([
                        "req",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-subj",
                        "/CN=127.0.0.1",
                        "-keyout",
                    ])
                    .arg(dir.join("tls.key"))
                    .arg("-out")
                    .arg(dir.join("tls.csr"))
                    .stderr(Stdio::null()));
                std::fs::write(
                    dir.join("ext.cnf"),
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
                )
                .unwrap();
                run(Command::new("openssl")
                    .args(["x509", "-req", "-days", "2", "-set_serial", "1", "-in"])
                    .arg(dir.join("tls.csr"))
                    .arg("-CA")
                    .arg(dir.join("ca.crt"))
                    .arg("-CAkey")
                    .arg(dir.join("ca.key"))
                    .arg("-extfile")
                    .arg(dir.join("ext.cnf"))
                    .arg("-out")
                    .arg(dir.join("tls.crt"))
                    .stderr(Stdio::null()));
                http.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.join("tls.crt").display(),
                    dir.join("tls.key").display()
                ));
            }
            Mode::Token { realm, cert } => {
                auth = format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    cert.display()
                );
            }
        }
        let cfg = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n{http}{auth}",
            storage.display()
        );
        let cfg_path = dir.join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Registry {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        r.wait_ready();
        r
    }

    /// Polls until the port accepts connections (the registry listens only
    /// once it is set up), at most 10 s.
    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "registry on port {} not ready after 10 s: {}",
            self.port,
            std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `dir/NAME.key` and `dir/NAME.crt`, self-signed.
pub fn self_signed(dir: &Path, name: &str, subject: &str, san: Option<&str>) {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
    ])
    .arg(dir.join(format!("{name}.key")))
    .arg("-out")
    .arg(dir.join(format!("{name}.crt")))
    .args(["-subj", subject]);
    if let Some(s) = san {
        cmd.args(["-addext", s]);
    }
    run(cmd.stderr(Stdio::null()));
}

/// Pushes the OCI layout in `layout` to `docker://HOST/REPO`.
pub fn push(layout: &Path, host: &str, repo: &str, creds: Option<&str>) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--dest-creds", c]);
    }
    cmd.arg(format!("oci:{}", layout.display()))
        .arg(format!("docker://{host}/{repo}"));
    run(&mut cmd);
}

/// `skopeo inspect --raw` of `docker://HOST/REPO`: the manifest bytes.
pub fn inspect_raw(host: &str, repo: &str, creds: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    cmd.arg(format!("docker://{host}/{repo}"));
    run(&mut cmd)
}

/// How the token issuer answers.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// `expires_in` of every token.
    pub expires_in: u64,
    /// How many of the first tokens are already expired (`exp` an hour ago):
    /// the registry refuses them, and the client must ask again.
    pub expired_first: usize,
    /// Sign with a key the registry does not trust.
    pub wrong_key: bool,
    /// Credentials the issuer demands (HTTP Basic), if any.
    pub require: Option<(String, String)>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        IssuerConfig {
            expires_in: 300,
            expired_first: 0,
            wrong_key: false,
            require: None,
        }
    }
}

/// A token service signing RS256 JWTs with an `x5c` header holding its
/// certificate, which the registry trusts through `rootcertbundle`
/// (distribution's `registry/auth/token`: the chain in `x5c` is verified
/// against the bundle).
pub struct Issuer {
    pub port: u16,
    pub dir: PathBuf,
    /// Token requests answered.
    pub requests: Arc<AtomicUsize>,
    /// `Authorization` headers of the token requests (to check what was sent).
    pub auth_headers: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
}

impl Issuer {
    pub fn start(dir: &Path, config: IssuerConfig) -> Issuer {
        std::fs::create_dir_all(dir).unwrap();
        self_signed(dir, "token", "/CN=mlsize-test-issuer", None);
        self_signed(dir, "other", "/CN=mlsize-test-impostor", None);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let auth_headers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, n, a, s) = (
            dir.to_path_buf(),
            requests.clone(),
            auth_headers.clone(),
            stop.clone(),
        );
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        answer_token(conn, &d, &config, &n, &a);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Issuer {
            port,
            dir: dir.to_path_buf(),
            requests,
            auth_headers,
            stop,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("token.crt")
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one request head (up to the blank line).
fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match conn.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).to_string()
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn answer_token(
    mut conn: TcpStream,
    dir: &Path,
    config: &IssuerConfig,
    count: &AtomicUsize,
    auths: &Mutex<Vec<Option<String>>>,
) {
    let head = read_head(&mut conn);
    let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let param = |k: &str| {
        query.split('&').find_map(|kv| {
            let (a, b) = kv.split_once('=')?;
            (a == k).then(|| percent_decode(b))
        })
    };
    let auth = header_value(&head, "authorization");
    auths.lock().unwrap().push(auth.clone());
    if let Some((u, p)) = &config.require {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        );
        if auth.as_deref() != Some(want.as_str()) {
            let _ = conn.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
    }
    let n = count.fetch_add(1, Ordering::SeqCst);
    // scope = repository:NAME:ACTIONS
    let scope = param("scope").unwrap_or_default();
    let repo = scope
        .strip_prefix("repository:")
        .and_then(|s| s.rsplit_once(':'))
        .map(|(r, _)| r.to_string())
        .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = if n < config.expired_first {
        now - 3600
    } else {
        now + config.expires_in
    };
    let name = if config.wrong_key { "other" } else { "token" };
    let der = run(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(dir.join(format!("{name}.crt"))));
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "RS256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(der)],
    });
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": "mlsize-test",
        "aud": param("service").unwrap_or_default(),
        "exp": exp,
        "nbf": now - 10,
        "iat": now - 10,
        "jti": format!("jti-{n}"),
        "access": [{"type": "repository", "name": repo, "actions": ["pull", "push"]}],
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let input_path = dir.join(format!("input-{n}"));
    std::fs::write(&input_path, &signing_input).unwrap();
    let sig = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join(format!("{name}.key")))
        .arg(&input_path));
    let jwt = format!("{signing_input}.{}", b64url(&sig));
    let body = serde_json::json!({"token": jwt, "expires_in": config.expires_in}).to_string();
    let _ = conn.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// What the proxy does to the response of a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Pass everything through (record request heads only).
    None,
    /// Close both sides after this many body bytes.
    Cut(u64),
    /// Flip the body byte at this offset.
    Corrupt(u64),
    /// Stop forwarding after this many body bytes, keeping the connection open.
    Stall(u64),
    /// Answer `429 Too Many Requests` with `Retry-After: N` instead of forwarding.
    TooMany(u64),
    /// Answer `307` to `ORIGIN + path` instead of forwarding.
    Redirect(String),
}

/// A TCP proxy in front of `upstream` applying `fault` to the responses of
/// the first `times` requests whose request line contains `matching`.
pub struct FaultProxy {
    pub port: u16,
    /// Faults applied so far.
    pub applied: Arc<AtomicUsize>,
    /// Heads of every request seen (lower-cased header names are not
    /// normalised; search case-insensitively).
    pub heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

struct Rule {
    matching: String,
    fault: Fault,
    left: AtomicUsize,
    applied: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: u16, matching: &str, fault: Fault, times: usize) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let applied = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let rule = Arc::new(Rule {
            matching: matching.to_string(),
            fault,
            left: AtomicUsize::new(times),
            applied: applied.clone(),
            heads: heads.clone(),
            stop: stop.clone(),
        });
        thread::spawn(move || {
            while !rule.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let rule = rule.clone();
                        thread::spawn(move || serve(client, upstream, rule));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy {
            port,
            applied,
            heads,
            stop,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn applied(&self) -> usize {
        self.applied.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Per connection: which fault the next response gets.
#[derive(Default)]
struct Armed {
    fault: Option<Fault>,
}

fn serve(client: TcpStream, upstream: u16, rule: Arc<Rule>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let armed = Arc::new(Mutex::new(Armed::default()));
    let (mut c_in, mut c_out) = (client.try_clone().unwrap(), client);
    let (mut s_in, mut s_out) = (server.try_clone().unwrap(), server);
    // client → server: watch request lines, arm the fault, or answer directly.
    let up = {
        let (armed, rule) = (armed.clone(), rule.clone());
        let mut c_reply = c_out.try_clone().unwrap();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match c_in.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if text.starts_with("GET ") || text.starts_with("HEAD ") {
                    rule.heads.lock().unwrap().push(text.clone());
                    let line = text.lines().next().unwrap_or("");
                    if line.contains(&rule.matching)
                        && !matches!(rule.fault, Fault::None)
                        && rule
                            .left
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                            .is_ok()
                    {
                        match &rule.fault {
                            Fault::TooMany(secs) => {
                                rule.applied.fetch_add(1, Ordering::SeqCst);
                                let _ = c_reply.write_all(
                                    format!("HTTP/1.1 429 Too Many Requests\r\nRetry-After: {secs}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                                );
                                continue;
                            }
                            Fault::Redirect(origin) => {
                                rule.applied.fetch_add(1, Ordering::SeqCst);
                                let path = line.split_whitespace().nth(1).unwrap_or("/");
                                let _ = c_reply.write_all(
                                    format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {origin}{path}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                                );
                                continue;
                            }
                            f => armed.lock().unwrap().fault = Some(f.clone()),
                        }
                    }
                }
                if s_out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = s_out.shutdown(Shutdown::Write);
        })
    };
    // server → client: apply an armed fault to the body of the next response.
    let mut buf = vec![0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    let mut body_at: Option<u64> = None;
    loop {
        let n = match s_in.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let fault = armed.lock().unwrap().fault.clone();
        let Some(fault) = fault else {
            if c_out.write_all(&buf[..n]).is_err() {
                break;
            }
            continue;
        };
        let mut chunk = buf[..n].to_vec();
        let mut start_body = 0usize;
        if body_at.is_none() {
            tail.extend_from_slice(&chunk);
            match tail.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(p) => {
                    let consumed_before = tail.len() - chunk.len();
                    start_body = p + 4 - consumed_before;
                    body_at = Some(0);
                }
                None => {
                    if c_out.write_all(&chunk).is_err() {
                        break;
                    }
                    continue;
                }
            }
        }
        let at = body_at.unwrap();
        let body_len = (chunk.len() - start_body) as u64;
        let target = match fault {
            Fault::Cut(k) | Fault::Corrupt(k) | Fault::Stall(k) => k,
            _ => u64::MAX,
        };
        if target >= at && target < at + body_len {
            let i = start_body + (target - at) as usize;
            rule.applied.fetch_add(1, Ordering::SeqCst);
            armed.lock().unwrap().fault = None;
            body_at = None;
            tail.clear();
            match fault {
                Fault::Corrupt(_) => {
                    chunk[i] ^= 0xff;
                    if c_out.write_all(&chunk).is_err() {
                        break;
                    }
                    continue;
                }
                Fault::Cut(_) => {
                    let _ = c_out.write_all(&chunk[..i]);
                    let _ = c_out.shutdown(Shutdown::Both);
                    let _ = s_in.shutdown(Shutdown::Both);
                    break;
                }
                Fault::Stall(_) => {
                    let _ = c_out.write_all(&chunk[..i]);
                    while !rule.stop.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(50));
                    }
                    break;
                }
                _ => {}
            }
        }
        body_at = Some(at + body_len);
        if c_out.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = c_out.shutdown(Shutdown::Both);
    let _ = up.join();
}
