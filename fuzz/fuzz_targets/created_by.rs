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
});
