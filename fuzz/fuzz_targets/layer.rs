//! The layer scanner: a blob (plain, gzip or zstd tar) → entries.
#![no_main]

use std::io::Cursor;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mlsize::category::Rules;
use mlsize::layer::{ScanOptions, scan_layer};
use mlsize::overlay::Overlay;

fuzz_target!(|data: &[u8]| {
    let rules = Arc::new(Rules::builtin());
    let opts = ScanOptions {
        verify: true,
        hash_content: true,
        hash_sizes: None,
        rules: rules.clone(),
        max_uncompressed_bytes: Some(64 << 20),
        progress: None,
        cancel: None,
    };
    if let Ok(scan) = scan_layer(Cursor::new(data), Some(data.len() as u64), &opts) {
        assert_eq!(scan.compressed_bytes, data.len() as u64);
        let mut o = Overlay::new();
        o.apply_layer(0, scan.entries.clone());
        o.apply_layer(1, scan.entries);
        let m = o.finish(|p| rules.classify(p));
        let _ = m.inodes.iter().filter(|i| i.visible).count();
    }
});
