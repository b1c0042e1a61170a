//! Real builds for `mlsize fix` (tests/fix.rs, issue 17): the base images'
//! root file system and packages ([`assets`], made once by
//! `testdata/fix/assets.sh` and cached under target/tmp), the test's own
//! package server ([`Server`]: a PEP 503 index and a flat apt repository on
//! 127.0.0.1), and one interface over the two builders ([`Builder`]: the
//! classic Docker builder of a dockerd of the test's own, and buildah).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::tools::{Containers, Dockerd, run};

/// `testdata/fix/`.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fix")
}

/// The directory `testdata/fix/assets.sh` made: `base.tar`, `cuda-runtime/`,
/// `cuda-base/` and `index/`. Made once per process and kept under
/// `target/tmp/fix-assets-<hash of the scripts>`, so a re-run with the same
/// scripts skips it. Returns the directory and how long making it took (zero
/// when it was cached).
pub fn assets() -> &'static (PathBuf, Duration) {
    static ASSETS: OnceLock<(PathBuf, Duration)> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let mut h = Sha256::new();
        for f in ["assets.sh", "rootfs.sh", "rootfs.packages", "wheel.py"] {
            h.update(f.as_bytes());
            h.update(std::fs::read(testdata().join(f)).unwrap());
        }
        let hex: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fix-assets-{hex}"));
        if dir.join("done").exists() {
            return (dir, Duration::ZERO);
        }
        // Assets of earlier scripts: ~400 MB each.
        for old in std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")).unwrap() {
            let old = old.unwrap().path();
            let name = old.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("fix-assets-") {
                let _ = std::fs::remove_dir_all(&old);
            }
        }
        let t = Instant::now();
        let tmp = dir.with_extension("tmp");
        run(Command::new("bash")
            .arg(testdata().join("assets.sh"))
            .arg(&tmp));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).unwrap();
        std::fs::write(dir.join("done"), "").unwrap();
        (dir, t.elapsed())
    })
}

/// The test's package server (`testdata/fix/serve.py`): the assets' `index/`
/// on 127.0.0.1 at a free port, every answer with `Cache-Control: max-age`
/// so that pip keeps what it downloads in its cache. Stopped when dropped,
/// also when the test fails.
pub struct Server {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Server {
    /// Starts the server on `root` and waits for its port.
    pub fn start(root: &Path) -> Server {
        let mut child = Command::new("python3")
            .arg(testdata().join("serve.py"))
            .arg(root)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("serve.py printed no port: {line:?}")
        });
        Server { child, port }
    }

    /// The files that point the image's apt, pip and uv at this server:
    /// `(path in the image, content)`.
    pub fn image_config(&self) -> [(&'static str, String); 3] {
        let p = self.port;
        [
            (
                "etc/apt/sources.list",
                format!("deb [trusted=yes] http://127.0.0.1:{p}/apt ./\n"),
            ),
            (
                "etc/pip.conf",
                // trusted-host: pip caches only what comes from https or a
                // trusted host (its plain-http adapter has no cache).
                format!(
                    "[global]\nindex-url = http://127.0.0.1:{p}/simple\ntrusted-host = 127.0.0.1:{p}\ndisable-pip-version-check = true\n"
                ),
            ),
            (
                // uv's system-level configuration (it reads no pip.conf).
                "etc/uv/uv.toml",
                format!("index-url = \"http://127.0.0.1:{p}/simple\"\n"),
            ),
        ]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A base image's root file system as a tar in `dir`: the assets' `base.tar`
/// with the server's apt and pip configuration and, when given, a directory
/// tree laid over it (the CUDA libraries of the nvidia/cuda stand-ins).
pub fn base_tar(dir: &Path, name: &str, server: &Server, over: Option<&Path>) -> PathBuf {
    let (assets, _) = assets();
    let out = dir.join(format!("{name}.tar"));
    std::fs::copy(assets.join("base.tar"), &out).unwrap();
    let stage = dir.join(format!("{name}.etc"));
    let mut paths = Vec::new();
    for (path, text) in server.image_config() {
        let p = stage.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        paths.push(format!("./{path}"));
    }
    let tar = |root: &Path, paths: &[String]| {
        run(Command::new("tar")
            .args(["--owner=0", "--group=0", "--numeric-owner", "-rf"])
            .arg(&out)
            .arg("-C")
            .arg(root)
            .args(paths));
    };
    tar(&stage, &paths);
    if let Some(over) = over {
        // Only what the base lacks: docker import refuses a path twice.
        let news: Vec<String> = std::fs::read_dir(over.join("usr/local"))
            .unwrap()
            .map(|e| format!("./usr/local/{}", e.unwrap().file_name().to_str().unwrap()))
            .collect();
        tar(over, &news);
    }
    std::fs::remove_dir_all(&stage).unwrap();
    out
}

/// A busybox root file system (`/bin/sh`, `/opt`, `/tmp`) as a tar in `dir`:
/// the base for cases that need a shell only, a few MB for the vfs driver to
/// copy per layer instead of the Debian base's 140.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("busybox-root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("opt")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let out = dir.join("busybox.tar");
    run(Command::new("tar")
        .args(["--owner=0", "--group=0", "--numeric-owner", "-cf"])
        .arg(&out)
        .arg("-C")
        .arg(&root)
        .args(["bin", "opt", "tmp"]));
    std::fs::remove_dir_all(&root).unwrap();
    out
}

/// One of the two real builders the proof uses.
pub enum Builder {
    /// The classic Docker builder (`DOCKER_BUILDKIT=0`) of a dockerd of the
    /// test's own (overlay2 storage where the machine allows it, else vfs).
    Docker(Dockerd),
    /// `buildah bud --layers --isolation chroot` on a store of the test's own.
    Buildah(Containers),
}

impl Builder {
    /// Which builder, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Builder::Docker(_) => "docker (classic builder)",
            Builder::Buildah(_) => "buildah",
        }
    }

    /// Imports a root file system tar as the image `name`.
    pub fn import(&self, tar: &Path, name: &str) {
        match self {
            Builder::Docker(d) => {
                run(d
                    .docker()
                    .args(["import", "-"])
                    .arg(name)
                    .stdin(std::fs::File::open(tar).unwrap()));
            }
            Builder::Buildah(c) => {
                run(c.podman().args(["import", "-q"]).arg(tar).arg(name));
            }
        }
    }

    /// Builds the Dockerfile in `ctx` as `tag`, with the host's network (the
    /// package server is on 127.0.0.1). Panics with the build log on failure.
    pub fn build(&self, ctx: &Path, tag: &str) {
        match self {
            Builder::Docker(d) => {
                run(d
                    .docker()
                    .args(["build", "-q", "--network=host", "-t", tag, "."])
                    .current_dir(ctx)
                    .env("DOCKER_BUILDKIT", "0"));
            }
            Builder::Buildah(c) => {
                // --layers: a layer per instruction (without it buildah
                // commits the whole stage as one layer).
                run(c
                    .buildah()
                    .args(["bud", "-q", "--layers", "--isolation", "chroot"])
                    .args(["--network", "host", "-t", tag, "."])
                    .current_dir(ctx));
            }
        }
    }

    /// Writes the image `tag` as a docker-save archive at `out`.
    pub fn save(&self, tag: &str, out: &Path) {
        match self {
            Builder::Docker(d) => {
                run(d.docker().args(["save", "-o"]).arg(out).arg(tag));
            }
            Builder::Buildah(c) => {
                run(c
                    .buildah()
                    .args(["push", "-q", tag])
                    .arg(format!("docker-archive:{}:{tag}", out.display())));
            }
        }
    }

    /// Removes images, to keep the store small between cases (dockerd also
    /// removes the classic builder's intermediate images, their untagged
    /// parents). No `image prune`: with two cases building at once it would
    /// delete the other one's image between its build and its tag.
    pub fn remove(&self, tags: &[&str]) {
        let mut c = match self {
            Builder::Docker(d) => d.docker(),
            Builder::Buildah(c) => c.buildah(),
        };
        let _ = c
            .args(["rmi", "-f"])
            .args(tags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
