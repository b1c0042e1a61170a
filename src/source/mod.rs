//! Stage 1, read: an image archive or layout on the host → [`LoadedImage`]
//! (metadata plus one [`LayerScan`] per layer).
//!
//! Inputs are detected from content, never from file names:
//! - a directory holding `index.json` is an OCI image layout;
//! - a directory holding `manifest.json` (and `version`) is the layout of
//!   skopeo's `dir:` transport (`dir_transport.rs`);
//! - a plain tar (docker-save, Docker 25+ OCI-in-tar, oci-archive) is indexed
//!   header by header, then each layer blob is read at its offset by its own
//!   worker (`TarStore`);
//! - a tar compressed as a whole (gzip, zstd, xz or bzip2), and `-` (standard
//!   input), are read in one sequential pass: small JSON files are kept, every
//!   other blob is scanned as it streams by, and the manifest (which may come
//!   last) picks the layers afterwards (`stream.rs`).
//!
//! All of them implement [`ImageSource`], the one interface the rest of mlsize
//! uses, so a registry or daemon source can be added beside them.

mod dir_transport;
pub mod meta;
pub mod registry;
mod stream;

use std::collections::HashMap;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::layer::{
    BlobReader, Compression, LayerIndex, LayerScan, ReadBudget, ScanOptions,
    count_plain_file_sizes, hash_indexed, index_plain_layer, scan_layer,
};
use meta::{ImageMeta, MAX_DOC_BYTES, Selection, Store, short_digest};

/// An image with every selected layer read once.
#[derive(Debug)]
pub struct LoadedImage {
    /// Metadata of the selected image.
    pub meta: ImageMeta,
    /// One scan per layer, in layer order.
    pub scans: Vec<LayerScan>,
    /// Whether digests were verified.
    pub verified: bool,
}

/// Layer scans shared by several images read at once (`mlsize diff`): a layer
/// both images contain (same diff_id) is read once, by whichever gets to it
/// first; the other waits for that scan.
#[derive(Debug, Default)]
pub struct ScanCache {
    cells: Mutex<HashMap<String, Arc<ScanCell>>>,
}

/// One layer's scan, filled by the first reader.
type ScanCell = OnceLock<Result<LayerScan, String>>;

impl ScanCache {
    fn cell(&self, diff_id: &str) -> Option<Arc<ScanCell>> {
        let mut m = self.cells.lock().ok()?;
        Some(m.entry(diff_id.to_string()).or_default().clone())
    }
}

/// File sizes that occur more than once across every image read together.
///
/// Only files of those sizes need a content hash: duplicate groups, moved
/// files and `identical` CUDA copies all compare (size, hash), so a file whose
/// size is unique is never compared. When every layer is an uncompressed tar
/// that can be read at any offset (docker-save archives, Docker 25+ and
/// uncompressed OCI layouts), mlsize first indexes all layers from their tar
/// headers, counts the sizes here, and then reads and hashes only the files
/// whose size repeats; the rest of the data is never read unless digests are
/// verified. Images read together (`mlsize diff`) share one census, so a file
/// moved between them is still found. An image that cannot be indexed this way
/// makes everybody hash everything.
#[derive(Debug)]
pub struct SizeCensus {
    state: Mutex<CensusState>,
    ready: Condvar,
}

/// File-size counts over layers, each layer counted once however many
/// images (or positions in an image) hold it: the files of a layer two images
/// share sit at the same paths in both, so they are never compared with each
/// other, and counting them twice would hash every one of them.
#[derive(Debug, Default)]
struct Tally {
    layers: HashSet<String>,
    counts: HashMap<u64, u32>,
}

/// A layer's identity (`shared_key`, or its blob in its image) and how many
/// regular files of each size it holds.
type LayerSizes = (String, HashMap<u64, u32>);

impl Tally {
    fn add(&mut self, layers: &[LayerSizes]) {
        for (key, counts) in layers {
            if self.layers.insert(key.clone()) {
                for (&size, &n) in counts {
                    *self.counts.entry(size).or_insert(0) += n;
                }
            }
        }
    }

    /// The sizes that more than one file has.
    fn repeated(&self) -> Arc<HashSet<u64>> {
        Arc::new(
            self.counts
                .iter()
                .filter(|&(_, &n)| n > 1)
                .map(|(&s, _)| s)
                .collect(),
        )
    }
}

#[derive(Debug, Default)]
struct CensusState {
    /// Images that have not contributed yet.
    pending: usize,
    tally: Tally,
    /// Some image could not tell its sizes in advance.
    hash_all: bool,
    /// Computed once, when the last image has contributed.
    result: Option<Option<Arc<HashSet<u64>>>>,
}

impl SizeCensus {
    /// A census of `images` images, each with its seat.
    pub fn seats(images: usize) -> Vec<Arc<CensusSeat>> {
        let census = Arc::new(SizeCensus {
            state: Mutex::new(CensusState {
                pending: images,
                ..CensusState::default()
            }),
            ready: Condvar::new(),
        });
        (0..images)
            .map(|_| {
                Arc::new(CensusSeat {
                    census: census.clone(),
                    done: AtomicBool::new(false),
                })
            })
            .collect()
    }
}

/// One image's place in a [`SizeCensus`]. It contributes once; dropping it
/// before that counts as "cannot tell" (so everything is hashed), which keeps
/// a reader that failed from leaving the others waiting.
#[derive(Debug)]
pub struct CensusSeat {
    census: Arc<SizeCensus>,
    done: AtomicBool,
}

impl CensusSeat {
    /// Adds this image's file-size counts, layer by layer (`None`: not known
    /// in advance). Later calls do nothing.
    pub(crate) fn contribute(&self, layers: Option<&[LayerSizes]>) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(mut st) = self.census.state.lock() else {
            return;
        };
        match layers {
            Some(l) => st.tally.add(l),
            None => st.hash_all = true,
        }
        st.pending = st.pending.saturating_sub(1);
        if st.pending == 0 {
            let result = (!st.hash_all).then(|| st.tally.repeated());
            st.tally = Tally::default();
            st.result = Some(result);
            self.census.ready.notify_all();
        }
    }

    /// Waits for every image's contribution; the sizes to hash (`None`: all).
    fn sizes_to_hash(&self) -> Option<Arc<HashSet<u64>>> {
        let Ok(mut st) = self.census.state.lock() else {
            return None;
        };
        loop {
            if let Some(r) = &st.result {
                return r.clone();
            }
            st = match self.census.ready.wait(st) {
                Ok(st) => st,
                Err(_) => return None,
            };
        }
    }
}

impl Drop for CensusSeat {
    fn drop(&mut self) {
        self.contribute(None);
    }
}

/// Options for loading an image.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Which image and platform.
    pub selection: Selection,
    /// How layers are scanned.
    pub scan: ScanOptions,
    /// Layers read at once.
    pub threads: usize,
    /// Scans shared with other images being read at the same time.
    pub cache: Option<Arc<ScanCache>>,
    /// This image's seat in the size census of the images read together;
    /// `None` when it is read alone.
    pub census: Option<Arc<CensusSeat>>,
    /// Set, before any layer is read, to the bytes of layer blobs that
    /// [`ScanOptions::progress`] will count up to, when every blob's size is
    /// known up front (archives and layouts on disk; not standard input or a
    /// compressed archive, which are read in one pass).
    pub progress_total: Option<Arc<AtomicU64>>,
}

/// A place images come from. Archives and layouts on disk and standard input
/// implement it; a registry or a daemon would too.
pub trait ImageSource {
    /// Reads metadata, then every layer of the selected image once.
    fn load(self: Box<Self>, opts: &LoadOptions) -> Result<LoadedImage>;

    /// Reads only the metadata of the selected image (for `--base`). Sources
    /// that cannot seek have to read everything anyway.
    fn metadata(self: Box<Self>, opts: &LoadOptions) -> Result<ImageMeta> {
        self.load(opts).map(|l| l.meta)
    }
}

/// An image archive read once from any stream (plain, gzip, zstd, xz or bzip2 tar);
/// `name` names it in messages.
pub fn open_reader(name: &str, reader: Box<dyn Read + Send>) -> Box<dyn ImageSource> {
    Box::new(stream::StreamSource::new(name.to_string(), reader))
}

/// Opens `input` (`-` for standard input) as an image source, detecting its format.
pub fn open(input: &str) -> Result<Box<dyn ImageSource>> {
    if input == "-" {
        return Ok(open_reader("-", Box::new(io::stdin())));
    }
    let path = PathBuf::from(input);
    let md = std::fs::metadata(&path).map_err(|e| Error::io(input, e))?;
    if md.is_dir() {
        if !path.join("index.json").is_file() {
            if path.join("manifest.json").is_file() {
                return Ok(Box::new(dir_transport::DirTransport::open(path, input)?));
            }
            return Err(Error::NotAnImage {
                path: input.into(),
                what: "the directory has neither index.json (an OCI image layout has oci-layout, index.json and blobs/) nor manifest.json (as 'skopeo copy IMAGE dir:DIR' writes)".into(),
            });
        }
        return Ok(Box::new(DirStore {
            root: path,
            origin: input.to_string(),
        }));
    }
    let mut f = File::open(&path).map_err(|e| Error::io(input, e))?;
    let mut head = [0u8; 512];
    let n = read_up_to(&mut f, &mut head).map_err(|e| Error::io(input, e))?;
    if n == 0 {
        return Err(Error::NotAnImage {
            path: input.into(),
            what: "the file is empty".into(),
        });
    }
    match stream::Outer::sniff(&head[..n]) {
        Ok(stream::Outer::Layer(Compression::None)) => {}
        Ok(_) => {
            f.seek(SeekFrom::Start(0))
                .map_err(|e| Error::io(input, e))?;
            return Ok(Box::new(stream::StreamSource::new(
                input.to_string(),
                Box::new(f),
            )));
        }
        Err(e) => {
            return Err(Error::NotAnImage {
                path: input.into(),
                what: format!("{e} (decompress it first)"),
            });
        }
    }
    if n < 512 || !is_tar_header(&head) {
        return Err(Error::NotAnImage {
            path: input.into(),
            what:
                "it is neither a tar archive nor gzip, zstd, xz or bzip2 (try 'docker save IMAGE -o image.tar')"
                    .into(),
        });
    }
    f.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(input, e))?;
    Ok(Box::new(TarStore::index(input, f)?))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A tar header block has a valid checksum (or is the all-zero end block).
pub(crate) fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    let Ok(want) = u32::from_str_radix(digits.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == want
}

/// Checks each layer's scan against its descriptor and the config's diff_id.
fn verify_layers(origin: &str, meta: &ImageMeta, scans: &[LayerScan], verify: bool) -> Result<()> {
    let count = meta.layers.len();
    for (i, (desc, scan)) in meta.layers.iter().zip(scans).enumerate() {
        let label = layer_label(meta, i);
        if let Some(size) = desc.size
            && scan.compressed_bytes != size
        {
            let what = if scan.compressed_bytes < size {
                format!(
                    "blob truncated: read {} of {size} bytes",
                    scan.compressed_bytes
                )
            } else {
                format!(
                    "blob is {} bytes but its descriptor says {size}",
                    scan.compressed_bytes
                )
            };
            return Err(Error::Layer {
                path: origin.into(),
                index: i + 1,
                count,
                digest: label,
                what,
            });
        }
        if !verify {
            continue;
        }
        if let (Some(expected), Some(found)) = (&desc.digest, &scan.blob_digest)
            && expected.starts_with("sha256:")
            && expected != found
        {
            return Err(Error::DigestMismatch {
                path: origin.into(),
                what: format!("layer {}/{count} ({label}) blob", i + 1),
                expected: expected.clone(),
                found: found.clone(),
            });
        }
        if let (Some(expected), Some(found)) = (&desc.diff_id, &scan.diff_id)
            && expected != found
        {
            return Err(Error::DigestMismatch {
                path: origin.into(),
                what: format!("layer {}/{count} ({label}) diff_id", i + 1),
                expected: expected.clone(),
                found: found.clone(),
            });
        }
    }
    Ok(())
}

/// `sha256:0123456789ab` naming a layer in messages.
pub fn layer_label(meta: &ImageMeta, i: usize) -> String {
    let d = &meta.layers[i];
    d.digest
        .as_deref()
        .or(d.diff_id.as_deref())
        .map(short_digest)
        .unwrap_or_else(|| d.blob.clone())
}

fn layer_error(origin: &str, meta: &ImageMeta, i: usize, what: String) -> Error {
    Error::Layer {
        path: origin.into(),
        index: i + 1,
        count: meta.layers.len(),
        digest: layer_label(meta, i),
        what,
    }
}

/// Where a layer blob lies: `len` bytes of `file` from offset `start`.
struct BlobFile {
    file: File,
    start: u64,
    len: u64,
}

impl BlobFile {
    fn reader(mut self) -> io::Result<Box<dyn Read + Send>> {
        self.file.seek(SeekFrom::Start(self.start))?;
        Ok(Box::new(self.file.take(self.len)))
    }
}

fn blob_error(blob: &str, e: io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        format!("blob '{blob}' is missing from the archive")
    } else {
        format!("cannot read blob '{blob}': {e}")
    }
}

/// What makes two images' layers the same layer for [`ScanCache`] and the
/// [`SizeCensus`]: the diff_id, the blob digest and size. The same content
/// stored differently (another compression) is another blob: its size and
/// digest need their own read.
fn shared_key(l: &meta::LayerDesc) -> Option<String> {
    let d = l.diff_id.as_deref()?;
    Some(format!(
        "{d} {} {:?}",
        l.digest.as_deref().unwrap_or("-"),
        l.size
    ))
}

/// What the headers of an uncompressed blob told before its data is read.
enum Indexed {
    /// The whole index (for reads without verification).
    Entries(LayerIndex),
    /// Only how many regular files have each size (verified reads).
    Sizes(HashMap<u64, u32>),
    /// Counting gave up: the image has so many small files that counting
    /// them costs about a second read (see `count_plain_file_sizes`).
    Dense,
}

/// Indexes a blob when it is an uncompressed tar; `Ok(None)` when it is compressed.
fn index_if_plain(
    blob: BlobFile,
    scan: &ScanOptions,
    budget: &ReadBudget,
) -> Result<Option<Indexed>, String> {
    let mut reader = BlobReader::new(blob.file, blob.start, blob.len)
        .map_err(|e| format!("read failed: {e}"))?;
    let head = io::BufRead::fill_buf(&mut reader).map_err(|e| format!("read failed: {e}"))?;
    if !head.is_empty() && Compression::sniff(head).map_err(|e| e.to_string())? != Compression::None
    {
        return Ok(None);
    }
    if scan.verify {
        let mut sizes = HashMap::new();
        return Ok(Some(
            if count_plain_file_sizes(reader, &mut sizes, budget)? {
                Indexed::Sizes(sizes)
            } else {
                Indexed::Dense
            },
        ));
    }
    index_plain_layer(reader, scan).map(|ix| Some(Indexed::Entries(ix)))
}

/// Scans the selected layers of a seekable store, largest first, `threads` at a time.
/// A blob used by several layers is read once.
///
/// Uncompressed blobs are first indexed from their headers. When content is
/// hashed and every blob is uncompressed, their file sizes go to the
/// [`SizeCensus`] and only the files whose size repeats are hashed. Without
/// verification, an indexed blob's data is then read only for those files;
/// with it, every blob is streamed whole.
fn scan_seekable<F>(
    origin: &str,
    meta: &ImageMeta,
    opts: &LoadOptions,
    open_blob: F,
) -> Result<Vec<LayerScan>>
where
    F: Fn(&str) -> io::Result<BlobFile> + Sync,
{
    let mut unique: Vec<(usize, u64)> = Vec::new();
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, l) in meta.layers.iter().enumerate() {
        if !first_of.contains_key(l.blob.as_str()) {
            first_of.insert(&l.blob, i);
            unique.push((i, l.size.unwrap_or(0)));
        }
    }
    // Every blob is counted once at its full size, whether it is streamed
    // or indexed from its headers (see ScanOptions::progress).
    if let Some(total) = &opts.progress_total
        && meta.layers.iter().all(|l| l.size.is_some())
    {
        total.store(unique.iter().map(|u| u.1).sum(), Ordering::Relaxed);
    }
    // Longest job first keeps the critical path short.
    unique.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start threads: {e}")))?;
    let verify = opts.scan.verify;

    // Phase 1: index uncompressed blobs from their headers: for the size
    // census, and, without verification, to read no more than needed.
    let indexed: Mutex<HashMap<usize, Result<Option<Indexed>, String>>> = Mutex::default();
    let budget = ReadBudget::for_image(unique.iter().map(|u| u.1).sum());
    if opts.scan.hash_content || !verify {
        pool.scope_fifo(|s| {
            for &(i, _) in &unique {
                let (indexed, open_blob, budget) = (&indexed, &open_blob, &budget);
                s.spawn_fifo(move |_| {
                    let blob = &meta.layers[i].blob;
                    let r = open_blob(blob)
                        .map_err(|e| blob_error(blob, e))
                        .and_then(|b| index_if_plain(b, &opts.scan, budget));
                    if let Ok(mut m) = indexed.lock() {
                        m.insert(i, r);
                    }
                });
            }
        });
    }
    let mut indexed = indexed
        .into_inner()
        .map_err(|_| Error::Usage("a layer worker panicked".into()))?;
    // Without verification an index error is the layer's error; with it, the
    // full read below reports what is wrong (a digest mismatch comes first).
    if !verify {
        for (i, _) in &unique {
            if let Some(Err(what)) = indexed.get(i) {
                return Err(layer_error(origin, meta, *i, what.clone()));
            }
        }
    }
    let all_indexed = opts.scan.hash_content
        && unique.iter().all(|(i, _)| {
            matches!(
                indexed.get(i),
                Some(Ok(Some(Indexed::Entries(_) | Indexed::Sizes(_))))
            )
        });
    let layer_sizes: Option<Vec<LayerSizes>> = all_indexed.then(|| {
        let mut out = Vec::new();
        for (i, _) in &unique {
            let l = &meta.layers[*i];
            let key = shared_key(l).unwrap_or_else(|| format!("{} in {origin}", l.blob));
            match indexed.get(i) {
                Some(Ok(Some(Indexed::Entries(ix)))) => out.push((key, ix.size_counts())),
                Some(Ok(Some(Indexed::Sizes(sizes)))) => out.push((key, sizes.clone())),
                _ => {}
            }
        }
        out
    });
    let hash_sizes = match &opts.census {
        Some(seat) => {
            seat.contribute(layer_sizes.as_deref());
            seat.sizes_to_hash()
        }
        None => layer_sizes.map(|l| {
            let mut tally = Tally::default();
            tally.add(&l);
            tally.repeated()
        }),
    };
    let mut scan_opts = opts.scan.clone();
    scan_opts.hash_sizes = hash_sizes;
    // The first failed read stops the others (and, in a diff, the other
    // image's, which shares the flag).
    let cancel = scan_opts
        .cancel
        .get_or_insert_with(Default::default)
        .clone();
    // Verification reads every byte anyway: the stream below does.
    if verify {
        indexed.clear();
    }
    let indexed = Mutex::new(indexed);

    // Phase 2: read (and hash) what is needed, layer by layer.
    let results: Mutex<HashMap<usize, Result<LayerScan, String>>> = Mutex::new(HashMap::new());
    pool.scope_fifo(|s| {
        for &(i, _) in &unique {
            let (results, indexed, open_blob, scan_opts, cancel) =
                (&results, &indexed, &open_blob, &scan_opts, &cancel);
            s.spawn_fifo(move |_| {
                let blob = &meta.layers[i].blob;
                let read = || {
                    let ix = indexed.lock().ok().and_then(|mut m| m.remove(&i));
                    match ix {
                        Some(Ok(Some(Indexed::Entries(ix)))) => open_blob(blob)
                            .map_err(|e| blob_error(blob, e))
                            .and_then(|b| hash_indexed(ix, &b.file, b.start, scan_opts)),
                        _ => open_blob(blob)
                            .and_then(|b| {
                                let len = b.len;
                                b.reader().map(|r| (r, len))
                            })
                            .map_err(|e| blob_error(blob, e))
                            .and_then(|(r, len)| scan_layer(r, Some(len), scan_opts)),
                    }
                };
                let shared = opts
                    .cache
                    .as_ref()
                    .zip(shared_key(&meta.layers[i]))
                    .and_then(|(c, key)| c.cell(&key));
                let r = match shared {
                    Some(cell) => cell.get_or_init(read).clone(),
                    None => read(),
                };
                if r.is_err() {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                if let Ok(mut m) = results.lock() {
                    m.insert(i, r);
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .map_err(|_| Error::Usage("a layer worker panicked".into()))?;
    // Report the error that stopped the others, not one of the stops.
    let real = (0..meta.layers.len()).find_map(|i| match results.get(&i) {
        Some(Err(what)) if !what.contains(crate::layer::CANCELLED) => Some((i, what.clone())),
        _ => None,
    });
    if let Some((i, what)) = real {
        return Err(layer_error(origin, meta, i, what));
    }
    let mut scans = Vec::with_capacity(meta.layers.len());
    for (i, l) in meta.layers.iter().enumerate() {
        let first = first_of[l.blob.as_str()];
        let scan = if first == i {
            results.remove(&i)
        } else {
            // A repeated blob: reuse the first layer's scan.
            scans.get(first).map(|s: &LayerScan| Ok(s.clone()))
        };
        match scan {
            Some(Ok(s)) => scans.push(s),
            Some(Err(what)) => return Err(layer_error(origin, meta, i, what)),
            None => return Err(layer_error(origin, meta, i, "layer was not read".into())),
        }
    }
    Ok(scans)
}

/// An OCI image layout directory.
struct DirStore {
    root: PathBuf,
    origin: String,
}

impl DirStore {
    fn host_path(&self, path: &str) -> Option<PathBuf> {
        // Archive paths are normalised and relative; refuse anything else.
        if path.is_empty()
            || path.starts_with('/')
            || path.split('/').any(|c| c == ".." || c.is_empty())
        {
            return None;
        }
        Some(self.root.join(path))
    }
}

impl Store for DirStore {
    fn read_doc(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.host_path(path) {
            Some(p) => read_host_doc(&self.origin, path, &p),
            None => Ok(None),
        }
    }
    fn size_of(&self, path: &str) -> Option<u64> {
        host_file_bytes(&self.host_path(path)?)
    }
    fn origin(&self) -> &str {
        &self.origin
    }
    fn is_empty(&self) -> bool {
        false
    }
    fn sample_names(&self) -> Vec<String> {
        Vec::new()
    }
}

impl ImageSource for DirStore {
    fn metadata(self: Box<Self>, opts: &LoadOptions) -> Result<ImageMeta> {
        meta::resolve(&*self, &opts.selection)
    }

    fn load(self: Box<Self>, opts: &LoadOptions) -> Result<LoadedImage> {
        let mut meta = meta::resolve(&*self, &opts.selection)?;
        meta.format = "oci-layout".into();
        let scans = scan_seekable(&self.origin, &meta, opts, |blob| {
            let p = self
                .host_path(blob)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "invalid blob path"))?;
            let file = File::open(p)?;
            let len = file.metadata()?.len();
            Ok(BlobFile {
                file,
                start: 0,
                len,
            })
        })?;
        verify_layers(&self.origin, &meta, &scans, opts.selection.verify)?;
        Ok(LoadedImage {
            meta,
            scans,
            verified: opts.selection.verify,
        })
    }
}

/// The member an archive's symlink or hard link entry points at: a relative
/// symlink target is resolved against the link's directory.
pub(crate) fn link_member(name: &str, h: &crate::layer::tar::Header) -> String {
    let target = String::from_utf8_lossy(&h.link);
    if h.kind == crate::layer::tar::Kind::Symlink && !target.starts_with('/') {
        let dir = name.rsplit_once('/').map(|x| x.0).unwrap_or("");
        meta::normalize_member(&format!("{dir}/{target}"))
    } else {
        meta::normalize_member(&target)
    }
}

/// A metadata document from a host file (`None` when there is no such file),
/// refused past [`MAX_DOC_BYTES`]; `name` is how the error names it.
fn read_host_doc(origin: &str, name: &str, p: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => {
            if m.len() > MAX_DOC_BYTES {
                return Err(Error::format(
                    origin,
                    format!(
                        "'{name}' is {} bytes, too large for a metadata file",
                        m.len()
                    ),
                ));
            }
            std::fs::read(p)
                .map(Some)
                .map_err(|e| Error::io(p.display().to_string(), e))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(p.display().to_string(), e)),
    }
}

/// The size of a regular host file, if it is one.
fn host_file_bytes(p: &Path) -> Option<u64> {
    std::fs::metadata(p)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

/// Where a member of an uncompressed tar is.
#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

/// An uncompressed tar archive on disk, indexed by member name.
struct TarStore {
    path: PathBuf,
    origin: String,
    members: HashMap<String, Member>,
    order: Vec<String>,
}

impl TarStore {
    /// Reads only the headers of the archive (data is skipped by seeking).
    fn index(origin: &str, f: File) -> Result<TarStore> {
        // The project's own tar reader, as for streamed archives and layers,
        // so the same rules apply on every path: headers are read, data is
        // skipped by seeking.
        let file_len = f.metadata().map_err(|e| Error::io(origin, e))?.len();
        let reader =
            crate::layer::BlobReader::new(f, 0, file_len).map_err(|e| Error::io(origin, e))?;
        let mut stream = crate::layer::tar::TarStream::new(reader, Default::default());
        let mut members = HashMap::new();
        let mut order = Vec::new();
        loop {
            let h = match stream.next_header() {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(Error::format(
                        origin,
                        format!(
                            "archive truncated in a header at offset {} (the file was cut short: save or copy it again)",
                            stream.position()
                        ),
                    ));
                }
                Err(e) => {
                    return Err(Error::format(origin, format!("corrupt tar archive: {e}")));
                }
            };
            let name = meta::normalize_member(&String::from_utf8_lossy(&h.path));
            use crate::layer::tar::Kind;
            let member = match h.kind {
                Kind::File => Member::File {
                    offset: stream.position(),
                    size: h.size,
                },
                Kind::Symlink | Kind::HardLink => Member::Link(link_member(&name, &h)),
                _ => {
                    stream
                        .skip_data(|r, n| r.skip(n))
                        .map_err(|e| Error::format(origin, format!("corrupt tar archive: {e}")))?;
                    continue;
                }
            };
            // An archive cut short (`head -c`, a partial copy) ends inside a
            // member: say so, as the stream reader does for the same bytes,
            // rather than report whatever the missing tail would have held.
            if let Member::File { offset, size } = member
                && offset.saturating_add(size) > file_len
            {
                return Err(Error::format(
                    origin,
                    format!(
                        "archive truncated inside '{name}' ({} of {size} bytes; the file was cut short: save or copy it again)",
                        file_len.saturating_sub(offset)
                    ),
                ));
            }
            stream
                .skip_data(|r, n| r.skip(n))
                .map_err(|e| Error::format(origin, format!("corrupt tar archive: {e}")))?;
            order.push(name.clone());
            members.insert(name, member);
        }
        Ok(TarStore {
            path: PathBuf::new(),
            origin: origin.to_string(),
            members,
            order,
        }
        .with_path(Path::new(origin)))
    }

    fn with_path(mut self, p: &Path) -> Self {
        self.path = p.to_path_buf();
        self
    }

    fn find(&self, name: &str) -> Option<(u64, u64)> {
        let mut name = name.to_string();
        for _ in 0..16 {
            match self.members.get(&name)? {
                Member::File { offset, size } => return Some((*offset, *size)),
                Member::Link(t) => name = t.clone(),
            }
        }
        None
    }

    /// Where a member's data is; a member cut short by a truncated archive
    /// ends where the file does.
    fn member_blob(&self, name: &str) -> io::Result<BlobFile> {
        let (start, size) = self
            .find(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "missing"))?;
        let file = File::open(&self.path)?;
        let len = size.min(file.metadata()?.len().saturating_sub(start));
        Ok(BlobFile { file, start, len })
    }

    fn open_member(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        self.member_blob(name)?.reader()
    }
}

impl Store for TarStore {
    fn read_doc(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some((_, size)) = self.find(path) else {
            return Ok(None);
        };
        if size > MAX_DOC_BYTES {
            return Err(Error::format(
                &self.origin,
                format!("'{path}' is {size} bytes, too large for a metadata file"),
            ));
        }
        let mut r = self
            .open_member(path)
            .map_err(|e| Error::io(&self.origin, e))?;
        let mut buf = Vec::with_capacity(size as usize);
        r.read_to_end(&mut buf)
            .map_err(|e| Error::io(&self.origin, e))?;
        if (buf.len() as u64) < size {
            return Err(Error::format(
                &self.origin,
                format!(
                    "archive truncated inside '{path}' ({} of {size} bytes)",
                    buf.len()
                ),
            ));
        }
        Ok(Some(buf))
    }
    fn size_of(&self, path: &str) -> Option<u64> {
        self.find(path).map(|(_, s)| s)
    }
    fn origin(&self) -> &str {
        &self.origin
    }
    fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    fn sample_names(&self) -> Vec<String> {
        self.order.iter().take(8).cloned().collect()
    }
}

impl ImageSource for TarStore {
    fn metadata(self: Box<Self>, opts: &LoadOptions) -> Result<ImageMeta> {
        meta::resolve(&*self, &opts.selection)
    }

    fn load(self: Box<Self>, opts: &LoadOptions) -> Result<LoadedImage> {
        let mut meta = meta::resolve(&*self, &opts.selection)?;
        if meta.format == "oci" {
            meta.format = "oci-archive".into();
        }
        let scans = scan_seekable(&self.origin, &meta, opts, |blob| self.member_blob(blob))?;
        verify_layers(&self.origin, &meta, &scans, opts.selection.verify)?;
        Ok(LoadedImage {
            meta,
            scans,
            verified: opts.selection.verify,
        })
    }
}
