//! Writes seed corpora for the fuzz targets from the test images:
//! `cargo run --features test-support --example fuzz-seeds -- fuzz/corpus`

use std::path::{Path, PathBuf};

use mlsize::layer::Compression;
use mlsize::source::cache;
use mlsize::testutil::{ImageBuilder, compress, naive_ml};

fn put(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let small = ImageBuilder::new()
        .layer("ADD x /", |l| {
            l.file("/etc/hosts", 30)
                .dir("/usr")
                .hardlink("/usr/h", "/etc/hosts")
                .symlink("/usr/s", "h")
                .fifo("/run/f")
                .file_pax(&format!("/x/{}", "y".repeat(120)), 5)
        })
        .empty("/bin/sh -c #(nop)  ENV A=b")
        .layer("RUN rm", |l| {
            l.whiteout("/etc/hosts").opaque("/usr").file("/usr/n", 3)
        });
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let img = small.clone().compression(c);
        let n = c.name();
        put(
            &root.join("archive"),
            &format!("docker-{n}.tar"),
            &img.docker_archive(),
        )?;
        put(
            &root.join("archive"),
            &format!("oci-{n}.tar"),
            &img.oci_archive(),
        )?;
        put(
            &root.join("archive"),
            &format!("docker25-{n}.tar"),
            &img.docker_oci_archive(),
        )?;
        let b = img.build();
        for (i, l) in b.layers.iter().enumerate() {
            put(&root.join("layer"), &format!("{n}-{i}"), &l.blob)?;
            // cache_entry: the entry a verified read of the layer stores.
            let opts = mlsize::layer::ScanOptions {
                verify: true,
                hash_content: true,
                hash_sizes: None,
                rules: std::sync::Arc::new(mlsize::category::Rules::builtin()),
                max_uncompressed_bytes: None,
                progress: None,
                cancel: None,
            };
            let len = l.blob.len() as u64;
            if let Ok(scan) = mlsize::layer::scan_layer(&l.blob[..], Some(len), &opts)
                && let Some(key) = scan
                    .blob_digest
                    .as_deref()
                    .and_then(|d| cache::CacheKey::new(d, len))
                && let Some(entry) = cache::encode_entry(&key, &scan, true)
            {
                put(&root.join("cache_entry"), &format!("{n}-{i}"), &entry)?;
                // The payload behind the checksum, for the target's framed
                // route (first byte 0): the header is 52 bytes.
                let mut raw = vec![0u8];
                raw.extend(zstd::decode_all(&entry[52..])?);
                put(&root.join("cache_entry"), &format!("raw-{n}-{i}"), &raw)?;
            }
        }
        // metadata: index.json 0xff manifest.json 0xff blobs...
        let mut m = Vec::new();
        let files = mlsize::testutil::oci_files(&[(&b, true)], false);
        let index = files
            .iter()
            .find(|f| f.0 == "index.json")
            .map(|f| f.1.clone())
            .unwrap_or_default();
        m.extend_from_slice(&index);
        m.push(0xff);
        m.push(0xff);
        m.extend_from_slice(&b.manifest);
        m.push(0xff);
        m.extend_from_slice(&b.config);
        put(&root.join("metadata"), &format!("oci-{n}"), &m)?;
        // A legacy docker-save: no index.json, manifest.json naming blob 0
        // as its config, whose diff_id is not ASCII (issue 12 item 4).
        let mut config: serde_json::Value = serde_json::from_slice(&b.config)?;
        if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
            for id in ids.iter_mut() {
                *id = format!("sha256:a{}", "é".repeat(40)).into();
            }
        }
        let layers: Vec<String> = (0..b.layers.len())
            .map(|i| format!("{i}/layer.tar"))
            .collect();
        let mut d = vec![0xff];
        d.extend(serde_json::to_vec(
            &serde_json::json!([{"Config": "0.json", "RepoTags": null, "Layers": layers}]),
        )?);
        d.push(0xff);
        d.extend(serde_json::to_vec(&config)?);
        put(&root.join("metadata"), &format!("docker-{n}"), &d)?;
    }
    let naive = naive_ml(1).compressible();
    put(
        &root.join("archive"),
        "naive.tar.gz",
        &compress(&naive.docker_archive(), Compression::Gzip),
    )?;
    let tsv = include_str!("../testdata/created_by.tsv");
    for (i, line) in tsv.lines().skip(1).enumerate() {
        if let Some(raw) = line.split('\t').nth(1) {
            put(&root.join("created_by"), &format!("{i}"), raw.as_bytes())?;
        }
    }
    put(&root.join("created_by"), "dockerfile", b"FROM x AS b\nRUN --mount=type=cache,target=/r \\\n  pip install t\nRUN <<EOF\necho\nEOF\nCOPY --from=b /o /a\n")?;
    put(&root.join("budget"), "full.toml", b"max_visible_bytes = \"3GB\"\nmax_wasted_percent = 5\nmax_layers = 3\n[categories]\npip-cache = 0\nheaders = \"50MB\"\n[category_growth]\ncuda-libs = 1\n")?;
    put(
        &root.join("budget"),
        "dive",
        b"rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n",
    )?;
    put(
        &root.join("budget"),
        "rules",
        b"[[rule]]\nname = \"x\"\nglobs = [\"**/x/**\"]\nposition = 1\n",
    )?;
    println!("wrote seeds under {}", root.display());
    Ok(())
}
