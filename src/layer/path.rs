//! Normalisation of paths read from tar headers into image paths.
//!
//! Image paths are names, never host paths: they are never joined to a host
//! directory or looked up on the host. `./a/b`, `a//b/` and `/a/./b` all become
//! `/a/b`; `..` cannot climb above `/` (as containerd's and umoci's secure joins
//! clamp it), and bytes that are not UTF-8 are kept distinct as `\xNN` escapes.

/// What was unusual about a raw path (each is worth a warning).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PathFlags {
    /// A `..` component tried to climb above the root.
    pub escapes_root: bool,
    /// The path had a `..` component at all.
    pub has_dotdot: bool,
    /// Some bytes were not valid UTF-8 and were escaped.
    pub non_utf8: bool,
}

/// Normalises raw tar path bytes to an absolute, `/`-separated image path.
///
/// ```
/// use mlsize::layer::path::normalize;
/// assert_eq!(normalize(b"./usr/lib//x.so/").0, "/usr/lib/x.so");
/// assert_eq!(normalize(b"../../etc/passwd").0, "/etc/passwd");
/// assert_eq!(normalize(b"./").0, "/");
/// ```
pub fn normalize(raw: &[u8]) -> (String, PathFlags) {
    let mut flags = PathFlags::default();
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                flags.has_dotdot = true;
                if parts.pop().is_none() {
                    flags.escapes_root = true;
                }
            }
            other => parts.push(other),
        }
    }
    let mut out = String::with_capacity(raw.len() + 1);
    if parts.is_empty() {
        out.push('/');
        return (out, flags);
    }
    for part in parts {
        out.push('/');
        push_lossless(&mut out, part, &mut flags);
    }
    (out, flags)
}

/// Appends `bytes` to `out`, escaping invalid UTF-8 bytes as `\xNN`.
fn push_lossless(out: &mut String, mut bytes: &[u8], flags: &mut PathFlags) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return;
            }
            Err(e) => {
                flags.non_utf8 = true;
                let (good, rest) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len()).max(1).min(rest.len());
                for b in &rest[..bad] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                bytes = &rest[bad..];
            }
        }
    }
}

/// Splits a normalised path into its parent and its last component.
/// The root has no parent and an empty name.
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// Joins a hard-link or symlink target to the directory of the entry when it is
/// relative, then normalises it. Hard-link targets in tar are relative to the
/// archive root, so callers pass `"/"` as `dir` for those.
pub fn resolve(dir: &str, target: &[u8]) -> (String, PathFlags) {
    if target.first() == Some(&b'/') || dir == "/" {
        return normalize(target);
    }
    let mut joined = Vec::with_capacity(dir.len() + 1 + target.len());
    joined.extend_from_slice(dir.as_bytes());
    joined.push(b'/');
    joined.extend_from_slice(target);
    normalize(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_table() {
        let cases: &[(&[u8], &str, bool)] = &[
            (b"a/b", "/a/b", false),
            (b"./a/b", "/a/b", false),
            (b"a/b/", "/a/b", false),
            (b"/a//b/./c", "/a/b/c", false),
            (b".", "/", false),
            (b"", "/", false),
            (b"a/../../b", "/b", true),
            (b"../../etc/passwd", "/etc/passwd", true),
            (b"a/b/../c", "/a/c", false),
        ];
        for (raw, want, escapes) in cases {
            let (got, flags) = normalize(raw);
            assert_eq!(&got, want, "normalize({:?})", String::from_utf8_lossy(raw));
            assert_eq!(flags.escapes_root, *escapes, "escape flag for {want}");
        }
    }

    #[test]
    fn non_utf8_stays_distinct() {
        let (a, fa) = normalize(b"dir/caf\xe9");
        let (b, _) = normalize(b"dir/caf\xe8");
        assert_eq!(a, "/dir/caf\\xe9");
        assert_ne!(a, b, "two different invalid names must not merge");
        assert!(fa.non_utf8);
        let (c, fc) = normalize("dir/café".as_bytes());
        assert_eq!(c, "/dir/café");
        assert!(!fc.non_utf8);
    }

    #[test]
    fn splits_parent() {
        assert_eq!(split_parent("/a/b"), ("/a", "b"));
        assert_eq!(split_parent("/a"), ("/", "a"));
    }

    #[test]
    fn resolves_relative_targets() {
        assert_eq!(resolve("/usr/lib", b"libx.so.1").0, "/usr/lib/libx.so.1");
        assert_eq!(resolve("/usr/lib", b"../bin/x").0, "/usr/bin/x");
        assert_eq!(resolve("/usr/lib", b"/abs").0, "/abs");
    }
}
