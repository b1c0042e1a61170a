//! Issue 11, item 2: a layer stored uncompressed (`docker save`) gets an
//! estimate of what a push stores (gzip level 6, as `docker push`), never its
//! tar size as a download size; a compressed layer keeps its real size.

mod support;

use std::io::Write;

use mlsize::layer::Compression;
use mlsize::layer::estimate::{GZIP_LEVEL, WHOLE_MAX_BYTES};
use mlsize::testutil::{ImageBuilder, seeded_bytes};
use serde_json::Value;
use support::*;

/// How far a sampled estimate may be from the real gzip size on this
/// image (measured: see `mixed_image`); layers up to `WHOLE_MAX_BYTES` are
/// compressed whole and must be exact.
const TOLERANCE: f64 = 0.03;

/// Real gzip size of `data` at the estimate's level, as flate2's
/// `GzEncoder` writes it (in 32 KiB pieces).
fn gzip_bytes(data: &[u8]) -> u64 {
    let level = flate2::Compression::new(GZIP_LEVEL);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
    e.write_all(data).unwrap();
    e.finish().unwrap().len() as u64
}

/// gzip size of `data` deflated in one call (header and trailer: 18 bytes):
/// what the estimate of a blob compressed whole is. zlib-rs writes a few
/// bytes more or less when the same input comes in other pieces (`GzEncoder`
/// differs by up to ~0.05% here).
fn gzip_one_call_bytes(data: &[u8]) -> u64 {
    let mut c = flate2::Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    let mut out = vec![0; data.len() + data.len() / 8 + 1024];
    let status = c
        .compress(data, &mut out, flate2::FlushCompress::Finish)
        .unwrap();
    assert_eq!(status, flate2::Status::StreamEnd);
    c.total_out() + 18
}

/// xorshift, for content that is deterministic but not trivially repetitive.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Python-like source text.
fn text(seed: u64, len: usize) -> Vec<u8> {
    let words = [
        "def ", "self", ".weight", " = ", "torch", ".cuda", "(", ")", ":\n    ", "return ",
        "import ", "numpy", " as np\n", "tensor", "[i]", " + ", "bias", ", ", "dtype", "float32",
        "\n", "# ", "layer", "_norm", "if ", "else", "None", "for ", " in ", "range", "len", "x",
        "y", "0", "1", "2", "\"\"\"", "args", "kwargs", "class ",
    ];
    let mut r = Rng(seed | 1);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(words[(r.next() % words.len() as u64) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

/// Bytes shaped like a shared library: an ELF header, a symbol table of
/// increasing addresses, a string table, "code" over a small opcode set,
/// zero padding, and an incompressible (already compressed) section.
fn elf_like(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut out = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    let mut addr = 0x1000u64;
    while out.len() < len {
        match r.next() % 5 {
            0 => {
                for _ in 0..2000 {
                    addr += r.next() % 256;
                    out.extend_from_slice(&(r.next() % 4000).to_le_bytes()[..4]);
                    out.extend_from_slice(&addr.to_le_bytes());
                    out.extend_from_slice(&[0x12, 0, 0x0b, 0]);
                }
            }
            1 => {
                for _ in 0..1500 {
                    let name =
                        format!("_ZN5torch4cuda{}kernel{}Ev\0", r.next() % 97, r.next() % 13);
                    out.extend_from_slice(name.as_bytes());
                }
            }
            2 => {
                let ops = [
                    0x48, 0x89, 0x8b, 0xe8, 0xc3, 0x0f, 0x1f, 0x44, 0x00, 0x41, 0xff,
                ];
                for _ in 0..60_000 {
                    out.push(ops[(r.next() % ops.len() as u64) as usize]);
                }
            }
            3 => out.resize(out.len() + 20_000, 0),
            _ => out.extend_from_slice(&seeded_bytes(r.next(), 30_000)),
        }
    }
    out.truncate(len);
    out
}

/// An image of mixed content: a small layer (compressed whole, exact) and
/// two large ones (sampled), about 40 MiB in all.
fn mixed_image() -> ImageBuilder {
    ImageBuilder::new()
        .name("mlsize/estimate:1")
        .layer("ADD rootfs.tar /", |l| {
            l.file_bytes("/etc/os-release", &text(1, 400))
                .file_bytes("/usr/bin/tool", &elf_like(2, 300_000))
                .file_bytes("/usr/share/doc/readme", &text(3, 200_000))
        })
        .layer("RUN apt-get install -y python3", |l| {
            let mut l = l;
            for i in 0..40u64 {
                l = l.file_bytes(
                    &format!("/usr/lib/python3/m{i}.py"),
                    &text(10 + i, 20_000 + 3_000 * i as usize),
                );
            }
            l.file_bytes("/usr/lib/libpython3.so", &elf_like(4, 6_000_000))
                .file_bytes("/var/cache/apt/pkg.deb", &seeded_bytes(5, 3_000_000))
                .file_bytes("/var/lib/zeros.img", &vec![0; 1_000_000])
        })
        .layer("RUN pip install torch", |l| {
            l.file_bytes("/usr/lib/libtorch_cuda.so", &elf_like(6, 14_000_000))
                .file_bytes("/root/.cache/pip/torch.whl", &seeded_bytes(7, 8_000_000))
                .file_bytes("/usr/lib/torch/__init__.py", &text(8, 2_500_000))
        })
}

fn estimates(v: &Value) -> Vec<Option<u64>> {
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["estimated_gzip_bytes"].as_u64())
        .collect()
}

// See: #11
#[test]
fn issue_11_docker_save_layers_get_a_gzip_estimate_close_to_real_gzip() {
    let img = mixed_image();
    let built = img.clone().compression(Compression::None).build();
    let dir = tempfile::tempdir().unwrap();
    let docker = write(
        dir.path(),
        "docker.tar",
        &img.clone().compression(Compression::None).docker_archive(),
    );
    let v = json(&["analyze", &docker]);
    let real: Vec<u64> = built.layers.iter().map(|l| gzip_bytes(&l.tar)).collect();
    let est = estimates(&v);
    for (i, l) in built.layers.iter().enumerate() {
        let p = format!("/layers/{i}");
        assert_eq!(v.pointer(&format!("{p}/compression")).unwrap(), "none");
        assert_eq!(
            u(&v, &format!("{p}/compressed_bytes")),
            l.tar.len() as u64,
            "the blob as stored is the tar"
        );
        let e = est[i].expect("an uncompressed layer has an estimate");
        let err = (e as f64 - real[i] as f64) / real[i] as f64;
        eprintln!(
            "layer {i}: tar {} estimate {e} gzip -{GZIP_LEVEL} {} error {err:+.4}",
            l.tar.len(),
            real[i]
        );
        if l.tar.len() as u64 <= WHOLE_MAX_BYTES {
            assert_eq!(
                e,
                gzip_one_call_bytes(&l.tar),
                "layer {i} is compressed whole: exact"
            );
            assert!(err.abs() < 0.001, "layer {i}: {e} vs {}", real[i]);
        } else {
            assert!(
                err.abs() <= TOLERANCE,
                "layer {i}: estimate {e} vs gzip {} ({err:+.4})",
                real[i]
            );
        }
    }
    assert!(built.layers[0].tar.len() as u64 <= WHOLE_MAX_BYTES);
    assert!(built.layers[1].tar.len() as u64 > WHOLE_MAX_BYTES);
    let total: u64 = est.iter().flatten().sum();
    assert_eq!(u(&v, "/image/estimated_gzip_bytes"), total);
    assert_eq!(u(&v, "/image/download_bytes"), total);
    assert_eq!(v["image"]["download_bytes_basis"], "estimated");
    assert_eq!(
        u(&v, "/image/compressed_bytes"),
        u(&v, "/image/tar_bytes"),
        "compressed_bytes keeps its meaning: blobs as stored"
    );
    let real_total: u64 = real.iter().sum();
    let err = (total as f64 - real_total as f64) / real_total as f64;
    assert!(err.abs() <= TOLERANCE, "image: {total} vs {real_total}");

    // The same layers pushed: a gzip -6 oci-archive holds the real figures,
    // and mlsize uses them as they are.
    let oci = write(
        dir.path(),
        "oci-gzip.tar",
        &img.clone().gzip_level(GZIP_LEVEL).oci_archive(),
    );
    let g = json(&["analyze", &oci]);
    let pushed = img.gzip_level(GZIP_LEVEL).build();
    assert_eq!(
        estimates(&g),
        vec![None; 3],
        "compressed layers: no estimate"
    );
    let blobs: u64 = pushed.layers.iter().map(|l| l.blob.len() as u64).sum();
    assert_eq!(blobs, real_total, "the oci-archive's blobs are gzip -6");
    assert_eq!(u(&g, "/image/compressed_bytes"), blobs);
    assert_eq!(u(&g, "/image/download_bytes"), blobs, "the real figure");
    assert_eq!(g["image"]["download_bytes_basis"], "stored");
    assert_eq!(g["image"]["estimated_gzip_bytes"], Value::Null);
    for (i, l) in pushed.layers.iter().enumerate() {
        assert_eq!(
            g.pointer(&format!("/layers/{i}/diff_id")),
            v.pointer(&format!("/layers/{i}/diff_id")),
            "same layers"
        );
        assert_eq!(
            u(&g, &format!("/layers/{i}/compressed_bytes")),
            l.blob.len() as u64
        );
    }
}

// See: #11
#[test]
fn issue_11_the_estimate_is_the_same_whatever_the_path() {
    let img = mixed_image().compression(Compression::None);
    let dir = tempfile::tempdir().unwrap();
    let archive = img.docker_archive();
    let docker = write(dir.path(), "docker.tar", &archive);
    let want = estimates(&json(&["analyze", &docker]));
    assert!(want.iter().all(Option::is_some));
    let gz = write(dir.path(), "docker.tar.gz", &gzip(&archive));
    let layout = dir.path().join("layout");
    img.oci_layout(&layout);
    let layout = layout.to_str().unwrap();
    for args in [
        vec!["analyze", &docker, "--no-verify"],
        vec!["analyze", &docker, "--no-verify", "-j1"],
        vec!["analyze", &docker, "-j1"],
        vec!["analyze", &docker, "--no-content-hash", "--no-verify"],
        vec!["analyze", &gz],
        vec!["analyze", layout, "--no-verify", "-j3"],
        vec!["analyze", layout],
    ] {
        assert_eq!(estimates(&json(&args)), want, "{args:?}");
    }
    // Streamed from standard input.
    let out = mlsize()
        .args(["analyze", "-", "--format", "json"])
        .write_stdin(archive)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = checked(serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(estimates(&v), want, "stdin");
}

// See: #11
#[test]
fn issue_11_mixed_images_add_real_and_estimated_figures() {
    use mlsize::testutil::{compress_at, oci_files, sha256, write_dir};
    // Layer 1 pushed (gzip -6), layer 2 still uncompressed, in one layout.
    let mut built = mixed_image().compression(Compression::None).build();
    let gz = compress_at(&built.layers[0].tar, Compression::Gzip, GZIP_LEVEL);
    built.layers[0].digest = sha256(&gz);
    built.layers[0].blob = gz;
    let media = [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar",
    ];
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": built.config_digest, "size": built.config.len()},
        "layers": built.layers.iter().zip(media).map(|(l, m)| serde_json::json!(
            {"mediaType": m, "digest": l.digest, "size": l.blob.len()})).collect::<Vec<_>>(),
    });
    built.manifest = serde_json::to_vec(&manifest).unwrap();
    built.manifest_digest = sha256(&built.manifest);
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &oci_files(&[(&built, true)], false));
    let v = json(&["analyze", dir.path().to_str().unwrap()]);
    let est = estimates(&v);
    assert_eq!(est[0], None, "the gzip layer has its real size");
    let (e1, e2) = (est[1].unwrap(), est[2].unwrap());
    let stored = built.layers[0].blob.len() as u64;
    assert_eq!(u(&v, "/layers/0/compressed_bytes"), stored);
    assert_eq!(u(&v, "/image/estimated_gzip_bytes"), e1 + e2);
    assert_eq!(u(&v, "/image/download_bytes"), stored + e1 + e2);
    assert_eq!(v["image"]["download_bytes_basis"], "mixed");
    let tars: u64 = built.layers[1..].iter().map(|l| l.tar.len() as u64).sum();
    assert_eq!(u(&v, "/image/compressed_bytes"), stored + tars, "as stored");
}
