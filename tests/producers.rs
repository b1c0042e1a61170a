//! Real producers write the image: one image built by buildah, exported by
//! podman (`save --format docker-archive|oci-archive|oci-dir|docker-dir`,
//! `-m`), skopeo (`dir:` with each manifest kind, `oci:`, `oci-archive:`,
//! `docker-archive:`), dockerd 20.10 (`docker save` of one image, of two, by
//! ID) and xz/bzip2 over a whole archive, must give identical figures, exact
//! against those worked out from the files the test put in. The same files
//! built by the classic builder and by umoci give their own exact figures.
//!
//! The tools come from Debian's docker.io, podman (brings buildah), skopeo,
//! umoci, xz-utils, bzip2 and busybox-static (the base image). Without them
//! the test says so and passes, unless CI=true (`.ci/run` installs them).
//! `committed_dir_layouts` reads fixtures those tools wrote and needs none.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::tools::{Containers, Dockerd, busybox_rootfs_tar, have, run};
use support::{json, u};

/// What the test put in, layer by layer: regular files as (path, bytes);
/// deleted paths; hard links. The figures follow from these alone.
struct Plan {
    /// Per layer: the regular files it writes.
    layers: Vec<Vec<(&'static str, u64)>>,
    /// Files a later layer deletes (whole directories listed file by file).
    deleted: Vec<&'static str>,
}

impl Plan {
    /// The test image: busybox base; COPY data; RUN that deletes a
    /// directory and a file and writes a file with a hard link to it.
    /// `run_leftovers`: buildah's RUN leaves the empty files it mounted over
    /// (/etc/hostname, /etc/hosts, /etc/resolv.conf) in the layer; the
    /// classic builder keeps them in its init layer, out of the image.
    fn new(busybox_bytes: u64, run_leftovers: bool) -> Plan {
        let mut run = vec![("/data/new.bin", 7_000)];
        if run_leftovers {
            run.extend([
                ("/etc/hostname", 0),
                ("/etc/hosts", 0),
                ("/etc/resolv.conf", 0),
            ]);
        }
        Plan {
            layers: vec![
                vec![("/bin/busybox", busybox_bytes)],
                vec![
                    ("/data/keep.bin", 10_000),
                    ("/data/gone/x.h", 20_000),
                    ("/data/gone/deep/y.pyc", 3_000),
                    ("/data/old.txt", 500),
                ],
                run,
            ],
            deleted: vec!["/data/gone/x.h", "/data/gone/deep/y.pyc", "/data/old.txt"],
        }
    }

    /// The figures mlsize must report: per layer (content, wasted, files),
    /// and for the image content, visible, wasted, files, visible files.
    fn figures(&self) -> Value {
        let size = |p: &str| -> u64 {
            self.layers
                .iter()
                .flatten()
                .find(|(q, _)| *q == p)
                .map(|f| f.1)
                .unwrap()
        };
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|files| {
                let content: u64 = files.iter().map(|f| f.1).sum();
                let wasted: u64 = files
                    .iter()
                    .filter(|f| self.deleted.contains(&f.0))
                    .map(|f| f.1)
                    .sum();
                json!([content, wasted, files.len()])
            })
            .collect();
        let content: u64 = self.layers.iter().flatten().map(|f| f.1).sum();
        let wasted: u64 = self.deleted.iter().map(|p| size(p)).sum();
        let files = self.layers.iter().flatten().count();
        json!({
            "layers": layers,
            "content_bytes": content,
            "visible_bytes": content - wasted,
            "wasted_bytes": wasted,
            "files": files,
            // The hard link is a second name, not a file.
            "visible_files": files - self.deleted.len(),
        })
    }
}

/// The figures of a report that must not depend on who wrote the image, in
/// the shape of [`Plan::figures`], plus categories (whole) per image and
/// layer, which are compared between exports.
fn figures(v: &Value) -> (Value, Value) {
    let layers: Vec<Value> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            json!([
                u(l, "/content_bytes"),
                u(l, "/wasted_bytes"),
                u(l, "/files")
            ])
        })
        .collect();
    let exact = json!({
        "layers": layers,
        "content_bytes": u(v, "/image/content_bytes"),
        "visible_bytes": u(v, "/image/visible_bytes"),
        "wasted_bytes": u(v, "/image/wasted_bytes"),
        "files": u(v, "/image/files"),
        "visible_files": u(v, "/image/visible_files"),
    });
    let categories: Vec<Value> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["categories"].clone())
        .collect();
    (
        exact,
        json!({"image": v["categories"], "layers": categories}),
    )
}

/// The base image's root file system (busybox and sh) as a tar, and the build
/// context with the Dockerfile.
fn context(dir: &Path) -> (PathBuf, PathBuf) {
    let base = busybox_rootfs_tar(dir);
    let ctx = dir.join("ctx");
    for (path, bytes) in &Plan::new(0, false).layers[1] {
        let p = ctx.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, vec![b'd'; *bytes as usize]).unwrap();
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base:x\n\
         COPY data /data\n\
         RUN rm -r /data/gone /data/old.txt && head -c 7000 /dev/zero > /data/new.bin && ln /data/new.bin /data/new.link\n",
    )
    .unwrap();
    (base, ctx)
}

/// `mlsize analyze` of every input, checked against `want` exactly and
/// against each other for categories; `ctx` names the group in messages.
fn assert_same(inputs: &[(String, PathBuf, Vec<&str>)], want: &Value, ctx: &str) {
    let mut first: Option<(String, Value)> = None;
    for (what, path, extra) in inputs {
        let mut args = vec!["analyze", path.to_str().unwrap()];
        args.extend(extra.iter().copied());
        let v = json(&args);
        assert_eq!(v["image"]["verified"], Value::Bool(true), "{what}");
        let (exact, cats) = figures(&v);
        assert_eq!(
            &exact, want,
            "{ctx}: {what} reports the figures of the files put in"
        );
        match &first {
            None => first = Some((what.clone(), cats)),
            Some((w0, c0)) => {
                assert_eq!(&cats, c0, "{ctx}: {what} has the same categories as {w0}")
            }
        }
    }
    let (_, cats) = first.unwrap();
    // The deleted header and bytecode are wasted in their categories.
    let cat = |name: &str| {
        cats["image"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            u(&cat("headers"), "/wasted_bytes"),
            u(&cat("headers"), "/files")
        ),
        (20_000, 1),
        "{ctx}: the deleted header"
    );
    assert_eq!(
        u(&cat("python-bytecode"), "/wasted_bytes"),
        3_000,
        "{ctx}: the deleted bytecode"
    );
}

fn path_arg(p: &Path, prefix: &str) -> String {
    format!("{prefix}{}", p.display())
}

// See: #12
#[test]
fn issue_12_every_real_producer_gives_the_same_figures() {
    if !have(&[
        "dockerd",
        "docker",
        "buildah",
        "podman",
        "skopeo",
        "umoci",
        "xz",
        "bzip2",
        "/bin/busybox",
    ]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // dockerd starts while buildah builds.
    let dockerd_dir = dir.join("docker");
    std::fs::create_dir(&dockerd_dir).unwrap();
    let d = Dockerd::spawn(&dockerd_dir);
    let (base, ctx) = context(dir);
    let busybox = std::fs::metadata("/bin/busybox").unwrap().len();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = |name: &str| out.join(name);

    // buildah (chroot isolation, a layer per instruction).
    let c = Containers::new(&dir.join("containers"));
    run(c.podman().args(["import", "-q"]).arg(&base).arg("base:x"));
    run(c
        .buildah()
        .args(["bud", "-q", "--layers", "--isolation", "chroot"])
        .args(["-t", "prod:x"])
        .arg(&ctx));
    let mut inputs: Vec<(String, PathBuf, Vec<&str>)> = Vec::new();
    for format in ["docker-archive", "oci-archive", "oci-dir", "docker-dir"] {
        run(c
            .podman()
            .args(["save", "-q", "--format", format, "-o"])
            .arg(o(&format!("podman-{format}")))
            .arg("prod:x"));
        inputs.push((
            format!("podman save --format {format}"),
            o(&format!("podman-{format}")),
            vec![],
        ));
    }
    run(c
        .podman()
        .args(["save", "-q", "-m", "--format", "docker-archive", "-o"])
        .arg(o("podman-m.tar"))
        .args(["prod:x", "base:x"]));
    inputs.push((
        "podman save -m (two images)".into(),
        o("podman-m.tar"),
        vec!["--image", "localhost/prod:x"],
    ));
    let src = c.reference("localhost/prod:x");
    for (what, flags, dest) in [
        (
            "skopeo dir: (OCI, as stored)",
            &[][..],
            path_arg(&o("s-dir"), "dir:"),
        ),
        (
            "skopeo --format v2s2 dir:",
            &["--format", "v2s2"][..],
            path_arg(&o("s-dir-v2s2"), "dir:"),
        ),
        (
            "skopeo --format v2s1 dir:",
            &["--format", "v2s1"][..],
            path_arg(&o("s-dir-v2s1"), "dir:"),
        ),
        (
            "skopeo --dest-compress dir:",
            &["--dest-compress"][..],
            path_arg(&o("s-dir-gz"), "dir:"),
        ),
        (
            "skopeo oci:",
            &[][..],
            format!("oci:{}:prod", o("s-oci").display()),
        ),
        (
            "skopeo oci-archive:",
            &[][..],
            path_arg(&o("s-oci.tar"), "oci-archive:"),
        ),
        (
            "skopeo docker-archive:",
            &[][..],
            format!("docker-archive:{}:prod:x", o("s-docker.tar").display()),
        ),
    ] {
        run(Command::new("skopeo")
            .args(["copy", "-q"])
            .args(flags)
            .arg(&src)
            .arg(&dest));
        let path = dest.split_once(':').unwrap().1;
        let path = path.strip_suffix(":prod:x").unwrap_or(path);
        let path = path.strip_suffix(":prod").unwrap_or(path);
        inputs.push((what.into(), PathBuf::from(path), vec![]));
    }
    // Whole-archive compression by the real tools: xz in two threads writes
    // several blocks; bzip2.
    let archive = std::fs::read(o("podman-docker-archive")).unwrap();
    for (what, tool, args, name) in [
        ("xz -T2", "xz", &["-T2", "-1", "-c"][..], "podman.tar.xz"),
        ("bzip2", "bzip2", &["-1", "-c"][..], "podman.tar.bz2"),
    ] {
        let mut child = Command::new(tool)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = archive.clone();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&data).unwrap();
        });
        let packed = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(packed.status.success(), "{tool}");
        std::fs::write(o(name), packed.stdout).unwrap();
        inputs.push((
            format!("{what} of podman's docker-archive"),
            o(name),
            vec![],
        ));
    }

    // dockerd: load podman's two-image archive, save one image, both, by ID.
    d.wait_ready();
    run(d.docker().args(["load", "-q", "-i"]).arg(o("podman-m.tar")));
    run(d
        .docker()
        .args(["save", "-o"])
        .arg(o("docker-one.tar"))
        .arg("localhost/prod:x"));
    run(d
        .docker()
        .args(["save", "-o"])
        .arg(o("docker-two.tar"))
        .args(["localhost/prod:x", "localhost/base:x"]));
    let id = String::from_utf8(run(d.docker().args([
        "images",
        "-q",
        "--no-trunc",
        "localhost/prod:x",
    ])))
    .unwrap();
    run(d
        .docker()
        .args(["save", "-o"])
        .arg(o("docker-id.tar"))
        .arg(id.trim()));
    inputs.push((
        "docker save (one image)".into(),
        o("docker-one.tar"),
        vec![],
    ));
    inputs.push((
        "docker save (two images)".into(),
        o("docker-two.tar"),
        vec!["--image", "localhost/prod:x"],
    ));
    inputs.push(("docker save IMAGE_ID".into(), o("docker-id.tar"), vec![]));

    // The classic builder: the same Dockerfile on the same base.
    run(d.docker().args(["tag", "localhost/base:x", "base:x"]));
    run(d
        .docker()
        .args(["build", "-q", "-t", "classic:x", "."])
        .current_dir(&ctx)
        .env("DOCKER_BUILDKIT", "0"));
    run(d
        .docker()
        .args(["save", "-o"])
        .arg(o("classic.tar"))
        .arg("classic:x"));
    drop(d);

    // umoci: the same files, written into a bundle and repacked per layer.
    let layout = o("umoci");
    let image = format!("{}:u", layout.display());
    let bundle = dir.join("bundle");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let repack = |created_by: &str| {
        run(Command::new("umoci")
            .args(["repack", "--refresh-bundle", "--image", &image])
            .args(["--history.created_by", created_by])
            .arg(&bundle));
    };
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-xf")
        .arg(&base));
    repack("ADD base.tar /");
    run(Command::new("cp")
        .arg("-a")
        .arg(ctx.join("data"))
        .arg(rootfs.join("data")));
    repack("COPY data /data");
    std::fs::remove_dir_all(rootfs.join("data/gone")).unwrap();
    std::fs::remove_file(rootfs.join("data/old.txt")).unwrap();
    std::fs::write(rootfs.join("data/new.bin"), vec![0u8; 7_000]).unwrap();
    std::fs::hard_link(rootfs.join("data/new.bin"), rootfs.join("data/new.link")).unwrap();
    repack("RUN rm -r /data/gone /data/old.txt && ...");

    assert_same(
        &inputs,
        &Plan::new(busybox, true).figures(),
        "buildah's image",
    );
    let classic = [
        (
            "classic builder, docker save".to_string(),
            o("classic.tar"),
            vec![],
        ),
        ("umoci repack".to_string(), layout.clone(), vec![]),
    ];
    assert_same(
        &classic,
        &Plan::new(busybox, false).figures(),
        "the same files without buildah's RUN leftovers",
    );
}

/// Fixtures that real producers wrote (`testdata/producers/make.sh`): one
/// image (COPY data /data, ENV, a layer that deletes a directory and a file
/// and adds a file with a hard link) in four `dir:` layouts.
#[test]
fn committed_dir_layouts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/producers");
    let want = json!({
        "layers": [[6_500, 3_500, 4], [700, 0, 1]],
        "content_bytes": 7_200,
        "visible_bytes": 3_700,
        "wasted_bytes": 3_500,
        "files": 5,
        "visible_files": 2,
    });
    let mut diff_ids: Option<Vec<Value>> = None;
    for (name, compression, last) in [
        ("skopeo-dir", "none", "RUN rm -r /data/gone"),
        ("skopeo-dir-v2s2-gz", "gzip", "RUN rm -r /data/gone"),
        // skopeo's schema 1 keeps no created_by for the newest layer: its
        // v1Compatibility is the config, which buildah gives no container_config.
        ("skopeo-dir-v2s1", "none", ""),
        ("podman-docker-dir", "none", "RUN rm -r /data/gone"),
    ] {
        let v = json(&["analyze", root.join(name).to_str().unwrap()]);
        assert_eq!(figures(&v).0, want, "{name}");
        assert_eq!(v["image"]["format"], "dir", "{name}");
        assert_eq!(v["image"]["verified"], Value::Bool(true), "{name}");
        assert_eq!(v["layers"][0]["compression"], compression, "{name}");
        // buildah copy --add-history records the COPY without a layer; the
        // commit that made the layer records "/bin/sh".
        let history: Vec<(&str, bool)> = v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["instruction"].as_str().unwrap(),
                    h["empty_layer"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(history.len(), 4, "{name}: {history:?}");
        assert!(
            history[0].0.starts_with("COPY dir:") && history[0].1,
            "{name}: {history:?}"
        );
        assert_eq!(history[1], ("ENV A=b", true), "{name}");
        assert_eq!(history[2], ("/bin/sh", false), "{name}");
        assert!(
            history[3].0.starts_with(last) && !history[3].1,
            "{name}: {history:?}"
        );
        // Schema 1 declares no diff_ids: the verified read measures them.
        let ids: Vec<Value> = (0..2).map(|i| v["layers"][i]["diff_id"].clone()).collect();
        let first = diff_ids.get_or_insert_with(|| ids.clone());
        assert_eq!(&ids, first, "{name}: the same layers");
    }
}
