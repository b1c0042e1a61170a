//! Part of stage 2: the estimated gzip size of a layer blob stored
//! uncompressed (docker-save archives, Docker 25+ OCI-in-tar, uncompressed
//! OCI layouts): what a registry would store once the layer is pushed.
//!
//! Input: the blob's bytes (streamed past a [`GzipSampler`], or read at
//! offsets by [`estimate_gzip_at`]); output: a byte count.
//!
//! `docker push` gzips an uncompressed layer with Go's `compress/gzip` at
//! `DefaultCompression` (moby's `distribution` package, `push.go`, `compress`:
//! a `gzip.NewWriter`; Go maps the default to level 6). BuildKit exports with the
//! same default; containers/image (skopeo, podman, buildah) uses klauspost's
//! pgzip `DefaultCompression`, which its flate package maps to level 5. mlsize
//! compresses with zlib-rs (or zlib-ng) at [`GZIP_LEVEL`] 6: a different
//! encoder at the same level, so even a layer compressed whole gives an
//! estimate of what those tools store, not their exact byte count.
//!
//! Compressing a whole multi-GB layer would run at ~30 MB/s per core, far
//! slower than reading it. So a blob larger than [`WHOLE_MAX_BYTES`] is cut into up
//! to [`SAMPLE_BLOCKS`] equal strata and one [`SAMPLE_BLOCK_BYTES`] block of
//! each is compressed, with the 32 KiB that precede it as the deflate
//! dictionary (what the encoder would have in its window there, so a block
//! costs about what it costs inside the whole stream); the ratio of the
//! blocks scales to the whole blob. Many small blocks beat a few large ones:
//! the error comes from how much compressibility varies between files, and
//! shrinks with the number of blocks. Sample positions depend on the blob's
//! length only: the estimate is the same whether the blob is streamed or read
//! at offsets, verified or not, with any number of threads.

use std::fs::File;
use std::io;

use flate2::{Compress, FlushCompress, Status};

/// The gzip level the estimate uses: `docker push`'s (Go's `DefaultCompression`).
pub const GZIP_LEVEL: u32 = 6;
/// Bytes of one sampled block.
pub const SAMPLE_BLOCK_BYTES: u64 = 8 << 10;
/// Most blocks sampled from one blob: 4 MiB compressed, whatever its size.
pub const SAMPLE_BLOCKS: u64 = 512;
/// Blobs up to this size are compressed whole.
pub const WHOLE_MAX_BYTES: u64 = 1 << 20;
/// Smallest distance between sampled blocks, so that a blob just over
/// [`WHOLE_MAX_BYTES`] costs less than compressing it whole.
const MIN_STRIDE_BYTES: u64 = 32 << 10;
/// Bytes before a block given to the encoder as its dictionary: deflate's
/// whole window, so a block compresses as it would inside the stream.
const DICT_BYTES: u64 = 32 << 10;
/// gzip header (10 bytes, no file name, as Go and `pigz -n` write it) and
/// trailer (CRC-32 and length, 8 bytes).
const GZIP_FRAMING_BYTES: u64 = 18;

/// One sampled block, `start..end` of the blob, and where its dictionary begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    dict_start: u64,
    start: u64,
    end: u64,
}

impl Window {
    fn len(&self) -> u64 {
        self.end - self.dict_start
    }
}

/// The blocks compressed for a blob of `len` bytes, in blob order: the blob
/// cut into equal strata, one block per stratum at a pseudo-random offset
/// (a fixed function of the stratum and the length, so never aligned with a
/// period of the content, and the same on every run).
fn plan(len: u64) -> Vec<Window> {
    if len <= WHOLE_MAX_BYTES {
        return vec![Window {
            dict_start: 0,
            start: 0,
            end: len,
        }];
    }
    let n = (len / MIN_STRIDE_BYTES).clamp(1, SAMPLE_BLOCKS);
    let stratum = |k: u64| (u128::from(k) * u128::from(len) / u128::from(n)) as u64;
    (0..n)
        .map(|k| {
            let (lo, hi) = (stratum(k), stratum(k + 1));
            // hi - lo >= MIN_STRIDE_BYTES > SAMPLE_BLOCK_BYTES.
            let room = (hi - lo).saturating_sub(SAMPLE_BLOCK_BYTES);
            let start = lo + mix(k ^ len.rotate_left(32)) % room.max(1);
            Window {
                dict_start: start.saturating_sub(DICT_BYTES),
                start,
                end: start + SAMPLE_BLOCK_BYTES,
            }
        })
        .collect()
}

/// splitmix64's finaliser: a well-spread hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The estimate from the compressed size of the sampled blocks.
fn scale(len: u64, sampled: u64, deflated: u64) -> u64 {
    if sampled >= len || sampled == 0 {
        // Compressed whole: the figure itself.
        return deflated + GZIP_FRAMING_BYTES;
    }
    let scaled =
        (u128::from(deflated) * u128::from(len) + u128::from(sampled) / 2) / u128::from(sampled);
    u64::try_from(scaled).unwrap_or(u64::MAX) + GZIP_FRAMING_BYTES
}

/// Deflated size of `block` as a raw deflate encoder at [`GZIP_LEVEL`] would
/// write it right after `dict`, in one call; `out` is scratch space. `None`
/// if the encoder fails (it has no reason to).
///
/// Each block gets an encoder of its own: a reset zlib-rs encoder is not
/// quite a new one (the same block came out a byte longer after others), and
/// blocks are compressed in a different order on each path.
fn deflated_bytes(dict: &[u8], block: &[u8], out: &mut Vec<u8>) -> Option<u64> {
    let mut c = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    // Room for the whole output, so a block is deflated in one call: zlib-rs
    // writes a few bytes more or less when input or output come in pieces.
    out.resize(block.len() + block.len() / 8 + 1024, 0);
    if !dict.is_empty() {
        c.set_dictionary(dict).ok()?;
    }
    let mut input = block;
    let mut written = 0u64;
    loop {
        let (in0, out0) = (c.total_in(), c.total_out());
        let status = c.compress(input, out, FlushCompress::Finish).ok()?;
        let consumed = usize::try_from(c.total_in() - in0).ok()?;
        let produced = c.total_out() - out0;
        written += produced;
        input = input.get(consumed..)?;
        match status {
            Status::StreamEnd => return Some(written),
            // Every round must make progress.
            _ if consumed == 0 && produced == 0 => return None,
            _ => {}
        }
    }
}

/// Estimates the gzip size of a blob as it streams by: feed it every byte of
/// the blob in order, then [`finish`](GzipSampler::finish). Keeps at most two
/// sampled windows (or a whole small blob) in memory.
pub struct GzipSampler {
    len: u64,
    windows: Vec<Window>,
    /// First window not compressed yet.
    next: usize,
    /// Bytes fed so far.
    pos: u64,
    /// The bytes gathered for windows not complete yet, by window index.
    pending: Vec<(usize, Vec<u8>)>,
    out: Vec<u8>,
    sampled: u64,
    deflated: u64,
    failed: bool,
}

impl std::fmt::Debug for GzipSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipSampler")
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl GzipSampler {
    /// A sampler for a blob of `len` bytes.
    pub fn new(len: u64) -> GzipSampler {
        GzipSampler {
            len,
            windows: plan(len),
            next: 0,
            pos: 0,
            pending: Vec::new(),
            out: Vec::new(),
            sampled: 0,
            deflated: 0,
            failed: false,
        }
    }

    /// The next bytes of the blob.
    pub fn feed(&mut self, data: &[u8]) {
        let (p0, p1) = (self.pos, self.pos + data.len() as u64);
        self.pos = p1;
        let mut i = self.next;
        while let Some(&w) = self.windows.get(i) {
            if w.dict_start >= p1 {
                break;
            }
            let (lo, hi) = (w.dict_start.max(p0), w.end.min(p1));
            if let Some(part) = data.get((lo - p0) as usize..(hi - p0) as usize)
                && !part.is_empty()
            {
                match self.pending.iter_mut().find(|(j, _)| *j == i) {
                    Some((_, buf)) => buf.extend_from_slice(part),
                    None => {
                        let mut buf = Vec::with_capacity(w.len() as usize);
                        buf.extend_from_slice(part);
                        self.pending.push((i, buf));
                    }
                }
            }
            if w.end <= p1 {
                self.complete(i);
            }
            i += 1;
        }
    }

    /// Compresses window `i`, whose bytes are all gathered.
    fn complete(&mut self, i: usize) {
        let buf = match self.pending.iter().position(|(j, _)| *j == i) {
            Some(at) => self.pending.swap_remove(at).1,
            None => Vec::new(),
        };
        if let Some(w) = self.windows.get(i).copied()
            && buf.len() as u64 == w.len()
        {
            let out = &mut self.out;
            let parts = buf.split_at_checked((w.start - w.dict_start) as usize);
            match parts.and_then(|(dict, block)| Some((block, deflated_bytes(dict, block, out)?))) {
                Some((block, n)) => {
                    self.deflated += n;
                    self.sampled += block.len() as u64;
                }
                None => self.failed = true,
            }
        } else {
            self.failed = true;
        }
        self.next = self.next.max(i + 1);
    }

    /// The estimated gzip size in bytes; `None` when the blob was not the
    /// length announced (the caller reports that as an error anyway).
    pub fn finish(mut self) -> Option<u64> {
        // An empty blob's one window is complete without a byte.
        if self.len == 0 && self.pos == 0 && self.next == 0 {
            self.complete(0);
        }
        if self.pos != self.len || self.next != self.windows.len() || self.failed {
            return None;
        }
        Some(scale(self.len, self.sampled, self.deflated))
    }
}

/// Estimates the gzip size of the `len`-byte blob at offset `start` of
/// `file`, reading only the sampled blocks, in parallel on the current rayon
/// pool. Gives what [`GzipSampler`] gives for the same bytes.
pub fn estimate_gzip_at(file: &File, start: u64, len: u64) -> io::Result<u64> {
    use rayon::prelude::*;
    let windows = plan(len);
    let sizes: Vec<io::Result<(u64, u64)>> = windows
        .par_iter()
        .with_max_len(1)
        .map_init(
            || (Vec::new(), Vec::new()),
            |(out, buf), w| {
                buf.resize(w.len() as usize, 0);
                super::read_exact_at(file, buf, start + w.dict_start)?;
                let failed = || io::Error::other("gzip estimate: the encoder failed");
                let (dict, block) = buf
                    .split_at_checked((w.start - w.dict_start) as usize)
                    .ok_or_else(failed)?;
                let n = deflated_bytes(dict, block, out).ok_or_else(failed)?;
                Ok((block.len() as u64, n))
            },
        )
        .collect();
    let (mut sampled, mut deflated) = (0, 0);
    for s in sizes {
        let (b, n) = s?;
        sampled += b;
        deflated += n;
    }
    Ok(scale(len, sampled, deflated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Real gzip at the same level, as flate2's `GzEncoder` writes it.
    fn gzip_bytes(data: &[u8]) -> u64 {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
        e.write_all(data).unwrap();
        e.finish().unwrap().len() as u64
    }

    /// gzip with the whole input deflated in one call.
    fn gzip_one_call_bytes(data: &[u8]) -> u64 {
        let mut c = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
        let mut out = vec![0; data.len() * 2 + 1024];
        let status = c.compress(data, &mut out, FlushCompress::Finish).unwrap();
        assert_eq!(status, Status::StreamEnd);
        c.total_out() + GZIP_FRAMING_BYTES
    }

    /// Deterministic bytes that compress to about half.
    fn mixed(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 4096) % 2 == 0 {
                    b"the quick brown fox "[i % 20]
                } else {
                    (x >> 56) as u8
                }
            })
            .collect()
    }

    /// Deterministic bytes like a layer's: text, tables of small integers
    /// (as in ELF sections), random bytes and zeros, in runs of varied length.
    fn varied(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words = [
            "tensor ", "cuda ", "import ", "def ", "self.", "return ", "\n    ",
        ];
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let run = 1000 + (next() % 200_000) as usize;
            let kind = next() % 4;
            let mut v = 0u32;
            for _ in 0..run {
                match kind {
                    0 => out.extend_from_slice(words[(next() % 7) as usize].as_bytes()),
                    1 => {
                        v = v.wrapping_add((next() % 64) as u32);
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                    2 => out.push(next() as u8),
                    _ => out.push(0),
                }
            }
        }
        out.truncate(len);
        out
    }

    fn streamed(data: &[u8], piece: usize) -> Option<u64> {
        let mut s = GzipSampler::new(data.len() as u64);
        for p in data.chunks(piece.max(1)) {
            s.feed(p);
        }
        s.finish()
    }

    fn positional(data: &[u8]) -> u64 {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        f.write_all(data).unwrap();
        f.write_all(b"trailing").unwrap();
        estimate_gzip_at(&f, 10, data.len() as u64).unwrap()
    }

    #[test]
    fn plan_covers_small_blobs_whole_and_samples_large_ones_evenly() {
        assert_eq!(
            plan(1000),
            vec![Window {
                dict_start: 0,
                start: 0,
                end: 1000
            }]
        );
        assert_eq!(plan(WHOLE_MAX_BYTES).len(), 1, "the boundary is whole");
        for (len, n) in [
            (WHOLE_MAX_BYTES + 1, 32),
            (3 << 20, 96),
            (16 << 20, 512),
            (10_000_000_019, 512),
        ] {
            let p = plan(len);
            assert_eq!(p.len() as u64, n, "{len}");
            for (k, w) in p.iter().enumerate() {
                let (lo, hi) = (k as u64 * len / n, (k as u64 + 1) * len / n);
                assert!(
                    lo <= w.start && w.end <= hi,
                    "{len}: block {k} in its stratum"
                );
                assert_eq!(w.end - w.start, SAMPLE_BLOCK_BYTES);
                assert_eq!(w.start - w.dict_start, DICT_BYTES.min(w.start));
            }
            let offsets: std::collections::HashSet<u64> = p
                .iter()
                .enumerate()
                .map(|(k, w)| w.start - k as u64 * len / n)
                .collect();
            assert!(offsets.len() as u64 > n / 2, "{len}: offsets vary");
            assert_eq!(plan(len), p, "the same plan every time");
        }
    }

    #[test]
    fn a_small_blob_is_compressed_whole_exactly() {
        for data in [
            vec![],
            b"hello".to_vec(),
            mixed(300_000),
            mixed(WHOLE_MAX_BYTES as usize),
            varied(WHOLE_MAX_BYTES as usize),
        ] {
            let want = gzip_one_call_bytes(&data);
            let gz = gzip_bytes(&data);
            assert!(
                want.abs_diff(gz) <= gz / 1000 + 2,
                "{want} vs GzEncoder {gz}"
            );
            for piece in [1000, 65_536, 1 << 20] {
                assert_eq!(
                    streamed(&data, piece),
                    Some(want),
                    "{} bytes in pieces of {piece}",
                    data.len()
                );
            }
            assert_eq!(positional(&data), want, "{} bytes at offsets", data.len());
        }
    }

    #[test]
    fn streamed_and_positional_samples_agree_whatever_the_pieces() {
        let data = mixed(5_000_001);
        let at = positional(&data);
        for piece in [1, 4097, 65_536, 1 << 20, 5_000_001] {
            if piece == 1 {
                // Byte by byte is slow in debug builds: a shorter blob.
                let short = &data[..1_200_000];
                assert_eq!(streamed(short, piece), Some(positional(short)));
                continue;
            }
            assert_eq!(streamed(&data, piece), Some(at), "pieces of {piece}");
        }
        let real = gzip_bytes(&data);
        let err = (at as f64 - real as f64).abs() / real as f64;
        assert!(err < 0.02, "estimate {at} vs gzip {real}: {err:.4}");
    }

    #[test]
    fn the_estimate_does_not_depend_on_threads_or_order() {
        let data = varied(9_000_000);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let len = data.len() as u64;
        let at = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| estimate_gzip_at(&f, 0, len).unwrap())
        };
        let one = at(1);
        assert_eq!(at(3), one, "3 threads");
        assert_eq!(streamed(&data, 1 << 20), Some(one), "streamed");
        let real = gzip_bytes(&data);
        let err = (one as f64 - real as f64).abs() / real as f64;
        assert!(err < 0.05, "estimate {one} vs gzip {real}: {err:.4}");
    }

    #[test]
    fn a_blob_of_another_length_gives_no_estimate() {
        let data = mixed(3 << 20);
        let mut s = GzipSampler::new(data.len() as u64 + 1);
        s.feed(&data);
        assert_eq!(s.finish(), None, "shorter than announced");
        let mut s = GzipSampler::new(1000);
        s.feed(&data[..999]);
        assert_eq!(s.finish(), None);
    }
}
