//! Layer scanning throughput (criterion): one layer of 200,000 small files, and
//! layers of large files, each stored plain, gzip and zstd. Throughput is
//! reported in bytes of uncompressed tar per second. `none-no-verify-indexed`
//! is the path for uncompressed layers in a file read without verification.
//!
//! `cargo bench --bench scan`. The end-to-end comparison with dive, diving
//! and the decompression floor is `benches/gen-image.py` plus the README.

use std::io::{Cursor, Write};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mlsize::category::Rules;
use mlsize::layer::{
    BlobReader, Compression, ScanOptions, hash_indexed, index_plain_layer, scan_layer,
};
use mlsize::testutil::{LayerBuilder, compress};

fn small_files(n: usize) -> Vec<u8> {
    let mut l = LayerBuilder::default();
    for i in 0..n {
        l = l.file(
            &format!("/usr/lib/python3.11/site-packages/pkg{}/mod{i}.py", i % 500),
            512 + i % 2048,
        );
    }
    l.tar()
}

fn large_files() -> Vec<u8> {
    let mut l = LayerBuilder::default();
    for i in 0..4 {
        l = l.file(&format!("/usr/local/cuda/lib64/libbig{i}.so"), 5 << 20);
    }
    l.tar()
}

fn bench(c: &mut Criterion) {
    let rules = Arc::new(Rules::builtin());
    for (name, tar) in [
        ("200k-small-files", small_files(200_000)),
        ("large-files", large_files()),
    ] {
        let mut g = c.benchmark_group(name);
        g.sample_size(10);
        g.throughput(Throughput::Bytes(tar.len() as u64));
        for comp in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let blob = compress(&tar, comp);
            for verify in [true, false] {
                let opts = ScanOptions {
                    verify,
                    hash_content: true,
                    hash_sizes: None,
                    rules: rules.clone(),
                    max_uncompressed_bytes: None,
                    progress: None,
                    cancel: None,
                };
                let id = format!("{}{}", comp.name(), if verify { "" } else { "-no-verify" });
                g.bench_function(id, |b| {
                    b.iter(|| {
                        scan_layer(Cursor::new(&blob), Some(blob.len() as u64), &opts)
                            .map(|s| s.entries.len())
                    })
                });
            }
        }
        // An uncompressed layer in a file, without verification: indexed from
        // its headers, then only the files whose size repeats are hashed (as
        // mlsize does for docker-save archives and OCI layouts).
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(&tar).expect("write layer");
        let opts = ScanOptions {
            verify: false,
            hash_content: true,
            hash_sizes: None,
            rules: rules.clone(),
            max_uncompressed_bytes: None,
            progress: None,
            cancel: None,
        };
        g.bench_function("none-no-verify-indexed", |b| {
            b.iter(|| {
                let reader = BlobReader::new(file.try_clone()?, 0, tar.len() as u64)?;
                let ix = index_plain_layer(reader, &opts).map_err(std::io::Error::other)?;
                let mut o = opts.clone();
                let repeated = ix.size_counts().into_iter().filter(|c| c.1 > 1);
                let repeated = repeated.map(|c| c.0);
                o.hash_sizes = Some(Arc::new(repeated.collect()));
                hash_indexed(ix, &file, 0, &o)
                    .map(|s| s.entries.len())
                    .map_err(std::io::Error::other)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
