//! The registry client against a real CNCF distribution registry (Debian
//! `docker-registry`), images pushed with skopeo: anonymous, basic auth, token
//! auth with real JWTs, TLS, and faults injected by a TCP proxy in between.

mod support;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use mlsize::source::registry::{Client, CredentialEnv, RegistryOptions, RegistryRef};
use mlsize::testutil::{ImageBuilder, sha256};
use serde_json::Value;
use support::registry::{
    Fault, FaultProxy, Issuer, IssuerConfig, Mode, Registry, free_port, inspect_raw, push,
};
use support::tools::have;

fn tools() -> bool {
    have(&["docker-registry", "skopeo", "htpasswd", "openssl"])
}

/// An image with a 600 kB incompressible layer (so faults land mid-body) and a small one.
fn layout(dir: &Path) -> std::path::PathBuf {
    let l = dir.join("layout");
    ImageBuilder::new()
        .layer("COPY model.bin /models/", |l| {
            l.file_seeded("/models/model.bin", 600_000, 7)
        })
        .layer("COPY app /usr/bin/app", |l| l.file("/usr/bin/app", 4_096))
        .oci_layout(&l);
    l
}

/// Options that never look at this machine's credential files.
fn opts(dir: &Path) -> RegistryOptions {
    RegistryOptions {
        credential_env: CredentialEnv {
            home: Some(dir.join("home")),
            ..CredentialEnv::default()
        },
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        retries: 3,
        ..RegistryOptions::default()
    }
}

fn client(host: &str, repo: &str, o: &RegistryOptions) -> Client {
    Client::new(&RegistryRef::parse(&format!("{host}/{repo}")).unwrap(), o)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn err_text(e: mlsize::Error) -> String {
    format!("{:#}", anyhow::Error::from(e))
}

/// A descriptor: (digest, size).
type Desc = (String, u64);

/// The pushed manifest's config and layer descriptors.
fn descriptors(manifest: &[u8]) -> (Desc, Vec<Desc>) {
    let v: Value = serde_json::from_slice(manifest).unwrap();
    let d = |x: &Value| {
        (
            x["digest"].as_str().unwrap().to_string(),
            x["size"].as_u64().unwrap(),
        )
    };
    (
        d(&v["config"]),
        v["layers"].as_array().unwrap().iter().map(d).collect(),
    )
}

fn read_all(c: &Client, digest: &str, size: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    c.blob(digest, Some(size))?.read_to_end(&mut out)?;
    Ok(out)
}

/// A plain registry with the test image pushed as `app:v1`; returns it and its storage.
fn pushed(dir: &Path) -> (Registry, std::path::PathBuf) {
    let storage = dir.join("storage");
    let reg = Registry::start(&dir.join("plain"), &storage, &Mode::Plain);
    push(&layout(dir), &reg.host(), "app:v1", None);
    (reg, storage)
}

#[test]
fn anonymous_pull_matches_skopeo() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (reg, _) = pushed(t.path());
    let c = client(&reg.host(), "app:v1", &opts(t.path()));
    assert!(
        c.base_url().starts_with("http://"),
        "127.0.0.1 falls back to plain http: {}",
        c.base_url()
    );

    let m = c.manifest("v1").unwrap();
    let raw = inspect_raw(&reg.host(), "app:v1", None);
    assert_eq!(m.bytes, raw, "the manifest bytes are skopeo's");
    assert_eq!(
        m.digest,
        sha256(&raw),
        "digest = skopeo inspect --raw | sha256sum"
    );
    assert_eq!(
        m.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let by_digest = c.manifest(&m.digest).unwrap();
    assert_eq!(by_digest.bytes, raw, "by digest, verified");

    let ((config, config_size), layers) = descriptors(&m.bytes);
    let cfg = c.blob_bytes(&config, 1 << 20).unwrap();
    assert_eq!(
        (sha256(&cfg), cfg.len() as u64),
        (config.clone(), config_size)
    );
    let e = err_text(c.blob_bytes(&config, 10).unwrap_err());
    assert_eq!(
        e,
        format!(
            "'{}/app:v1': blob {} is larger than 10 bytes, the most mlsize accepts (is it really a manifest or config?)",
            reg.host(),
            &config[..19]
        ),
        "a config over the cap is refused"
    );
    assert_eq!(layers.len(), 2);
    for (digest, size) in &layers {
        let got = read_all(&c, digest, *size).unwrap();
        assert_eq!(
            (sha256(&got), got.len() as u64),
            (digest.clone(), *size),
            "layer bytes hash to the descriptor"
        );
    }
    // Several workers reading blobs at once through one client.
    std::thread::scope(|s| {
        for (digest, size) in &layers {
            let c = c.clone();
            s.spawn(move || assert_eq!(sha256(&read_all(&c, digest, *size).unwrap()), *digest));
        }
    });
    // A descriptor size that lies is not silently trusted.
    let (d0, s0) = &layers[0];
    let e = read_all(&c, d0, s0 + 1).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");

    // 404s say whether the repository exists.
    let e = err_text(c.manifest("nope").unwrap_err());
    assert_eq!(
        e,
        format!(
            "'{}/app:v1': repository 'app' exists on '{}' but has no manifest 'nope' (its tags include 'v1')",
            reg.host(),
            reg.host()
        )
    );
    let other = client(&reg.host(), "missing/repo:v1", &opts(t.path()));
    let e = err_text(other.manifest("v1").unwrap_err());
    assert_eq!(
        e,
        format!(
            "'{}/missing/repo:v1': repository 'missing/repo' not found on '{}' (check the name; private repositories also need credentials)",
            reg.host(),
            reg.host()
        )
    );
}

#[test]
fn connection_refused_names_host_and_port() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let r = RegistryRef::parse(&format!("127.0.0.1:{port}/app:v1")).unwrap();
    let e = err_text(Client::new(&r, &opts(t.path())).unwrap_err());
    assert_eq!(
        e,
        format!(
            "'127.0.0.1:{port}/app:v1': cannot connect to '127.0.0.1:{port}': connection refused (is a registry listening there?)"
        )
    );
}

#[test]
fn basic_auth_and_credential_sources() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (plain, storage) = pushed(t.path());
    drop(plain);
    let mode = Mode::Basic {
        user: "alice".into(),
        password: "s3cret-pw".into(),
    };
    let reg = Registry::start(&t.path().join("basic"), &storage, &mode);
    let host = reg.host();

    // Anonymous: the message lists every source tried and shows no secret.
    let anon = client(&host, "app:v1", &opts(t.path()));
    let e = err_text(anon.manifest("v1").unwrap_err());
    let home = t.path().join("home");
    assert_eq!(
        e,
        format!(
            "'{host}/app:v1': registry '{host}' denied access to 'app' (manifest request answered 401/403): no credentials found; tried --creds/MLSIZE_REGISTRY_USER (not set), {h}/.config/containers/auth.json (absent), {h}/.docker/config.json (absent), {h}/.dockercfg (absent) (log in with 'docker login {host}' or 'podman login', or pass --creds USER:PASSWORD)",
            h = home.display()
        )
    );

    // Explicit credentials.
    let mut o = opts(t.path());
    o.creds = Some(("alice".into(), "s3cret-pw".into()));
    let c = client(&host, "app:v1", &o);
    let m = c.manifest("v1").unwrap();
    assert_eq!(
        m.bytes,
        inspect_raw(&host, "app:v1", Some("alice:s3cret-pw"))
    );
    let (_, layers) = descriptors(&m.bytes);
    for (d, s) in &layers {
        assert_eq!(sha256(&read_all(&c, d, *s).unwrap()), *d);
    }

    // A wrong password: names the user and the source, never the password.
    o.creds = Some(("alice".into(), "wrong-pw".into()));
    let e = err_text(client(&host, "app:v1", &o).manifest("v1").unwrap_err());
    assert_eq!(
        e,
        format!(
            "'{host}/app:v1': registry '{host}' denied access to 'app' (manifest request answered 401/403): the credentials of user 'alice' from --creds/MLSIZE_REGISTRY_USER were refused (log in with 'docker login {host}' or 'podman login', or pass --creds USER:PASSWORD)"
        )
    );
    assert!(
        !format!("{c:?} {o:?}").contains("s3cret-pw"),
        "Debug never shows the password"
    );

    // From docker's config.json, with the key written as a URL.
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        format!(r#"{{"auths":{{"http://{host}/v2/":{{"auth":"YWxpY2U6czNjcmV0LXB3"}}}}}}"#),
    )
    .unwrap();
    let c = client(&host, "app:v1", &opts(t.path()));
    assert_eq!(c.manifest("v1").unwrap().bytes, m.bytes);
    assert_eq!(
        c.credentials().found.as_ref().unwrap().source,
        home.join(".docker/config.json").display().to_string()
    );
}

#[test]
fn token_auth_with_real_jwts_refreshes_expired_tokens() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (plain, storage) = pushed(t.path());
    drop(plain);

    // Tokens live 1 s: the client must fetch a new one after that.
    let issuer = Issuer::start(
        &t.path().join("issuer"),
        IssuerConfig {
            expires_in: 1,
            ..IssuerConfig::default()
        },
    );
    let mode = Mode::Token {
        realm: issuer.realm(),
        cert: issuer.cert(),
    };
    let reg = Registry::start(&t.path().join("token"), &storage, &mode);
    let c = client(&reg.host(), "app:v1", &opts(t.path()));
    let m = c.manifest("v1").unwrap();
    let (_, layers) = descriptors(&m.bytes);
    assert_eq!(issuer.count(), 1, "one token for the manifest");
    let (d, s) = &layers[1];
    assert_eq!(sha256(&read_all(&c, d, *s).unwrap()), *d, "reused token");
    assert_eq!(issuer.count(), 1, "the token is reused across requests");
    std::thread::sleep(Duration::from_millis(1100));
    let (d, s) = &layers[0];
    assert_eq!(sha256(&read_all(&c, d, *s).unwrap()), *d);
    assert_eq!(issuer.count(), 2, "a new token once expires_in passed");
    assert_eq!(c.tokens_fetched(), 2);
    drop(reg);

    // The registry refuses the first token (expired an hour ago): the client asks again.
    let issuer = Issuer::start(
        &t.path().join("issuer2"),
        IssuerConfig {
            expired_first: 1,
            ..IssuerConfig::default()
        },
    );
    let mode = Mode::Token {
        realm: issuer.realm(),
        cert: issuer.cert(),
    };
    let reg = Registry::start(&t.path().join("token2"), &storage, &mode);
    let mut o = opts(t.path());
    o.creds = Some(("bob".into(), "tok-pw".into()));
    let c = client(&reg.host(), "app:v1", &o);
    assert_eq!(c.manifest("v1").unwrap().bytes, m.bytes);
    assert_eq!(issuer.count(), 2, "the refused token was replaced");
    let sent = issuer.auth_headers.lock().unwrap().clone();
    assert!(
        sent.iter()
            .all(|h| h.as_deref() == Some("Basic Ym9iOnRvay1wdw==")),
        "credentials go to the token service: {sent:?}"
    );
    drop(reg);

    // A token signed by a key the registry does not trust is refused: the
    // registry really checks the signatures, so the tests above mean something.
    let issuer = Issuer::start(
        &t.path().join("issuer3"),
        IssuerConfig {
            wrong_key: true,
            ..IssuerConfig::default()
        },
    );
    let mode = Mode::Token {
        realm: issuer.realm(),
        cert: t.path().join("issuer/token.crt"),
    };
    let reg = Registry::start(&t.path().join("token3"), &storage, &mode);
    let e = err_text(
        client(&reg.host(), "app:v1", &opts(t.path()))
            .manifest("v1")
            .unwrap_err(),
    );
    assert!(e.contains("denied access to 'app'"), "{e}");
}

#[test]
fn tls_with_cert_dir_or_without_verification() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (plain, storage) = pushed(t.path());
    let want = inspect_raw(&plain.host(), "app:v1", None);
    drop(plain);
    let reg = Registry::start(&t.path().join("tls"), &storage, &Mode::Tls);
    let host = reg.host();

    let mut o = opts(t.path());
    o.tls_verify = Some(true);
    let r = RegistryRef::parse(&format!("{host}/app:v1")).unwrap();
    let e = err_text(Client::new(&r, &o).unwrap_err());
    assert!(
        e.starts_with(&format!("'{host}/app:v1': TLS connection to '{host}' failed: "))
            && e.ends_with("(if the registry uses a private CA, pass --cert-dir DIR with its ca.crt (skopeo's layout: DIR/*.crt); --tls-verify=false skips verification)"),
        "{e}"
    );

    let certs = t.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(reg.dir.join("ca.crt"), certs.join("ca.crt")).unwrap();
    o.cert_dir = Some(certs);
    let c = client(&host, "app:v1", &o);
    assert_eq!(c.base_url(), format!("https://{host}"));
    assert_eq!(
        c.manifest("v1").unwrap().bytes,
        want,
        "verified with --cert-dir"
    );

    for verify in [Some(false), None] {
        let mut o = opts(t.path());
        o.tls_verify = verify;
        let c = client(&host, "app:v1", &o);
        assert_eq!(
            c.base_url(),
            format!("https://{host}"),
            "{verify:?}: https first"
        );
        assert_eq!(c.manifest("v1").unwrap().bytes, want);
    }
}

/// The pushed image behind a fault proxy that applies `fault` to blob `which`.
fn through_proxy(t: &Path, fault: Fault, times: usize) -> (Registry, FaultProxy, Vec<Desc>, Desc) {
    let (reg, _) = pushed(t);
    let raw = inspect_raw(&reg.host(), "app:v1", None);
    let (config, layers) = descriptors(&raw);
    let big = layers.iter().max_by_key(|(_, s)| *s).unwrap().0.clone();
    let proxy = FaultProxy::start(reg.port, &format!("/blobs/{big}"), fault, times);
    (reg, proxy, layers, config)
}

/// A plain-HTTP registry's blobs are read from the socket by mlsize's own
/// request (`Connection: close`, one per blob), not asked for twice.
#[test]
fn plain_http_blobs_are_read_from_the_socket_once() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (_reg, proxy, layers, _) = through_proxy(t.path(), Fault::None, 0);
    let c = client(&proxy.host(), "app:v1", &opts(t.path()));
    for (d, s) in &layers {
        assert_eq!(sha256(&read_all(&c, d, *s).unwrap()), *d);
    }
    let heads = proxy.heads.lock().unwrap().clone();
    let blobs: Vec<&String> = heads.iter().filter(|h| h.contains("/blobs/")).collect();
    assert_eq!(blobs.len(), layers.len(), "one request per blob: {heads:?}");
    for h in blobs {
        let h = h.to_lowercase();
        assert!(
            h.contains("connection: close\r\n") && h.contains("user-agent: mlsize/"),
            "{h}"
        );
    }
}

#[test]
fn cut_connections_resume_with_range() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (_reg, proxy, layers, _) = through_proxy(t.path(), Fault::Cut(200_000), 2);
    let c = client(&proxy.host(), "app:v1", &opts(t.path()));
    let (d, s) = layers.iter().max_by_key(|(_, s)| *s).unwrap();
    let got = read_all(&c, d, *s).unwrap();
    assert_eq!(proxy.applied(), 2, "the transfer was cut twice");
    assert_eq!(
        (sha256(&got), got.len() as u64),
        (d.clone(), *s),
        "resumed bytes hash to the digest"
    );
    let ranges = proxy
        .heads
        .lock()
        .unwrap()
        .iter()
        .filter(|h| {
            h.lines()
                .any(|l| l.to_lowercase().starts_with("range: bytes="))
        })
        .count();
    assert_eq!(ranges, 2, "each resume is a Range request");

    // Out of retries: a short body is an UnexpectedEof error.
    let (_reg2, proxy, layers, _) = through_proxy(&t.path().join("b"), Fault::Cut(0), 100);
    let mut o = opts(t.path());
    o.retries = 1;
    let c = client(&proxy.host(), "app:v1", &o);
    let (d, s) = layers.iter().max_by_key(|(_, s)| *s).unwrap();
    let e = read_all(&c, d, *s).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
        ),
        "{e}"
    );
    assert!(e.to_string().contains("gave up after 1 retries"), "{e}");
}

#[test]
fn corrupt_bytes_are_caught() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (_reg, proxy, layers, _) = through_proxy(t.path(), Fault::Corrupt(12_345), 1);
    let c = client(&proxy.host(), "app:v1", &opts(t.path()));
    let (d, s) = layers.iter().max_by_key(|(_, s)| *s).unwrap();
    let got = read_all(&c, d, *s).unwrap();
    assert_eq!(proxy.applied(), 1);
    assert_eq!(got.len() as u64, *s);
    assert_ne!(sha256(&got), *d, "the caller's hash sees the flipped byte");

    // A config is verified by the client itself.
    let (reg, _) = pushed(&t.path().join("c"));
    let raw = inspect_raw(&reg.host(), "app:v1", None);
    let ((config, _), _) = descriptors(&raw);
    let proxy = FaultProxy::start(reg.port, &format!("/blobs/{config}"), Fault::Corrupt(3), 1);
    let c = client(&proxy.host(), "app:v1", &opts(t.path()));
    let e = err_text(c.blob_bytes(&config, 1 << 20).unwrap_err());
    assert!(
        e.starts_with(&format!(
            "'{}/app:v1': blob {config} read from the registry hashes to sha256:",
            proxy.host()
        )) && e.ends_with("(a broken registry or proxy; try again)"),
        "{e}"
    );
}

#[test]
fn stalled_transfer_resumes_then_times_out() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut o = opts(t.path());
    o.read_timeout = Duration::from_secs(1);
    o.retries = 1;
    // Stalls once mid-body: resumed after the read timeout.
    let (_reg, proxy, layers, _) = through_proxy(t.path(), Fault::Stall(50_000), 1);
    let c = client(&proxy.host(), "app:v1", &o);
    let (d, s) = layers.iter().max_by_key(|(_, s)| *s).unwrap();
    let got = read_all(&c, d, *s).unwrap();
    assert_eq!(proxy.applied(), 1);
    assert_eq!(sha256(&got), *d, "resumed after a stall");

    // Stalls every time: a timeout error, quickly.
    let (_reg, proxy, layers, _) = through_proxy(&t.path().join("b"), Fault::Stall(0), 100);
    let c = client(&proxy.host(), "app:v1", &o);
    let (d, s) = layers.iter().max_by_key(|(_, s)| *s).unwrap();
    let start = Instant::now();
    let e = read_all(&c, d, *s).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "registry '{}': blob {}: stalled: no data for 1 s at byte 0 of {s}, gave up after 1 retries (check the network, or raise the timeout: MLSIZE_REGISTRY_TIMEOUT=SECONDS)",
            proxy.host(),
            &d[..19]
        )
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        start.elapsed()
    );
}

#[test]
fn too_many_requests_honours_retry_after() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (reg, _) = pushed(t.path());
    let proxy = FaultProxy::start(reg.port, "/manifests/v1", Fault::TooMany(1), 1);
    let c = client(&proxy.host(), "app:v1", &opts(t.path()));
    let start = Instant::now();
    let m = c.manifest("v1").unwrap();
    assert_eq!(proxy.applied(), 1);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited Retry-After: {:?}",
        start.elapsed()
    );
    assert_eq!(m.bytes, inspect_raw(&reg.host(), "app:v1", None));
}

#[test]
fn redirect_to_blob_storage_drops_authorization() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (plain, storage) = pushed(t.path());
    // "Blob storage": a recording proxy in front of an anonymous registry on the same storage.
    let blob_store = FaultProxy::start(plain.port, "", Fault::None, 0);
    // The registry users talk to: basic auth, blob GETs redirected to the store.
    let mode = Mode::Basic {
        user: "alice".into(),
        password: "pw".into(),
    };
    let reg = Registry::start(&t.path().join("basic"), &storage, &mode);
    let front = FaultProxy::start(
        reg.port,
        "/blobs/",
        Fault::Redirect(format!("http://{}", blob_store.host())),
        100,
    );
    let mut o = opts(t.path());
    o.creds = Some(("alice".into(), "pw".into()));
    let c = client(&front.host(), "app:v1", &o);
    let m = c.manifest("v1").unwrap();
    let (_, layers) = descriptors(&m.bytes);
    for (d, s) in &layers {
        assert_eq!(
            sha256(&read_all(&c, d, *s).unwrap()),
            *d,
            "read through the redirect"
        );
    }
    assert_eq!(front.applied(), layers.len(), "every blob was redirected");
    let front_heads = front.heads.lock().unwrap().clone();
    let store_heads = blob_store.heads.lock().unwrap().clone();
    assert!(
        front_heads
            .iter()
            .filter(|h| h.contains("/blobs/"))
            .all(|h| h.to_lowercase().contains("authorization: basic")),
        "the registry origin gets credentials: {front_heads:?}"
    );
    assert_eq!(store_heads.len(), layers.len(), "{store_heads:?}");
    assert!(
        store_heads
            .iter()
            .all(|h| !h.to_lowercase().contains("authorization")),
        "blob storage never sees Authorization: {store_heads:?}"
    );
}
