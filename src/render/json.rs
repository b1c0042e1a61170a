//! JSON output: the report as is, integers for bytes, stable field order.

use std::io::{self, Write};

use serde::Serialize;

/// Writes any report as pretty JSON with a trailing newline.
pub fn render<T: Serialize>(value: &T, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}
