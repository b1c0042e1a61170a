//! mlsize: where the gigabytes of a machine-learning container image go.
//!
//! The pipeline, one module per stage, each using only earlier ones:
//! [`source`] (archive → metadata + layer blobs) → [`layer`] (blob → entries)
//! → [`overlay`] (entries → merged tree and waste) → [`category`] (path →
//! category) → [`history`] (history → instructions) → [`report`] (→ pure data)
//! → [`render`] (→ text). [`app`] drives them for the command line.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::print_stdout,
        clippy::print_stderr
    )
)]

/// `mlsize --version`: the package version, and the git commit when built
/// from a checkout (see `build.rs`).
pub const VERSION: &str = env!("MLSIZE_VERSION");

pub mod app;
pub mod category;
pub mod cli;
pub mod error;
pub mod fix;
pub mod history;
pub mod layer;
pub mod overlay;
pub mod render;
pub mod report;
pub mod size;
pub mod source;
#[cfg(any(test, feature = "test-support"))]
pub mod testutil;

pub use error::{Error, Result};
