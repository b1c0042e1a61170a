//! Stage 2, stream: a layer blob (`Read`) → decompression → tar → [`LayerScan`].
//!
//! Two threads work on every layer so that one dominant layer still keeps two
//! cores busy: a decoder thread reads the blob, hashes it for its descriptor
//! digest and decompresses it; the scanning thread (the caller's) hashes the tar
//! stream for the `diff_id`, parses the tar headers and hashes each regular
//! file's content for duplicate detection. Buffers go back and forth through
//! two bounded channels, so memory stays constant whatever the layer's size.

pub mod path;
pub mod tar;

use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};
use sha2::{Digest, Sha256};

use crate::category::Rules;

/// Size of the buffers handed from the decoder to the scanner. PERF-NOTES.md:
/// buffers above ~128 KiB in flight cut copy speed on these machines.
const CHUNK_BYTES: usize = 64 * 1024;
/// Buffers in flight between the decoder and the scanner.
const CHUNKS_IN_FLIGHT: usize = 2;

/// How a layer blob is compressed, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (one or more members, as pigz and eStargz write).
    Gzip,
    /// Zstandard (one or more frames).
    Zstd,
}

impl Compression {
    /// Lower-case name, as shown in reports.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// Detects the compression of a stream from its first bytes.
    pub fn sniff(head: &[u8]) -> io::Result<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
        {
            Ok(Compression::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Err(io::Error::other("xz-compressed layers are not supported"))
        } else if head.starts_with(b"BZh") {
            Err(io::Error::other(
                "bzip2-compressed layers are not supported",
            ))
        } else {
            Ok(Compression::None)
        }
    }
}

/// A 128-bit BLAKE3 digest of a file's content (collision-resistant, unlike a
/// checksum, so duplicate groups are exact).
pub type ContentHash = [u8; 16];

/// What a tar entry does to the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (also GNU sparse and contiguous files).
    File,
    /// A directory.
    Dir,
    /// A symbolic link; its target is never followed.
    Symlink,
    /// A hard link to the (normalised) target path.
    HardLink(Box<str>),
    /// `.wh.NAME`: deletes the path (held in [`LayerEntry::path`]) from lower layers.
    Whiteout,
    /// `.wh..wh..opq`: hides the lower layers' children of the directory in `path`.
    Opaque,
    /// Devices, FIFOs and other non-file nodes.
    Other,
}

/// One tar entry, reduced to what the accounting needs.
#[derive(Debug, Clone)]
pub struct LayerEntry {
    /// Normalised image path (for whiteouts, the path they delete).
    pub path: Box<str>,
    /// What the entry is.
    pub kind: EntryKind,
    /// Apparent size for regular files, 0 otherwise.
    pub bytes: u64,
    /// Content hash for regular files.
    pub hash: ContentHash,
    /// Category index (see [`crate::category`]) for regular files.
    pub category: u8,
    /// Content of small package-database files (`*.dist-info/RECORD`,
    /// `/var/lib/dpkg/status`), kept for package-level diffs.
    pub data: Option<Box<[u8]>>,
}

/// Largest package-database file whose content is kept.
const MAX_CAPTURE_BYTES: u64 = 16 << 20;

/// Whether a file's content is kept: package databases only.
pub fn is_package_db(path: &str) -> bool {
    (path.ends_with(".dist-info/RECORD")
        && (path.contains("/site-packages/") || path.contains("/dist-packages/")))
        || path == "/var/lib/dpkg/status"
        || path.starts_with("/var/lib/dpkg/status.d/")
}

/// Everything learnt from reading one layer blob once.
#[derive(Debug, Clone)]
pub struct LayerScan {
    /// Detected compression.
    pub compression: Compression,
    /// Bytes of the blob as stored.
    pub compressed_bytes: u64,
    /// `sha256:<hex>` of the blob, when verification is on.
    pub blob_digest: Option<String>,
    /// Length of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// `sha256:<hex>` of the uncompressed tar stream, when verification is on.
    pub diff_id: Option<String>,
    /// The entries in tar order.
    pub entries: Vec<LayerEntry>,
    /// Non-fatal oddities, one line each.
    pub warnings: Vec<String>,
}

/// Options of a layer scan.
#[derive(Clone)]
pub struct ScanOptions {
    /// Compute the blob digest and diff_id.
    pub verify: bool,
    /// Hash every file's content (duplicate groups, moved files, `identical`).
    pub hash_content: bool,
    /// Classification rules.
    pub rules: Arc<Rules>,
    /// Stop with an error when the uncompressed stream exceeds this many bytes.
    pub max_uncompressed_bytes: Option<u64>,
    /// Raw bytes read so far, for progress display.
    pub progress: Option<Arc<AtomicU64>>,
}

impl std::fmt::Debug for ScanOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanOptions")
            .field("verify", &self.verify)
            .field("max_uncompressed_bytes", &self.max_uncompressed_bytes)
            .finish_non_exhaustive()
    }
}

/// Formats a digest as `sha256:<hex>`.
pub fn sha256_string(digest: &[u8]) -> String {
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in digest {
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    s
}

/// Reads a whole layer blob once and returns what it holds.
///
/// Errors are plain messages (`gzip stream truncated ...`); the caller adds the
/// file and layer they belong to.
pub fn scan_layer<R: Read + Send>(raw: R, opts: &ScanOptions) -> Result<LayerScan, String> {
    // Sniff the compression here, so the scanner knows whether the tar stream
    // is the blob itself: then the blob's sha256 is the diff_id, hashed once.
    let raw = RawReader {
        inner: raw,
        count: 0,
        hasher: opts.verify.then(Sha256::new),
        progress: opts.progress.clone(),
    };
    let mut br = BufReader::with_capacity(CHUNK_BYTES, raw);
    let head = br.fill_buf().map_err(|e| format!("read failed: {e}"))?;
    if head.is_empty() {
        return Err("layer blob is empty".to_string());
    }
    let compression = Compression::sniff(head).map_err(|e| e.to_string())?;
    let (chunk_tx, chunk_rx) = bounded::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    let (free_tx, free_rx) = bounded::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
    std::thread::scope(|s| {
        let decoder = s.spawn(move || decode(br, compression, chunk_tx, free_rx));
        let mut reader = ChunkReader {
            rx: chunk_rx,
            free: free_tx,
            cur: Vec::new(),
            pos: 0,
            total: 0,
            limit: opts.max_uncompressed_bytes,
            hasher: None,
        };
        if opts.verify && compression != Compression::None {
            reader.hasher = Some(Sha256::new());
        }
        let scanned = scan_tar(&mut reader, opts);
        // Dropping the reader unblocks the decoder if the scan stopped early.
        let tar_bytes = reader.total;
        let tar_hash = reader.hasher.take();
        drop(reader);
        let decoded = decoder
            .join()
            .map_err(|_| "decoder thread panicked".to_string())?;
        // The decoder's error is the root cause when both failed.
        let decoded = decoded?;
        let (entries, warnings) = scanned?;
        let diff_id = match (decoded.compression, tar_hash) {
            (_, Some(h)) => Some(sha256_string(&h.finalize())),
            (Compression::None, None) => decoded.blob_digest.clone(),
            _ => None,
        };
        Ok(LayerScan {
            compression: decoded.compression,
            compressed_bytes: decoded.compressed_bytes,
            blob_digest: decoded.blob_digest,
            tar_bytes,
            diff_id,
            entries,
            warnings,
        })
    })
}

struct Decoded {
    compression: Compression,
    compressed_bytes: u64,
    blob_digest: Option<String>,
}

/// Counts (and optionally hashes) the raw blob bytes as the decoder pulls them.
struct RawReader<R> {
    inner: R,
    count: u64,
    hasher: Option<Sha256>,
    progress: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for RawReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        if let Some(p) = &self.progress {
            p.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The decoder thread: raw blob → decompressed chunks.
fn decode<R: Read>(
    mut br: BufReader<RawReader<R>>,
    compression: Compression,
    tx: Sender<io::Result<Vec<u8>>>,
    free: Receiver<Vec<u8>>,
) -> Result<Decoded, String> {
    let pumped = match compression {
        Compression::None => pump(&mut br, &tx, &free).map(|()| br),
        Compression::Gzip => {
            let mut d = flate2::bufread::MultiGzDecoder::new(br);
            pump(&mut d, &tx, &free).map(|()| d.into_inner())
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(br)
                .map_err(|e| format!("cannot start zstd decoder: {e}"))?;
            d.window_log_max(31)
                .map_err(|e| format!("cannot start zstd decoder: {e}"))?;
            pump(&mut d, &tx, &free).map(|()| d.finish())
        }
    };
    let mut br = match pumped {
        Ok(br) => br,
        Err(PumpError::ReceiverGone) => {
            // The scanner stopped (it has the error to report); drain nothing.
            return Ok(Decoded {
                compression,
                compressed_bytes: 0,
                blob_digest: None,
            });
        }
        Err(PumpError::Io(e, at)) => {
            let msg = describe_decode_error(compression, &e, at);
            let _ = tx.send(Err(io::Error::other(msg.clone())));
            return Err(msg);
        }
    };
    // Whatever follows the compressed stream is not part of the layer.
    let trailing = io::copy(&mut br, &mut io::sink()).map_err(|e| format!("read failed: {e}"))?;
    if trailing > 0 {
        let msg = format!(
            "{trailing} bytes of trailing data after the {} stream",
            compression.name()
        );
        let _ = tx.send(Err(io::Error::other(msg.clone())));
        return Err(msg);
    }
    let raw = br.into_inner();
    Ok(Decoded {
        compression,
        compressed_bytes: raw.count,
        blob_digest: raw.hasher.map(|h| sha256_string(&h.finalize())),
    })
}

fn describe_decode_error(c: Compression, e: &io::Error, at: u64) -> String {
    match (c, e.kind()) {
        (Compression::None, io::ErrorKind::UnexpectedEof) => {
            format!("layer truncated after {at} bytes")
        }
        (_, io::ErrorKind::UnexpectedEof) => {
            format!("{} stream truncated after {at} bytes", c.name())
        }
        (Compression::None, _) => format!("read failed after {at} bytes: {e}"),
        _ => format!("corrupt {} stream after {at} bytes: {e}", c.name()),
    }
}

enum PumpError {
    ReceiverGone,
    Io(io::Error, u64),
}

/// Moves a decoder's output into chunks for the scanner.
fn pump<D: Read>(
    dec: &mut D,
    tx: &Sender<io::Result<Vec<u8>>>,
    free: &Receiver<Vec<u8>>,
) -> Result<(), PumpError> {
    let mut produced = 0u64;
    loop {
        let mut buf = free.try_recv().unwrap_or_default();
        buf.resize(CHUNK_BYTES, 0);
        let mut filled = 0;
        // Fill the chunk to amortise channel hand-offs over many small reads.
        while filled < buf.len() {
            match dec.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PumpError::Io(e, produced + filled as u64)),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        produced += filled as u64;
        buf.truncate(filled);
        if tx.send(Ok(buf)).is_err() {
            return Err(PumpError::ReceiverGone);
        }
    }
}

/// The scanner's view of the decoded stream: counts and hashes every byte.
struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    free: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    total: u64,
    limit: Option<u64>,
    hasher: Option<Sha256>,
}

impl ChunkReader {
    /// Moves to the next chunk when the current one is used up; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        while self.pos >= self.cur.len() {
            let next = match self.rx.recv() {
                Ok(chunk) => chunk?,
                Err(_) => return Ok(false),
            };
            let old = std::mem::replace(&mut self.cur, next);
            let _ = self.free.try_send(old);
            self.pos = 0;
            if self.cur.is_empty() {
                return Ok(false);
            }
            // The diff_id covers every byte of the tar stream, read once here.
            if let Some(h) = &mut self.hasher {
                h.update(&self.cur);
            }
            self.total += self.cur.len() as u64;
            if let Some(limit) = self.limit
                && self.total > limit
            {
                return Err(io::Error::other(format!(
                    "uncompressed layer exceeds --max-uncompressed ({limit} bytes)"
                )));
            }
        }
        Ok(true)
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = buf.len().min(avail.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

/// The tar parser reads straight out of the decoder's chunks: no copy.
impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.refill()? {
            return Ok(&[]);
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur.len());
    }
}

type Scanned = (Vec<LayerEntry>, Vec<String>);

/// Parses the tar stream and hashes file contents.
fn scan_tar(reader: &mut ChunkReader, opts: &ScanOptions) -> Result<Scanned, String> {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut stream = tar::TarStream::new(&mut *reader, tar::Limits::default());
    while let Some(h) = stream.next_header().map_err(tar_error)? {
        let (path, flags) = path::normalize(&h.path);
        if flags.escapes_root || flags.has_dotdot {
            warnings.push(format!(
                "entry '{}' has '..' components; counted as '{path}'",
                String::from_utf8_lossy(&h.path)
            ));
        }
        if flags.non_utf8 {
            warnings.push(format!("entry name is not UTF-8; shown as '{path}'"));
        }
        let (parent, name) = path::split_parent(&path);
        if let Some(rest) = name.strip_prefix(".wh.") {
            if rest == ".wh..opq" {
                entries.push(meta_entry(parent, EntryKind::Opaque));
            } else if rest.starts_with(".wh.") {
                // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
            } else if rest.is_empty() {
                warnings.push(format!("ignored a whiteout with no name at '{path}'"));
            } else {
                let target = if parent == "/" {
                    format!("/{rest}")
                } else {
                    format!("{parent}/{rest}")
                };
                entries.push(meta_entry(&target, EntryKind::Whiteout));
            }
            continue;
        }
        let kind = match h.kind {
            tar::Kind::File => EntryKind::File,
            tar::Kind::Dir => EntryKind::Dir,
            tar::Kind::Symlink => EntryKind::Symlink,
            tar::Kind::HardLink => EntryKind::HardLink(path::normalize(&h.link).0.into_boxed_str()),
            tar::Kind::Char | tar::Kind::Block | tar::Kind::Fifo => EntryKind::Other,
            tar::Kind::Other(t) => {
                warnings.push(format!(
                    "entry '{path}' has unknown type '{}'; not counted",
                    t.escape_ascii()
                ));
                EntryKind::Other
            }
        };
        if kind != EntryKind::File {
            entries.push(meta_entry(&path, kind));
            continue;
        }
        if h.sparse {
            warnings.push(format!(
                "'{path}' is a sparse file: counted at its apparent size ({} bytes; {} stored)",
                h.apparent_size, h.size
            ));
        }
        let mut hasher = blake3::Hasher::new();
        let mut captured: Option<Vec<u8>> =
            (h.size <= MAX_CAPTURE_BYTES && is_package_db(&path)).then(Vec::new);
        let hash_content = opts.hash_content;
        stream
            .read_data(|chunk| {
                if hash_content {
                    hasher.update(chunk);
                }
                if let Some(c) = &mut captured {
                    c.extend_from_slice(chunk);
                }
            })
            .map_err(|e| read_error(&path, e))?;
        let mut hash = [0u8; 16];
        if hash_content {
            hash.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        }
        let category = opts.rules.classify(&path);
        entries.push(LayerEntry {
            path: path.into_boxed_str(),
            kind,
            bytes: h.apparent_size,
            hash,
            category,
            data: captured.map(Vec::into_boxed_slice),
        });
    }
    drop(stream);
    // The end-of-archive blocks and padding belong to the diff_id too.
    io::copy(reader, &mut io::sink()).map_err(|e| e.to_string())?;
    Ok((entries, warnings))
}

fn tar_error(e: io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("layer truncated: {e}")
    } else {
        format!("tar: {e}")
    }
}

fn read_error(path: &str, e: io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("layer truncated inside '{path}'")
    } else {
        format!("reading '{path}': {e}")
    }
}

fn meta_entry(path: &str, kind: EntryKind) -> LayerEntry {
    LayerEntry {
        path: path.into(),
        kind,
        bytes: 0,
        hash: [0; 16],
        category: 0,
        data: None,
    }
}
