//! `ImageBuilder`: deterministic images in every format mlsize reads, built in
//! code for tests and benches (mtime 0, uid 0, seeded content), so digests and
//! output are stable.
//!
//! ```
//! use mlsize::testutil::ImageBuilder;
//! let tar = ImageBuilder::new()
//!     .layer("COPY app /usr/bin/app", |l| l.file("/usr/bin/app", 4_096))
//!     .layer("RUN pip install torch", |l| l.file("/root/.cache/pip/t.whl", 50_000))
//!     .layer("RUN rm -rf /root/.cache", |l| l.whiteout("/root/.cache"))
//!     .docker_archive();
//! assert!(tar.len() > 54_096);
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::missing_panics_doc
)]

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::layer::Compression;

/// Deterministic pseudo-random bytes (xorshift), different for every seed.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn seed_of(s: &[u8]) -> u64 {
    let h = Sha256::digest(s);
    u64::from_le_bytes(h[..8].try_into().unwrap())
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` of bytes.
pub fn sha256(d: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(d)))
}

#[derive(Debug, Clone)]
enum Op {
    File {
        path: Vec<u8>,
        data: Vec<u8>,
    },
    Seeded {
        path: Vec<u8>,
        len: usize,
        seed: u64,
    },
    Dir(Vec<u8>),
    Symlink(Vec<u8>, Vec<u8>),
    HardLink(Vec<u8>, Vec<u8>),
    Fifo(Vec<u8>),
    PaxFile {
        path: Vec<u8>,
        data: Vec<u8>,
    },
    Raw(Vec<u8>),
}

/// The entries of one layer.
#[derive(Debug, Clone, Default)]
pub struct LayerBuilder {
    ops: Vec<Op>,
}

fn rel(p: &str) -> Vec<u8> {
    p.trim_start_matches('/').as_bytes().to_vec()
}

impl LayerBuilder {
    /// A regular file of `len` bytes whose content is derived from its path.
    pub fn file(self, path: &str, len: usize) -> Self {
        self.file_seeded(path, len, seed_of(path.as_bytes()))
    }
    /// A regular file whose content is derived from `seed`: the same seed and
    /// length at two paths makes identical files.
    pub fn file_seeded(mut self, path: &str, len: usize, seed: u64) -> Self {
        self.ops.push(Op::Seeded {
            path: rel(path),
            len,
            seed,
        });
        self
    }
    /// A regular file with the given content.
    pub fn file_bytes(mut self, path: &str, data: &[u8]) -> Self {
        self.ops.push(Op::File {
            path: rel(path),
            data: data.to_vec(),
        });
        self
    }
    /// A regular file whose name is given as raw bytes (e.g. not UTF-8).
    pub fn file_raw_name(mut self, path: &[u8], len: usize) -> Self {
        self.ops.push(Op::File {
            path: path.to_vec(),
            data: seeded_bytes(seed_of(path), len),
        });
        self
    }
    /// A regular file whose name is written in a PAX `path` record.
    pub fn file_pax(mut self, path: &str, len: usize) -> Self {
        self.ops.push(Op::PaxFile {
            path: rel(path),
            data: seeded_bytes(seed_of(path.as_bytes()), len),
        });
        self
    }
    /// A directory.
    pub fn dir(mut self, path: &str) -> Self {
        self.ops.push(Op::Dir(rel(path)));
        self
    }
    /// A symbolic link.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.ops
            .push(Op::Symlink(rel(path), target.as_bytes().to_vec()));
        self
    }
    /// A hard link to `target` (an absolute image path).
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.ops.push(Op::HardLink(rel(path), rel(target)));
        self
    }
    /// A FIFO.
    pub fn fifo(mut self, path: &str) -> Self {
        self.ops.push(Op::Fifo(rel(path)));
        self
    }
    /// `.wh.NAME`: deletes `path` from lower layers.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = crate::layer::path::split_parent(path);
        let wh = if dir == "/" {
            format!("/.wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file_bytes(&wh, b"")
    }
    /// `.wh..wh..opq`: hides lower children of `dir`.
    pub fn opaque(self, dir: &str) -> Self {
        let p = format!("{}/.wh..wh..opq", dir.trim_end_matches('/'));
        self.file_bytes(&p, b"")
    }
    /// Raw bytes appended to the tar stream (for hostile-input tests).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.ops.push(Op::Raw(bytes.to_vec()));
        self
    }

    /// The layer as an uncompressed tar stream.
    pub fn tar(&self) -> Vec<u8> {
        self.tar_with(false)
    }

    /// The layer as a tar stream; `compressible` makes seeded files repeat a
    /// 4 KiB block, so examples compress to a few kilobytes.
    pub fn tar_with(&self, compressible: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        for op in &self.ops {
            match op {
                Op::File { path, data } => {
                    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
                    append_named(&mut b, &mut h, path, data);
                }
                Op::Seeded { path, len, seed } => {
                    let data = if compressible {
                        seeded_bytes(*seed, 4096)
                            .into_iter()
                            .cycle()
                            .take(*len)
                            .collect()
                    } else {
                        seeded_bytes(*seed, *len)
                    };
                    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
                    append_named(&mut b, &mut h, path, &data);
                }
                Op::PaxFile { path, data } => {
                    b.append_pax_extensions([("path", path.as_slice())])
                        .unwrap();
                    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
                    h.set_path("pax-placeholder").unwrap();
                    h.set_cksum();
                    b.append(&h, data.as_slice()).unwrap();
                }
                Op::Dir(p) => {
                    let mut h = header(tar::EntryType::Directory, 0o755, 0);
                    append_named(&mut b, &mut h, p, &[]);
                }
                Op::Symlink(p, t) => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                    set_link(&mut h, t);
                    append_named(&mut b, &mut h, p, &[]);
                }
                Op::HardLink(p, t) => {
                    let mut h = header(tar::EntryType::Link, 0o644, 0);
                    set_link(&mut h, t);
                    append_named(&mut b, &mut h, p, &[]);
                }
                Op::Fifo(p) => {
                    let mut h = header(tar::EntryType::Fifo, 0o644, 0);
                    append_named(&mut b, &mut h, p, &[]);
                }
                Op::Raw(bytes) => {
                    b.get_mut().extend_from_slice(bytes);
                }
            }
        }
        b.into_inner().unwrap()
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn set_link(h: &mut tar::Header, target: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    h.set_link_name(std::ffi::OsStr::from_bytes(target))
        .unwrap();
}

fn append_named(b: &mut tar::Builder<Vec<u8>>, h: &mut tar::Header, path: &[u8], data: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    // `append_data` writes GNU long-name records for paths over 100 bytes; it
    // refuses `..` and absolute names, which hostile-input tests need, so
    // those are written by hand.
    if b.append_data(h, std::ffi::OsStr::from_bytes(path), data)
        .is_ok()
    {
        return;
    }
    if path.len() >= 100 {
        let mut l = header(tar::EntryType::GNULongName, 0o644, path.len() as u64 + 1);
        l.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        l.set_cksum();
        let mut name = path.to_vec();
        name.push(0);
        b.append(&l, name.as_slice()).unwrap();
    }
    let name = &mut h.as_old_mut().name;
    name.fill(0);
    let n = path.len().min(100);
    name[..n].copy_from_slice(&path[..n]);
    h.set_cksum();
    b.append(h, data).unwrap();
}

/// Compresses bytes as a layer blob would be (gzip level 1).
pub fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    compress_at(data, c, 1)
}

/// Compresses bytes as a layer blob would be, gzip at `gzip_level`.
pub fn compress_at(data: &[u8], c: Compression, gzip_level: u32) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let level = flate2::Compression::new(gzip_level);
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
    }
}

#[derive(Debug, Clone)]
struct Step {
    created_by: String,
    layer: Option<LayerBuilder>,
}

/// Builds deterministic images.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    steps: Vec<Step>,
    compression: Compression,
    name: String,
    os: String,
    arch: String,
    variant: Option<String>,
    history: bool,
    compressible: bool,
    gzip_level: u32,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// One finished layer.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// Uncompressed tar.
    pub tar: Vec<u8>,
    /// Stored blob.
    pub blob: Vec<u8>,
    /// Blob digest.
    pub digest: String,
    /// Tar digest.
    pub diff_id: String,
}

/// An image's pieces before they are written in a format.
#[derive(Debug, Clone)]
pub struct Built {
    pub layers: Vec<BuiltLayer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub name: String,
    pub platform: (String, String, Option<String>),
}

impl ImageBuilder {
    /// An empty image named `mlsize/test:latest` for linux/amd64, gzip layers.
    pub fn new() -> Self {
        ImageBuilder {
            steps: Vec::new(),
            compression: Compression::Gzip,
            name: "mlsize/test:latest".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
            history: true,
            compressible: false,
            gzip_level: 1,
        }
    }
    /// Adds a layer created by `created_by`.
    pub fn layer(mut self, created_by: &str, f: impl FnOnce(LayerBuilder) -> LayerBuilder) -> Self {
        self.steps.push(Step {
            created_by: created_by.into(),
            layer: Some(f(LayerBuilder::default())),
        });
        self
    }
    /// Adds a history entry that creates no layer (`ENV`, `CMD`, ...).
    pub fn empty(mut self, created_by: &str) -> Self {
        self.steps.push(Step {
            created_by: created_by.into(),
            layer: None,
        });
        self
    }
    /// Layer compression (default gzip).
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    /// Image name and tag.
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.into();
        self
    }
    /// Platform.
    pub fn platform(mut self, os: &str, arch: &str, variant: Option<&str>) -> Self {
        self.os = os.into();
        self.arch = arch.into();
        self.variant = variant.map(str::to_string);
        self
    }
    /// Seeded files repeat a 4 KiB block (small archives for examples).
    pub fn compressible(mut self) -> Self {
        self.compressible = true;
        self
    }
    /// gzip level of gzip layers (default 1, the fastest).
    pub fn gzip_level(mut self, level: u32) -> Self {
        self.gzip_level = level;
        self
    }
    /// Leaves `history` out of the config.
    pub fn without_history(mut self) -> Self {
        self.history = false;
        self
    }

    /// Layers, config and manifest, with their digests.
    pub fn build(&self) -> Built {
        let mut layers = Vec::new();
        let mut history = Vec::new();
        for s in &self.steps {
            match &s.layer {
                Some(l) => {
                    let tar = l.tar_with(self.compressible);
                    let blob = compress_at(&tar, self.compression, self.gzip_level);
                    layers.push(BuiltLayer {
                        digest: sha256(&blob),
                        diff_id: sha256(&tar),
                        tar,
                        blob,
                    });
                    history.push(serde_json::json!({"created": "1970-01-01T00:00:00Z", "created_by": s.created_by}));
                }
                None => history.push(serde_json::json!({"created": "1970-01-01T00:00:00Z", "created_by": s.created_by, "empty_layer": true})),
            }
        }
        let mut config = serde_json::json!({
            "architecture": self.arch,
            "os": self.os,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        });
        if let Some(v) = &self.variant {
            config["variant"] = v.clone().into();
        }
        if self.history {
            config["history"] = history.into();
        }
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = sha256(&config);
        let media = match self.compression {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layers.iter().map(|l| serde_json::json!({"mediaType": media, "digest": l.digest, "size": l.blob.len()})).collect::<Vec<_>>(),
        }))
        .unwrap();
        let manifest_digest = sha256(&manifest);
        Built {
            layers,
            config,
            config_digest,
            manifest,
            manifest_digest,
            name: self.name.clone(),
            platform: (self.os.clone(), self.arch.clone(), self.variant.clone()),
        }
    }

    /// A legacy `docker save` archive (`<id>/layer.tar`, `manifest.json` last).
    pub fn docker_archive(&self) -> Vec<u8> {
        docker_archive(&[self.build()], false)
    }

    /// A Docker 25+ `docker save` archive: an OCI layout plus `manifest.json`.
    pub fn docker_oci_archive(&self) -> Vec<u8> {
        let b = self.build();
        let mut files = oci_files(&[(&b, true)], true);
        let entry = serde_json::json!([{
            "Config": format!("blobs/sha256/{}", &b.config_digest[7..]),
            "RepoTags": [b.name],
            "Layers": b.layers.iter().map(|l| format!("blobs/sha256/{}", &l.digest[7..])).collect::<Vec<_>>(),
        }]);
        files.push(("manifest.json".into(), serde_json::to_vec(&entry).unwrap()));
        tar_of(&files)
    }

    /// An oci-archive (a tar of an OCI layout), as `skopeo copy ... oci-archive:` writes.
    pub fn oci_archive(&self) -> Vec<u8> {
        tar_of(&oci_files(&[(&self.build(), true)], false))
    }

    /// An OCI image layout directory.
    pub fn oci_layout(&self, dir: &Path) {
        write_dir(dir, &oci_files(&[(&self.build(), true)], false));
    }
}

/// Files of an OCI layout holding the given images (each with or without a
/// platform in its index descriptor). With `docker_names`, names use
/// `io.containerd.image.name` as Docker 25+ does.
pub fn oci_files(images: &[(&Built, bool)], docker_names: bool) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut descs = Vec::new();
    for (b, with_platform) in images {
        for l in &b.layers {
            files.push((format!("blobs/sha256/{}", &l.digest[7..]), l.blob.clone()));
        }
        files.push((
            format!("blobs/sha256/{}", &b.config_digest[7..]),
            b.config.clone(),
        ));
        files.push((
            format!("blobs/sha256/{}", &b.manifest_digest[7..]),
            b.manifest.clone(),
        ));
        let tag = b.name.rsplit_once(':').map(|x| x.1).unwrap_or("latest");
        let mut d = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": b.manifest_digest,
            "size": b.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        });
        if docker_names {
            d["annotations"]["io.containerd.image.name"] = format!("docker.io/{}", b.name).into();
        }
        if *with_platform {
            let (os, arch, variant) = &b.platform;
            d["platform"] = serde_json::json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                d["platform"]["variant"] = v.clone().into();
            }
        }
        descs.push(d);
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.dedup_by(|a, b| a.0 == b.0);
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs});
    files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec(),
    ));
    files
}

/// A legacy docker-save archive of several images; `manifest_first` puts the
/// metadata before the layers (docker writes it last).
pub fn docker_archive(images: &[Built], manifest_first: bool) -> Vec<u8> {
    let mut layer_files = Vec::new();
    let mut entries = Vec::new();
    let mut configs = Vec::new();
    for b in images {
        let mut paths = Vec::new();
        for l in &b.layers {
            let id = &l.diff_id[7..];
            layer_files.push((format!("{id}/VERSION"), b"1.0".to_vec()));
            layer_files.push((
                format!("{id}/json"),
                format!("{{\"id\":\"{id}\"}}").into_bytes(),
            ));
            layer_files.push((format!("{id}/layer.tar"), l.blob.clone()));
            paths.push(format!("{id}/layer.tar"));
        }
        let cfg = format!("{}.json", &b.config_digest[7..]);
        configs.push((cfg.clone(), b.config.clone()));
        entries.push(serde_json::json!({"Config": cfg, "RepoTags": [b.name], "Layers": paths}));
    }
    layer_files.dedup_by(|a, b| a.0 == b.0);
    let meta = vec![
        (
            "manifest.json".to_string(),
            serde_json::to_vec(&entries).unwrap(),
        ),
        ("repositories".to_string(), b"{}".to_vec()),
    ];
    let mut files = Vec::new();
    if manifest_first {
        files.extend(meta.clone());
        files.extend(configs);
        files.extend(layer_files);
    } else {
        files.extend(layer_files);
        files.extend(configs);
        files.extend(meta);
    }
    tar_of(&files)
}

/// A tar of (path, bytes) members, deterministic.
pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in files {
        let mut h = header(tar::EntryType::Regular, 0o644, d.len() as u64);
        b.append_data(&mut h, p, d.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes (path, bytes) files below `dir`.
pub fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (p, d) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, d).unwrap();
    }
}

// ---- Sample images shared by tests, benches and the README example ----

/// Where the CUDA toolkit keeps its libraries.
pub const LIB: &str = "/usr/local/cuda-12.4/targets/x86_64-linux/lib";
/// PyTorch's site-packages.
pub const SP: &str = "/usr/local/lib/python3.11/site-packages";

/// The base layer both samples share.
fn ml_base(b: ImageBuilder, scale: usize) -> ImageBuilder {
    b.layer("/bin/sh -c #(nop) ADD file:0a1b2c in / ", |l| {
        l.file("/usr/bin/python3", 20_000 * scale)
            .file("/usr/share/doc/libc6/copyright", 3_000 * scale)
            .file("/usr/include/stdio.h", 1_000 * scale)
    })
}

/// A naive ML image, sizes multiplied by `scale`:
/// `nvidia/cuda:12.4-devel` + apt + `pip install torch` with its cache, cache deleted later.
pub fn naive_ml(scale: usize) -> ImageBuilder {
    ml_base(ImageBuilder::new().name("ml/naive:1"), scale)
        .layer("/bin/sh -c apt-get update && apt-get install -y python3-pip", |l| {
            l.file("/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", 50_000 * scale)
                .file("/usr/lib/python3/dist-packages/pip/__init__.py", 8_000 * scale)
        })
        .empty("/bin/sh -c #(nop)  ENV CUDA_VERSION=12.4.1")
        .layer("/bin/sh -c #(nop) COPY dir:cuda in /usr/local/cuda-12.4 ", |l| {
            l.file_seeded(&format!("{LIB}/libcublasLt.so.12.4.5.8"), 300_000 * scale, 100)
                .file_seeded(&format!("{LIB}/libcudart.so.12.4.127"), 100_000 * scale, 101)
                .file_seeded("/usr/local/cuda-12.4/extras/CUPTI/lib64/libcupti.so.2024.1.0", 80_000 * scale, 102)
                .file("/usr/local/cuda-12.4/targets/x86_64-linux/include/cublas_v2.h", 5_000 * scale)
                .file(&format!("{LIB}/libcublas_static.a"), 150_000 * scale)
                .file("/usr/local/cuda-12.4/bin/nvcc", 60_000 * scale)
                .file("/opt/nvidia/nsight-compute/2024.1.0/ncu", 90_000 * scale)
        })
        .layer("RUN /bin/sh -c pip install torch # buildkit", |l| {
            l.file("/root/.cache/pip/http-v2/a/b/c/body", 400_000 * scale)
                .file_seeded(&format!("{SP}/nvidia/cublas/lib/libcublasLt.so.12"), 300_000 * scale, 100)
                .file_seeded(&format!("{SP}/nvidia/cuda_runtime/lib/libcudart.so.12"), 90_000 * scale, 200)
                .file_seeded(&format!("{SP}/nvidia/cuda_cupti/lib/libcupti.so.12"), 80_000 * scale, 102)
                .file(&format!("{SP}/torch/lib/libtorch_cuda.so"), 500_000 * scale)
                .file(&format!("{SP}/torch/__pycache__/functional.cpython-311.pyc"), 2_000 * scale)
        })
        .layer("RUN /bin/sh -c rm -rf /root/.cache/pip # buildkit", |l| {
            l.whiteout("/root/.cache/pip")
        })
        .layer("COPY app /app # buildkit", |l| l.file("/app/main.py", 1_000 * scale))
}

/// Its optimised twin (sizes times `scale`): the same app built well: slim base, `--no-cache-dir`, no CUDA toolkit.
pub fn optimized_ml(scale: usize) -> ImageBuilder {
    ml_base(ImageBuilder::new().name("ml/optimized:1"), scale)
        .layer(
            "RUN /bin/sh -c pip install --no-cache-dir torch # buildkit",
            |l| {
                l.file_seeded(
                    &format!("{SP}/nvidia/cublas/lib/libcublasLt.so.12"),
                    300_000 * scale,
                    100,
                )
                .file_seeded(
                    &format!("{SP}/nvidia/cuda_runtime/lib/libcudart.so.12"),
                    90_000 * scale,
                    200,
                )
                .file_seeded(
                    &format!("{SP}/nvidia/cuda_cupti/lib/libcupti.so.12"),
                    80_000 * scale,
                    102,
                )
                .file(&format!("{SP}/torch/lib/libtorch_cuda.so"), 500_000 * scale)
                .file(
                    &format!("{SP}/torch/__pycache__/functional.cpython-311.pyc"),
                    2_000 * scale,
                )
            },
        )
        .layer("COPY app /app # buildkit", |l| {
            l.file("/app/main.py", 1_000 * scale)
        })
}
