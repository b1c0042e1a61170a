//! Library errors: one enum whose variants carry the facts a user needs to act.
//!
//! Every message follows the project style: lowercase, no final period, the
//! user's input in quotes, and where possible what to do about it.

use std::io;

/// Everything that can stop an analysis.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused an I/O operation on a host file.
    #[error("'{path}': {source}")]
    Io {
        /// Host path, as the user gave it.
        path: String,
        /// The underlying error.
        source: io::Error,
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

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`] for a host path.
    pub fn io(path: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
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
