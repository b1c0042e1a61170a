//! The layer cache (stage 1): a [`LayerScan`] stored on disk under the digest
//! and size of the blob it was read from, so that a layer met again, in the
//! same image or another one, from any source, is neither decompressed nor
//! scanned again.
//!
//! # Key
//! `sha256 digest + size` of the blob, in a directory named for the entry
//! format (`v2/<hex>-<size>`). For a layer whose descriptor names its blob
//! (OCI layouts and archives, registries, Docker 25+ `docker save`), that is
//! the descriptor's digest; for a docker-save legacy layer, which has no
//! descriptor, it is the config's diff_id (for an uncompressed blob the two are
//! the same hash, so both kinds of archive share entries). The diff_id is
//! stored in the entry and checked against the config exactly as a fresh read
//! is, so it need not be part of the file name: a stream can look an entry up
//! as soon as a blob's name goes by, before the config has been seen.
//!
//! # Trust
//! An entry is written only after the read it stores was verified: the blob
//! hashed to the key's digest (and its diff_id to the config's), so entries
//! exist only for runs with verification on. Category indexes are not stored:
//! they are recomputed from paths with the run's rules at load time, so
//! `--rules` never gives a stale answer.
//!
//! # Hashes
//! A run hashes only files whose size repeats across the images it reads
//! together (the size census, [`super::SizeCensus`]), and another run reads
//! other images. An entry therefore holds the content hash of *every* regular
//! file: a read that will be stored hashes them all. That costs BLAKE3 over
//! files a census would have skipped, which only uncompressed layers read with
//! verification ever skipped (compressed layers and streams hash everything
//! anyway); see the README's cache figures.
//!
//! # Format
//! `MAGIC`, the format version (u32 LE), the payload's length (u64 LE) and its
//! BLAKE3 checksum (32 bytes), then the payload: [postcard] (a compact,
//! documented and stable serde wire format: varint integers, no field names)
//! of the entry, compressed with zstd. Paths are front-coded (the length shared
//! with the previous path, then the rest), columns kept apart so zstd sees
//! paths next to paths and hashes next to hashes. A damaged, truncated or
//! foreign entry is a miss, warned about once per run, and rewritten.
//!
//! # Concurrency
//! Entries are written to a temporary file in the same directory and renamed
//! over the final name, so readers see a whole entry or none; two runs writing
//! the same entry write the same bytes. A directory that cannot be written
//! turns writes off for the run with one warning; reading goes on.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::category::Rules;
use crate::layer::{
    Compression, EntryKind, LayerEntry, LayerScan, MAX_FILE_BYTES, MAX_LAYER_CONTENT_BYTES,
};

/// First bytes of every entry file.
const MAGIC: &[u8; 8] = b"MLSZLYR\0";
/// Entry format version; also the name of the directory entries live in.
/// Bump it whenever what an entry holds or means changes (2: dpkg's
/// `info/*.list` files keep their content).
pub const FORMAT_VERSION: u32 = 2;
/// Header: magic, version, payload length, checksum.
const HEADER_BYTES: usize = 8 + 4 + 8 + 32;
/// The most an entry decompresses to (a layer of several million files).
const MAX_RAW_BYTES: u64 = 1 << 30;
/// zstd level of entries: level 3 (the default) compresses a 40,000-file
/// entry in a few milliseconds; higher levels gained little on paths.
const ZSTD_LEVEL: i32 = 3;
/// The default bound on the cache's size.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// The log of hits and misses, one line per run (`cache info`).
const STATS_FILE: &str = "stats";

/// Where an entry is filed: the blob's `sha256:` digest and its size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    hex: String,
    size: u64,
}

impl CacheKey {
    /// A key for a `sha256:<64 hex>` digest; `None` for any other digest.
    pub fn new(digest: &str, size: u64) -> Option<CacheKey> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| CacheKey {
            hex: hex.to_string(),
            size,
        })
    }

    /// The digest, `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.hex)
    }

    fn file_name(&self) -> String {
        format!("{}-{}", self.hex, self.size)
    }
}

/// The entry as written (borrowing the scan).
#[derive(Serialize)]
struct EntryOut<'a> {
    digest: &'a str,
    size: u64,
    compression: u8,
    compressed_bytes: u64,
    blob_digest: &'a str,
    tar_bytes: u64,
    diff_id: &'a str,
    estimated_gzip_bytes: Option<u64>,
    warnings: &'a [String],
    hashed: bool,
    kinds: Vec<u8>,
    shared: Vec<u32>,
    rests: Vec<&'a str>,
    links: Vec<&'a str>,
    file_bytes: Vec<u64>,
    hashes: Vec<u8>,
    data: Vec<(u32, &'a [u8])>,
}

/// The entry as read; the same fields in the same order as [`EntryOut`].
#[derive(Deserialize)]
struct EntryIn {
    digest: String,
    size: u64,
    compression: u8,
    compressed_bytes: u64,
    blob_digest: String,
    tar_bytes: u64,
    diff_id: String,
    estimated_gzip_bytes: Option<u64>,
    warnings: Vec<String>,
    hashed: bool,
    kinds: Vec<u8>,
    shared: Vec<u32>,
    rests: Vec<String>,
    links: Vec<String>,
    file_bytes: Vec<u64>,
    hashes: Vec<u8>,
    data: Vec<(u32, Vec<u8>)>,
}

const KIND_FILE: u8 = 0;
const KIND_DIR: u8 = 1;
const KIND_SYMLINK: u8 = 2;
const KIND_HARDLINK: u8 = 3;
const KIND_WHITEOUT: u8 = 4;
const KIND_OPAQUE: u8 = 5;
const KIND_OTHER: u8 = 6;

fn compression_code(c: Compression) -> u8 {
    match c {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Zstd => 2,
    }
}

/// Bytes `a` and `b` share at their start, cut back to a character boundary.
fn shared_prefix(a: &str, b: &str) -> usize {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !b.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Encodes a verified scan as an entry file's bytes; `hashed`: every regular
/// file has its content hash. `None` when the scan was not verified (it has
/// no digests) and so must not be stored.
pub fn encode_entry(key: &CacheKey, scan: &LayerScan, hashed: bool) -> Option<Vec<u8>> {
    let digest = key.digest();
    let blob_digest = scan.blob_digest.as_deref()?;
    let diff_id = scan.diff_id.as_deref()?;
    let n = scan.entries.len();
    let mut out = EntryOut {
        digest: &digest,
        size: key.size,
        compression: compression_code(scan.compression),
        compressed_bytes: scan.compressed_bytes,
        blob_digest,
        tar_bytes: scan.tar_bytes,
        diff_id,
        estimated_gzip_bytes: scan.estimated_gzip_bytes,
        warnings: &scan.warnings,
        hashed,
        kinds: Vec::with_capacity(n),
        shared: Vec::with_capacity(n),
        rests: Vec::with_capacity(n),
        links: Vec::new(),
        file_bytes: Vec::new(),
        hashes: Vec::new(),
        data: Vec::new(),
    };
    let mut prev: &str = "";
    for (i, e) in scan.entries.iter().enumerate() {
        let kind = match &e.kind {
            EntryKind::File => KIND_FILE,
            EntryKind::Dir => KIND_DIR,
            EntryKind::Symlink => KIND_SYMLINK,
            EntryKind::HardLink(t) => {
                out.links.push(t);
                KIND_HARDLINK
            }
            EntryKind::Whiteout => KIND_WHITEOUT,
            EntryKind::Opaque => KIND_OPAQUE,
            EntryKind::Other => KIND_OTHER,
        };
        out.kinds.push(kind);
        let p: &str = &e.path;
        let s = shared_prefix(prev, p);
        out.shared.push(s as u32);
        out.rests.push(&p[s..]);
        prev = p;
        if kind == KIND_FILE {
            out.file_bytes.push(e.bytes);
            if hashed {
                out.hashes.extend_from_slice(&e.hash);
            }
        }
        if let Some(d) = &e.data {
            out.data.push((i as u32, d));
        }
    }
    frame_payload(&postcard::to_stdvec(&out).ok()?)
}

/// Frames an uncompressed payload as an entry file: compresses it and adds
/// the header with its checksum. [`encode_entry`] uses it; tests and the
/// fuzz target use it to reach the decoder behind the checksum.
pub fn frame_payload(raw: &[u8]) -> Option<Vec<u8>> {
    let payload = zstd::bulk::compress(raw, ZSTD_LEVEL).ok()?;
    let mut file = Vec::with_capacity(HEADER_BYTES + payload.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    file.extend_from_slice(blake3::hash(&payload).as_bytes());
    file.extend_from_slice(&payload);
    Some(file)
}

/// Decodes an entry file's bytes into a scan, checking everything: magic,
/// version, length, checksum, the key it claims, and every invariant the
/// later stages rely on (normalised paths, sizes within bounds). Categories
/// are left at 0: the caller classifies with its rules.
///
/// `key`, when given, must be the key the entry was filed under. Also
/// returns whether every file has its content hash. Errors are short reasons
/// for the one warning about a damaged cache.
pub fn decode_entry(bytes: &[u8], key: Option<&CacheKey>) -> Result<(LayerScan, bool), String> {
    let header = bytes.get(..HEADER_BYTES).ok_or("truncated header")?;
    if &header[..8] != MAGIC {
        return Err("not an mlsize cache entry".into());
    }
    let version = u32::from_le_bytes(header[8..12].try_into().map_err(|_| "bad header")?);
    if version != FORMAT_VERSION {
        return Err(format!("entry format {version}, expected {FORMAT_VERSION}"));
    }
    let len = u64::from_le_bytes(header[12..20].try_into().map_err(|_| "bad header")?);
    let payload = &bytes[HEADER_BYTES..];
    if payload.len() as u64 != len {
        return Err(format!(
            "truncated: {} of {len} payload bytes",
            payload.len()
        ));
    }
    if blake3::hash(payload).as_bytes() != &header[20..52] {
        return Err("checksum mismatch".into());
    }
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(payload)
        .map_err(|e| format!("zstd: {e}"))?
        .take(MAX_RAW_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("zstd: {e}"))?;
    if raw.len() as u64 > MAX_RAW_BYTES {
        return Err("entry too large".into());
    }
    let e: EntryIn = postcard::from_bytes(&raw).map_err(|e| format!("decoding: {e}"))?;
    drop(raw);
    if let Some(k) = key
        && (e.digest != k.digest() || e.size != k.size)
    {
        return Err(format!(
            "entry is for {} ({} bytes), not this file's key",
            e.digest, e.size
        ));
    }
    for d in [&e.digest, &e.blob_digest, &e.diff_id] {
        if CacheKey::new(d, 0).is_none() {
            return Err(format!("invalid digest '{d}'"));
        }
    }
    let compression = match e.compression {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Zstd,
        c => return Err(format!("unknown compression {c}")),
    };
    let n = e.kinds.len();
    if e.shared.len() != n || e.rests.len() != n {
        return Err("column lengths differ".into());
    }
    let files = e.kinds.iter().filter(|&&k| k == KIND_FILE).count();
    let links = e.kinds.iter().filter(|&&k| k == KIND_HARDLINK).count();
    if e.file_bytes.len() != files || e.links.len() != links {
        return Err("column lengths differ".into());
    }
    if e.hashed && e.hashes.len() != files * 16 || !e.hashed && !e.hashes.is_empty() {
        return Err("hash column has the wrong length".into());
    }
    let mut entries: Vec<LayerEntry> = Vec::with_capacity(n);
    let (mut file_no, mut link_no) = (0usize, 0usize);
    let mut content: u64 = 0;
    let mut prev = String::new();
    let normalized = |p: &str| crate::layer::path::normalize(p.as_bytes()).0 == p;
    for i in 0..n {
        let shared = e.shared[i] as usize;
        let head = prev
            .get(..shared)
            .ok_or("path prefix out of range")?
            .to_string();
        let path = head + &e.rests[i];
        if !normalized(&path) {
            return Err(format!("path '{}' is not normalised", path.escape_debug()));
        }
        let (kind, bytes, hash) = match e.kinds[i] {
            KIND_FILE => {
                let b = e.file_bytes[file_no];
                let mut h = [0u8; 16];
                if e.hashed {
                    h.copy_from_slice(&e.hashes[file_no * 16..file_no * 16 + 16]);
                }
                file_no += 1;
                content = content
                    .checked_add(b)
                    .filter(|&t| b <= MAX_FILE_BYTES && t <= MAX_LAYER_CONTENT_BYTES)
                    .ok_or("file sizes out of bounds")?;
                (EntryKind::File, b, h)
            }
            KIND_DIR => (EntryKind::Dir, 0, [0; 16]),
            KIND_SYMLINK => (EntryKind::Symlink, 0, [0; 16]),
            KIND_HARDLINK => {
                let t = &e.links[link_no];
                link_no += 1;
                if !normalized(t) {
                    return Err("link target is not normalised".into());
                }
                (EntryKind::HardLink(t.clone().into_boxed_str()), 0, [0; 16])
            }
            KIND_WHITEOUT => (EntryKind::Whiteout, 0, [0; 16]),
            KIND_OPAQUE => (EntryKind::Opaque, 0, [0; 16]),
            KIND_OTHER => (EntryKind::Other, 0, [0; 16]),
            k => return Err(format!("unknown entry kind {k}")),
        };
        prev.clone_from(&path);
        entries.push(LayerEntry {
            path: path.into_boxed_str(),
            kind,
            bytes,
            hash,
            category: 0,
            data: None,
        });
    }
    let mut last: Option<u32> = None;
    for (i, d) in e.data {
        if last.is_some_and(|l| l >= i) {
            return Err("data column out of order".into());
        }
        last = Some(i);
        match entries.get_mut(i as usize) {
            Some(en) if en.kind == EntryKind::File && d.len() as u64 <= en.bytes => {
                en.data = Some(d.into_boxed_slice())
            }
            _ => return Err("data for an entry that is no file".into()),
        }
    }
    let scan = LayerScan {
        compression,
        compressed_bytes: e.compressed_bytes,
        blob_digest: Some(e.blob_digest),
        tar_bytes: e.tar_bytes,
        diff_id: Some(e.diff_id),
        estimated_gzip_bytes: e.estimated_gzip_bytes,
        entries,
        warnings: e.warnings,
    };
    Ok((scan, e.hashed))
}

/// How a layer's scan was obtained, for [`CacheUse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// Read and scanned in this run.
    Read,
    /// From the cache; the blob was not read.
    Cached,
    /// From the cache, after the blob's bytes were hashed to check they are
    /// the layer the entry describes (a docker-save legacy layer, whose only
    /// digest is the diff_id of its bytes).
    Rehashed,
}

/// How much of an image came from the cache (JSON `image.cache`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CacheUse {
    /// Layers whose scan came from the cache.
    pub layers_from_cache: usize,
    /// Blob bytes of the layers from the cache (not downloaded from a
    /// registry).
    pub bytes_from_cache: u64,
    /// Layers read and scanned in this run.
    pub layers_read: usize,
    /// Blob bytes of the layers read (what a registry source downloaded).
    /// In a `diff`, a layer both images hold is read once and counted in
    /// both sides' figures.
    pub bytes_read: u64,
    /// Indexes of the layers whose blob was not read at all: their figures
    /// are those of the content their digest names (`--no-cache` re-reads).
    pub not_reread: Vec<usize>,
    /// Indexes of layers from the cache whose bytes were still hashed to
    /// verify them (docker-save legacy layers with verification on).
    pub rehashed: Vec<usize>,
}

impl CacheUse {
    /// Tallies the layers of an image, each with how it was obtained and its
    /// blob size.
    pub fn tally(layers: impl IntoIterator<Item = (Fetched, u64)>) -> CacheUse {
        let mut u = CacheUse::default();
        for (i, (f, bytes)) in layers.into_iter().enumerate() {
            match f {
                Fetched::Read => {
                    u.layers_read += 1;
                    u.bytes_read += bytes;
                }
                Fetched::Cached | Fetched::Rehashed => {
                    u.layers_from_cache += 1;
                    u.bytes_from_cache += bytes;
                    if f == Fetched::Cached {
                        u.not_reread.push(i);
                    } else {
                        u.rehashed.push(i);
                    }
                }
            }
        }
        u
    }
}

/// The cache directory, used by one run.
#[derive(Debug)]
pub struct LayerCache {
    root: PathBuf,
    dir: PathBuf,
    max_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    damaged: usize,
    first_damage: Option<String>,
    write_error: Option<String>,
    written: HashSet<CacheKey>,
}

/// The cache directory when none is given: `$MLSIZE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/mlsize`, else the platform's cache directory
/// (`~/.cache/mlsize`, `~/Library/Caches/mlsize`, `%LOCALAPPDATA%\mlsize`).
pub fn default_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("MLSIZE_CACHE_DIR") {
        return Some(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Some(d.join("mlsize"));
    }
    if cfg!(windows) {
        return var("LOCALAPPDATA").map(|d| d.join("mlsize"));
    }
    let home = var("HOME")?;
    Some(if cfg!(target_os = "macos") {
        home.join("Library/Caches/mlsize")
    } else {
        home.join(".cache/mlsize")
    })
}

/// What `mlsize cache info` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheInfo {
    /// Entries stored.
    pub entries: u64,
    /// Their bytes on disk.
    pub bytes: u64,
    /// Runs that used the cache.
    pub runs: u64,
    /// Layers found in the cache, over those runs.
    pub hits: u64,
    /// Layers looked up and not found.
    pub misses: u64,
}

impl LayerCache {
    /// The cache in `root`, bounded to `max_bytes`. Nothing is created until
    /// an entry is written.
    pub fn new(root: PathBuf, max_bytes: u64) -> LayerCache {
        let dir = root.join(format!("v{FORMAT_VERSION}"));
        LayerCache {
            root,
            dir,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    /// The directory the cache lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    /// The scan stored under `key`, with categories from `rules`; `None`
    /// when there is none, when it lacks content hashes and `hashes` asks
    /// for them, or when it is damaged (then warned about and rewritten).
    pub fn get(&self, key: &CacheKey, rules: &Rules, hashes: bool) -> Option<LayerScan> {
        let path = self.path_of(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let mut scan = match decode_entry(&bytes, Some(key)) {
            Ok((_, false)) if hashes => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Ok((s, _)) => s,
            Err(why) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut st) = self.state.lock() {
                    st.damaged += 1;
                    st.first_damage
                        .get_or_insert_with(|| format!("'{}': {why}", path.display()));
                }
                // The fresh read rewrites it; until then nobody else trips on it.
                let _ = fs::remove_file(&path);
                return None;
            }
        };
        for e in &mut scan.entries {
            if e.kind == EntryKind::File {
                e.category = rules.classify(&e.path);
            }
        }
        if !hashes {
            for e in &mut scan.entries {
                e.hash = [0; 16];
            }
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        // Least recently used goes first: a hit makes an entry new again.
        if let Ok(f) = fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(scan)
    }

    /// Stores a verified scan under `key` (once per run); `hashed`: every
    /// regular file has its content hash. A scan without digests is not
    /// stored.
    pub fn put(&self, key: &CacheKey, scan: &LayerScan, hashed: bool) {
        {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            if st.write_error.is_some() || !st.written.insert(key.clone()) {
                return;
            }
        }
        let Some(bytes) = encode_entry(key, scan, hashed) else {
            return;
        };
        if let Err(e) = self.write_atomic(&key.file_name(), &bytes)
            && let Ok(mut st) = self.state.lock()
        {
            st.write_error
                .get_or_insert_with(|| format!("'{}': {e}", self.dir.display()));
        }
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(&self.dir)?;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
        match written.and_then(|()| fs::rename(&tmp, self.dir.join(name))) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Ends the run: evicts least-recently-used entries when this run wrote
    /// any and the cache is over its bound, appends the run's hits and misses
    /// to the stats log, and returns the warnings to print (at most one about
    /// damaged entries, one about writing).
    pub fn finish(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let Ok(st) = self.state.lock() else {
            return notes;
        };
        if let Some(first) = &st.first_damage {
            notes.push(format!(
                "cache: ignored {} damaged entr{} (first {first}); {} rewritten from the image",
                st.damaged,
                if st.damaged == 1 { "y" } else { "ies" },
                if st.damaged == 1 { "it is" } else { "they are" },
            ));
        }
        if let Some(e) = &st.write_error {
            notes.push(format!(
                "cache: cannot write to {e}; this run stores nothing (--no-cache turns the cache off, --cache-dir moves it)"
            ));
        }
        let (hits, misses) = (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        );
        if st.write_error.is_none() && (hits > 0 || !st.written.is_empty()) {
            let line = format!("{hits} {misses}\n");
            // One short O_APPEND write: lines of concurrent runs never interleave.
            let _ = fs::File::options()
                .create(true)
                .append(true)
                .open(self.dir.join(STATS_FILE))
                .and_then(|mut f| f.write_all(line.as_bytes()));
        }
        if !st.written.is_empty() {
            let _ = prune_dir(&self.dir, self.max_bytes);
        }
        notes
    }

    /// Entries, bytes and the hit counts of past runs.
    pub fn info(&self) -> io::Result<CacheInfo> {
        let mut info = CacheInfo::default();
        for (_, bytes, _) in list_entries(&self.dir)? {
            info.entries += 1;
            info.bytes += bytes;
        }
        if let Ok(log) = fs::read_to_string(self.dir.join(STATS_FILE)) {
            for line in log.lines() {
                let mut w = line.split_whitespace().map(|w| w.parse::<u64>());
                if let (Some(Ok(h)), Some(Ok(m))) = (w.next(), w.next()) {
                    info.runs += 1;
                    info.hits += h;
                    info.misses += m;
                }
            }
        }
        Ok(info)
    }

    /// Evicts least-recently-used entries until the cache holds at most
    /// `max_bytes`; the entries and bytes removed.
    pub fn prune(&self, max_bytes: u64) -> io::Result<(u64, u64)> {
        prune_dir(&self.dir, max_bytes)
    }

    /// Removes every entry and the stats; the entries and bytes removed.
    pub fn clear(&self) -> io::Result<(u64, u64)> {
        let r = prune_dir(&self.dir, 0)?;
        match fs::remove_file(self.dir.join(STATS_FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(r)
    }
}

/// Entry files (name, bytes, last use), temporaries left by killed runs
/// included once they are an hour old.
fn list_entries(dir: &Path) -> io::Result<Vec<(PathBuf, u64, SystemTime)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut out = Vec::new();
    for de in rd {
        let de = de?;
        let name = de.file_name();
        let name = name.to_string_lossy();
        let Ok(md) = de.metadata() else { continue };
        if !md.is_file() || name == STATS_FILE {
            continue;
        }
        let used = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if name.starts_with(".tmp-") && now.duration_since(used).is_ok_and(|d| d.as_secs() < 3600) {
            continue;
        }
        out.push((de.path(), md.len(), used));
    }
    Ok(out)
}

fn prune_dir(dir: &Path, max_bytes: u64) -> io::Result<(u64, u64)> {
    let mut entries = list_entries(dir)?;
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    // Oldest use first; ties by name so the order is stable.
    entries.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
    let (mut removed, mut freed) = (0, 0);
    for (path, bytes, _) in entries {
        if total <= max_bytes {
            break;
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            // Another run got there first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        total -= bytes;
        removed += 1;
        freed += bytes;
    }
    Ok((removed, freed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, bytes: u64, hash: u8) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind,
            bytes,
            hash: [hash; 16],
            category: 0,
            data: None,
        }
    }

    fn scan() -> LayerScan {
        let mut db = entry("/var/lib/dpkg/status", EntryKind::File, 5, 9);
        db.data = Some(b"Pack:"[..].into());
        LayerScan {
            compression: Compression::Gzip,
            compressed_bytes: 1234,
            blob_digest: Some(format!("sha256:{}", "a".repeat(64))),
            tar_bytes: 4096,
            diff_id: Some(format!("sha256:{}", "b".repeat(64))),
            estimated_gzip_bytes: None,
            entries: vec![
                entry("/usr", EntryKind::Dir, 0, 0),
                entry("/usr/lib/libé.so", EntryKind::File, 100, 1),
                entry("/usr/lib/libè.so", EntryKind::File, 100, 2),
                entry(
                    "/usr/lib/x",
                    EntryKind::HardLink("/usr/lib/libé.so".into()),
                    0,
                    0,
                ),
                entry("/etc/gone", EntryKind::Whiteout, 0, 0),
                entry("/opt", EntryKind::Opaque, 0, 0),
                entry("/dev/null", EntryKind::Other, 0, 0),
                entry("/bin/sh", EntryKind::Symlink, 0, 0),
                db,
            ],
            warnings: vec!["one oddity".into()],
        }
    }

    fn key() -> CacheKey {
        CacheKey::new(&format!("sha256:{}", "a".repeat(64)), 1234).unwrap()
    }

    fn same(a: &LayerScan, b: &LayerScan) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "the entry round-trips");
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let s = scan();
        let bytes = encode_entry(&key(), &s, true).unwrap();
        let (got, hashed) = decode_entry(&bytes, Some(&key())).unwrap();
        same(&got, &s);
        assert!(hashed);
        let bytes = encode_entry(&key(), &s, false).unwrap();
        let (got, hashed) = decode_entry(&bytes, Some(&key())).unwrap();
        assert!(
            !hashed && got.entries[1].hash == [0; 16],
            "no hashes stored"
        );
    }

    #[test]
    fn unverified_scans_are_not_stored() {
        let mut s = scan();
        s.blob_digest = None;
        assert!(encode_entry(&key(), &s, true).is_none());
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode_entry(&key(), &scan(), true).unwrap();
        let other = CacheKey::new(&format!("sha256:{}", "c".repeat(64)), 1234).unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let mut version = bytes.clone();
        version[8] = 9;
        let cases: Vec<(&str, Vec<u8>, Option<&CacheKey>, &str)> = vec![
            ("empty", vec![], None, "truncated header"),
            (
                "truncated",
                bytes[..bytes.len() - 1].to_vec(),
                None,
                "truncated",
            ),
            ("flipped bit", flipped, None, "checksum mismatch"),
            ("other version", version, None, "entry format 9"),
            ("foreign", b"MLSZ".repeat(20), None, "not an mlsize"),
            (
                "renamed",
                bytes.clone(),
                Some(&other),
                "not this file's key",
            ),
        ];
        for (what, b, k, want) in cases {
            let err = decode_entry(&b, k).unwrap_err();
            assert!(err.contains(want), "{what}: {err}");
        }
    }

    #[test]
    fn hostile_payloads_behind_a_valid_checksum_are_refused() {
        let good = encode_entry(&key(), &scan(), true).unwrap();
        let raw = zstd::decode_all(&good[HEADER_BYTES..]).unwrap();
        let reframed = frame_payload(&raw).unwrap();
        assert!(
            decode_entry(&reframed, Some(&key())).is_ok(),
            "framing is the identity"
        );
        // Every truncation and every single-byte change of the payload
        // decodes or is refused; none panics.
        for n in 0..raw.len() {
            let _ = decode_entry(&frame_payload(&raw[..n]).unwrap(), None);
            let mut bad = raw.clone();
            bad[n] = bad[n].wrapping_add(0x41);
            let _ = decode_entry(&frame_payload(&bad).unwrap(), None);
        }
        let out = postcard::to_stdvec(&EntryOut {
            digest: &key().digest(),
            size: 1,
            compression: 0,
            compressed_bytes: 1,
            blob_digest: &key().digest(),
            tar_bytes: 1,
            diff_id: &key().digest(),
            estimated_gzip_bytes: None,
            warnings: &[],
            hashed: false,
            kinds: vec![KIND_FILE],
            shared: vec![0],
            rests: vec!["relative/../path"],
            links: vec![],
            file_bytes: vec![1],
            hashes: vec![],
            data: vec![],
        })
        .unwrap();
        let err = decode_entry(&frame_payload(&out).unwrap(), None).unwrap_err();
        assert!(err.contains("not normalised"), "{err}");
    }

    #[test]
    fn shared_prefix_stops_at_char_boundaries() {
        assert_eq!(shared_prefix("/usr/lib/libé", "/usr/lib/libè"), 12);
        assert_eq!(shared_prefix("", "/a"), 0);
        assert_eq!(shared_prefix("/a/b", "/a/b/c"), 4);
    }

    #[test]
    fn tally_counts_layers_by_origin() {
        let u = CacheUse::tally([
            (Fetched::Cached, 10),
            (Fetched::Read, 5),
            (Fetched::Rehashed, 7),
        ]);
        assert_eq!(u.layers_from_cache, 2);
        assert_eq!(u.bytes_from_cache, 17);
        assert_eq!((u.layers_read, u.bytes_read), (1, 5));
        assert_eq!((u.not_reread, u.rehashed), (vec![0], vec![2]));
    }

    #[test]
    fn put_get_prune_clear() {
        let dir = tempfile::tempdir().unwrap();
        let c = LayerCache::new(dir.path().to_path_buf(), DEFAULT_MAX_BYTES);
        let rules = Rules::builtin();
        assert!(c.get(&key(), &rules, true).is_none(), "empty cache misses");
        c.put(&key(), &scan(), false);
        assert!(
            c.get(&key(), &rules, true).is_none(),
            "no hashes: a miss when hashes are wanted"
        );
        assert!(c.get(&key(), &rules, false).is_some());
        let c = LayerCache::new(dir.path().to_path_buf(), DEFAULT_MAX_BYTES);
        c.put(&key(), &scan(), true);
        let got = c.get(&key(), &rules, true).unwrap();
        assert_eq!(got.entries[1].category, rules.classify("/usr/lib/libé.so"));
        assert!(c.finish().is_empty());
        let info = c.info().unwrap();
        assert_eq!(
            (info.entries, info.runs, info.hits, info.misses),
            (1, 1, 1, 0)
        );
        assert_eq!(c.prune(u64::MAX).unwrap(), (0, 0));
        assert_eq!(c.clear().unwrap().0, 1);
        assert_eq!(c.info().unwrap(), CacheInfo::default());
    }
}
