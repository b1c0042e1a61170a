//! The outer archive reader (docker-save, OCI layout in a tar, whole-archive
//! gzip/zstd), end to end through the report.
#![no_main]

use std::io::Cursor;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mlsize::category::Rules;
use mlsize::layer::ScanOptions;
use mlsize::report::{ReportOptions, analyze};
use mlsize::source::meta::Selection;
use mlsize::source::{LoadOptions, open_reader};

fuzz_target!(|data: &[u8]| {
    let rules = Arc::new(Rules::builtin());
    for verify in [true, false] {
        let opts = LoadOptions {
            selection: Selection {
                image: None,
                platform: None,
                verify,
            },
            scan: ScanOptions {
                verify,
                hash_content: true,
                hash_sizes: None,
                rules: rules.clone(),
                max_uncompressed_bytes: Some(64 << 20),
                progress: None,
            },
            threads: 1,
            cache: None,
            census: None,
        };
        let src = open_reader("fuzz", Box::new(Cursor::new(data.to_vec())));
        if let Ok(img) = src.load(&opts) {
            let ro = ReportOptions {
                top: 5,
                dup_min_bytes: 1,
                base_diff_ids: None,
                source: "fuzz".into(),
                content_hashed: true,
            };
            let a = analyze(img, &rules, &ro);
            let im = &a.report.image;
            assert_eq!(im.content_bytes, im.visible_bytes + im.wasted_bytes);
        }
    }
});
