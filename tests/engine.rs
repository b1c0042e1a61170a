//! The engine source against real engines: a dockerd and a `podman system
//! service` of the test's own (unix sockets in temp dirs, vfs storage), each
//! loaded with a small image. Lookups by name, short name, `localhost/` name,
//! full and short ID; the close-match error; `export` gives the very bytes
//! `curl --unix-socket … /images/NAME/get` gives, and the stream reader
//! loads them; a missing socket, a refused connection, a permission denied
//! (as user nobody), a hung engine and an export cut or stalled by a proxy
//! are one-line errors, not hangs.
//!
//! The tools come from Debian's docker.io and podman. Without them a
//! test says so and passes, unless CI=true (`.ci/run` installs them).

mod support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlsize::category::Rules;
use mlsize::layer::{Compression, ScanOptions};
use mlsize::source::engine::{Engine, ImageInfo};
use mlsize::source::meta::Selection;
use mlsize::source::reference::EngineKind;
use mlsize::source::{LoadOptions, LoadedImage};
use mlsize::testutil::{ImageBuilder, sha256};
use support::tools::{Containers, Dockerd, have, run};

/// The test image: two layers and a whiteout, uncompressed as `docker save`
/// writes them. Returns the archive's path and the image ID.
fn image(dir: &Path) -> (PathBuf, String) {
    let img = ImageBuilder::new()
        .name("engtest:1.0")
        .compression(Compression::None)
        .layer("COPY app /app", |l| {
            l.file_seeded("/app/model.bin", 50_000, 3)
                .file("/app/main.py", 100)
                .file("/tmp/cache.bin", 7_000)
        })
        .layer("RUN rm /tmp/cache.bin", |l| {
            l.whiteout("/tmp/cache.bin").file("/app/extra", 10)
        });
    let built = img.build();
    let path = dir.join("engtest.tar");
    std::fs::write(&path, img.docker_archive()).unwrap();
    (path, built.config_digest)
}

fn unix(sock: &Path) -> String {
    format!("unix://{}", sock.display())
}

/// What `curl --unix-socket SOCK http://d/v1.41/PATH -o OUT` saves, the
/// simplest way: an HTTP/1.0 request, whose answer is neither chunked nor
/// kept alive, read to its end.
fn curl(sock: &Path, path: &str, out: &Path) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET /v1.41{path} HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..end]);
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(!head.to_lowercase().contains("chunked"), "{head}");
    std::fs::write(out, &answer[end + 4..]).unwrap();
}

fn load(name: &str, reader: Box<dyn Read + Send>) -> LoadedImage {
    let opts = LoadOptions {
        selection: Selection {
            image: None,
            platform: None,
            verify: true,
        },
        scan: ScanOptions {
            verify: true,
            hash_content: true,
            hash_sizes: None,
            rules: Arc::new(Rules::builtin()),
            max_uncompressed_bytes: None,
            progress: None,
            cancel: None,
        },
        threads: 2,
        cache: None,
        disk: None,
        census: None,
        progress_total: None,
        layer_progress: None,
    };
    mlsize::source::open_reader(name, reader)
        .load(&opts)
        .unwrap()
}

/// Layer digests and entry paths: what the reader made of an archive.
fn layers(l: &LoadedImage) -> Vec<(Option<String>, Vec<String>)> {
    l.scans
        .iter()
        .map(|s| {
            (
                s.diff_id.clone(),
                s.entries.iter().map(|e| e.path.to_string()).collect(),
            )
        })
        .collect()
}

/// Every lookup form finds the image; `want_first` is the name export uses.
fn assert_finds(e: &Engine, id: &str, forms: &[(&str, &str)]) {
    let hex = id.trim_start_matches("sha256:");
    let ids = [id.to_string(), hex.to_string(), hex[..12].to_string()];
    for (form, want_first) in forms
        .iter()
        .map(|(f, w)| (f.to_string(), *w))
        .chain(ids.iter().map(|i| (i.clone(), "")))
    {
        let info = e
            .find_image(&form)
            .unwrap_or_else(|err| panic!("{form}: {err}"));
        assert_eq!(info.id, id, "'{form}' finds the image");
        assert!(info.size.is_some_and(|s| s > 50_000), "{form}: {info:?}");
        if !want_first.is_empty() {
            assert_eq!(
                info.names.first().map(String::as_str),
                Some(want_first),
                "'{form}': the name asked for comes first"
            );
        }
    }
}

/// Exports `info` and checks the stream is byte for byte what curl gets
/// from `/images/NAME/get`; returns the curl copy.
fn assert_export_equals_curl(e: &Engine, sock: &Path, info: &ImageInfo, dir: &Path) -> PathBuf {
    let mut got = Vec::new();
    e.export(info).unwrap().read_to_end(&mut got).unwrap();
    let saved = dir.join("curl-save.tar");
    curl(sock, &format!("/images/{}/get", info.names[0]), &saved);
    let want = std::fs::read(&saved).unwrap();
    assert!(want.len() > 60_000, "curl saved the image");
    assert_eq!(
        sha256(&got),
        sha256(&want),
        "export streams the engine's docker-save archive unchanged"
    );
    saved
}

#[test]
fn docker_engine_finds_exports_and_explains_failures() {
    if !have(&["dockerd", "docker"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let d = Dockerd::start(dir);
    let (archive, id) = image(dir);
    run(d.docker().arg("load").arg("-qi").arg(&archive));
    run(d.docker().args(["tag", "engtest:1.0", "engtest:latest"]));
    let sock = d.socket();
    let e = Engine::at(EngineKind::Docker, &unix(&sock)).unwrap();

    let v = e.ping().unwrap();
    assert_eq!(v.engine, "Engine", "dockerd names itself Engine: {v:?}");
    assert!(!v.version.is_empty(), "{v:?}");
    assert!(v.api_version.starts_with("1."), "{v:?}");

    assert_finds(
        &e,
        &id,
        &[
            ("engtest:1.0", "engtest:1.0"),
            ("engtest", "engtest:latest"),
            ("engtest:latest", "engtest:latest"),
            ("docker.io/library/engtest:1.0", "engtest:1.0"),
            ("library/engtest:1.0", "engtest:1.0"),
        ],
    );
    let missing = e.find_image("engtset:1.0").unwrap_err();
    assert!(
        matches!(missing, mlsize::Error::Selection { .. }),
        "{missing:?}"
    );
    assert_eq!(
        missing.to_string(),
        format!(
            "'docker-daemon:engtset:1.0': no such image in the Docker engine at {} (close matches: engtest:1.0, engtest:latest)",
            unix(&sock)
        )
    );
    assert_eq!(
        e.find_image("zzzzzzzzzzzz:1").unwrap_err().to_string(),
        format!(
            "'docker-daemon:zzzzzzzzzzzz:1': no such image in the Docker engine at {} (none is close; it has 2 names: engtest:1.0, engtest:latest)",
            unix(&sock)
        )
    );

    // The stream is what `docker save` gives, and the reader loads it.
    let info = e.find_image("engtest:1.0").unwrap();
    let saved = assert_export_equals_curl(&e, &sock, &info, dir);
    let streamed = load("docker-daemon:engtest:1.0", e.export(&info).unwrap());
    let from_file = load(
        saved.to_str().unwrap(),
        Box::new(std::fs::File::open(&saved).unwrap()),
    );
    assert_eq!(streamed.scans.len(), 2, "two layers");
    assert_eq!(
        layers(&streamed),
        layers(&from_file),
        "the export reads as the saved archive does"
    );
    assert_eq!(streamed.meta.image_id, id, "the image asked for");

    // Failures: each one line that says what to do.
    let gone = dir.join("gone.sock");
    let err = Engine::at(EngineKind::Docker, &unix(&gone))
        .unwrap()
        .ping()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "'{}': no such socket (is dockerd running? set DOCKER_HOST to the engine's socket)",
            unix(&gone)
        )
    );
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let err = Engine::at(EngineKind::Docker, &unix(&stale))
        .unwrap()
        .find_image("engtest")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "'{}': connection refused: nothing listens there (is dockerd running? set DOCKER_HOST to the engine's socket)",
            unix(&stale)
        )
    );
    permission_denied_as_nobody(dir, &sock);
    export_cut_or_stalled_by_a_proxy(dir, &sock, &info);
}

/// Connects to dockerd's real socket (root:docker, 0660) as user nobody,
/// through a copy of this test binary run with `setpriv`.
fn permission_denied_as_nobody(dir: &Path, sock: &Path) {
    let uid = String::from_utf8(run(Command::new("id").arg("-u"))).unwrap();
    if uid.trim() != "0" || !have(&["setpriv"]) {
        eprintln!("skipped: the permission test needs root and setpriv");
        return;
    }
    let mode = std::fs::metadata(sock).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o007,
        0,
        "dockerd's socket is closed to others"
    );
    // nobody may walk to the socket and run the copy, not open the socket.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.join("probe");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args([
            "--ignored",
            "--exact",
            "probe_ping_as_this_user",
            "--nocapture",
        ])
        .args(["--test-threads=1"])
        .env("MLSIZE_PROBE_SOCKET", sock));
    let out = String::from_utf8(out).unwrap();
    let line = out
        .lines()
        .find_map(|l| l.split_once("PROBE: ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no probe line in: {out}"));
    assert_eq!(
        line,
        format!(
            "'{}': permission denied (add your user to the docker group, or run with sudo)",
            unix(sock)
        )
    );
}

/// Run as another user by `permission_denied_as_nobody`: pings the engine at
/// `$MLSIZE_PROBE_SOCKET` and prints the error.
#[test]
#[ignore = "run as user nobody by docker_engine_finds_exports_and_explains_failures"]
fn probe_ping_as_this_user() {
    let Ok(sock) = std::env::var("MLSIZE_PROBE_SOCKET") else {
        eprintln!("MLSIZE_PROBE_SOCKET is unset: nothing to probe");
        return;
    };
    let e = Engine::at(EngineKind::Docker, &format!("unix://{sock}")).unwrap();
    match e.ping() {
        Ok(v) => println!("PROBE: answered {v:?}"),
        Err(err) => println!("PROBE: {err}"),
    }
}

/// What a fault proxy does to an export once `after` bytes of the answer
/// have passed.
#[derive(Clone, Copy)]
enum Fault {
    Cut,
    Stall,
}

/// A unix-socket proxy in front of `upstream` that passes every request
/// through, and the answer to an `/images/…/get` only up to `after` bytes;
/// it serves at most `max` connections and then stops.
fn fault_proxy(dir: &Path, upstream: &Path, after: usize, fault: Fault, max: usize) -> PathBuf {
    let sock = dir.join(match fault {
        Fault::Cut => "cut.sock",
        Fault::Stall => "stall.sock",
    });
    let listener = UnixListener::bind(&sock).unwrap();
    let upstream = upstream.to_path_buf();
    std::thread::spawn(move || {
        for client in listener.incoming().take(max) {
            let Ok(mut client) = client else { return };
            let mut up = UnixStream::connect(&upstream).unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && client.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            up.write_all(&head).unwrap();
            let export =
                head.starts_with(b"GET ") && String::from_utf8_lossy(&head).contains("/get ");
            let limit = if export { after } else { usize::MAX };
            let mut sent = 0;
            let mut buf = vec![0u8; 8192];
            while sent < limit {
                let n = up.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                let n = n.min(limit - sent);
                if client.write_all(&buf[..n]).is_err() {
                    break;
                }
                sent += n;
            }
            if export && matches!(fault, Fault::Stall) {
                // Hold the connection open, silent, until the client gives up.
                let _ = client.set_read_timeout(Some(Duration::from_secs(20)));
                let _ = client.read(&mut buf);
            }
        }
    });
    sock
}

fn export_cut_or_stalled_by_a_proxy(dir: &Path, sock: &Path, info: &ImageInfo) {
    // /_ping, /version and the export: three connections each.
    let cut = fault_proxy(dir, sock, 20_000, Fault::Cut, 3);
    let e = Engine::at(EngineKind::Docker, &unix(&cut)).unwrap();
    let mut stream = e.export(info).unwrap();
    let err = std::io::copy(&mut stream, &mut std::io::sink()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "the engine at {} closed the connection after ",
            unix(&cut)
        )),
        "a cut export is an error, not a short archive: {err}"
    );

    let stalled = fault_proxy(dir, sock, 20_000, Fault::Stall, 3);
    let e = Engine::at(EngineKind::Docker, &unix(&stalled))
        .unwrap()
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(1));
    let mut stream = e.export(info).unwrap();
    let start = Instant::now();
    let err = std::io::copy(&mut stream, &mut std::io::sink()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10), "no hang");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "the engine at {} sent nothing for 1 s after ",
            unix(&stalled)
        )),
        "{err}"
    );
}

#[test]
fn a_hung_engine_is_a_timeout_not_a_hang() {
    let t = tempfile::tempdir().unwrap();
    let sock = t.path().join("hung.sock");
    // Connections queue in the backlog and are never answered.
    let _listener = UnixListener::bind(&sock).unwrap();
    let e = Engine::at(EngineKind::Podman, &unix(&sock))
        .unwrap()
        .with_timeouts(Duration::from_secs(1), Duration::from_millis(500));
    let start = Instant::now();
    let err = e.ping().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "no hang");
    assert_eq!(
        err.to_string(),
        format!(
            "'{}': the Podman engine sent nothing for 0.5 s while reading the answer (is it hung? restart it)",
            unix(&sock)
        )
    );
}

#[test]
fn podman_service_finds_and_exports() {
    if !have(&["podman"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let (archive, id) = image(dir);
    let c = Containers::new(&dir.join("containers"));
    run(c.podman().args(["load", "-q", "-i"]).arg(&archive));
    run(c
        .podman()
        .args(["tag", "localhost/engtest:1.0", "localhost/engtest:latest"]));
    let svc = c.service();
    let sock = svc.socket().to_path_buf();
    let e = Engine::at(EngineKind::Podman, &unix(&sock)).unwrap();

    let v = e.ping().unwrap();
    assert_eq!(v.engine, "Podman Engine", "{v:?}");

    assert_finds(
        &e,
        &id,
        &[
            ("engtest:1.0", "localhost/engtest:1.0"),
            ("localhost/engtest:1.0", "localhost/engtest:1.0"),
            // Not found as docker.io/library/engtest: tried under localhost/.
            ("engtest", "localhost/engtest:latest"),
            ("localhost/engtest", "localhost/engtest:latest"),
        ],
    );
    assert_eq!(
        e.find_image("engtset:1.0").unwrap_err().to_string(),
        format!(
            "'podman:engtset:1.0': no such image in the Podman engine at {} (close matches: localhost/engtest:1.0, localhost/engtest:latest)",
            unix(&sock)
        )
    );
    let info = e.find_image("engtest:1.0").unwrap();
    let saved = assert_export_equals_curl(&e, &sock, &info, dir);
    let streamed = load("podman:engtest:1.0", e.export(&info).unwrap());
    let from_file = load(
        saved.to_str().unwrap(),
        Box::new(std::fs::File::open(&saved).unwrap()),
    );
    assert_eq!(layers(&streamed), layers(&from_file));
    assert_eq!(streamed.meta.image_id, id);

    let gone = dir.join("gone.sock");
    assert_eq!(
        Engine::at(EngineKind::Podman, &unix(&gone))
            .unwrap()
            .ping()
            .unwrap_err()
            .to_string(),
        format!(
            "'{}': no such socket (is the podman API service running? start it with 'systemctl --user start podman.socket' or 'podman system service --time=0 &', or set CONTAINER_HOST to the engine's socket)",
            unix(&gone)
        )
    );
}
