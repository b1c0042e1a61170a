//! Real tools and daemons owned by a test: `have` checks they are installed,
//! `run` runs one to success, [`Dockerd`] is a dockerd of the test's own
//! (vfs storage, unix socket in a temp dir, no iptables, no bridge), stopped
//! when dropped, also when the test fails.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether every tool is installed (a name on PATH, or an absolute path that
/// exists); without one the test is skipped, or fails when CI=true.
pub fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            if t.starts_with('/') {
                return !Path::new(t).exists();
            }
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {missing:?} missing: .ci/run installs docker.io, podman, busybox-static, skopeo, umoci, xz-utils, bzip2, docker-registry, apache2-utils, chromium"
    );
    eprintln!(
        "skipped: {missing:?} not installed (apt-get install docker.io podman busybox-static skopeo umoci xz-utils bzip2 docker-registry apache2-utils chromium)"
    );
    false
}

/// Runs a command to success, with its output in the panic message.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A dockerd owned by the test: stopped with SIGTERM (then waited for) when
/// dropped, also when the test fails.
pub struct Dockerd {
    child: Child,
    dir: PathBuf,
}

impl Dockerd {
    /// Starts dockerd with its state in `dir` and waits until it answers.
    pub fn start(dir: &Path) -> Dockerd {
        let d = Dockerd::spawn(dir);
        d.wait_ready();
        d
    }

    /// Starts dockerd without waiting for it (see [`Dockerd::wait_ready`]).
    pub fn spawn(dir: &Path) -> Dockerd {
        Dockerd::spawn_with(dir, "vfs")
    }

    /// Starts dockerd with the overlay2 storage driver, which shares the
    /// unchanged files of a layer instead of copying the whole root file
    /// system per layer as vfs does (much faster for builds of a real
    /// distribution), and waits until it answers; `None` when this machine's
    /// kernel or file system cannot give it overlay mounts.
    pub fn start_overlay2(dir: &Path) -> Option<Dockerd> {
        let d = Dockerd::spawn_with(dir, "overlay2");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !d.ping() {
            if Instant::now() > deadline || !d.running() {
                eprintln!("dockerd with overlay2 did not start: {}", d.log());
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(d)
    }

    fn running(&self) -> bool {
        Command::new("kill")
            .args(["-0", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn spawn_with(dir: &Path, driver: &str) -> Dockerd {
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .arg(format!("--storage-driver={driver}"))
            .arg(format!(
                "--host=unix://{}",
                dir.join("docker.sock").display()
            ))
            .arg(format!("--data-root={}", dir.join("data").display()))
            .arg(format!("--exec-root={}", dir.join("exec").display()))
            .arg(format!("--pidfile={}", dir.join("docker.pid").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Dockerd {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// Polls the socket until dockerd answers (30 s at most).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ping() {
            let exited = Command::new("kill")
                .args(["-0", &self.child.id().to_string()])
                .stderr(Stdio::null())
                .status()
                .map_or(true, |s| !s.success());
            assert!(!exited, "dockerd exited: {}", self.log());
            assert!(
                Instant::now() < deadline,
                "dockerd not ready in 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ping(&self) -> bool {
        ping(&self.socket())
    }

    /// The daemon's API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// The docker CLI against this daemon, with its own config directory.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg(format!(
            "--host=unix://{}",
            self.dir.join("docker.sock").display()
        ))
        .env("DOCKER_CONFIG", self.dir.join("cli"));
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // dockerd bind-mounts its data root and, once a container ran with
        // --network=host, leaves exec/netns/default mounted (the temp dir
        // could not be removed then): unmount whatever is left.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let data = format!("{}/", self.dir.join("data").display());
        let mut left: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| {
                format!("{m}/").starts_with(&data)
                    || Path::new(m) == self.dir.join("exec/netns/default")
            })
            .collect();
        // The deepest first (overlay2's merged dirs under the data root).
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// Whether an Engine API answers `/_ping` on the unix socket `sock`.
fn ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.0 200")
}

/// A podman/buildah store of the test's own in `dir` (vfs: no mounts to undo).
pub struct Containers {
    dir: PathBuf,
}

impl Containers {
    /// A store in `dir/store`, run state in `dir/run`.
    pub fn new(dir: &Path) -> Containers {
        Containers {
            dir: dir.to_path_buf(),
        }
    }

    fn with_store(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.arg("--root")
            .arg(self.dir.join("store"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .env("TMPDIR", &self.dir);
        c
    }

    /// `podman` on this store.
    pub fn podman(&self) -> Command {
        self.with_store("podman")
    }

    /// `buildah` on this store.
    pub fn buildah(&self) -> Command {
        self.with_store("buildah")
    }

    /// Podman's Docker-compatible API service on this store, listening on
    /// `dir/podman.sock` (see [`PodmanService`]).
    pub fn service(&self) -> PodmanService {
        PodmanService::start(self)
    }

    /// The containers/image reference of an image in this store, for skopeo.
    pub fn reference(&self, name: &str) -> String {
        format!(
            "containers-storage:[vfs@{}+{}]{name}",
            self.dir.join("store").display(),
            self.dir.join("run").display()
        )
    }
}

/// `podman system service --time=0 unix://SOCK` on a [`Containers`] store,
/// owned by the test: stopped with SIGTERM (then killed) when dropped, also
/// when the test fails.
pub struct PodmanService {
    child: Child,
    sock: PathBuf,
    log: PathBuf,
}

impl PodmanService {
    /// Starts the service and waits until it answers `/_ping` (30 s at most).
    pub fn start(c: &Containers) -> PodmanService {
        let sock = c.dir.join("podman.sock");
        let log = c.dir.join("podman-service.log");
        std::fs::create_dir_all(&c.dir).unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let child = c
            .podman()
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", sock.display()))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut s = PodmanService { child, sock, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ping(&s.sock) {
            let log = std::fs::read_to_string(&s.log).unwrap_or_default();
            assert!(
                matches!(s.child.try_wait(), Ok(None)),
                "podman system service exited: {log}"
            );
            assert!(
                Instant::now() < deadline,
                "podman system service not ready in 30 s: {log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// The API socket.
    pub fn socket(&self) -> &Path {
        &self.sock
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A base image's root file system as a tar in `dir`: busybox and `sh`, what
/// `docker import` / `podman import` turn into a base image here.
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    let base = dir.join("base.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&base)
        .arg("."));
    base
}
