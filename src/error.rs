//! Library errors: one enum whose variants carry the facts a user needs to act.
//!
//! Every message follows the project style: lowercase, no final period, the
//! user's input in quotes, and where possible what to do about it.

use std::io;

/// Everything that can stop an analysis.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused an I/O operation on a host file.
    ///
    /// The cause is worded into `what` rather than kept as a `#[source]`, so
    /// that `{:#}` does not print it twice.
    #[error("'{path}': {what}")]
    Io {
        /// Host path, as the user gave it.
        path: String,
        /// The error's kind.
        kind: io::ErrorKind,
        /// What went wrong, and what to do when there is something to do.
        what: String,
    },
    /// The input is readable but is not an image archive or layout.
    #[error("'{path}' is not an image archive: {what}")]
    NotAnImage {
        /// Host path, as the user gave it.
        path: String,
        /// What was found instead, and a hint.
        what: String,
    },
    /// The archive's metadata (manifest, index, config) is missing or malformed.
    #[error("'{path}': {what}")]
    Format {
        /// Host path, as the user gave it.
        path: String,
        /// What is wrong, naming the file inside the archive.
        what: String,
    },
    /// A layer could not be read, decoded or parsed.
    #[error("'{path}': layer {index}/{count} ({digest}): {what}")]
    Layer {
        /// Host path of the archive.
        path: String,
        /// 1-based layer number.
        index: usize,
        /// Number of layers in the image.
        count: usize,
        /// Short digest naming the layer.
        digest: String,
        /// What went wrong.
        what: String,
    },
    /// A blob or layer does not hash to the digest its descriptor promises.
    #[error(
        "'{path}': {what} digest mismatch: expected {expected}, found {found} (the archive is corrupt or was modified; --no-verify skips this check)"
    )]
    DigestMismatch {
        /// Host path of the archive.
        path: String,
        /// Which object, e.g. `layer 2/5 (sha256:0123456789ab)` or `config`.
        what: String,
        /// The digest the metadata declares.
        expected: String,
        /// The digest of the bytes actually read.
        found: String,
    },
    /// The user's selection (image name, platform) matches nothing or is ambiguous.
    #[error("'{path}': {what}")]
    Selection {
        /// Host path of the archive.
        path: String,
        /// What was asked for and what is available.
        what: String,
    },
    /// A command-line or configuration value is invalid.
    #[error("{0}")]
    Usage(String),
}

/// Whether a missing input looks like an image reference (`app:latest`,
/// `ghcr.io/org/app:1`, `python`) rather than a file name (`app.tar`, `./x`).
fn looks_like_reference(s: &str) -> bool {
    let valid = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
        && !s.starts_with(['.', '/'])
        && !s.ends_with('/');
    let file_like = [
        ".tar", ".tgz", ".gz", ".zst", ".zstd", ".xz", ".json", ".toml",
    ]
    .iter()
    .any(|ext| s.ends_with(ext));
    let last = s.rsplit('/').next().unwrap_or(s);
    valid && !file_like && (last.contains(':') || s.contains('@') || !last.contains('.'))
}

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`] for a host path, worded for the user.
    pub fn io(path: impl Into<String>, source: io::Error) -> Self {
        let path = path.into();
        let what = match source.kind() {
            io::ErrorKind::NotFound if looks_like_reference(&path) => format!(
                "no such file or directory; mlsize reads image archives and OCI layouts, so to analyse an image from Docker run 'docker save {path} | mlsize analyze -'"
            ),
            io::ErrorKind::NotFound => "no such file or directory".to_string(),
            io::ErrorKind::PermissionDenied => {
                "permission denied (make it readable for this user, or run as one who can read it)"
                    .to_string()
            }
            _ => {
                // `Is a directory (os error 21)` → `is a directory (os error 21)`
                let text = source.to_string();
                let mut c = text.chars();
                match c.next() {
                    Some(f) => f.to_lowercase().chain(c).collect(),
                    None => text,
                }
            }
        };
        Error::Io {
            path,
            kind: source.kind(),
            what,
        }
    }

    /// Builds an [`Error::Format`] for a host path.
    pub fn format(path: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            what: what.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_files() {
        let cases = [
            ("myimage:latest", true),
            ("python", true),
            ("ghcr.io/org/app:1.2", true),
            ("app@sha256:abc", true),
            ("app.tar", false),
            ("./app", false),
            ("/tmp/x", false),
            ("image.tar.gz", false),
            ("out/image.tar", false),
            ("mlsize.toml", false),
            ("dir/", false),
        ];
        for (s, want) in cases {
            assert_eq!(looks_like_reference(s), want, "{s}");
        }
    }

    // See: issue 11 item 12: the cause was printed twice.
    #[test]
    fn io_errors_say_their_cause_once() {
        let e = anyhow::Error::from(Error::io(
            "app.tar",
            io::Error::from(io::ErrorKind::NotFound),
        ));
        assert_eq!(format!("{e:#}"), "'app.tar': no such file or directory");
        let e = anyhow::Error::from(Error::io(
            "x.tar",
            io::Error::from(io::ErrorKind::PermissionDenied),
        ));
        assert_eq!(
            format!("{e:#}"),
            "'x.tar': permission denied (make it readable for this user, or run as one who can read it)"
        );
    }
}
