//! Byte sizes for people: one unit family per table (binary by default,
//! decimal with `--si`). Parsing sizes the user typed is input handling and
//! lives in [`crate::size`].

/// Formats bytes with one decimal: `7.6 GiB` (binary) or `8.2 GB` (`si`).
///
/// The unit steps up once the figure would show 1000 or more of the smaller
/// unit (as `999.9 MiB`, then `1.0 GiB`), so a figure never needs four digits
/// before the point (`1000.4 KiB` is shown as `1.0 MiB`).
pub fn format_bytes(bytes: u64, si: bool) -> String {
    let (base, units): (f64, [&str; 7]) = if si {
        (1000.0, ["B", "kB", "MB", "GB", "TB", "PB", "EB"])
    } else {
        (1024.0, ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"])
    };
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / base;
    let mut u = 1;
    // 999.95 rounds to 1000.0 at one decimal: step up before printing it.
    while v >= 999.95 && u < units.len() - 1 {
        v /= base;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

/// Formats a signed byte delta: `+1.2 GiB`, `-3.0 MiB`, `0 B`.
pub fn format_delta(delta: i128, si: bool) -> String {
    let mag = format_bytes(delta.unsigned_abs().min(u128::from(u64::MAX)) as u64, si);
    match delta.signum() {
        1 => format!("+{mag}"),
        -1 => format!("-{mag}"),
        _ => mag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_bytes(0, false), "0 B");
        assert_eq!(format_bytes(999, false), "999 B");
        assert_eq!(format_bytes(1000, false), "1.0 KiB");
        assert_eq!(format_bytes(1023, false), "1.0 KiB");
        assert_eq!(format_bytes(1024, false), "1.0 KiB");
        // See: issue 11 item 14 (`docs 1000.4 KiB`).
        assert_eq!(format_bytes(1_024_410, false), "1.0 MiB");
        assert_eq!(format_bytes(999 * 1024 + 900, false), "999.9 KiB");
        assert_eq!(format_bytes(999 * 1024 + 990, false), "1.0 MiB");
        assert_eq!(format_bytes(999_949, true), "999.9 kB");
        assert_eq!(format_bytes(999_950, true), "1.0 MB");
        assert_eq!(format_bytes(u64::MAX, false), "16.0 EiB");
        assert_eq!(format_bytes(8_160_437_862, false), "7.6 GiB");
        assert_eq!(format_bytes(7_600_000_000, true), "7.6 GB");
        assert_eq!(format_delta(-1536, false), "-1.5 KiB");
        assert_eq!(format_delta(0, false), "0 B");
    }
}
