//! Budget files, dive CI files, category rule files and size strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsize::category::Rules;
use mlsize::size::parse_size;
use mlsize::report::budget::Budget;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let rules = Rules::builtin();
    let _ = Budget::parse(&s, "fuzz.toml", &rules);
    let _ = Budget::from_dive_ci(&s, ".dive-ci");
    let _ = Rules::with_user_file(&s, "rules.toml");
    let _ = parse_size(&s);
});
