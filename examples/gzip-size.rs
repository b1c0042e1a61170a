//! Real gzip sizes for checking mlsize's estimate (`benches/estimate/error.py`):
//! gzips byte ranges of files with flate2 at the estimate's level, the encoder
//! mlsize samples with, and prints one size per range.
//!
//!     cargo run --release --example gzip-size -- FILE:OFFSET:LEN ...

use std::io::{Read, Seek, SeekFrom, Write};

use rayon::prelude::*;

fn gzip_bytes(spec: &str) -> std::io::Result<u64> {
    let mut parts = spec.rsplitn(3, ':');
    let bad = || std::io::Error::other(format!("expected FILE:OFFSET:LEN, got '{spec}'"));
    let len: u64 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let offset: u64 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let path = parts.next().ok_or_else(bad)?;
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let level = flate2::Compression::new(mlsize::layer::estimate::GZIP_LEVEL);
    let mut e = flate2::write::GzEncoder::new(Counter(0), level);
    let mut buf = vec![0; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        f.read_exact(&mut buf[..want])?;
        e.write_all(&buf[..want])?;
        left -= want as u64;
    }
    Ok(e.finish()?.0)
}

/// Counts bytes written, keeps none.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> std::io::Result<()> {
    let specs: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<std::io::Result<u64>> = specs
        .par_iter()
        .with_max_len(1)
        .map(|s| gzip_bytes(s))
        .collect();
    for (spec, size) in specs.iter().zip(sizes) {
        println!("{}\t{spec}", size?);
    }
    Ok(())
}
