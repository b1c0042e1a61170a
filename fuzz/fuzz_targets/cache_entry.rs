//! Layer-cache entries: files in a shared directory, parsed with the same
//! care as image input. Whatever the bytes (framed with a valid checksum or
//! not), decoding never panics, and an
//! entry that decodes feeds the overlay without panicking; one that
//! round-trips encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsize::overlay::Overlay;
use mlsize::source::cache::{CacheKey, decode_entry, encode_entry, frame_payload};

fuzz_target!(|data: &[u8]| {
    // A first byte 0: the rest is a payload (postcard, uncompressed), framed
    // with a valid checksum, as a hostile writer would; else an entry file.
    let framed;
    let file = match data.split_first() {
        Some((0, payload)) => match frame_payload(payload) {
            Some(f) => {
                framed = f;
                &framed[..]
            }
            None => return,
        },
        _ => data,
    };
    let Ok((scan, hashed)) = decode_entry(file, None) else {
        return;
    };
    let Some(key) = scan
        .blob_digest
        .as_deref()
        .and_then(|d| CacheKey::new(d, scan.compressed_bytes))
    else {
        return;
    };
    if let Some(again) = encode_entry(&key, &scan, hashed) {
        let (back, h) = decode_entry(&again, Some(&key)).expect("a re-encoded entry decodes");
        assert_eq!(h, hashed);
        assert_eq!(format!("{back:?}"), format!("{scan:?}"), "round trip");
    }
    let mut o = Overlay::new();
    o.apply_layer(0, scan.entries.clone());
    o.apply_layer(1, scan.entries);
    let _ = o.finish(|_| 0);
});
