//! Real builders write the image: the classic Docker builder (a dockerd of the
//! test's own: vfs storage, unix socket in a temp dir, no iptables, no bridge)
//! and buildah (its own store in a temp dir). `mlsize check --format github
//! --dockerfile` must annotate the COPY/ADD lines that made the failing layers,
//! though their history says `COPY file:<sha256> in /app/model.bin`.
//!
//! The tools come from Debian's docker.io, podman (brings buildah) and
//! busybox-static (the base image). Without them a test says so and passes,
//! unless CI=true (`.ci/run` installs them).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::mlsize;
use support::tools::{Dockerd, busybox_rootfs_tar, have, run};

/// The test Dockerfile: a build stage, then COPY of a file, a directory and
/// several files, a WORKDIR-relative destination, ADD of a local tar and
/// COPY --from, and a RUN that turns the first three into waste.
const DOCKERFILE: &str = "\
FROM base:x AS build
RUN head -c 30000 /dev/zero > /out.h

FROM base:x
WORKDIR /app
COPY model.bin /app/model.bin
COPY data /app/data
ADD local.tar /opt/
COPY a.h b.h ./hdr/
COPY inc/ include/
COPY --from=build /out.h .
RUN chmod 600 model.bin && rm -r data /opt/in.bin
";

/// What fails: wasted bytes (COPY model.bin 300000, COPY data 200000, ADD
/// local.tar 100000), duplicates (a.h = b.h; a failure without culprit
/// layers, annotated at the final FROM) and headers (a.h + b.h 40000, out.h
/// 30000, inc/ 20000).
const BUDGET: &str = "max_wasted_bytes = 0\nmax_duplicate_bytes = 0\n[categories]\nheaders = 0\n";

/// The base image's root file system (busybox and sh) as a tar, and the build
/// context with the Dockerfile.
fn context(dir: &Path) -> (PathBuf, PathBuf) {
    let base = busybox_rootfs_tar(dir);

    let ctx = dir.join("ctx");
    let f = |name: &str, bytes: usize, fill: u8| {
        let p = ctx.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, vec![fill; bytes]).unwrap();
    };
    f("Dockerfile", 0, 0);
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    f("model.bin", 300_000, b'm');
    f("data/w.bin", 200_000, b'w');
    f("a.h", 20_000, b'h');
    f("b.h", 20_000, b'h');
    f("inc/x.h", 20_000, b'x');
    f("t/in.bin", 100_000, b'i');
    run(Command::new("tar")
        .arg("-C")
        .arg(ctx.join("t"))
        .arg("-cf")
        .arg(ctx.join("local.tar"))
        .arg("in.bin"));
    std::fs::remove_dir_all(ctx.join("t")).unwrap();
    std::fs::write(dir.join("mlsize.toml"), BUDGET).unwrap();
    (base, ctx)
}

/// `mlsize check IMAGE --format github --dockerfile Dockerfile`, run in `dir`,
/// with content hashes in instructions replaced by `<sha256>` (they change
/// with file times).
fn annotations(dir: &Path, image: &Path) -> Vec<String> {
    let out = mlsize()
        .current_dir(dir)
        .arg("check")
        .arg(image)
        .args(["--budget", "mlsize.toml", "--format", "github"])
        .args([
            "--dockerfile",
            "Dockerfile",
            "--bytes",
            "--dup-min-bytes",
            "1KiB",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the budget fails: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().map(without_hashes).collect()
}

/// `file:4f1c…` (full or cut by the 70-column instruction) → `file:<sha256>`.
fn without_hashes(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = ["file:", "dir:", "multi:"]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| i + p.len()))
        .min()
    {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex >= 8 {
            out.push_str("<sha256>");
            rest = rest[hex..].strip_prefix('…').unwrap_or(&rest[hex..]);
        }
    }
    out.push_str(rest);
    out
}

// See: #11 (item 9)
#[test]
fn issue_11_classic_builder_copy_lines_are_annotated() {
    if !have(&["dockerd", "docker", "/bin/busybox"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let (base, ctx) = context(dir);
    let d = Dockerd::start(dir);
    run(d
        .docker()
        .args(["import", "-", "base:x"])
        .stdin(std::fs::File::open(&base).unwrap()));
    run(d
        .docker()
        .args(["build", "-q", "-t", "classic:x", "."])
        .current_dir(&ctx)
        .env("DOCKER_BUILDKIT", "0"));
    let image = dir.join("classic.tar");
    run(d.docker().args(["save", "-o"]).arg(&image).arg("classic:x"));
    drop(d);
    std::fs::copy(ctx.join("Dockerfile"), dir.join("Dockerfile")).unwrap();

    // Layers: 1 base (docker import), 2 WORKDIR /app (the classic builder
    // commits the directory it creates), 3 COPY model.bin, 4 COPY data,
    // 5 ADD local.tar, 6 COPY a.h b.h, 7 COPY inc/, 8 COPY --from, 9 RUN.
    let got = annotations(dir, &image);
    let want = [
        "::error file=Dockerfile,line=6,title=mlsize%3A max_wasted_bytes over budget::wasted bytes is 600000, over the limit of 0 (max_wasted_bytes = 0 at mlsize.toml:1); 300000 (50%25): files rewritten by a later layer: layer 9 `RUN chmod 600 model.bin && rm -r data /opt/in.bin` in layer 3 `COPY file:<sha256> in /app/model.bin` (Dockerfile:6); fix: a later layer writes these paths again, so both copies ship (a chmod/chown/touch copies whole files; a reinstall or regenerated file rewrites them): produce the final version in the RUN that writes them, or use COPY --chmod/--chown; 200000 (33%25): files deleted by a later layer: layer 9 `RUN chmod 600 model.bin && rm -r data /opt/in.bin` in layer 4 `COPY dir:<sha256> in /app/data` (Dockerfile:7); fix: deleting in a later layer does not shrink the image: delete them in the same RUN that writes them, or build in a separate stage and COPY --from only what you need; 100000 (17%25): files deleted by a later layer: layer 9 `RUN chmod 600 model.bin && rm -r data /opt/in.bin` in layer 5 `ADD file:<sha256> in /opt/` (Dockerfile:8); fix: deleting in a later layer does not shrink the image: delete them in the same RUN that writes them, or build in a separate stage and COPY --from only what you need; largest file /app/model.bin (300000)",
        "::error file=Dockerfile,line=9,title=mlsize%3A max_duplicate_bytes over budget::duplicate files is 20000, over the limit of 0 (max_duplicate_bytes = 0 at mlsize.toml:2); 20000 (100%25): C/C++/CUDA headers in the final image in layer 6 `COPY multi:<sha256> in ./hdr/` (Dockerfile:9); fix: headers are only needed to compile: build in a -devel stage and COPY --from only the artifacts into a runtime stage; largest file /app/hdr/b.h (20000)",
        "::error file=Dockerfile,line=9,title=mlsize%3A categories.headers over budget::headers bytes is 90000, over the limit of 0 (categories.headers = 0 at mlsize.toml:4); 90000 (100%25): C/C++/CUDA headers in the final image in layer 6 `COPY multi:<sha256> in ./hdr/` (Dockerfile:9); fix: headers are only needed to compile: build in a -devel stage and COPY --from only the artifacts into a runtime stage; layer 8 `COPY file:<sha256> in .` (Dockerfile:11): 30000; layer 7 `COPY dir:<sha256> in include/` (Dockerfile:10): 20000; largest file /app/out.h (30000)",
    ];
    assert_eq!(got, want, "each failure points at the line that made it");
}

// See: #11 (item 9)
#[test]
fn issue_11_buildah_copy_lines_are_annotated() {
    if !have(&["buildah", "podman", "/bin/busybox"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let (base, ctx) = context(dir);
    let store = |c: &mut Command| {
        c.arg("--root")
            .arg(dir.join("store"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .env("TMPDIR", dir);
    };
    let mut c = Command::new("podman");
    store(&mut c);
    run(c.args(["import", "-q"]).arg(&base).arg("base:x"));
    // --layers: a layer per instruction (without it buildah commits the
    // whole stage as one layer, recorded on its last instruction).
    let mut c = Command::new("buildah");
    store(&mut c);
    run(c
        .args([
            "bud",
            "-q",
            "--layers",
            "--isolation",
            "chroot",
            "-t",
            "layers:x",
            ".",
        ])
        .current_dir(&ctx));
    let image = dir.join("buildah.tar");
    let mut c = Command::new("buildah");
    store(&mut c);
    run(c
        .args(["push", "-q", "layers:x"])
        .arg(format!("docker-archive:{}:layers:x", image.display())));
    std::fs::copy(ctx.join("Dockerfile"), dir.join("Dockerfile")).unwrap();

    // Layers: 1 base (podman import), 2 COPY model.bin, 3 COPY data, 4 ADD
    // local.tar, 5 COPY a.h b.h, 6 COPY inc/, 7 COPY --from, 8 RUN (buildah's
    // WORKDIR makes no layer).
    let got = annotations(dir, &image);
    let want = [
        "::error file=Dockerfile,line=6,title=mlsize%3A max_wasted_bytes over budget::wasted bytes is 600000, over the limit of 0 (max_wasted_bytes = 0 at mlsize.toml:1); 300000 (50%25): files rewritten by a later layer: layer 8 `RUN chmod 600 model.bin && rm -r data /opt/in.bin` in layer 2 `COPY file:<sha256> in /app/model.bin` (Dockerfile:6); fix: a later layer writes these paths again, so both copies ship (a chmod/chown/touch copies whole files; a reinstall or regenerated file rewrites them): produce the final version in the RUN that writes them, or use COPY --chmod/--chown; 200000 (33%25): files deleted by a later layer: layer 8 `RUN chmod 600 model.bin && rm -r data /opt/in.bin` in layer 3 `COPY dir:<sha256> in /app/data` (Dockerfile:7); fix: deleting in a later layer does not shrink the image: delete them in the same RUN that writes them, or build in a separate stage and COPY --from only what you need; 100000 (17%25): files deleted by a later layer: layer 8 `RUN chmod 600 model.bin && rm -r data /opt/in.bin` in layer 4 `ADD file:<sha256> in /opt/` (Dockerfile:8); fix: deleting in a later layer does not shrink the image: delete them in the same RUN that writes them, or build in a separate stage and COPY --from only what you need; largest file /app/model.bin (300000)",
        "::error file=Dockerfile,line=9,title=mlsize%3A max_duplicate_bytes over budget::duplicate files is 20000, over the limit of 0 (max_duplicate_bytes = 0 at mlsize.toml:2); 20000 (100%25): C/C++/CUDA headers in the final image in layer 5 `COPY multi:<sha256> in ./hdr/` (Dockerfile:9); fix: headers are only needed to compile: build in a -devel stage and COPY --from only the artifacts into a runtime stage; largest file /app/hdr/b.h (20000)",
        "::error file=Dockerfile,line=9,title=mlsize%3A categories.headers over budget::headers bytes is 90000, over the limit of 0 (categories.headers = 0 at mlsize.toml:4); 90000 (100%25): C/C++/CUDA headers in the final image in layer 5 `COPY multi:<sha256> in ./hdr/` (Dockerfile:9); fix: headers are only needed to compile: build in a -devel stage and COPY --from only the artifacts into a runtime stage; layer 7 `COPY file:<sha256> in .` (Dockerfile:11): 30000; layer 6 `COPY dir:<sha256> in include/` (Dockerfile:10): 20000; largest file /app/out.h (30000)",
    ];
    assert_eq!(got, want, "each failure points at the line that made it");
}
