//! Issue 13 end to end, through the `mlsize` binary: one image put in a real
//! registry (skopeo push), a dockerd and a podman service of the test's own
//! (`docker load`, `podman load`) and a docker-archive on disk gives the same
//! JSON from each; bare names resolve to the engine that has them, else to
//! the registry; `diff` and `check --baseline` mix sources; `--platform`
//! picks from a pushed index; a fault proxy cuts, corrupts and stalls blob
//! transfers; basic auth from every credential source; TLS with `--cert-dir`
//! and `--tls-verify=false`; `diff` of two tags fetches each shared blob once.
//!
//! Without the tools a test says so and passes, unless CI=true (`.ci/run`
//! installs docker.io, podman, skopeo, docker-registry, apache2-utils).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mlsize::layer::Compression;
use mlsize::testutil::{Built, ImageBuilder};
use serde_json::{Value, json};
use support::registry::{Fault, FaultProxy, Mode, Registry, free_port};
use support::tools::{Containers, Dockerd, have, run};

/// The name the image has in every engine and registry.
const NAME: &str = "sources:1.0";

/// The test image, uncompressed as `docker save` writes it: a base layer, a
/// pip install whose cache a later layer deletes (wasted bytes), an empty
/// `ENV`, and a model that duplicates a library byte for byte.
fn image() -> ImageBuilder {
    ImageBuilder::new()
        .name(NAME)
        .compression(Compression::None)
        .layer("/bin/sh -c #(nop) ADD file:0a1b2c in / ", |l| {
            l.file("/usr/bin/python3", 20_000)
                .file("/etc/os-release", 300)
        })
        .layer("/bin/sh -c pip install torch", |l| {
            l.file("/root/.cache/pip/http/t.body", 9_000).file_seeded(
                "/usr/lib/torch/libtorch.so",
                70_000,
                7,
            )
        })
        .layer("/bin/sh -c rm -rf /root/.cache", |l| {
            l.whiteout("/root/.cache")
        })
        .empty("/bin/sh -c #(nop)  ENV A=b")
        .layer("/bin/sh -c #(nop) COPY file:9f8e in /app/ ", |l| {
            l.file_seeded("/app/model.bin", 70_000, 7)
                .file("/app/main.py", 15)
        })
}

/// mlsize with an environment of the test's own: no credential file of
/// this machine, no engine socket (DOCKER_HOST and CONTAINER_HOST name
/// sockets that do not exist), run in `home`.
fn mlsize(home: &Path) -> assert_cmd::Command {
    let mut c = support::mlsize();
    for k in [
        "REGISTRY_AUTH_FILE",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "DOCKER_CONFIG",
        "MLSIZE_REGISTRY_USER",
        "MLSIZE_REGISTRY_PASSWORD",
        "MLSIZE_REGISTRY_TIMEOUT",
    ] {
        c.env_remove(k);
    }
    c.env("HOME", home)
        .env("DOCKER_HOST", unix(&home.join("no-docker.sock")))
        .env("CONTAINER_HOST", unix(&home.join("no-podman.sock")))
        .current_dir(home);
    c
}

fn unix(sock: &Path) -> String {
    format!("unix://{}", sock.display())
}

/// Runs `cmd` expecting exit 0 and JSON on stdout.
fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    support::checked(serde_json::from_slice(&out.stdout).unwrap())
}

/// `analyze ARG --format json`.
fn analyze(cmd: &mut assert_cmd::Command, arg: &str) -> Value {
    analyze_with(cmd, arg, &[])
}

/// `analyze ARG FLAGS... --format json`.
fn analyze_with(cmd: &mut assert_cmd::Command, arg: &str, flags: &[&str]) -> Value {
    json_of(
        cmd.args(["analyze", arg])
            .args(flags)
            .args(["--format", "json"]),
    )
}

/// Runs `cmd` expecting exit 2, one line on stderr and nothing on stdout;
/// returns the line without its newline.
fn fails(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{cmd:?}: stderr {err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "no partial report on failure"
    );
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    assert!(err.ends_with('\n'), "{err}");
    err.trim_end().to_string()
}

/// Every JSON pointer where `a` and `b` differ, array indexes written `*`,
/// each with how often it differs.
fn differences(a: &Value, b: &Value) -> BTreeMap<String, usize> {
    fn walk(a: &Value, b: &Value, at: String, out: &mut BTreeMap<String, usize>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    let (va, vb) = (
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    );
                    walk(va, vb, format!("{at}/{k}"), out);
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (va, vb) in x.iter().zip(y) {
                    walk(va, vb, format!("{at}/*"), out);
                }
            }
            _ if a == b => {}
            _ => *out.entry(at).or_default() += 1,
        }
    }
    let mut out = BTreeMap::new();
    walk(a, b, String::new(), &mut out);
    out
}

/// The layer descriptors (digest, size) of a pushed manifest.
fn pushed_layers(host: &str, repo: &str) -> Vec<(String, u64)> {
    let raw = support::registry::inspect_raw(host, repo, None);
    let m: Value = serde_json::from_slice(&raw).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Pushes `from` (a skopeo source reference) to `docker://HOST/REPO`.
fn push(from: &str, host: &str, repo: &str, extra: &[&str]) {
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args(extra)
        .arg(from)
        .arg(format!("docker://{host}/{repo}")));
}

/// A registry of the test's own in `dir` with `image()` pushed as
/// `sources:1.0` from its docker-archive `archive`.
fn registry_with(dir: &Path, archive: &Path, mode: &Mode, creds: Option<&str>) -> Registry {
    let reg = Registry::start(&dir.join("registry"), &dir.join("storage"), mode);
    let mut extra = vec![];
    if let Some(c) = creds {
        extra = vec!["--dest-creds", c];
    }
    let from = format!("docker-archive:{}", archive.display());
    push(&from, &reg.host(), NAME, &extra);
    reg
}

fn archive(dir: &Path) -> PathBuf {
    let p = dir.join("sources.tar");
    std::fs::write(&p, image().docker_archive()).unwrap();
    p
}

/// The figures the archive gives: what every source must give too.
fn assert_archive_figures(v: &Value) {
    let built = image().build();
    assert_eq!(v["image"]["id"], built.config_digest);
    assert_eq!(v["image"]["layer_count"], 4);
    assert_eq!(v["image"]["wasted_bytes"], 9_000, "the deleted pip cache");
    assert_eq!(
        v["image"]["visible_bytes"],
        20_000 + 300 + 70_000 + 70_000 + 15
    );
    assert_eq!(v["image"]["duplicate_reclaimable_bytes"], 70_000);
    assert_eq!(
        v["duplicates"][0]["paths"],
        json!(["/app/model.bin", "/usr/lib/torch/libtorch.so"])
    );
}

// See: issue 13 ("the same image read from a registry, from dockerd, from
// podman and from its docker-archive gives identical JSON").
#[test]
fn one_image_from_registry_dockerd_podman_and_archive() {
    if !have(&["dockerd", "docker", "podman", "skopeo", "docker-registry"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    std::fs::create_dir(dir.join("docker")).unwrap();
    let dockerd = Dockerd::spawn(&dir.join("docker"));
    let tar = archive(dir);
    let reg = registry_with(dir, &tar, &Mode::Plain, None);
    let host = reg.host();
    let podman = Containers::new(&dir.join("podman"));
    run(podman.podman().args(["load", "-q", "-i"]).arg(&tar));
    let service = podman.service();
    dockerd.wait_ready();
    run(dockerd.docker().args(["load", "-q", "-i"]).arg(&tar));
    let docker_host = unix(&dockerd.socket());
    let podman_host = unix(service.socket());

    let tar_arg = tar.to_str().unwrap();
    let from_archive = analyze(&mut mlsize(dir), tar_arg);
    assert_archive_figures(&from_archive);
    assert_eq!(from_archive["image"]["source"], tar_arg);
    assert_eq!(from_archive["image"]["format"], "docker-archive");
    assert_eq!(from_archive["image"]["name"], NAME);

    let registry_ref = format!("docker://{host}/{NAME}");
    let from_registry = analyze(&mut mlsize(dir), &registry_ref);
    let from_docker = analyze(
        mlsize(dir).env("DOCKER_HOST", &docker_host),
        &format!("docker-daemon:{NAME}"),
    );
    let from_podman = analyze(
        mlsize(dir).env("CONTAINER_HOST", &podman_host),
        &format!("podman:{NAME}"),
    );

    // Both engines export the docker-save archive they loaded: only where
    // the image was read from differs, and the name podman gives it
    // (localhost/NAME).
    let engines = [
        (
            &from_docker,
            format!("docker-daemon:{NAME}"),
            NAME.to_string(),
        ),
        (
            &from_podman,
            format!("podman:{NAME}"),
            format!("localhost/{NAME}"),
        ),
    ];
    for (v, source, name) in engines {
        let mut want = BTreeMap::from([("/image/source".to_string(), 1)]);
        if name != NAME {
            want.insert("/image/name".into(), 1);
        }
        assert_eq!(
            differences(&from_archive, v),
            want,
            "{source}: only the source (and podman's name) differ"
        );
        assert_eq!(
            (
                &v["image"]["source"],
                &v["image"]["name"],
                &v["image"]["format"]
            ),
            (&json!(source), &json!(name), &json!("docker-archive")),
        );
    }

    // The registry holds the layers gzipped (skopeo compresses uncompressed
    // layers on push), so besides the source, the format and the name, what
    // differs is what compression changes: each layer's blob digest, its
    // compression and stored size, the gzip estimate (only made for layers
    // stored uncompressed) and the image's sums of those; what a pull
    // downloads is then measured, not estimated; and the compressed figures
    // derived from those: the estimate after the fixes, and the one
    // recommendation's compressed saving; and the blob bytes the run read
    // (`image.cache.bytes_read`, gzip from the registry, tar from the file).
    let want: BTreeMap<String, usize> = [
        ("/image/cache/bytes_read", 1),
        ("/estimated/compressed_bytes", 1),
        ("/estimated/compressed_bytes_before", 1),
        ("/recommendations/*/compressed_bytes", 1),
        ("/image/name", 1),
        ("/image/source", 1),
        ("/image/format", 1),
        ("/image/compressed_bytes", 1),
        ("/image/estimated_gzip_bytes", 1),
        ("/image/download_bytes", 1),
        ("/image/download_bytes_basis", 1),
        ("/layers/*/digest", 4),
        ("/layers/*/compression", 4),
        ("/layers/*/compressed_bytes", 4),
        ("/layers/*/estimated_gzip_bytes", 4),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(differences(&from_archive, &from_registry), want);
    let layers = pushed_layers(&host, NAME);
    let got: Vec<(String, u64, String, Value)> = from_registry["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["compressed_bytes"].as_u64().unwrap(),
                l["compression"].as_str().unwrap().to_string(),
                l["estimated_gzip_bytes"].clone(),
            )
        })
        .collect();
    let want: Vec<(String, u64, String, Value)> = layers
        .iter()
        .map(|(d, s)| (d.clone(), *s, "gzip".to_string(), Value::Null))
        .collect();
    assert_eq!(got, want, "the pushed manifest's layers, as pushed");
    let pushed_bytes: u64 = layers.iter().map(|l| l.1).sum();
    assert_eq!(
        (
            &from_registry["image"]["source"],
            &from_registry["image"]["format"],
            &from_registry["image"]["name"],
            &from_registry["image"]["compressed_bytes"],
            &from_registry["image"]["download_bytes"],
            &from_registry["image"]["estimated_gzip_bytes"],
            &from_registry["estimated"]["compressed_bytes_before"],
        ),
        (
            &json!(registry_ref),
            &json!("registry"),
            &json!(format!("{host}/{NAME}")),
            &json!(pushed_bytes),
            &json!(pushed_bytes),
            &Value::Null,
            &json!(pushed_bytes),
        )
    );

    // A bare name: the engine that has it, in the order Docker, Podman,
    // then the registry.
    let bare_docker = analyze(mlsize(dir).env("DOCKER_HOST", &docker_host), NAME);
    assert_eq!(
        bare_docker["image"]["source"],
        format!("docker-daemon:{NAME}")
    );
    assert_eq!(differences(&from_docker, &bare_docker), BTreeMap::new());
    let bare_podman = analyze(mlsize(dir).env("CONTAINER_HOST", &podman_host), NAME);
    assert_eq!(bare_podman["image"]["source"], format!("podman:{NAME}"));
    let qualified = format!("{host}/{NAME}");
    for (what, docker, podman) in [
        ("no engine answers", None, None),
        (
            "the engines lack it",
            Some(&docker_host),
            Some(&podman_host),
        ),
    ] {
        let mut cmd = mlsize(dir);
        if let Some(d) = docker {
            cmd.env("DOCKER_HOST", d);
        }
        if let Some(p) = podman {
            cmd.env("CONTAINER_HOST", p);
        }
        let v = analyze(&mut cmd, &qualified);
        assert_eq!(differences(&from_registry, &v), BTreeMap::new(), "{what}");
    }
    let e = fails(mlsize(dir).args(["analyze", &format!("{host}/nothere:1")]));
    assert_eq!(
        e,
        format!(
            "mlsize: '{host}/nothere:1': not in a local engine (Docker: no engine answered; Podman: no engine answered), and from the registry: repository 'nothere' not found on '{host}' (check the name; private repositories also need credentials)"
        )
    );

    // diff and check take any mix of sources.
    let diff = json_of(
        mlsize(dir)
            .env("DOCKER_HOST", &docker_host)
            .args(["diff", &registry_ref, &format!("docker-daemon:{NAME}")])
            .args(["--format", "json", "--fail-over", "0"]),
    );
    assert_eq!(diff["old"]["source"], registry_ref);
    assert_eq!(diff["new"]["source"], format!("docker-daemon:{NAME}"));
    assert_eq!(diff["shared"]["layers"], 4, "same diff_ids");
    assert_eq!(
        diff["files"]["counts"],
        json!({"added": 0, "removed": 0, "grown": 0, "shrunk": 0, "moved": 0})
    );
    let budget = dir.join("mlsize.toml");
    std::fs::write(&budget, "max_growth_bytes = 0\n").unwrap();
    let check = json_of(
        mlsize(dir)
            .env("DOCKER_HOST", &docker_host)
            .args(["check", &format!("docker-daemon:{NAME}")])
            .args(["--baseline", &registry_ref, "--format", "json"]),
    );
    assert_eq!(check["baseline"], registry_ref);
    assert_eq!(check["image"]["source"], format!("docker-daemon:{NAME}"));
    let rules = check["rules"].as_array().unwrap();
    assert_eq!(
        (
            rules.len(),
            &rules[0]["rule"],
            &rules[0]["actual"],
            &rules[0]["passed"]
        ),
        (1, &json!("max_growth_bytes"), &json!(0.0), &json!(true)),
        "no growth against the registry's copy: {check}"
    );
}

// See: issue 13 ("multi-platform indexes select with --platform exactly as
// for archives").
#[test]
fn platform_selects_from_an_index_pushed_with_all() {
    if !have(&["skopeo", "docker-registry"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let amd = ImageBuilder::new()
        .layer("RUN a", |l| l.file("/a", 10))
        .build();
    let arm = ImageBuilder::new()
        .platform("linux", "arm64", Some("v8"))
        .layer("RUN b", |l| l.file("/b", 30))
        .build();
    let layout = dir.join("multi");
    multi_platform_layout(&layout, &[&amd, &arm]);
    let reg = Registry::start(&dir.join("registry"), &dir.join("storage"), &Mode::Plain);
    push(
        &format!("oci:{}:multi", layout.display()),
        &reg.host(),
        "multi:1",
        &["--all"],
    );
    let r = format!("docker://{}/multi:1", reg.host());
    for (platform, id, visible, shown) in [
        ("linux/arm64", &arm.config_digest, 30, "linux/arm64/v8"),
        ("linux/amd64", &amd.config_digest, 10, "linux/amd64"),
    ] {
        let v = analyze_with(&mut mlsize(dir), &r, &["--platform", platform]);
        assert_eq!(
            (
                &v["image"]["id"],
                &v["image"]["visible_bytes"],
                &v["image"]["platform"]
            ),
            (&json!(id), &json!(visible), &json!(shown)),
            "--platform {platform}"
        );
    }
    let e = fails(mlsize(dir).args(["analyze", &r, "--platform", "linux/s390x"]));
    assert_eq!(
        e,
        format!(
            "mlsize: '{r}': no image for platform 'linux/s390x'; platforms present: linux/amd64, linux/arm64/v8 (choose with --platform)"
        )
    );
}

/// An OCI layout whose `index.json` names one image index (tag `multi`)
/// listing `images`, each with its platform: what `buildx --platform a,b`
/// exports and `skopeo copy --all` pushes.
fn multi_platform_layout(dir: &Path, images: &[&Built]) {
    let with_platform: Vec<(&Built, bool)> = images.iter().map(|b| (*b, true)).collect();
    let mut files = mlsize::testutil::oci_files(&with_platform, false);
    let inner = files.iter().position(|f| f.0 == "index.json").unwrap();
    let (_, inner) = files.remove(inner);
    let digest = mlsize::testutil::sha256(&inner);
    let outer = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": inner.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }],
    });
    files.push((format!("blobs/sha256/{}", &digest[7..]), inner));
    files.push(("index.json".into(), outer.to_string().into_bytes()));
    mlsize::testutil::write_dir(dir, &files);
}

/// A plain registry with `image()` pushed, behind a proxy applying `fault`
/// to the first `times` requests for its largest layer blob.
fn behind_proxy(dir: &Path, fault: Fault, times: usize) -> (Registry, FaultProxy, String) {
    let reg = registry_with(dir, &archive(dir), &Mode::Plain, None);
    let layers = pushed_layers(&reg.host(), NAME);
    let big = layers.iter().max_by_key(|l| l.1).unwrap().0.clone();
    let proxy = FaultProxy::start(reg.port, &format!("/blobs/{big}"), fault, times);
    (reg, proxy, big)
}

// See: issue 13 ("a dropped connection mid-blob resumes with an HTTP Range
// request ... the JSON must equal the archive's").
#[test]
fn cut_transfers_resume_to_the_same_report() {
    if !have(&["skopeo", "docker-registry"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let (reg, proxy, _) = behind_proxy(dir, Fault::Cut(30_000), 2);
    let clean = analyze(&mut mlsize(dir), &format!("docker://{}/{NAME}", reg.host()));
    let resumed = analyze(
        &mut mlsize(dir),
        &format!("docker://{}/{NAME}", proxy.host()),
    );
    assert_eq!(proxy.applied(), 2, "cut twice");
    assert_eq!(
        differences(&clean, &resumed),
        BTreeMap::from([("/image/name".into(), 1), ("/image/source".into(), 1)]),
        "only the port differs"
    );
    assert_eq!(
        resumed["image"]["source"],
        format!("docker://{}/{NAME}", proxy.host())
    );
    assert_archive_figures(&resumed);
}

#[test]
fn corrupt_byte_is_a_digest_error() {
    if !have(&["skopeo", "docker-registry"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // Byte 5 is in the gzip header's MTIME, which gzip does not check: only
    // the blob digest catches it.
    let (_reg, proxy, big) = behind_proxy(dir, Fault::Corrupt(5), 1);
    let r = format!("docker://{}/{NAME}", proxy.host());
    let e = fails(mlsize(dir).args(["analyze", &r]));
    assert_eq!(proxy.applied(), 1);
    let found = e
        .split("found ")
        .nth(1)
        .and_then(|f| f.split_whitespace().next())
        .unwrap_or_default();
    assert_eq!(
        e,
        format!(
            "mlsize: '{r}': layer 2/4 ({}) blob digest mismatch: expected {big}, found {found} (the archive is corrupt or was modified; --no-verify skips this check)",
            &big[..19]
        )
    );
    assert!(
        found.starts_with("sha256:") && found.len() == 71 && found != big,
        "{found}"
    );
    // A byte of compressed data: the gzip checksum catches it first.
    std::fs::create_dir(dir.join("b")).unwrap();
    let (_reg, proxy, big) = behind_proxy(&dir.join("b"), Fault::Corrupt(30_000), 1);
    let r = format!("docker://{}/{NAME}", proxy.host());
    let e = fails(mlsize(dir).args(["analyze", &r]));
    assert_eq!(proxy.applied(), 1);
    assert_eq!(
        e,
        format!(
            "mlsize: '{r}': layer 2/4 ({}): corrupt gzip stream after 81408 bytes: corrupt gzip stream does not have a matching checksum",
            &big[..19]
        )
    );
}

#[test]
fn stalled_transfer_is_a_timeout_error_in_bounded_time() {
    if !have(&["skopeo", "docker-registry"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let (reg, proxy, big) = behind_proxy(dir, Fault::Stall(0), 100);
    let r = format!("docker://{}/{NAME}", proxy.host());
    let start = Instant::now();
    let e = fails(
        mlsize(dir)
            .env("MLSIZE_REGISTRY_TIMEOUT", "1")
            .args(["analyze", &r]),
    );
    let took = start.elapsed();
    let size = pushed_layers(&reg.host(), NAME)
        .into_iter()
        .find(|l| l.0 == big)
        .unwrap()
        .1;
    assert_eq!(
        e,
        format!(
            "mlsize: '{r}': layer 2/4 ({short}): read failed: registry '{host}': blob {short}: stalled: no data for 1 s at byte 0 of {size}, gave up after 5 retries (check the network, or raise the timeout: MLSIZE_REGISTRY_TIMEOUT=SECONDS)",
            short = &big[..19],
            host = proxy.host()
        )
    );
    eprintln!("stall error after {took:?}");
    assert!(took < Duration::from_secs(30), "bounded: {took:?}");
    let e = fails(
        mlsize(dir)
            .env("MLSIZE_REGISTRY_TIMEOUT", "soon")
            .args(["analyze", &r]),
    );
    assert_eq!(
        e,
        "mlsize: invalid MLSIZE_REGISTRY_TIMEOUT 'soon': expected a number of seconds above 0, e.g. 120"
    );
}

// See: issue 13 ("credentials as docker, podman and skopeo find them ...
// never print a secret").
#[test]
fn basic_auth_from_every_credential_source() {
    if !have(&["skopeo", "docker-registry", "htpasswd"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let (user, password) = ("mlsize", "s3cret-pass");
    let mode = Mode::Basic {
        user: user.into(),
        password: password.into(),
    };
    let reg = registry_with(
        dir,
        &archive(dir),
        &mode,
        Some(&format!("{user}:{password}")),
    );
    let r = format!("docker://{}/{NAME}", reg.host());
    let auth_file = dir.join("auth.json");
    let auth = base64_of(&format!("{user}:{password}"));
    std::fs::write(
        &auth_file,
        json!({"auths": {reg.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let creds = format!("{user}:{password}");
    for (what, args, env) in [
        ("--creds", vec!["--creds", creds.as_str()], vec![]),
        (
            "MLSIZE_REGISTRY_USER/PASSWORD",
            vec![],
            vec![
                ("MLSIZE_REGISTRY_USER", user),
                ("MLSIZE_REGISTRY_PASSWORD", password),
            ],
        ),
        (
            "REGISTRY_AUTH_FILE",
            vec![],
            vec![("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap())],
        ),
    ] {
        let v = analyze_with(mlsize(dir).envs(env), &r, &args);
        assert_archive_figures(&v);
        assert_eq!(v["image"]["source"], r, "{what}");
    }
    let e = fails(mlsize(dir).args(["analyze", &r]));
    let (host, home) = (reg.host(), dir.display());
    assert_eq!(
        e,
        format!(
            "mlsize: '{host}/{NAME}': registry '{host}' denied access to 'sources' (manifest request answered 401/403): no credentials found; tried --creds/MLSIZE_REGISTRY_USER (not set), {home}/.config/containers/auth.json (absent), {home}/.docker/config.json (absent), {home}/.dockercfg (absent) (log in with 'docker login {host}' or 'podman login', or pass --creds USER:PASSWORD)"
        ),
        "anonymous"
    );
    let e = fails(mlsize(dir).args(["analyze", &r, "--creds", "mlsize:wrong-pass"]));
    assert_eq!(
        e,
        format!(
            "mlsize: '{host}/{NAME}': registry '{host}' denied access to 'sources' (manifest request answered 401/403): the credentials of user 'mlsize' from --creds/MLSIZE_REGISTRY_USER were refused (log in with 'docker login {host}' or 'podman login', or pass --creds USER:PASSWORD)"
        ),
        "a wrong password, not shown"
    );
    std::fs::write(
        &auth_file,
        json!({"auths": {reg.host(): {"auth": base64_of("mlsize:wrong-pass")}}}).to_string(),
    )
    .unwrap();
    let e = fails(
        mlsize(dir)
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .args(["analyze", &r]),
    );
    assert_eq!(
        e,
        format!(
            "mlsize: '{host}/{NAME}': registry '{host}' denied access to 'sources' (manifest request answered 401/403): the credentials of user 'mlsize' from {} were refused (log in with 'docker login {host}' or 'podman login', or pass --creds USER:PASSWORD)",
            auth_file.display()
        ),
        "a wrong password in a file, not shown"
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn tls_registry_with_cert_dir_or_without_verification() {
    if !have(&["skopeo", "docker-registry", "openssl"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let reg = registry_with(dir, &archive(dir), &Mode::Tls, None);
    let r = format!("docker://{}/{NAME}", reg.host());
    let e = fails(mlsize(dir).args(["analyze", &r, "--tls-verify"]));
    let host = reg.host();
    assert_eq!(
        e,
        format!(
            "mlsize: '{host}/{NAME}': TLS connection to '{host}' failed: io: invalid peer certificate: UnknownIssuer (if the registry uses a private CA, pass --cert-dir DIR with its ca.crt (skopeo's layout: DIR/*.crt); --tls-verify=false skips verification)"
        ),
        "a private CA, verified"
    );
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(reg.dir.join("ca.crt"), certs.join("ca.crt")).unwrap();
    let cert_dir = certs.to_str().unwrap();
    for args in [
        vec!["--tls-verify", "--cert-dir", cert_dir],
        vec!["--tls-verify=false"],
    ] {
        let v = analyze_with(&mut mlsize(dir), &r, &args);
        assert_archive_figures(&v);
    }
    let e = fails(mlsize(dir).args(["analyze", &r, "--cert-dir", "nowhere"]));
    assert_eq!(
        e,
        "mlsize: --cert-dir 'nowhere' is not a directory (it holds ca.crt and other *.crt files, as for skopeo)"
    );
}

// See: issue 13 ("diff of two references in one registry fetches each blob
// once").
#[test]
fn diff_of_two_tags_fetches_each_blob_once() {
    if !have(&["skopeo", "docker-registry"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let reg = registry_with(dir, &archive(dir), &Mode::Plain, None);
    let v2 = dir.join("v2.tar");
    std::fs::write(
        &v2,
        image()
            .name("sources:2.0")
            .layer("/bin/sh -c pip install numpy", |l| {
                l.file_seeded("/usr/lib/numpy/core.so", 40_000, 9)
            })
            .docker_archive(),
    )
    .unwrap();
    push(
        &format!("docker-archive:{}", v2.display()),
        &reg.host(),
        "sources:2.0",
        &[],
    );
    let (old, new) = (
        pushed_layers(&reg.host(), NAME),
        pushed_layers(&reg.host(), "sources:2.0"),
    );
    assert_eq!(old[..], new[..4], "the four layers are shared by digest");
    let proxy = FaultProxy::start(reg.port, "/blobs/", Fault::None, 0);
    let host = proxy.host();
    let d = json_of(mlsize(dir).args([
        "diff",
        &format!("docker://{host}/{NAME}"),
        &format!("docker://{host}/sources:2.0"),
        "--format",
        "json",
    ]));
    assert_eq!(d["shared"]["layers"], 4);
    let mut gets: BTreeMap<String, usize> = BTreeMap::new();
    for h in proxy.heads.lock().unwrap().iter() {
        let line = h.lines().next().unwrap();
        if let Some(blob) = line
            .strip_prefix("GET /v2/sources/blobs/")
            .and_then(|l| l.split_whitespace().next())
        {
            *gets.entry(blob.to_string()).or_default() += 1;
        }
    }
    let mut want: BTreeMap<String, usize> = new.iter().map(|l| (l.0.clone(), 1)).collect();
    for tag in [NAME, "sources:2.0"] {
        let raw = support::registry::inspect_raw(&reg.host(), tag, None);
        let m: Value = serde_json::from_slice(&raw).unwrap();
        want.insert(m["config"]["digest"].as_str().unwrap().to_string(), 1);
    }
    assert_eq!(gets, want, "each config and layer blob fetched once");
    let _ = free_port;
}
