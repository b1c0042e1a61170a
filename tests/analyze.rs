//! `mlsize analyze` end to end: every input format gives the same exact figures.

mod support;

use mlsize::layer::Compression;
use mlsize::testutil::{Built, ImageBuilder, docker_archive};
use serde_json::Value;
use support::*;

/// Exact figures of `kitchen_sink()`, worked out by hand in `support/mod.rs`'s comments.
fn assert_kitchen_sink(v: &Value, built: &Built, ctx: &str) {
    let layers = [
        // (content, wasted, files)
        (1737, 650, 7),
        (84_220, 12_000, 6),
        (70, 0, 2),
        (70_015, 0, 2),
    ];
    for (i, (content, wasted, files)) in layers.iter().enumerate() {
        let p = format!("/layers/{i}");
        assert_eq!(
            u(v, &format!("{p}/content_bytes")),
            *content,
            "{ctx}: layer {i} content"
        );
        assert_eq!(
            u(v, &format!("{p}/wasted_bytes")),
            *wasted,
            "{ctx}: layer {i} wasted"
        );
        assert_eq!(
            u(v, &format!("{p}/files")),
            *files,
            "{ctx}: layer {i} files"
        );
        assert_eq!(
            u(v, &format!("{p}/tar_bytes")),
            built.layers[i].tar.len() as u64,
            "{ctx}: layer {i} tar_bytes"
        );
        assert_eq!(
            v.pointer(&format!("{p}/diff_id")).unwrap(),
            &Value::from(built.layers[i].diff_id.clone()),
            "{ctx}: diff_id"
        );
    }
    assert_eq!(u(v, "/image/content_bytes"), 156_042, "{ctx}: content");
    assert_eq!(u(v, "/image/visible_bytes"), 143_392, "{ctx}: visible");
    assert_eq!(u(v, "/image/wasted_bytes"), 12_650, "{ctx}: wasted");
    assert_eq!(
        u(v, "/image/content_bytes"),
        u(v, "/image/visible_bytes") + u(v, "/image/wasted_bytes"),
        "{ctx}: content == visible + wasted"
    );
    assert_eq!(u(v, "/image/files"), 17, "{ctx}: files");
    assert_eq!(u(v, "/image/layer_count"), 4);
    assert_eq!(
        u(v, "/image/duplicate_reclaimable_bytes"),
        70_000,
        "{ctx}: duplicates"
    );
    assert_eq!(
        v["duplicates"][0]["paths"],
        serde_json::json!(["/app/model.bin", "/usr/lib/torch/libtorch.so"])
    );
    let instr: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["instruction"].as_str().unwrap())
        .collect();
    assert_eq!(
        instr,
        [
            "ADD file:abc in /",
            "RUN pip install torch",
            "RUN rm -rf /root/.cache /opt/old /data",
            "COPY app /app"
        ],
        "{ctx}"
    );
    assert_eq!(v["history"][1]["empty_layer"], Value::Bool(true));
    assert_eq!(v["history"][1]["layer_index"], Value::Null);
    assert_eq!(v["history"][2]["layer_index"], Value::from(1));
    // pip cache: written by layer 2, deleted by layer 3.
    let pip = &v["categories"][0];
    assert_eq!(pip["name"], "pip-cache");
    assert_eq!(
        (
            u(pip, "/content_bytes"),
            u(pip, "/wasted_bytes"),
            u(pip, "/files")
        ),
        (10_000, 10_000, 2)
    );
    // The hard link keeps python3.11's bytes visible under its other name.
    let top: Vec<(&str, u64)> = v["top_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["bytes"].as_u64().unwrap()))
        .collect();
    assert!(top.contains(&("/usr/bin/python3", 1000)), "{top:?}");
    assert!(top.contains(&("/etc/caf\\xe9", 10)), "{top:?}");
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("'/nonexistent'")),
        "{warnings:?}"
    );
    assert_eq!(v["schema"], "mlsize/v1");
}

#[test]
fn every_format_gives_the_same_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let img = kitchen_sink().compression(c);
        let built = img.build();
        let docker = img.docker_archive();
        let oci_dir = dir.path().join(format!("layout-{}", c.name()));
        img.oci_layout(&oci_dir);
        let skopeo_dir = dir.path().join(format!("dir-{}", c.name()));
        dir_layout(&built, &skopeo_dir);
        let schema1_dir = dir.path().join(format!("dir-v2s1-{}", c.name()));
        dir_layout_schema1(&built, &schema1_dir);
        let inputs = [
            (
                "docker-archive",
                write(dir.path(), "d.tar", &docker),
                "docker-archive",
            ),
            (
                "docker 25 OCI",
                write(dir.path(), "d25.tar", &img.docker_oci_archive()),
                "docker-archive",
            ),
            (
                "oci-archive",
                write(dir.path(), "o.tar", &img.oci_archive()),
                "oci-archive",
            ),
            (
                "oci layout",
                oci_dir.to_str().unwrap().to_string(),
                "oci-layout",
            ),
            (
                "docker.tar.gz",
                write(dir.path(), "d.tar.gz", &gzip(&docker)),
                "docker-archive+gzip",
            ),
            (
                "oci.tar.zst",
                write(dir.path(), "o.tar.zst", &zstd(&img.oci_archive())),
                "oci-archive+zstd",
            ),
            (
                "skopeo dir:",
                skopeo_dir.to_str().unwrap().to_string(),
                "dir",
            ),
            (
                "skopeo dir: schema 1",
                schema1_dir.to_str().unwrap().to_string(),
                "dir",
            ),
            (
                "docker.tar.xz",
                write(dir.path(), "d.tar.xz", &xz(&docker)),
                "docker-archive+xz",
            ),
            (
                "oci.tar.bz2",
                write(dir.path(), "o.tar.bz2", &bzip2(&img.oci_archive())),
                "oci-archive+bzip2",
            ),
        ];
        for (what, path, format) in &inputs {
            let ctx = format!("{what} with {} layers", c.name());
            let v = json(&["analyze", path]);
            assert_kitchen_sink(&v, &built, &ctx);
            assert_eq!(v["image"]["format"], *format, "{ctx}");
            assert_eq!(v["image"]["verified"], Value::Bool(true));
            for (i, l) in built.layers.iter().enumerate() {
                assert_eq!(
                    u(&v, &format!("/layers/{i}/compressed_bytes")),
                    l.blob.len() as u64,
                    "{ctx}"
                );
                assert_eq!(v["layers"][i]["compression"], c.name(), "{ctx}");
            }
        }
    }
}

#[test]
fn stdin_reads_one_pass_with_the_manifest_last() {
    let img = kitchen_sink();
    let built = img.build();
    let docker = img.docker_archive();
    for (what, bytes) in [
        ("plain", docker.clone()),
        ("gzip", gzip(&docker)),
        ("zstd", zstd(&docker)),
        ("xz", xz(&docker)),
        // Two streams back to back, as pbzip2 writes them.
        (
            "bzip2",
            [bzip2(&docker[..1024]), bzip2(&docker[1024..])].concat(),
        ),
        (
            "xz, two streams",
            [xz(&docker[..512]), xz(&docker[512..])].concat(),
        ),
    ] {
        let out = mlsize()
            .args(["analyze", "-", "--format", "json"])
            .write_stdin(bytes)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = checked(serde_json::from_slice(&out.stdout).unwrap());
        assert_kitchen_sink(&v, &built, &format!("stdin {what}"));
    }
}

#[test]
fn output_is_identical_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let img = kitchen_sink();
    let path = write(dir.path(), "d.tar", &img.docker_archive());
    let gz = write(dir.path(), "d.tar.gz", &gzip(&img.oci_archive()));
    for p in [&path, &gz] {
        let mut outs = Vec::new();
        for j in ["1", "2", "3", "8"] {
            for fmt in ["json", "table"] {
                let o = mlsize()
                    .args(["analyze", p, "-j", j, "--format", fmt])
                    .output()
                    .unwrap();
                assert!(o.status.success());
                outs.push((fmt, o.stdout));
            }
        }
        for (fmt, o) in &outs[2..] {
            let first = &outs.iter().find(|(f, _)| f == fmt).unwrap().1;
            assert_eq!(first, o, "-j changes the {fmt} output");
        }
    }
}

#[test]
fn no_verify_marks_the_report_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.tar", &kitchen_sink().oci_archive());
    let v = json(&["analyze", &path, "--no-verify"]);
    assert_eq!(v["image"]["verified"], Value::Bool(false));
    assert_eq!(u(&v, "/image/visible_bytes"), 143_392);
    let o = mlsize()
        .args(["analyze", &path, "--no-verify"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("unverified"));
}

#[test]
fn several_images_need_a_choice() {
    let dir = tempfile::tempdir().unwrap();
    let a = ImageBuilder::new()
        .name("app:1")
        .layer("RUN a", |l| l.file("/a", 10))
        .build();
    let b = ImageBuilder::new()
        .name("other:2")
        .layer("RUN b", |l| l.file("/b", 20))
        .build();
    let path = write(dir.path(), "two.tar", &docker_archive(&[a, b], true));
    let err = fails(&["analyze", &path]);
    assert!(
        err.contains("app:1") && err.contains("other:2") && err.contains("--image"),
        "{err}"
    );
    let v = json(&["analyze", &path, "--image", "other:2"]);
    assert_eq!(u(&v, "/image/visible_bytes"), 20);
    assert_eq!(v["image"]["name"], "other:2");
    let err = fails(&["analyze", &path, "--image", "nope"]);
    assert!(
        err.contains("no image named 'nope'") && err.contains("app:1"),
        "{err}"
    );
}

#[test]
fn platforms_are_selected_from_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let amd = ImageBuilder::new()
        .layer("RUN a", |l| l.file("/a", 10))
        .build();
    let arm = ImageBuilder::new()
        .platform("linux", "arm64", Some("v8"))
        .layer("RUN b", |l| l.file("/b", 30))
        .build();
    let files = mlsize::testutil::oci_files(&[(&amd, true), (&arm, true)], false);
    let layout = dir.path().join("multi");
    mlsize::testutil::write_dir(&layout, &files);
    // `skopeo copy --all IMAGE dir:D`: the index is manifest.json, each
    // instance manifest `<hex>.manifest.json`, every other blob `<hex>`.
    let copied = dir.path().join("multi-dir");
    std::fs::create_dir(&copied).unwrap();
    let index = &files.iter().find(|f| f.0 == "index.json").unwrap().1;
    std::fs::write(copied.join("manifest.json"), index).unwrap();
    std::fs::write(copied.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    for (name, bytes) in &files {
        let Some(hex) = name.strip_prefix("blobs/sha256/") else {
            continue;
        };
        let instance = [&amd, &arm]
            .iter()
            .any(|b| b.manifest_digest.ends_with(hex));
        let file = if instance {
            format!("{hex}.manifest.json")
        } else {
            hex.to_string()
        };
        std::fs::write(copied.join(file), bytes).unwrap();
    }
    for layout in [&layout, &copied] {
        let layout = layout.to_str().unwrap();
        let v = json(&["analyze", layout, "--platform", "linux/arm64"]);
        assert_eq!(u(&v, "/image/visible_bytes"), 30, "{layout}");
        assert_eq!(v["image"]["platform"], "linux/arm64/v8");
        let v = json(&["analyze", layout, "--platform", "linux/amd64"]);
        assert_eq!(u(&v, "/image/visible_bytes"), 10, "{layout}");
        let err = fails(&["analyze", layout, "--platform", "linux/s390x"]);
        assert!(
            err.contains("linux/amd64") && err.contains("linux/arm64/v8"),
            "{err}"
        );
    }
}

#[test]
fn nested_indexes_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let img = ImageBuilder::new()
        .layer("RUN a", |l| l.file("/a", 11))
        .build();
    let mut files = mlsize::testutil::oci_files(&[(&img, true)], false);
    // Wrap the index in another index, as `docker buildx --output type=oci` may.
    let inner = files
        .iter()
        .find(|f| f.0 == "index.json")
        .unwrap()
        .1
        .clone();
    let digest = mlsize::testutil::sha256(&inner);
    files.retain(|f| f.0 != "index.json");
    files.push((format!("blobs/sha256/{}", &digest[7..]), inner.clone()));
    let outer = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": inner.len()}]});
    files.push(("index.json".into(), serde_json::to_vec(&outer).unwrap()));
    let layout = dir.path().join("nested");
    mlsize::testutil::write_dir(&layout, &files);
    let v = json(&["analyze", layout.to_str().unwrap()]);
    assert_eq!(u(&v, "/image/visible_bytes"), 11);
}

#[test]
fn history_mismatch_labels_layers_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let img = ImageBuilder::new()
        .without_history()
        .layer("RUN a", |l| l.file("/a", 10));
    let path = write(dir.path(), "h.tar", &img.docker_archive());
    let v = json(&["analyze", &path]);
    assert_eq!(v["layers"][0]["instruction"], "(no history)");
    assert!(v["warnings"][0].as_str().unwrap().contains("no history"));
}

#[test]
fn base_layers_are_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let base = ImageBuilder::new()
        .name("base:1")
        .layer("ADD rootfs /", |l| l.file("/bin/sh", 500));
    let app = base
        .clone()
        .name("app:1")
        .layer("RUN pip install x", |l| l.file("/app/x", 70));
    let bp = write(dir.path(), "base.tar", &base.docker_archive());
    let ap = write(dir.path(), "app.tar", &app.oci_archive());
    let v = json(&["analyze", &ap, "--base", &bp]);
    assert_eq!(v["layers"][0]["base"], Value::Bool(true));
    assert_eq!(v["layers"][1]["base"], Value::Bool(false));
    assert_eq!(u(&v, "/image/base_bytes"), u(&v, "/layers/0/tar_bytes"));
    let t = mlsize()
        .args(["analyze", &ap, "--base", &bp])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&t.stdout).contains("[base] ADD rootfs /"));
}

#[test]
fn real_tool_fixtures_match_their_expected_figures() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/real");
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/expected.json")).unwrap())
            .unwrap();
    for f in [
        "real-docker.tar",
        "real-docker.tar.gz",
        "real-oci-gzip.tar",
        "real-oci-zstd.tar",
        "oci-dir",
    ] {
        let v = json(&["analyze", &format!("{root}/{f}")]);
        for k in ["visible_bytes", "content_bytes", "wasted_bytes", "files"] {
            assert_eq!(v["image"][k], exp[k], "{f}: {k}");
        }
        for (i, l) in exp["layers"].as_array().unwrap().iter().enumerate() {
            for k in [
                "tar_bytes",
                "content_bytes",
                "wasted_bytes",
                "files",
                "diff_id",
            ] {
                assert_eq!(v["layers"][i][k], l[k], "{f}: layer {i} {k}");
            }
        }
        if let Some(c) = exp["per_format"][f]["compressed_bytes"].as_array() {
            let got: Vec<Value> = v["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["compressed_bytes"].clone())
                .collect();
            assert_eq!(&got, c, "{f}: compressed sizes");
        }
        assert_eq!(v["warnings"], serde_json::json!([]), "{f}");
    }
}

#[test]
fn no_content_hash_keeps_the_figures_and_drops_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.tar", &kitchen_sink().docker_archive());
    let v = json(&["analyze", &path, "--no-content-hash"]);
    assert_eq!(u(&v, "/image/visible_bytes"), 143_392);
    assert_eq!(u(&v, "/image/wasted_bytes"), 12_650);
    assert_eq!(v["image"]["content_hashed"], Value::Bool(false));
    assert_eq!(
        v["duplicates"],
        serde_json::json!([]),
        "no hashes, no duplicate claims"
    );
    assert_eq!(u(&v, "/image/duplicate_reclaimable_bytes"), 0);
}
