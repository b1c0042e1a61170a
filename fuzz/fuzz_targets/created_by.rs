//! `created_by` → instruction, and Dockerfile parsing/matching.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsize::history::{dockerfile, instruction, match_key};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let i = instruction(&s);
    let _ = match_key(&i);
    let d = dockerfile::parse(&s);
    let _ = dockerfile::find_line(&d, &i);
    // The input's lines as a history, matched against itself as a Dockerfile.
    let h: Vec<String> = s.lines().map(instruction).collect();
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let lines = dockerfile::match_history(&d, &h);
    assert_eq!(lines.len(), h.len());
    let _ = dockerfile::final_from_line(&d);
});
