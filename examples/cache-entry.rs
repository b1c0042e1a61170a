//! Size on disk and load time of a layer-cache entry for a layer of N files
//! (issue 14: 40,000 files well under 2 MB, loaded in under 50 ms).
//!
//! `cargo run --release --example cache-entry -- [FILES...] [--paths-from DIR]`
//!
//! Paths are the regular files under DIR (default /usr: real names, real
//! nesting), repeated under numbered prefixes when more are asked for; sizes
//! are theirs; content hashes are pseudo-random (incompressible, as real
//! ones are). Prints one line per file count.

use std::path::Path;
use std::time::Instant;

use mlsize::layer::{Compression, EntryKind, LayerEntry, LayerScan};
use mlsize::source::cache::{CacheKey, decode_entry, encode_entry};

fn walk(dir: &Path, out: &mut Vec<(String, u64)>, max: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut v: Vec<_> = rd.filter_map(Result::ok).collect();
    v.sort_by_key(|e| e.file_name());
    for e in v {
        if out.len() >= max {
            return;
        }
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            walk(&p, out, max);
        } else if ft.is_file()
            && let (Some(s), Ok(md)) = (p.to_str(), e.metadata())
        {
            out.push((s.to_string(), md.len()));
        }
    }
}

fn main() {
    let mut counts = Vec::new();
    let mut from = "/usr".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--paths-from" {
            from = args.next().expect("--paths-from DIR");
        } else {
            counts.push(a.parse::<usize>().expect("a file count"));
        }
    }
    if counts.is_empty() {
        counts = vec![40_000, 1_000_000];
    }
    let mut real = Vec::new();
    walk(Path::new(&from), &mut real, 200_000);
    assert!(!real.is_empty(), "no files under {from}");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    println!("files      entry bytes  bytes/file  encode ms  load ms (median of 5)");
    for n in counts {
        let entries: Vec<LayerEntry> = (0..n)
            .map(|i| {
                let (p, bytes) = &real[i % real.len()];
                let path = match i / real.len() {
                    0 => p.clone(),
                    k => format!("/copy{k}{p}"),
                };
                let mut hash = [0u8; 16];
                hash[..8].copy_from_slice(&rnd().to_le_bytes());
                hash[8..].copy_from_slice(&rnd().to_le_bytes());
                LayerEntry {
                    path: path.into_boxed_str(),
                    kind: EntryKind::File,
                    bytes: *bytes,
                    hash,
                    category: 0,
                    data: None,
                }
            })
            .collect();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let scan = LayerScan {
            compression: Compression::Gzip,
            compressed_bytes: 1 << 30,
            blob_digest: Some(digest.clone()),
            tar_bytes: 3 << 30,
            diff_id: Some(digest.clone()),
            estimated_gzip_bytes: None,
            entries,
            warnings: Vec::new(),
        };
        let key = CacheKey::new(&digest, 1 << 30).expect("key");
        let t = Instant::now();
        let bytes = encode_entry(&key, &scan, true).expect("encodes");
        let encode = t.elapsed();
        let mut loads: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let (s, _) = decode_entry(&bytes, Some(&key)).expect("decodes");
                assert_eq!(s.entries.len(), n);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        loads.sort_by(f64::total_cmp);
        println!(
            "{n:>9}  {:>11}  {:>10.1}  {:>9.0}  {:>7.1}",
            bytes.len(),
            bytes.len() as f64 / n as f64,
            encode.as_secs_f64() * 1e3,
            loads[2]
        );
    }
}
