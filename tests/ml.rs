//! ML bloat: categories, duplicates, CUDA families, recommendations and the
//! what-if estimate on a naive PyTorch-on-CUDA image and its optimised twin.

mod support;

use mlsize::testutil::ImageBuilder;
use serde_json::{Value, json};
use support::*;

use mlsize::testutil::{LIB, SP, naive_ml, optimized_ml};

fn naive() -> ImageBuilder {
    naive_ml(1)
}

fn optimized() -> ImageBuilder {
    optimized_ml(1)
}

fn categories(v: &Value) -> Vec<(String, u64, u64, u64, u64)> {
    v["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                u(c, "/content_bytes"),
                u(c, "/visible_bytes"),
                u(c, "/wasted_bytes"),
                u(c, "/files"),
            )
        })
        .collect()
}

#[test]
fn naive_image_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "naive.tar", &naive().docker_archive());
    let v = json(&["analyze", &p]);
    assert_eq!(u(&v, "/image/content_bytes"), 2_240_000);
    assert_eq!(u(&v, "/image/visible_bytes"), 1_840_000);
    assert_eq!(u(&v, "/image/wasted_bytes"), 400_000);
    let want: Vec<(String, u64, u64, u64, u64)> = [
        ("pip-cache", 400_000, 0, 400_000, 1),
        ("conda-pkgs", 0, 0, 0, 0),
        ("apt-cache", 50_000, 50_000, 0, 1),
        ("model-cache", 0, 0, 0, 0),
        ("nsight", 90_000, 90_000, 0, 1),
        ("cupti", 160_000, 160_000, 0, 2),
        ("headers", 6_000, 6_000, 0, 2),
        ("static-libs", 150_000, 150_000, 0, 1),
        ("cuda-libs", 790_000, 790_000, 0, 4),
        ("cuda-tools", 60_000, 60_000, 0, 1),
        ("python-bytecode", 2_000, 2_000, 0, 1),
        ("docs", 3_000, 3_000, 0, 1),
        ("other", 529_000, 529_000, 0, 4),
    ]
    .iter()
    .map(|(n, a, b, c, d)| (n.to_string(), *a, *b, *c, *d))
    .collect();
    assert_eq!(categories(&v), want, "categories in rule order");
    assert_eq!(
        v["layers"][3]["categories"],
        json!({"pip-cache": 400_000, "cuda-libs": 390_000, "cupti": 80_000, "other": 500_000, "python-bytecode": 2_000})
    );
    assert_eq!(v["layers"][3]["top_category"], "pip-cache");
    assert_eq!(v["layers"][2]["top_category"], "cuda-libs");

    assert_eq!(
        v["duplicates"],
        json!([
            {"bytes_each": 300_000, "paths": [format!("{LIB}/libcublasLt.so.12.4.5.8"), format!("{SP}/nvidia/cublas/lib/libcublasLt.so.12")], "reclaimable_bytes": 300_000},
            {"bytes_each": 80_000, "paths": ["/usr/local/cuda-12.4/extras/CUPTI/lib64/libcupti.so.2024.1.0", format!("{SP}/nvidia/cuda_cupti/lib/libcupti.so.12")], "reclaimable_bytes": 80_000},
        ])
    );
    assert_eq!(u(&v, "/image/duplicate_reclaimable_bytes"), 380_000);
    assert_eq!(
        v["cuda_duplicates"],
        json!([
            {"library": "libcublasLt.so.12", "copies": [
                {"path": format!("{LIB}/libcublasLt.so.12.4.5.8"), "bytes": 300_000, "layer_index": 2, "identical": true},
                {"path": format!("{SP}/nvidia/cublas/lib/libcublasLt.so.12"), "bytes": 300_000, "layer_index": 3, "identical": true}],
             "reclaimable_bytes": 300_000},
            {"library": "libcudart.so.12", "copies": [
                {"path": format!("{LIB}/libcudart.so.12.4.127"), "bytes": 100_000, "layer_index": 2, "identical": false},
                {"path": format!("{SP}/nvidia/cuda_runtime/lib/libcudart.so.12"), "bytes": 90_000, "layer_index": 3, "identical": false}],
             "reclaimable_bytes": 90_000},
        ])
    );
    assert_eq!(u(&v, "/image/cuda_duplicate_reclaimable_bytes"), 390_000);

    let recs: Vec<(String, Option<u64>, u64)> = v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["layer_index"].as_u64(),
                u(r, "/savings_bytes"),
            )
        })
        .collect();
    let want: Vec<(String, Option<u64>, u64)> = [
        ("pip-cache", Some(3), 400_000),
        ("cuda-duplicates", Some(2), 390_000),
        ("static-libs", Some(2), 150_000),
        ("nsight", Some(2), 90_000),
        ("cupti", Some(2), 80_000),
        ("cuda-tools", Some(2), 60_000),
        ("apt-cache", Some(1), 50_000),
        ("headers", Some(2), 6_000),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), *b, *c))
    .collect();
    assert_eq!(recs, want);
    let pip = &v["recommendations"][0];
    assert_eq!(pip["instruction"], "RUN pip install torch");
    assert!(pip["fix"].as_str().unwrap().contains("--no-cache-dir"));
    assert!(
        v["recommendations"][4]["fix"]
            .as_str()
            .unwrap()
            .contains("PyTorch links libcupti")
    );

    let e = &v["estimated"];
    assert_eq!(u(e, "/content_bytes_before"), 2_240_000);
    assert_eq!(u(e, "/content_bytes"), 1_014_000);
    assert_eq!(u(e, "/visible_bytes"), 1_014_000);
    assert_eq!(u(e, "/savings_bytes"), 1_226_000);
    assert_eq!(e["savings_percent"], json!(54.7));
    // Compressed: each layer keeps its own ratio.
    let removed = [1_000u64, 50_000, 385_000, 790_000, 0, 0];
    let want_compressed: u64 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(removed)
        .map(|(l, r)| {
            let (c, t) = (u(l, "/compressed_bytes"), u(l, "/tar_bytes"));
            c - ((r as u128 * c as u128 / t as u128) as u64)
        })
        .sum();
    assert_eq!(u(e, "/compressed_bytes"), want_compressed);
    assert!(want_compressed < u(&v, "/image/compressed_bytes"));
}

#[test]
fn optimized_twin_has_nothing_left_but_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "opt.tar", &optimized().oci_archive());
    let v = json(&["analyze", &p]);
    assert_eq!(u(&v, "/image/content_bytes"), 997_000);
    assert_eq!(u(&v, "/image/wasted_bytes"), 0);
    assert_eq!(v["duplicates"], json!([]));
    assert_eq!(v["cuda_duplicates"], json!([]));
    let ids = recommendation_ids(&v);
    assert_eq!(ids, ["headers"], "torch's libcupti.so.12 is kept");
    assert_eq!(u(&v, "/estimated/savings_bytes"), 1_000);
}

#[test]
fn dup_min_bytes_and_rules_flags() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "naive.tar", &naive().docker_archive());
    let v = json(&["analyze", &p, "--dup-min-bytes", "100kB"]);
    assert_eq!(
        u(&v, "/image/duplicate_reclaimable_bytes"),
        300_000,
        "the 80 kB pair is below 100 kB"
    );
    let rules = write(
        dir.path(),
        "r.toml",
        b"[[rule]]\nname = \"app\"\nglobs = [\"/app/**\"]\nposition = 1\n",
    );
    let v = json(&["analyze", &p, "--rules", &rules]);
    assert_eq!(v["categories"][0]["name"], "app");
    assert_eq!(u(&v, "/categories/0/visible_bytes"), 1_000);
    let out = mlsize()
        .args(["rules", "--rules", &rules])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(" 1  app "), "{text}");
    assert!(text.contains("14  other"), "{text}");
}

#[test]
fn naive_table_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "naive.tar", &naive().docker_archive());
    let out = mlsize()
        .args(["analyze", &p, "--top", "5"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(&p, "naive.tar");
    insta::assert_snapshot!("naive_table", text);
}

/// uv installs by hard-linking its cache into site-packages (its default
/// link mode on Linux), and the builders' tars carry the data under the
/// cache's name (`/root` sorts before `/usr`). Removing the cache frees only
/// the files that have no other name; with `UV_LINK_MODE=copy` it frees all
/// of them. The category still counts the bytes where they were written
/// (ACCOUNTING.md).
#[test]
fn uv_cache_hard_linked_into_site_packages_saves_only_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = "/root/.cache/uv/archive-v0/0SBNhoiiH0ZITFEU/mlsize_blob";
    let site = "/usr/local/lib/python3.11/dist-packages/mlsize_blob";
    for (mode, saves, site_visible) in [("hardlink", 591, 0), ("copy", 8_591, 8_000)] {
        let img = ImageBuilder::new()
            .layer("ADD file:base in /", |l| l.file("/bin/sh", 1_000))
            .layer(
                &format!("/bin/sh -c UV_LINK_MODE={mode} uv pip install --system mlsize-blob"),
                |l| {
                    let l = l
                        .file("/root/.cache/uv/CACHEDIR.TAG", 43)
                        .file_seeded(&format!("{cache}/data.bin"), 8_000, 7)
                        .file("/root/.cache/uv/simple-v28/index/7c/mlsize-blob.rkyv", 548);
                    if mode == "hardlink" {
                        l.hardlink(&format!("{site}/data.bin"), &format!("{cache}/data.bin"))
                    } else {
                        l.file_seeded(&format!("{site}/data.bin"), 8_000, 7)
                    }
                },
            );
        let p = write(dir.path(), &format!("{mode}.tar"), &img.docker_archive());
        let v = json(&["analyze", &p]);
        let uv = &v["recommendations"][0];
        assert_eq!(uv["id"], "uv-cache", "{mode}: {v:#}");
        assert_eq!(u(uv, "/savings_bytes"), saves, "{mode}");
        assert_eq!(u(&v, "/estimated/savings_bytes"), saves, "{mode}");
        let pip = categories(&v)
            .into_iter()
            .find(|c| c.0 == "pip-cache")
            .unwrap();
        assert_eq!(
            (pip.1, pip.2, pip.4),
            (8_591, 8_591, 3),
            "{mode}: pip-cache"
        );
        let other = categories(&v).into_iter().find(|c| c.0 == "other").unwrap();
        assert_eq!(other.2, 1_000 + site_visible, "{mode}: other");
    }
}
