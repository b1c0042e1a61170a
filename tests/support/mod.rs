//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod build;
pub mod registry;
pub mod tools;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use mlsize::layer::Compression;
use mlsize::testutil::{Built, ImageBuilder};
use serde_json::Value;

/// The `mlsize` binary.
pub fn mlsize() -> Command {
    let mut c = Command::cargo_bin("mlsize").unwrap();
    c.env_remove("GITHUB_STEP_SUMMARY");
    // Tables are 100 columns wide in a pipe unless $COLUMNS says otherwise.
    c.env_remove("COLUMNS");
    // Never the user's layer cache, and a cold one for every run: a test
    // that wants a warm cache sets MLSIZE_CACHE_DIR (or --cache-dir) itself.
    c.env("MLSIZE_CACHE_DIR", fresh_cache_dir());
    c.env_remove("MLSIZE_CACHE_MAX");
    c
}

/// An empty directory for one run's layer cache, under the test target's
/// temporary directory.
pub fn fresh_cache_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cache-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Checks an mlsize JSON output against its committed schema
/// (`schema/<kind>.schema.json`: `kind` is `diff`, `check` or `fix`, else it is
/// an `analyze` report) and gives it back.
pub fn checked(v: Value) -> Value {
    use std::sync::OnceLock;
    static VALIDATORS: OnceLock<Vec<(&'static str, jsonschema::Validator)>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        [
            ("analyze", include_str!("../../schema/analyze.schema.json")),
            ("diff", include_str!("../../schema/diff.schema.json")),
            ("check", include_str!("../../schema/check.schema.json")),
            ("fix", include_str!("../../schema/fix.schema.json")),
        ]
        .into_iter()
        .map(|(k, text)| {
            let schema: Value = serde_json::from_str(text).unwrap();
            (k, jsonschema::validator_for(&schema).unwrap())
        })
        .collect()
    });
    let kind = v["kind"].as_str().unwrap_or("analyze");
    let (_, validator) = validators
        .iter()
        .find(|(k, _)| *k == kind)
        .unwrap_or_else(|| panic!("no schema for kind {kind}"));
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the {kind} JSON does not match schema/{kind}.schema.json: {errors:#?}"
    );
    v
}

/// Runs mlsize with `args` plus `--format json`, expects success, parses stdout.
pub fn json(args: &[&str]) -> Value {
    let out = mlsize()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mlsize {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    checked(serde_json::from_slice(&out.stdout).unwrap())
}

/// Runs mlsize expecting exit code 2 and returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = mlsize().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "mlsize {args:?}: stderr {err}");
    assert!(
        out.stdout.is_empty(),
        "no partial report on failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    err
}

/// Writes bytes to a file in `dir` and returns its path as a string.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// Gzip of bytes (a whole-archive compression).
pub fn gzip(b: &[u8]) -> Vec<u8> {
    mlsize::testutil::compress(b, Compression::Gzip)
}

/// Zstd of bytes.
pub fn zstd(b: &[u8]) -> Vec<u8> {
    mlsize::testutil::compress(b, Compression::Zstd)
}

/// xz of bytes, as `xz` writes it (whole-archive compression only).
pub fn xz(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// bzip2 of bytes (whole-archive compression only).
pub fn bzip2(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Writes an image as skopeo's `dir:` transport lays it out (`skopeo copy
/// IMAGE dir:DIR`): `manifest.json` is the manifest itself, `version` names
/// the layout, and each blob is a file named by its digest's hex.
pub fn dir_layout(built: &Built, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("manifest.json"), &built.manifest).unwrap();
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    std::fs::write(dir.join(&built.config_digest[7..]), &built.config).unwrap();
    for l in &built.layers {
        std::fs::write(dir.join(&l.digest[7..]), &l.blob).unwrap();
    }
}

/// Writes an image as `skopeo copy --format v2s1 IMAGE dir:DIR` does: a
/// Docker schema 1 manifest whose `fsLayers` and `history` run newest first,
/// one per history entry; an entry that made no layer is `throwaway`, with the
/// empty layer blob that registries serve for it.
pub fn dir_layout_schema1(built: &Built, dir: &Path) {
    dir_layout(built, dir);
    std::fs::remove_file(dir.join(&built.config_digest[7..])).unwrap();
    let config: Value = serde_json::from_slice(&built.config).unwrap();
    let empty = gzip(&[0u8; 1024]);
    let empty_digest = mlsize::source::meta::digest_bytes("sha256", &empty).unwrap();
    std::fs::write(dir.join(&empty_digest[7..]), &empty).unwrap();
    let mut layers = built.layers.iter();
    let mut fs_layers = Vec::new();
    let mut history = Vec::new();
    for h in config["history"].as_array().unwrap() {
        let throwaway = h["empty_layer"].as_bool().unwrap_or(false);
        let digest = if throwaway {
            empty_digest.clone()
        } else {
            layers.next().unwrap().digest.clone()
        };
        fs_layers.push(serde_json::json!({ "blobSum": digest }));
        let compat = serde_json::json!({
            "os": "linux",
            "container_config": { "Cmd": [h["created_by"]] },
            "throwaway": throwaway,
        });
        history.push(serde_json::json!({ "v1Compatibility": compat.to_string() }));
    }
    fs_layers.reverse();
    history.reverse();
    let manifest = serde_json::json!({
        "schemaVersion": 1,
        "name": "mlsize/sink",
        "tag": "1.0",
        "architecture": "amd64",
        "fsLayers": fs_layers,
        "history": history,
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
}

/// The `id` of every recommendation in a report, in order.
pub fn recommendation_ids(v: &Value) -> Vec<&str> {
    v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// `u64` at a JSON pointer.
pub fn u(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr)
        .unwrap_or_else(|| panic!("missing {ptr}"))
        .as_u64()
        .unwrap_or_else(|| panic!("{ptr} is not an integer"))
}

/// The image every format test reads: whiteouts, an opaque directory, hard
/// links, a symlink, a FIFO, a PAX long name, a non-UTF-8 name, a file
/// replaced by a directory, the same path twice in one layer, a duplicate.
pub fn kitchen_sink() -> ImageBuilder {
    let long = format!(
        "/usr/share/{}/file.txt",
        "very-long-directory-name".repeat(5)
    );
    ImageBuilder::new()
        .name("mlsize/sink:1.0")
        .layer("/bin/sh -c #(nop) ADD file:abc in / ", |l| {
            l.dir("/usr/bin")
                .file("/usr/bin/python3.11", 1000)
                .hardlink("/usr/bin/python3", "/usr/bin/python3.11")
                .symlink("/usr/bin/python", "python3")
                .file("/etc/hosts", 100)
                .file("/opt/old/a.bin", 300)
                .file("/opt/old/b.bin", 200)
                .file("/data", 50)
                .fifo("/dev/fifo")
                .file_pax(&long, 77)
                .file_raw_name(b"etc/caf\xe9", 10)
        })
        .empty("/bin/sh -c #(nop)  ENV A=b")
        .layer("|1 X=1 /bin/sh -c pip install torch", |l| {
            l.file("/root/.cache/pip/http/x.body", 4000)
                .file("/root/.cache/pip/wheels/t.whl", 6000)
                .file_seeded("/usr/lib/torch/libtorch.so", 70_000, 7)
                .file("/etc/hosts", 120)
                .file("/tmp/dup", 2000)
                .file("/tmp/dup", 2100)
        })
        .layer(
            "RUN /bin/sh -c rm -rf /root/.cache /opt/old /data # buildkit",
            |l| {
                l.whiteout("/root/.cache")
                    .dir("/opt/old")
                    .opaque("/opt/old")
                    .file("/opt/old/c.bin", 30)
                    .dir("/data")
                    .file("/data/inner", 40)
                    .whiteout("/usr/bin/python3.11")
                    .whiteout("/nonexistent")
            },
        )
        .layer("COPY app /app # buildkit", |l| {
            l.file_seeded("/app/model.bin", 70_000, 7)
                .file("/app/main.py", 15)
        })
}
