//! `mlsize diff`: exact deltas on image pairs built in code.

mod support;

use mlsize::layer::Compression;
use mlsize::testutil::ImageBuilder;
use serde_json::{Value, json};
use support::*;

const SP: &str = "/usr/local/lib/python3.11/site-packages";

fn base() -> ImageBuilder {
    ImageBuilder::new()
        .name("app:1")
        .layer("/bin/sh -c #(nop) ADD file:base in / ", |l| {
            l.file("/usr/bin/python3", 10_000)
                .file_bytes(
                    "/var/lib/dpkg/status",
                    b"Package: libc6\nStatus: install ok installed\nInstalled-Size: 12000\nVersion: 2.36-9\n\nPackage: gone\nStatus: install ok installed\nInstalled-Size: 10\nVersion: 1\n",
                )
        })
}

fn numpy(
    version: &str,
    so_bytes: usize,
) -> impl FnOnce(mlsize::testutil::LayerBuilder) -> mlsize::testutil::LayerBuilder {
    let record = format!(
        "numpy/__init__.py,sha256=abc,400\nnumpy/core/_multiarray.so,sha256=def,{so_bytes}\nnumpy-{version}.dist-info/RECORD,,\n"
    );
    let version = version.to_string();
    move |l| {
        l.file(&format!("{SP}/numpy/__init__.py"), 400)
            .file(&format!("{SP}/numpy/core/_multiarray.so"), so_bytes)
            .file_bytes(
                &format!("{SP}/numpy-{version}.dist-info/RECORD"),
                record.as_bytes(),
            )
    }
}

fn diff_json(dir: &std::path::Path, old: &[u8], new: &[u8], extra: &[&str]) -> (Value, i32) {
    let o = write(dir, "old.tar", old);
    let n = write(dir, "new.tar", new);
    let out = mlsize()
        .args(["diff", &o, &n, "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        checked(serde_json::from_slice(&out.stdout).unwrap()),
        out.status.code().unwrap(),
    )
}

fn total(v: &Value, name: &str) -> (u64, u64, i64) {
    let t = v["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap();
    (
        t["old"].as_u64().unwrap(),
        t["new"].as_u64().unwrap(),
        t["delta"].as_i64().unwrap(),
    )
}

fn statuses(v: &Value) -> Vec<String> {
    v["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn identical_images_have_zero_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let img = base().layer("RUN pip install numpy", numpy("1.26.0", 5000));
    let (v, code) = diff_json(
        dir.path(),
        &img.docker_archive(),
        &img.docker_archive(),
        &["--fail-over", "0"],
    );
    assert_eq!(code, 0);
    for t in v["totals"].as_array().unwrap() {
        assert_eq!(t["delta"], 0, "{t}");
    }
    assert_eq!(statuses(&v), ["shared", "shared"]);
    assert_eq!(v["shared"]["layers"], 2);
    assert_eq!(
        v["files"]["counts"],
        json!({"added": 0, "removed": 0, "grown": 0, "shrunk": 0, "moved": 0})
    );
    assert_eq!(v["packages"], json!({"python": [], "debian": []}));
    assert_eq!(
        v["summary"],
        json!({"visible_delta_bytes": 0, "compressed_delta_bytes": 0, "compressed_estimated": false, "biggest_change": null, "largest_category_change": null})
    );
    assert_eq!(v["schema"], "mlsize/v1");
    assert_eq!(v["kind"], "diff");
}

#[test]
fn oci_archive_against_docker_archive_of_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = base().layer("RUN pip install numpy", numpy("1.26.0", 5000));
    let (v, _) = diff_json(
        dir.path(),
        &img.docker_archive(),
        &img.compression(mlsize::layer::Compression::Zstd)
            .oci_archive(),
        &[],
    );
    assert_eq!(
        statuses(&v),
        ["shared", "shared"],
        "same diff_ids whatever the compression"
    );
    assert_eq!(total(&v, "visible_bytes").2, 0);
    assert_eq!(v["shared"]["tar_bytes"], total(&v, "tar_bytes").1);
    assert_eq!(v["new"]["format"], "oci-archive");
    assert_eq!(v["old"]["format"], "docker-archive");
}

#[test]
fn inserted_run_layer_is_added_and_the_rest_line_up() {
    let dir = tempfile::tempdir().unwrap();
    let old = base()
        .layer("RUN pip install numpy", numpy("1.26.0", 5000))
        .layer("COPY app /app # buildkit", |l| l.file("/app/main.py", 300));
    let new = base()
        .layer("RUN pip install numpy", numpy("1.26.0", 5000))
        .layer("RUN /bin/sh -c apt-get install -y curl # buildkit", |l| {
            l.file("/usr/bin/curl", 7000)
        })
        .layer("COPY app /app # buildkit", |l| l.file("/app/main.py", 300));
    let (v, code) = diff_json(
        dir.path(),
        &old.docker_archive(),
        &new.oci_archive(),
        &["--fail-over", "1000"],
    );
    assert_eq!(code, 1, "+7000 bytes is over a 1000-byte limit");
    assert_eq!(statuses(&v), ["shared", "shared", "added", "shared"]);
    let added = &v["instructions"][2];
    assert_eq!(added["new_instruction"], "RUN apt-get install -y curl");
    assert_eq!(added["new_layer_index"], 2);
    assert_eq!(added["delta"], 7000);
    assert_eq!(total(&v, "visible_bytes").2, 7000);
    assert_eq!(
        v["files"]["added"],
        json!([{"path": "/usr/bin/curl", "old_path": null, "old_bytes": 0, "new_bytes": 7000, "delta": 7000, "layer_index": 2}])
    );
    assert_eq!(v["threshold"]["exceeded"], true);
    assert_eq!(v["threshold"]["limit_bytes"], 1000);
    let (_, code) = diff_json(
        dir.path(),
        &old.docker_archive(),
        &new.oci_archive(),
        &["--fail-over", "10kB"],
    );
    assert_eq!(code, 0);
}

#[test]
fn upgraded_package_in_a_changed_requirements_layer() {
    let dir = tempfile::tempdir().unwrap();
    let old = base().layer("RUN pip install -r requirements.txt", numpy("1.26.0", 5000));
    let new = base().layer("RUN pip install -r requirements.txt", numpy("2.0.1", 9000));
    let (v, _) = diff_json(
        dir.path(),
        &old.docker_archive(),
        &new.docker_archive(),
        &[],
    );
    assert_eq!(statuses(&v), ["shared", "rebuilt"]);
    let rec_old = "numpy/__init__.py,sha256=abc,400\nnumpy/core/_multiarray.so,sha256=def,5000\nnumpy-1.26.0.dist-info/RECORD,,\n".len() as u64;
    let rec_new = "numpy/__init__.py,sha256=abc,400\nnumpy/core/_multiarray.so,sha256=def,9000\nnumpy-2.0.1.dist-info/RECORD,,\n".len() as u64;
    assert_eq!(
        v["packages"]["python"],
        json!([{"name": "numpy", "change": "upgraded", "old_version": "1.26.0", "new_version": "2.0.1",
                "old_bytes": 5400 + rec_old, "new_bytes": 9400 + rec_new, "delta": 4000 + rec_new as i64 - rec_old as i64, "files": null}])
    );
    assert_eq!(
        v["files"]["grown"][0]["path"],
        format!("{SP}/numpy/core/_multiarray.so")
    );
    assert_eq!(v["files"]["grown"][0]["delta"], 4000);
    // The old dist-info's RECORD is removed, the new one added.
    assert_eq!(v["files"]["counts"]["added"], 1);
    assert_eq!(v["files"]["counts"]["removed"], 1);
}

#[test]
fn moved_file_is_a_move() {
    // The moved file's size is unique within each image, so each image alone
    // would not hash it (see SizeCensus): the two sides must share one census.
    // Checked for every way of reading: indexed plain layers with and without
    // verification, compressed layers, and a mix (which hashes everything).
    let dir = tempfile::tempdir().unwrap();
    let old = base().layer("COPY model /models", |l| {
        l.file_seeded("/models/a.bin", 50_000, 9)
    });
    let new = base().layer("COPY model /srv/models", |l| {
        l.file_seeded("/srv/models/a.bin", 50_000, 9)
    });
    let plain = |b: &ImageBuilder| b.clone().compression(Compression::None).docker_archive();
    let zstd = |b: &ImageBuilder| b.clone().compression(Compression::Zstd).oci_archive();
    let cases = [
        ("plain", plain(&old), plain(&new), &[][..]),
        (
            "plain, --no-verify",
            plain(&old),
            plain(&new),
            &["--no-verify"][..],
        ),
        ("zstd", zstd(&old), zstd(&new), &[][..]),
        (
            "plain vs zstd",
            plain(&old),
            zstd(&new),
            &["--no-verify"][..],
        ),
    ];
    for (what, o, n, extra) in cases {
        let (v, _) = diff_json(dir.path(), &o, &n, extra);
        assert_eq!(
            v["files"]["moved"],
            json!([{"path": "/srv/models/a.bin", "old_path": "/models/a.bin", "old_bytes": 50_000, "new_bytes": 50_000, "delta": 0, "layer_index": 1}]),
            "{what}"
        );
        assert_eq!(v["files"]["counts"]["added"], 0, "{what}");
        assert_eq!(v["files"]["counts"]["removed"], 0, "{what}");
        assert_eq!(statuses(&v), ["shared", "changed"], "{what}");
    }
    // Same size, different content: not a move, whatever the read path.
    let other = base().layer("COPY model /srv/models", |l| {
        l.file_seeded("/srv/models/a.bin", 50_000, 10)
    });
    for extra in [&[][..], &["--no-verify"][..]] {
        let (v, _) = diff_json(dir.path(), &plain(&old), &plain(&other), extra);
        assert_eq!(v["files"]["moved"], json!([]));
        assert_eq!(v["files"]["counts"]["added"], 1);
        assert_eq!(v["files"]["counts"]["removed"], 1);
    }
}

#[test]
fn base_image_bump_changes_every_layer_below_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let old = base().layer("COPY app /app # buildkit", |l| l.file("/app/main.py", 300));
    let new = ImageBuilder::new()
        .layer("/bin/sh -c #(nop) ADD file:base in / ", |l| {
            l.file("/usr/bin/python3", 12_000).file_bytes(
                "/var/lib/dpkg/status",
                b"Package: libc6\nStatus: install ok installed\nInstalled-Size: 12500\nVersion: 2.36-10\n\nPackage: new\nStatus: install ok installed\nInstalled-Size: 3\nVersion: 1\n",
            )
        })
        .layer("COPY app /app # buildkit", |l| l.file("/app/main.py", 300));
    let (v, _) = diff_json(
        dir.path(),
        &old.docker_archive(),
        &new.docker_archive(),
        &[],
    );
    assert_eq!(statuses(&v), ["rebuilt", "shared"]);
    assert_eq!(
        v["instructions"][0]["old_instruction"],
        "ADD file:base in /"
    );
    assert_eq!(
        v["packages"]["debian"],
        json!([
            {"name": "libc6", "change": "upgraded", "old_version": "2.36-9", "new_version": "2.36-10", "old_bytes": 12_288_000, "new_bytes": 12_800_000, "delta": 512_000, "files": null},
            {"name": "gone", "change": "removed", "old_version": "1", "new_version": null, "old_bytes": 10_240, "new_bytes": 0, "delta": -10_240, "files": null},
            {"name": "new", "change": "added", "old_version": null, "new_version": "1", "old_bytes": 0, "new_bytes": 3072, "delta": 3072, "files": null},
        ])
    );
    assert_eq!(v["files"]["grown"][0]["path"], "/usr/bin/python3");
}

#[test]
fn fail_over_percent_and_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let old = base().layer("RUN a", |l| l.file("/a", 10_000));
    let new = base().layer("RUN a", |l| l.file("/a", 11_000));
    let (v, code) = diff_json(
        dir.path(),
        &old.docker_archive(),
        &new.docker_archive(),
        &["--fail-over", "5%"],
    );
    let visible_old = total(&v, "visible_bytes").0;
    assert_eq!(v["threshold"]["limit_bytes"], visible_old * 5 / 100);
    assert_eq!(code, 0, "+1000 of {visible_old} is under 5%");
    let (_, code) = diff_json(
        dir.path(),
        &old.docker_archive(),
        &new.docker_archive(),
        &["--fail-over", "1%"],
    );
    assert_eq!(code, 1);
    let (v, _) = diff_json(
        dir.path(),
        &old.docker_archive(),
        &new.docker_archive(),
        &["--fail-over", "1%", "--compressed"],
    );
    assert_eq!(v["threshold"]["measure"], "download_bytes");
    let (o_dl, n_dl, _) = total(&v, "download_bytes");
    assert_eq!(
        v["threshold"]["growth_bytes"],
        n_dl as i64 - o_dl as i64,
        "--compressed measures what a pull downloads"
    );
    let o = write(dir.path(), "o.tar", &old.docker_archive());
    let err = fails(&["diff", &o, &o, "--fail-over", "x%"]);
    assert!(err.contains("invalid percentage 'x%'"), "{err}");
}

#[test]
fn diff_table_and_markdown_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let old = base()
        .layer("RUN pip install -r requirements.txt", numpy("1.26.0", 5000))
        .layer("COPY app /app # buildkit", |l| l.file("/app/main.py", 300));
    let new = base()
        .layer("RUN pip install -r requirements.txt", numpy("2.0.1", 9000))
        .layer("RUN /bin/sh -c apt-get install -y curl # buildkit", |l| {
            l.file("/usr/bin/curl", 7000)
        })
        .layer("COPY app /app # buildkit", |l| {
            l.file_seeded("/app/main.py", 300, 1)
        });
    let o = write(dir.path(), "old.tar", &old.docker_archive());
    let n = write(dir.path(), "new.tar", &new.oci_archive());
    for (fmt, name) in [("table", "diff_table"), ("markdown", "diff_markdown")] {
        let out = mlsize()
            .args([
                "diff",
                &o,
                &n,
                "--bytes",
                "--fail-over",
                "20kB",
                "--format",
                fmt,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout)
            .unwrap()
            .replace(&o, "old.tar")
            .replace(&n, "new.tar");
        insta::assert_snapshot!(name, text);
    }
}
