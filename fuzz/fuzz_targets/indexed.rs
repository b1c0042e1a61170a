//! The indexed path for uncompressed layers, against the streaming scanner:
//! indexing a plain tar from its headers and hashing its files afterwards must
//! give exactly the entries one streaming pass gives (or fail when it fails),
//! and the size count must never miss a file.
#![no_main]

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use mlsize::category::Rules;
use mlsize::layer::{
    BlobReader, Compression, EntryKind, LayerScan, ReadBudget, ScanOptions, count_plain_file_sizes,
    hash_indexed, index_plain_layer, scan_layer,
};

static RUN: AtomicU64 = AtomicU64::new(0);

fn seen(s: &LayerScan) -> Vec<(String, EntryKind, u64, [u8; 16], Option<Vec<u8>>)> {
    s.entries
        .iter()
        .map(|e| {
            let data = e.data.as_ref().map(|d| d.to_vec());
            (e.path.to_string(), e.kind.clone(), e.bytes, e.hash, data)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if !matches!(Compression::sniff(data), Ok(Compression::None)) {
        return;
    }
    let opts = ScanOptions {
        verify: false,
        hash_content: true,
        hash_sizes: None,
        rules: Arc::new(Rules::builtin()),
        max_uncompressed_bytes: Some(64 << 20),
        progress: None,
        cancel: None,
    };
    let path = std::env::temp_dir().join(format!(
        "mlsize-fuzz-indexed-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed) % 4
    ));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"prefix").unwrap();
    f.write_all(data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let len = data.len() as u64;
    let streamed = scan_layer(Cursor::new(data), Some(data.len() as u64), &opts);
    let indexed = BlobReader::new(file.try_clone().unwrap(), 6, len)
        .map_err(|e| e.to_string())
        .and_then(|r| index_plain_layer(r, &opts))
        .and_then(|ix| hash_indexed(ix, &file, 6, &opts));
    match (&streamed, &indexed) {
        (Ok(s), Ok(i)) => {
            assert_eq!(seen(s), seen(i));
            assert_eq!(s.warnings, i.warnings);
            assert_eq!(
                (s.compressed_bytes, s.tar_bytes),
                (i.compressed_bytes, i.tar_bytes)
            );
            // The gzip estimate samples the same blocks, streamed or read at offsets.
            assert_eq!(s.estimated_gzip_bytes, i.estimated_gzip_bytes);
            assert!(s.estimated_gzip_bytes.is_some());
        }
        (Err(_), Err(_)) => {}
        (s, i) => panic!(
            "streamed {:?} but indexed {:?}",
            s.as_ref().map(|_| ()),
            i.as_ref().map(|_| ())
        ),
    }
    let mut counts = HashMap::new();
    let reader = BlobReader::new(file, 6, len).unwrap();
    let counted = count_plain_file_sizes(reader, &mut counts, &ReadBudget::for_image(len));
    if let Ok(s) = &streamed {
        assert_eq!(counted, Ok(true));
        let mut need: HashMap<u64, u32> = HashMap::new();
        for e in s.entries.iter().filter(|e| e.kind == EntryKind::File) {
            *need.entry(e.bytes).or_insert(0) += 1;
        }
        for (size, n) in need {
            assert!(
                counts.get(&size).copied().unwrap_or(0) >= n,
                "size {size} undercounted"
            );
        }
    }
    let _ = std::fs::remove_file(&path);
});
