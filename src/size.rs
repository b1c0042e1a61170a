//! Sizes the user types (`3GB`, `2.5GiB`, `500`): input handling shared by the
//! command line, budget files and dive rules. Turning sizes back into words is
//! rendering ([`crate::render::units`]).

/// Parses a size: an integer of bytes, or a number with a unit. `kB MB GB TB`
/// are decimal (powers of 1000), `KiB MiB GiB TiB` binary (powers of 1024);
/// `K M G T` alone are binary, as in `du` and `docker`. Case-insensitive except
/// that the `i` marks binary.
///
/// ```
/// use mlsize::size::parse_size;
/// assert_eq!(parse_size("3GB"), Ok(3_000_000_000));
/// assert_eq!(parse_size("2.5GiB"), Ok(2_684_354_560));
/// assert_eq!(parse_size("500"), Ok(500));
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num = num.replace('_', "");
    let unit = unit.trim();
    let expected = || {
        format!(
            "invalid size '{s}': expected a number followed by B, kB, MB, GB, TB (decimal) or KiB, MiB, GiB, TiB (binary), e.g. 3GB or 2.5GiB"
        )
    };
    if num.is_empty() {
        return Err(expected());
    }
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000u64.pow(2),
        "gb" => 1000u64.pow(3),
        "tb" => 1000u64.pow(4),
        "k" | "kib" => 1024,
        "m" | "mib" => 1024u64.pow(2),
        "g" | "gib" => 1024u64.pow(3),
        "t" | "tib" => 1024u64.pow(4),
        _ => return Err(expected()),
    };
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(mult)
            .ok_or_else(|| format!("size '{s}' is too large"));
    }
    let f: f64 = num.parse().map_err(|_| expected())?;
    let v = f * mult as f64;
    if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
        return Err(format!("size '{s}' is too large"));
    }
    Ok(v.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        let ok = [
            ("0", 0),
            ("500", 500),
            ("500B", 500),
            ("1kB", 1000),
            ("1KiB", 1024),
            ("100MB", 100_000_000),
            ("3GB", 3_000_000_000),
            ("3 GB", 3_000_000_000),
            ("2.5GiB", 2_684_354_560),
            ("1G", 1 << 30),
            ("1_000", 1000),
        ];
        for (s, want) in ok {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
        for bad in ["", "GB", "12XB", "-1", "1.2.3MB"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains(bad) || bad.is_empty(), "{e}");
        }
        assert!(
            parse_size("99999999999TB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
