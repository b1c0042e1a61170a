//! The outer archive reader (docker-save, OCI layout in a tar, whole-archive
//! gzip/zstd), end to end through the report. A plain archive is also read
//! from a file (indexed, layers read at offsets, uncompressed layers indexed
//! from their headers and hashed by size census): when both reads succeed,
//! they must report the same files, bytes, categories and duplicates.
#![no_main]

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use mlsize::category::Rules;
use mlsize::layer::ScanOptions;
use mlsize::report::{Report, ReportOptions, analyze};
use mlsize::source::meta::Selection;
use mlsize::source::{LoadOptions, open, open_reader};

static RUN: AtomicU64 = AtomicU64::new(0);

/// What both ways of reading must agree on.
fn figures(r: &Report) -> String {
    let i = &r.image;
    format!(
        "{} {} {} {} {:?} {:?} {:?} {:?}",
        i.content_bytes,
        i.visible_bytes,
        i.wasted_bytes,
        i.files,
        r.categories,
        r.duplicates,
        r.cuda_duplicates,
        r.top_files
    )
}

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
                cancel: None,
            },
            threads: 1,
            cache: None,
            disk: None,
            census: None,
            progress_total: None,
            layer_progress: None,
        };
        let ro = ReportOptions {
            top: 5,
            dup_min_bytes: 1,
            base_diff_ids: None,
            source: "fuzz".into(),
            content_hashed: true,
        };
        let src = open_reader("fuzz", Box::new(Cursor::new(data.to_vec())));
        let streamed = src.load(&opts).ok().map(|img| {
            let a = analyze(img, &rules, &ro);
            let im = &a.report.image;
            assert_eq!(im.content_bytes, im.visible_bytes + im.wasted_bytes);
            a.report
        });
        if data.len() < 512 || data[0] == 0x1f || data[0] == 0x28 {
            continue;
        }
        let path = std::env::temp_dir().join(format!(
            "mlsize-fuzz-archive-{}-{}.tar",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed) % 4
        ));
        std::fs::write(&path, data).unwrap();
        let seekable = open(path.to_str().unwrap())
            .and_then(|src| {
                src.load(&LoadOptions {
                    threads: 2,
                    ..opts.clone()
                })
            })
            .ok()
            .map(|img| analyze(img, &rules, &ro).report);
        let _ = std::fs::remove_file(&path);
        if let (Some(s), Some(k)) = (&streamed, &seekable) {
            assert_eq!(figures(s), figures(k), "verify {verify}");
        }
    }
});
