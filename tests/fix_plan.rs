//! Issue 17: `mlsize fix` on images whose history and files the test writes:
//! the exact patched Dockerfile, that `git apply` takes the patch, the edits
//! as data, and predicted figures that equal `analyze`'s `estimated` when
//! every finding is edited. (tests/fix.rs proves the predictions with real
//! builds.)

mod support;

use std::path::Path;
use std::process::Command;

use mlsize::testutil::ImageBuilder;
use serde_json::Value;
use support::*;

/// A naive image as the classic builder records it: apt lists left behind,
/// pip's cache, a file deleted by a later RUN, one made executable later.
fn naive() -> ImageBuilder {
    ImageBuilder::new()
        .name("mlsize/naive:1")
        .layer("/bin/sh -c #(nop) ADD file:abc in / ", |l| {
            l.file("/usr/bin/python3", 5000)
                .file("/etc/os-release", 100)
        })
        .layer(
            "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl",
            |l| {
                l.file(
                    "/var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease",
                    7000,
                )
                .file("/var/cache/apt/pkgcache.bin", 3000)
                .file("/usr/bin/curl", 1000)
            },
        )
        .empty("/bin/sh -c #(nop) WORKDIR /app")
        .layer("/bin/sh -c pip install torch", |l| {
            l.file_seeded("/root/.cache/pip/http-v2/a/b/c.body", 40_000, 1)
                .file_seeded(
                    "/usr/local/lib/python3.11/site-packages/torch/x.so",
                    20_000,
                    2,
                )
        })
        .layer(
            "/bin/sh -c head -c 9000 /dev/urandom > data.bin && echo hi > run.sh",
            |l| {
                l.file_seeded("/app/data.bin", 9000, 3)
                    .file("/app/run.sh", 300)
            },
        )
        .layer("/bin/sh -c rm -f data.bin", |l| l.whiteout("/app/data.bin"))
        .layer("/bin/sh -c chmod 755 /app/run.sh", |l| {
            l.file("/app/run.sh", 300)
        })
        .empty("/bin/sh -c #(nop)  CMD [\"python3\"]")
}

const DOCKERFILE: &str = "\
FROM debian:bookworm
# the system packages
RUN apt-get update && apt-get install -y --no-install-recommends curl
WORKDIR /app
RUN pip install torch
RUN head -c 9000 /dev/urandom > data.bin && echo hi > run.sh
RUN rm -f data.bin
RUN chmod 755 /app/run.sh
CMD [\"python3\"]
";

const FIXED: &str = "\
FROM debian:bookworm
# the system packages
RUN apt-get update && apt-get install -y --no-install-recommends curl && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /app
RUN pip install --no-cache-dir torch
RUN head -c 9000 /dev/urandom > data.bin && echo hi > run.sh && rm -f data.bin && chmod 755 /app/run.sh
CMD [\"python3\"]
";

fn setup(dir: &Path, image: &ImageBuilder, dockerfile: &str) -> String {
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    write(dir, "image.tar", &image.docker_archive())
}

/// The finding of each edit, in order.
fn findings(v: &Value) -> Vec<&str> {
    v["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["finding"].as_str().unwrap())
        .collect()
}

/// `mlsize fix IMAGE --format json` in `dir`: succeeds, and the JSON
/// follows its schema.
fn fix_json(dir: &Path, img: &str) -> Value {
    let out = fix(dir, &[img, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    checked(serde_json::from_slice(&out.stdout).unwrap())
}

fn fix(dir: &Path, args: &[&str]) -> std::process::Output {
    mlsize()
        .current_dir(dir)
        .arg("fix")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn patch_applies_and_predicts_analyze_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let img = setup(dir.path(), &naive(), DOCKERFILE);
    let out = fix(dir.path(), &[&img, "--dockerfile", "Dockerfile", "--bytes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("diff --git a/Dockerfile b/Dockerfile\n"),
        "{text}"
    );
    assert!(
        text.contains("@@ -1,9 +1,7 @@ apt-cache -10000 ("),
        "hunk header names the finding and its saving:\n{text}"
    );
    // git apply takes it, summary lines and all.
    std::fs::write(dir.path().join("fix.patch"), &text).unwrap();
    let st = Command::new("git")
        .args(["apply", "fix.patch"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
        FIXED
    );

    // The JSON: every finding edited, so the estimate is analyze's.
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let v = fix_json(dir.path(), &img);
    let a = json(&["analyze", &img]);
    assert_eq!(v["estimated"], a["estimated"]);
    assert_eq!(v["unfixed"], serde_json::json!([]));
    let ids = findings(&v);
    assert_eq!(
        ids,
        [
            "apt-cache",
            "pip-cache",
            "deleted-later",
            "overwritten-later"
        ]
    );
    let pip = &v["edits"][1];
    assert_eq!(pip["savings_bytes"], 40_000);
    assert_eq!(pip["changes"][0]["line_start"], 5);
    assert_eq!(pip["changes"][0]["old"], "RUN pip install torch");
    assert_eq!(
        pip["changes"][0]["new"],
        "RUN pip install --no-cache-dir torch"
    );
    assert_eq!(v["edits"][0]["savings_bytes"], 10_000);
    assert_eq!(v["edits"][2]["savings_bytes"], 9000);
    assert_eq!(v["edits"][3]["savings_bytes"], 300);
    assert_eq!(v["new_text"], FIXED);

    // --only / --skip choose edits; the estimate follows.
    let out = fix(
        dir.path(),
        &[&img, "--format", "json", "--only", "pip-cache"],
    );
    let v: Value = checked(serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(v["edits"].as_array().unwrap().len(), 1);
    assert_eq!(v["estimated"]["savings_bytes"], 40_000);
    let out = fix(
        dir.path(),
        &[&img, "--format", "json", "--skip", "pip-cache,apt-cache"],
    );
    let v: Value = checked(serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(v["estimated"]["savings_bytes"], 9300);
}

#[test]
fn buildkit_dockerfiles_get_cache_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let df = format!("# syntax=docker/dockerfile:1\n{DOCKERFILE}");
    let img = setup(dir.path(), &naive(), &df);
    let out = fix(
        dir.path(),
        &[&img, "--format", "json", "--only", "pip-cache"],
    );
    let v: Value = checked(serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(
        v["edits"][0]["changes"][0]["new"],
        "RUN --mount=type=cache,target=/root/.cache/pip pip install torch"
    );
}

#[test]
fn unmatched_and_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let img = setup(
        dir.path(),
        &naive(),
        "FROM debian:bookworm\nRUN echo other\n",
    );
    let v = fix_json(dir.path(), &img);
    assert_eq!(v["edits"], serde_json::json!([]));
    assert!(
        v["unfixed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("matches no line of the Dockerfile"),
        "{v}"
    );
    assert_eq!(v["patch"], "");

    let out = fix(dir.path(), &[&img, "--only", "pip_cache"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown finding 'pip_cache'"), "{err}");

    let out = fix(dir.path(), &[&img, "--dockerfile", "nope/Dockerfile"]);
    assert_eq!(out.status.code(), Some(2));

    std::fs::write(dir.path().join("Dockerfile"), "just text\n").unwrap();
    let out = fix(dir.path(), &[&img]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no FROM instruction"));
}

/// Compilers installed to build one program: the final stage becomes a
/// builder and a new final stage copies what the build installed.
#[test]
fn build_tools_split_into_a_builder_stage() {
    let image = ImageBuilder::new()
        .name("mlsize/tool:1")
        .layer("/bin/sh -c #(nop) ADD file:abc in / ", |l| {
            l.file("/usr/bin/sh", 5000)
        })
        .layer(
            "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*",
            |l| {
                l.file("/usr/include/stdio.h", 8000)
                    .file("/usr/lib/x86_64-linux-gnu/libc.a", 12000)
                    .file("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 20000)
                    .file("/var/lib/dpkg/info/gcc-12.list", 100)
            },
        )
        .layer("/bin/sh -c #(nop) COPY file:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef in /src/tool.c ", |l| {
            l.file("/src/tool.c", 400)
        })
        .layer("/bin/sh -c #(nop) COPY file:456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123 in /etc/tool.toml ", |l| {
            l.file("/etc/tool.toml", 50)
        })
        .layer(
            "/bin/sh -c gcc -O2 -o /usr/local/bin/tool /src/tool.c && tool --check /etc/tool.toml",
            |l| l.file("/usr/local/bin/tool", 700),
        )
        .empty("/bin/sh -c #(nop)  CMD [\"tool\", \"/etc/tool.toml\"]");
    let dockerfile = "\
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY tool.c /src/tool.c
COPY tool.toml /etc/tool.toml
RUN gcc -O2 -o /usr/local/bin/tool /src/tool.c && tool --check /etc/tool.toml
CMD [\"tool\", \"/etc/tool.toml\"]
";
    let dir = tempfile::tempdir().unwrap();
    let img = setup(dir.path(), &image, dockerfile);
    let v = fix_json(dir.path(), &img);
    assert_eq!(
        v["new_text"],
        "\
FROM debian:bookworm AS builder
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY tool.c /src/tool.c
COPY tool.toml /etc/tool.toml
RUN gcc -O2 -o /usr/local/bin/tool /src/tool.c && tool --check /etc/tool.toml
CMD [\"tool\", \"/etc/tool.toml\"]

FROM debian:bookworm
COPY tool.toml /etc/tool.toml
COPY --from=builder /usr/local/bin /usr/local/bin
CMD [\"tool\", \"/etc/tool.toml\"]
"
    );
    let ids = findings(&v);
    assert_eq!(ids, ["static-libs", "headers"]);
    // The whole tool install goes: headers, static library, compiler, dpkg
    // list; and the source only the build used. The config the CMD names
    // stays.
    assert_eq!(
        v["estimated"]["savings_bytes"],
        8000 + 12000 + 20000 + 100 + 400
    );
    assert_eq!(v["unfixed"], serde_json::json!([]));
}

/// nvidia/cuda's -runtime under wheels that bring the same libraries: the
/// -base variant, which keeps only libcudart.
#[test]
fn cuda_twice_moves_to_the_base_variant() {
    let cuda = "/usr/local/cuda-12.4/targets/x86_64-linux/lib";
    let wheels = "/usr/local/lib/python3.10/dist-packages/nvidia";
    let image = ImageBuilder::new()
        .name("mlsize/cuda:1")
        .layer("/bin/sh -c #(nop) ADD file:abc in / ", |l| {
            l.file("/usr/bin/sh", 5000)
        })
        .layer("/bin/sh -c #(nop) ADD file:def in / ", |l| {
            l.file_seeded(&format!("{cuda}/libnvrtc.so.12.4.127"), 30_000, 1)
                .file_seeded(&format!("{cuda}/libcudart.so.12.4.127"), 3000, 2)
        })
        .layer(
            "/bin/sh -c pip install --no-cache-dir nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12",
            |l| {
                l.file_seeded(
                    &format!("{wheels}/cuda_nvrtc/lib/libnvrtc.so.12"),
                    31_000,
                    3,
                )
                .file_seeded(
                    &format!("{wheels}/cuda_runtime/lib/libcudart.so.12"),
                    3100,
                    4,
                )
            },
        );
    let dockerfile = "FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\nRUN pip install --no-cache-dir nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12\n";
    let dir = tempfile::tempdir().unwrap();
    let img = setup(dir.path(), &image, dockerfile);
    let out = fix(
        dir.path(),
        &[&img, "--format", "json", "--only", "cuda-duplicates"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = checked(serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(
        v["edits"][0]["changes"][0]["new"],
        "FROM nvidia/cuda:12.4.1-base-ubuntu22.04"
    );
    // The toolkit's NVRTC goes; both libcudart copies stay (-base has it).
    assert_eq!(v["edits"][0]["savings_bytes"], 30_000);
    assert_eq!(v["estimated"]["savings_bytes"], 30_000);
}

/// A -devel base under wheels that bring CUDA: the builder keeps -devel,
/// the runtime stage starts FROM -base, and the two edits' files add up.
#[test]
fn devel_base_splits_and_rebases_the_runtime_stage() {
    let cuda = "/usr/local/cuda-12.4/targets/x86_64-linux";
    let image = ImageBuilder::new()
        .name("mlsize/devel:1")
        .layer("/bin/sh -c #(nop) ADD file:abc in / ", |l| {
            l.file("/usr/bin/sh", 5000)
        })
        .layer("/bin/sh -c #(nop) ADD file:def in / ", |l| {
            l.file_seeded(&format!("{cuda}/lib/libnvrtc.so.12.4.127"), 30_000, 1)
                .file_seeded(&format!("{cuda}/lib/libcudart.so.12.4.127"), 3000, 2)
                .file_seeded(&format!("{cuda}/include/cuda.h"), 9000, 3)
                .file_seeded("/usr/local/cuda-12.4/bin/nvcc", 11_000, 4)
        })
        .layer(
            "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*",
            |l| l.file("/usr/bin/python3", 4000),
        )
        .layer("/bin/sh -c pip install --no-cache-dir nvidia-cuda-nvrtc-cu12", |l| {
            l.file_seeded(
                "/usr/local/lib/python3.10/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
                31_000,
                5,
            )
        })
        .empty("/bin/sh -c #(nop)  CMD [\"python3\"]");
    let dockerfile = "\
FROM nvidia/cuda:12.4.1-devel-ubuntu22.04
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir nvidia-cuda-nvrtc-cu12
CMD [\"python3\"]
";
    let dir = tempfile::tempdir().unwrap();
    let img = setup(dir.path(), &image, dockerfile);
    let v = fix_json(dir.path(), &img);
    assert_eq!(
        v["new_text"],
        "\
FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS builder
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir nvidia-cuda-nvrtc-cu12
CMD [\"python3\"]

FROM nvidia/cuda:12.4.1-base-ubuntu22.04
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/lib/python3.10/dist-packages /usr/local/lib/python3.10/dist-packages
CMD [\"python3\"]
"
    );
    let mut ids = findings(&v);
    ids.sort();
    assert_eq!(ids, ["cuda-duplicates", "cuda-tools", "headers"]);
    assert_eq!(v["estimated"]["savings_bytes"], 30_000 + 9000 + 11_000);
    // The text summary says where the rebase went.
    let out = fix(dir.path(), &[&img]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("#   with the stage split: cuda-duplicates"),
        "{text}"
    );
}

/// A Dockerfile with CRLF line endings and no final newline: the patch
/// keeps both, and `git apply` takes it.
#[test]
fn crlf_and_missing_final_newline_survive() {
    let dir = tempfile::tempdir().unwrap();
    let df = DOCKERFILE.replace('\n', "\r\n");
    let df = df.trim_end_matches("\r\n");
    let img = setup(dir.path(), &naive(), df);
    let out = fix(dir.path(), &[&img, "--only", "pip-cache,deleted-later"]);
    assert!(out.status.success());
    std::fs::write(dir.path().join("fix.patch"), &out.stdout).unwrap();
    let st = Command::new("git")
        .args(["apply", "fix.patch"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(st.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let want = DOCKERFILE
        .replace("pip install torch", "pip install --no-cache-dir torch")
        .replace("> run.sh\n", "> run.sh && rm -f data.bin\n")
        .replace("RUN rm -f data.bin\n", "")
        .replace('\n', "\r\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
        want.trim_end_matches("\r\n")
    );
    // From another directory, the patch names the file, to apply where it is.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let out = fix(
        &sub,
        &[&img, "--dockerfile", "../Dockerfile", "--only", "pip-cache"],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("--- a/Dockerfile\n+++ b/Dockerfile\n"),
        "{text}"
    );
    assert!(text.contains("# apply in ..: git apply"), "{text}");
}

/// conda's package cache (no conda reaches this machine's registries, so
/// no real build proves this one: the edit and its figures are checked
/// here), and uv's hard-linked cache: only its own files count. A RUN
/// whose `;` list loses a command keeps `;` where it stood.
#[test]
fn conda_clean_uv_links_and_lists() {
    let site = "/opt/conda/lib/python3.11/site-packages";
    let image = ImageBuilder::new()
        .name("mlsize/conda:1")
        .layer("/bin/sh -c #(nop) ADD file:abc in / ", |l| {
            l.file("/usr/bin/sh", 5000)
        })
        .layer("/bin/sh -c micromamba install -y -n base numpy", |l| {
            l.file_seeded("/opt/conda/pkgs/numpy-2.1.0-py311/lib/x.so", 50_000, 1)
                .file_seeded("/opt/conda/pkgs/numpy-2.1.0-py311.conda", 30_000, 2)
                .hardlink(
                    &format!("{site}/numpy/x.so"),
                    "/opt/conda/pkgs/numpy-2.1.0-py311/lib/x.so",
                )
        })
        .layer(
            "/bin/sh -c uv pip install --system tqdm; head -c 7000 /dev/urandom > /tmp/t.bin; echo ok",
            |l| {
                l.file_seeded("/root/.cache/uv/archive-v0/X/tqdm/a.py", 4000, 3)
                    .file("/root/.cache/uv/CACHEDIR.TAG", 43)
                    .hardlink(
                        "/usr/local/lib/python3.11/dist-packages/tqdm/a.py",
                        "/root/.cache/uv/archive-v0/X/tqdm/a.py",
                    )
                    .file_seeded("/tmp/t.bin", 7000, 4)
            },
        )
        .layer("/bin/sh -c echo a && rm -f /tmp/t.bin; echo b", |l| {
            l.whiteout("/tmp/t.bin")
        });
    let dockerfile = "\
FROM debian:bookworm
RUN micromamba install -y -n base numpy
RUN uv pip install --system tqdm; head -c 7000 /dev/urandom > /tmp/t.bin; echo ok
RUN echo a && rm -f /tmp/t.bin; echo b
";
    let dir = tempfile::tempdir().unwrap();
    let img = setup(dir.path(), &image, dockerfile);
    let v = fix_json(dir.path(), &img);
    assert_eq!(
        v["new_text"],
        "\
FROM debian:bookworm
RUN micromamba install -y -n base numpy && micromamba clean -afy
RUN uv pip install --no-cache --system tqdm; head -c 7000 /dev/urandom > /tmp/t.bin; echo ok && rm -f /tmp/t.bin
RUN echo a; echo b
"
    );
    let bytes = |id: &str| {
        v["edits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["finding"] == id)
            .map(|e| u(e, "/savings_bytes"))
    };
    // The extracted package is hard-linked into site-packages: only the
    // .conda archive goes. uv's a.py likewise: only CACHEDIR.TAG.
    assert_eq!(bytes("conda-pkgs"), Some(30_000));
    assert_eq!(bytes("uv-cache"), Some(43));
    assert_eq!(bytes("deleted-later"), Some(7000));
    assert_eq!(u(&v, "/estimated/savings_bytes"), 37_043);
}
