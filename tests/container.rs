//! The container image of mlsize (`docker/Dockerfile.prebuilt`, built by
//! `docker/build-prebuilt.sh` from a static binary: no network here, no base
//! image) in a dockerd of the test's own: it reads a mounted archive, the
//! engine through its mounted socket, a TLS registry by name (DNS through
//! /etc/hosts, the image's CA bundle), and mlsize finds nothing to fix in its
//! own image.
//!
//! The static binary is built by `.ci/run` before `cargo test`
//! (`RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target
//! x86_64-unknown-linux-gnu`); `MLSIZE_STATIC`
//! names another. Without it the test is skipped, or fails when CI=true.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::registry::{Mode, Registry, push};
use support::tools::{Dockerd, have, run};
use support::*;

const TAG: &str = "mlsize:test";

/// The static binary the image is built from, if there is one.
fn static_binary() -> Option<PathBuf> {
    let path = std::env::var_os("MLSIZE_STATIC").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/x86_64-unknown-linux-gnu/ci-static/mlsize")
        },
        PathBuf::from,
    );
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} is missing: .ci/run builds it before cargo test",
        path.display()
    );
    eprintln!(
        "skipped: no static binary at {} (RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --profile ci-static --target x86_64-unknown-linux-gnu)",
        path.display()
    );
    None
}

/// Runs `docker run --rm ARGS` and returns (exit code, stdout, stderr).
fn docker_run(d: &Dockerd, args: &[&str]) -> (i32, String, String) {
    let out = d
        .docker()
        .args(["run", "--rm"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs mlsize in the container, expecting a JSON report.
fn analyze_json(d: &Dockerd, args: &[&str]) -> Value {
    let (code, out, err) = docker_run(d, args);
    assert_eq!(code, 0, "docker run {args:?}: {err}");
    checked(serde_json::from_str(&out).unwrap())
}

/// The image figures two reads of one image must agree on.
fn totals(v: &Value) -> Vec<u64> {
    [
        "layer_count",
        "content_bytes",
        "visible_bytes",
        "wasted_bytes",
        "files",
        "visible_files",
    ]
    .iter()
    .map(|f| u(v, &format!("/image/{f}")))
    .collect()
}

#[test]
fn the_image_reads_files_the_engine_and_a_registry_and_finds_nothing_to_fix_in_itself() {
    if !have(&["dockerd", "docker", "docker-registry", "skopeo", "openssl"]) {
        return;
    }
    let Some(binary) = static_binary() else {
        return;
    };
    let file = String::from_utf8(run(Command::new("file").arg(&binary))).unwrap();
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "a scratch image needs a static binary: {file}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // The image under analysis, as a file, and in a TLS registry whose CA the
    // mlsize image's bundle holds (with the build host's roots).
    let naive = mlsize::testutil::naive_ml(1);
    let w = dir.join("w");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::write(w.join("app.tar"), naive.docker_archive()).unwrap();
    // The container runs as 65532: the mount must be readable by others.
    for p in [dir, &w, &w.join("app.tar")] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let host_report = json(&["analyze", w.join("app.tar").to_str().unwrap()]);
    naive.oci_layout(&dir.join("layout"));
    let reg = Registry::start(&dir.join("reg"), &dir.join("reg-storage"), &Mode::Tls);
    push(&dir.join("layout"), &reg.host(), "app:1", None);
    let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap();
    bundle.extend(std::fs::read(reg.dir.join("ca.crt")).unwrap());
    std::fs::write(dir.join("bundle.crt"), &bundle).unwrap();

    std::fs::create_dir_all(dir.join("docker")).unwrap();
    let d = Dockerd::start(&dir.join("docker"));
    let started = std::time::Instant::now();
    let built = run(Command::new("sh")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docker/build-prebuilt.sh"
        ))
        .arg(&binary)
        .arg(TAG)
        .arg(dir.join("bundle.crt"))
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", dir.join("docker/cli"))
        .env("DOCKER_BUILDKIT", "0")
        .env("TMPDIR", dir));
    eprintln!(
        "image built in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&built).trim()
    );

    // A mounted archive, by absolute path and from the working directory /w.
    let mount = format!("{}:/w", w.display());
    for path in ["/w/app.tar", "app.tar"] {
        let v = analyze_json(
            &d,
            &[
                "--network",
                "none",
                "-v",
                &mount,
                TAG,
                "analyze",
                path,
                "--format",
                "json",
            ],
        );
        assert_eq!(
            totals(&v),
            totals(&host_report),
            "{path} read in the container"
        );
        assert_eq!(v["image"]["source"], path);
    }

    // The registry by name: localhost comes from /etc/hosts (the host's, with
    // --network host), its certificate is verified against the image's bundle.
    let reference = format!("docker://localhost:{}/app:1", reg.port);
    let v = analyze_json(
        &d,
        &[
            "--network",
            "host",
            TAG,
            "analyze",
            &reference,
            "--tls-verify=true",
            "--format",
            "json",
        ],
    );
    assert_eq!(totals(&v), totals(&host_report), "read from the registry");
    assert_eq!(v["image"]["source"], reference);

    // The engine through its socket: the socket is root's (0660), the
    // container's user 65532 needs its group (--group-add).
    let sock = d.socket();
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660, "dockerd's socket mode");
    let volume = format!("{}:/var/run/docker.sock", sock.display());
    let (code, out, err) = docker_run(
        &d,
        &[
            "--network",
            "none",
            "-v",
            &volume,
            TAG,
            "analyze",
            &format!("docker-daemon:{TAG}"),
        ],
    );
    assert_eq!(
        (code, out.as_str()),
        (2, ""),
        "no access without the group: {err}"
    );
    assert_eq!(
        err,
        "mlsize: 'unix:///var/run/docker.sock': permission denied (add your user to the docker group, or run with sudo)\n",
        "the error names the socket"
    );
    let gid = meta.gid().to_string();
    let own = analyze_json(
        &d,
        &[
            "--network",
            "none",
            "-v",
            &volume,
            "--group-add",
            &gid,
            TAG,
            "analyze",
            &format!("docker-daemon:{TAG}"),
            "--format",
            "json",
        ],
    );

    // mlsize on its own image: one layer (the rootfs), the files it was built
    // from, nothing wasted, nothing duplicated, nothing to recommend.
    let binary_bytes = std::fs::metadata(&binary).unwrap().len();
    let etc = ["passwd", "group"]
        .iter()
        .map(|f| {
            std::fs::metadata(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker").join(f))
                .unwrap()
                .len()
        })
        .sum::<u64>();
    let want = binary_bytes + bundle.len() as u64 + etc;
    assert_eq!(
        u(&own, "/image/layer_count"),
        1,
        "one layer: COPY rootfs/ /"
    );
    assert_eq!(
        u(&own, "/image/visible_bytes"),
        want,
        "binary + CA bundle + passwd + group"
    );
    assert_eq!(u(&own, "/image/content_bytes"), want);
    assert_eq!(u(&own, "/image/visible_files"), 4);
    assert_eq!(u(&own, "/image/wasted_bytes"), 0);
    assert_eq!(u(&own, "/image/duplicate_reclaimable_bytes"), 0);
    assert_eq!(
        own["recommendations"],
        serde_json::json!([]),
        "nothing to fix"
    );
    assert_eq!(own["warnings"], serde_json::json!([]));
}
