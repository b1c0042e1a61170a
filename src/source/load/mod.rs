//! The loader: one for every source. It plans which blobs to read (each
//! once, largest first), indexes uncompressed ones from their headers when
//! the source can read at an offset, takes part in the size census, scans,
//! assembles the layers in order and verifies every blob against its
//! descriptor and diff_id. A sequential source's one pass is in `pass.rs`.

mod pass;

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::cache::{CacheKey, CacheUse, Fetched};
use super::meta::{ImageMeta, LayerDesc, short_digest};
use super::shared::{LayerSizes, Tally};
use super::{Blob, LoadOptions, LoadedImage, RandomAccess, Sequential};
use crate::error::{Error, Result};
use crate::layer::{
    BlobReader, Compression, LayerIndex, LayerScan, ReadBudget, ScanOptions,
    count_plain_file_sizes, hash_indexed, index_plain_layer, scan_layer,
};

/// What reading a blob gave, by the blob's name.
type Scans = HashMap<String, Result<LayerScan, String>>;

/// How each blob's scan was obtained, by the blob's name (blobs missing from
/// it were read).
type FetchedBy = HashMap<String, Fetched>;

/// Loads the selected image of a random-access source.
pub(super) fn load_random(src: &dyn RandomAccess, opts: &LoadOptions) -> Result<LoadedImage> {
    let mut meta = src.resolve(&opts.selection)?;
    let origin = src.origin();
    let (mut scans, fetched) = scan_random(src, &meta, opts)?;
    let scans = assemble(origin, &meta, |blob, last| take(&mut scans, blob, last))?;
    verify_layers(origin, &meta, &scans, opts.selection.verify)?;
    let cache = store_fresh(&meta, &scans, opts, |blob| fetched.get(blob).copied());
    src.complete(&mut meta, &scans);
    Ok(LoadedImage {
        meta,
        scans,
        verified: opts.selection.verify,
        cache,
    })
}

/// The cache key of a layer and whether a hit may be used without reading
/// the blob: yes for a blob named by its descriptor's digest; for a
/// docker-save legacy layer, known only by the diff_id of its bytes, only
/// without verification (with it, the bytes are still hashed).
fn cache_key(l: &LayerDesc, verify: bool) -> Option<(CacheKey, bool)> {
    let size = l.size?;
    match l.digest.as_deref().filter(|d| d.starts_with("sha256:")) {
        Some(d) => Some((CacheKey::new(d, size)?, true)),
        None => Some((CacheKey::new(l.diff_id.as_deref()?, size)?, !verify)),
    }
}

/// A scan from the cache as this run would have made it: without
/// verification, a fresh read computes no digests; a layer past
/// `--max-uncompressed` fails as a read would.
fn adjust_hit(
    mut scan: LayerScan,
    opts: &ScanOptions,
    count_progress: bool,
) -> Result<LayerScan, String> {
    if let Some(limit) = opts.max_uncompressed_bytes
        && scan.tar_bytes > limit
    {
        return Err(format!(
            "uncompressed layer exceeds --max-uncompressed ({limit} bytes)"
        ));
    }
    if !opts.verify {
        scan.blob_digest = None;
        scan.diff_id = None;
    }
    if let Some(p) = opts.progress.as_ref().filter(|_| count_progress) {
        p.fetch_add(scan.compressed_bytes, Ordering::Relaxed);
    }
    Ok(scan)
}

/// After verification: stores the layers read in this run (verified runs
/// only: an entry vouches for its digest) and tallies what came from where.
fn store_fresh(
    meta: &ImageMeta,
    scans: &[LayerScan],
    opts: &LoadOptions,
    fetched: impl Fn(&str) -> Option<Fetched>,
) -> Option<CacheUse> {
    let disk = opts.disk.as_deref()?;
    let how: Vec<Fetched> = meta
        .layers
        .iter()
        .map(|l| fetched(&l.blob).unwrap_or(Fetched::Read))
        .collect();
    if opts.scan.verify {
        // Stored scans hash every file (see cache.rs, "Hashes").
        let hashed = opts.scan.hash_content && opts.scan.hash_sizes.is_none();
        let fresh: Vec<(CacheKey, &LayerScan)> = meta
            .layers
            .iter()
            .zip(scans)
            .zip(&how)
            .filter(|(_, f)| **f == Fetched::Read)
            .filter_map(|((l, s), _)| Some((cache_key(l, true)?.0, s)))
            .collect();
        use rayon::prelude::*;
        fresh.par_iter().for_each(|(k, s)| disk.put(k, s, hashed));
    }
    Some(CacheUse::tally(
        how.into_iter()
            .zip(scans.iter().map(|s| s.compressed_bytes)),
    ))
}

/// Hashes a blob whose scan the cache holds under its diff_id (a
/// docker-save legacy layer read with verification): the entry is used when
/// the blob's bytes are that layer (its tar stream hashes to the entry's
/// diff_id), else `None` and the blob is read as usual, which reports what
/// is wrong as a cold read does.
fn rehash(blob: Blob, hit: LayerScan, opts: &ScanOptions) -> Option<LayerScan> {
    let (r, _) = blob.into_reader().ok()?;
    rehash_reader(r, hit, opts).ok()
}

/// [`rehash`] of a blob read from `r`: the cached scan when the bytes are
/// the layer it describes (compression, blob size, blob digest, diff_id),
/// else why not.
fn rehash_reader<R: io::Read>(
    r: R,
    hit: LayerScan,
    opts: &ScanOptions,
) -> Result<LayerScan, String> {
    use sha2::{Digest, Sha256};
    use std::io::{BufRead, BufReader, Read};
    /// Counts raw bytes (for progress and the blob's size) and stops when
    /// another layer failed.
    struct Counted<'a, R> {
        inner: R,
        n: u64,
        /// The blob's own digest, when it is compressed.
        blob: Option<Sha256>,
        opts: &'a ScanOptions,
    }
    impl<R: Read> Read for Counted<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self
                .opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(io::Error::other(crate::layer::CANCELLED));
            }
            let k = self.inner.read(buf)?;
            self.n += k as u64;
            if let Some(h) = &mut self.blob {
                h.update(&buf[..k]);
            }
            if let Some(p) = &self.opts.progress {
                p.fetch_add(k as u64, Ordering::Relaxed);
            }
            Ok(k)
        }
    }
    let read_failed = |e: io::Error| format!("read failed: {e}");
    let mut raw = BufReader::with_capacity(
        64 << 10,
        Counted {
            inner: r,
            n: 0,
            blob: None,
            opts,
        },
    );
    let compression =
        Compression::sniff(raw.fill_buf().map_err(read_failed)?).map_err(|e| e.to_string())?;
    if compression != Compression::None {
        // Nothing of the buffer is consumed yet: hash it from the start.
        let head = raw.buffer().to_vec();
        let mut h = Sha256::new();
        h.update(&head);
        raw.get_mut().blob = Some(h);
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut pump = |src: &mut dyn Read| -> io::Result<()> {
        loop {
            match src.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(k) => h.update(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    };
    let corrupt = |e: io::Error| format!("corrupt {} stream: {e}", compression.name());
    let raw = match compression {
        Compression::None => {
            pump(&mut raw).map_err(read_failed)?;
            raw
        }
        Compression::Gzip => {
            let mut d = flate2::bufread::MultiGzDecoder::new(raw);
            pump(&mut d).map_err(corrupt)?;
            d.into_inner()
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(raw).map_err(corrupt)?;
            d.window_log_max(31).map_err(corrupt)?;
            pump(&mut d).map_err(corrupt)?;
            d.finish()
        }
    };
    // Trailing bytes after a compressed stream are an error a read reports.
    let mut rest = raw;
    if !rest.fill_buf().map_err(read_failed)?.is_empty() {
        return Err(format!(
            "trailing data after the {} stream",
            compression.name()
        ));
    }
    let counted = rest.into_inner();
    let digest = crate::layer::sha256_string(&h.finalize());
    let blob_digest = match counted.blob {
        Some(b) => crate::layer::sha256_string(&b.finalize()),
        None => digest.clone(),
    };
    confirm(hit, compression, counted.n, &blob_digest, &digest)
}

/// [`rehash_reader`] of an uncompressed blob that arrives in buffers, as a
/// stream's pass hands them over (`pass.rs`): each is hashed where it lies,
/// not copied, and given back through `recycle`.
fn rehash_chunks(
    chunks: crossbeam_channel::Receiver<Vec<u8>>,
    recycle: crossbeam_channel::Sender<Vec<u8>>,
    hit: LayerScan,
    opts: &ScanOptions,
) -> Result<LayerScan, String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut n = 0u64;
    for chunk in chunks {
        if opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(crate::layer::CANCELLED.to_string());
        }
        h.update(&chunk);
        n += chunk.len() as u64;
        if let Some(p) = &opts.progress {
            p.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        // A full pool lets the buffer go.
        let _ = recycle.try_send(chunk);
    }
    let digest = crate::layer::sha256_string(&h.finalize());
    confirm(hit, Compression::None, n, &digest, &digest)
}

/// The cached scan `hit` when a blob's bytes are the layer it describes: the
/// same compression, blob size, blob digest and diff_id; else why not.
fn confirm(
    hit: LayerScan,
    compression: Compression,
    blob_bytes: u64,
    blob_digest: &str,
    diff_id: &str,
) -> Result<LayerScan, String> {
    if hit.compression == compression
        && hit.compressed_bytes == blob_bytes
        && hit.blob_digest.as_deref() == Some(blob_digest)
        && hit.diff_id.as_deref() == Some(diff_id)
    {
        return Ok(hit);
    }
    Err(format!(
        "its bytes ({} blob {blob_digest}, {blob_bytes} bytes, diff_id {diff_id}) are not that layer ({} blob {}, {} bytes, diff_id {})",
        compression.name(),
        hit.compression.name(),
        hit.blob_digest.as_deref().unwrap_or("-"),
        hit.compressed_bytes,
        hit.diff_id.as_deref().unwrap_or("-"),
    ))
}

/// Loads the selected image of a sequential source: one pass scans every
/// blob, then the documents it kept pick the layers.
pub(super) fn load_sequential(src: Sequential, opts: &LoadOptions) -> Result<LoadedImage> {
    // One pass over a stream cannot know file sizes in advance.
    if let Some(seat) = &opts.census {
        seat.contribute(None);
    }
    let super::stream::Opened {
        origin,
        tar,
        compression,
    } = src.open()?;
    let (store, mut scans, fetched, assumed) = pass::pass(&origin, tar, opts)?;
    let mut meta = super::meta::resolve(&store, &opts.selection)?;
    meta.format = compression.format(&meta.format);
    // A layer taken from the cache by the diff_id its name gives, unread
    // (no verification): the random-access loader would have looked the
    // cache up by the config's diff_id, so the two must agree.
    for l in &meta.layers {
        let key = store.resolve_name(&l.blob);
        if let Some(named) = assumed.get(&key)
            && l.diff_id.as_deref() != Some(named.as_str())
        {
            let what = format!(
                "'{key}' is named for {named} but the config gives its layer the diff_id {}; it was skipped over for the layer cache's scan of {named}, and a stream cannot be read twice: run again with --no-cache",
                l.diff_id.as_deref().unwrap_or("-")
            );
            scans.insert(key, Err(what));
        }
    }
    let scans = assemble(&origin, &meta, |blob, last| {
        let key = store.resolve_name(blob);
        match take(&mut scans, &key, last) {
            Some(r) => Some(r),
            None if store.is_doc(&key) => Some(Err(format!("blob '{blob}' is JSON, not a layer"))),
            None => None,
        }
    })?;
    verify_layers(&origin, &meta, &scans, opts.selection.verify)?;
    let cache = store_fresh(&meta, &scans, opts, |blob| {
        fetched.get(&store.resolve_name(blob)).copied()
    });
    Ok(LoadedImage {
        meta,
        scans,
        verified: opts.selection.verify,
        cache,
    })
}

/// A blob's scan: cloned while a later layer still uses the blob, taken by
/// the last one.
fn take(scans: &mut Scans, blob: &str, last: bool) -> Option<Result<LayerScan, String>> {
    if last {
        scans.remove(blob)
    } else {
        scans.get(blob).cloned()
    }
}

/// Puts the scans in layer order. `scan_of(blob, last)` gives a blob's scan
/// (`last`: no later layer uses that blob). The error reported is the one
/// that stopped the other readers, not one of the stops.
fn assemble(
    origin: &str,
    meta: &ImageMeta,
    mut scan_of: impl FnMut(&str, bool) -> Option<Result<LayerScan, String>>,
) -> Result<Vec<LayerScan>> {
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (i, l) in meta.layers.iter().enumerate() {
        last_use.insert(&l.blob, i);
    }
    let mut scans = Vec::with_capacity(meta.layers.len());
    let mut first_error: Option<(usize, String)> = None;
    for (i, l) in meta.layers.iter().enumerate() {
        let what = match scan_of(&l.blob, last_use[l.blob.as_str()] == i) {
            Some(Ok(s)) => {
                scans.push(s);
                continue;
            }
            Some(Err(what)) => what,
            None => format!("blob '{}' is missing from the archive", l.blob),
        };
        if !what.contains(crate::layer::CANCELLED) {
            return Err(layer_error(origin, meta, i, what));
        }
        first_error.get_or_insert((i, what));
    }
    match first_error {
        Some((i, what)) => Err(layer_error(origin, meta, i, what)),
        None => Ok(scans),
    }
}

/// Checks each layer's scan against its descriptor and the config's diff_id.
pub(super) fn verify_layers(
    origin: &str,
    meta: &ImageMeta,
    scans: &[LayerScan],
    verify: bool,
) -> Result<()> {
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

pub(super) fn layer_error(origin: &str, meta: &ImageMeta, i: usize, what: String) -> Error {
    Error::Layer {
        path: origin.into(),
        index: i + 1,
        count: meta.layers.len(),
        digest: layer_label(meta, i),
        what,
    }
}

fn blob_error(blob: &str, e: io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        format!("blob '{blob}' is missing from the archive")
    } else {
        format!("cannot read blob '{blob}': {e}")
    }
}
/// What makes two images' layers the same layer for the scan cache and the
/// size census: the diff_id, the blob digest and size. The same content
/// stored differently (another compression) is another blob: its size and
/// digest need their own read.
fn shared_key(l: &LayerDesc) -> Option<String> {
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

/// Indexes a blob when it is an uncompressed tar in a file; `Ok(None)` when
/// it is compressed or a stream.
fn index_if_plain(
    blob: Blob,
    scan: &ScanOptions,
    budget: &ReadBudget,
) -> Result<Option<Indexed>, String> {
    let Blob::File { file, start, len } = blob else {
        return Ok(None);
    };
    let mut reader = BlobReader::new(file, start, len).map_err(|e| format!("read failed: {e}"))?;
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

/// Reads every distinct blob of the selected layers once, largest first,
/// `threads` at a time; the scans by blob name.
///
/// When the source reads at offsets, uncompressed blobs are first indexed
/// from their headers. When content is hashed and every blob is
/// uncompressed, their file sizes go to the size census and only the files
/// whose size repeats are hashed. Without verification, an indexed blob's
/// data is then read only for those files; with it, every blob is streamed
/// whole.
fn scan_random(
    src: &dyn RandomAccess,
    meta: &ImageMeta,
    opts: &LoadOptions,
) -> Result<(Scans, FetchedBy)> {
    let origin = src.origin();
    let mut unique: Vec<(usize, u64)> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = Default::default();
    for (i, l) in meta.layers.iter().enumerate() {
        if seen.insert(l.blob.as_str()) {
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
    let open = |i: usize| {
        let l = &meta.layers[i];
        let blob = src.open_blob(l).map_err(|e| blob_error(&l.blob, e))?;
        // A stream (a download) gets a progress line of its own.
        Ok(match (blob, &opts.layer_progress) {
            (Blob::Stream { reader, len }, Some(p)) => Blob::Stream {
                reader: p.track(
                    format!(
                        "layer {}/{} {}",
                        i + 1,
                        meta.layers.len(),
                        layer_label(meta, i)
                    ),
                    len,
                    reader,
                ),
                len,
            },
            (blob, _) => blob,
        })
    };

    // Phase 0: the layers the cache holds and that need no reading.
    let disk = opts.disk.as_deref();
    let hits: Mutex<HashMap<usize, LayerScan>> = Mutex::default();
    if let Some(d) = disk {
        pool.scope_fifo(|s| {
            for &(i, _) in &unique {
                let Some((key, true)) = cache_key(&meta.layers[i], verify) else {
                    continue;
                };
                let hits = &hits;
                s.spawn_fifo(move |_| {
                    if let Some(scan) = d.get(&key, &opts.scan.rules, opts.scan.hash_content)
                        && let Ok(mut m) = hits.lock()
                    {
                        m.insert(i, scan);
                    }
                });
            }
        });
    }
    let hits = hits
        .into_inner()
        .map_err(|_| Error::Usage("a layer worker panicked".into()))?;
    // A run that stores what it reads hashes every file (cache.rs,
    // "Hashes"), so it takes no census.
    let storing = disk.is_some() && verify;

    // Phase 1: index uncompressed blobs from their headers: for the size
    // census, and, without verification, to read no more than needed.
    let indexed: Mutex<HashMap<usize, Result<Option<Indexed>, String>>> = Mutex::default();
    let budget = ReadBudget::for_image(unique.iter().map(|u| u.1).sum());
    if src.positioned() && (!verify || (opts.scan.hash_content && !storing)) {
        pool.scope_fifo(|s| {
            for &(i, _) in unique.iter().filter(|(i, _)| !hits.contains_key(i)) {
                let (indexed, open, budget) = (&indexed, &open, &budget);
                s.spawn_fifo(move |_| {
                    let r = open(i).and_then(|b| index_if_plain(b, &opts.scan, budget));
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
        && !storing
        && unique.iter().all(|(i, _)| {
            hits.contains_key(i)
                || matches!(
                    indexed.get(i),
                    Some(Ok(Some(Indexed::Entries(_) | Indexed::Sizes(_))))
                )
        });
    let layer_sizes: Option<Vec<LayerSizes>> = all_indexed.then(|| {
        let mut out = Vec::new();
        for (i, _) in &unique {
            let l = &meta.layers[*i];
            let key = shared_key(l).unwrap_or_else(|| format!("{} in {origin}", l.blob));
            if let Some(hit) = hits.get(i) {
                out.push((key, crate::layer::size_counts(&hit.entries)));
                continue;
            }
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

    // Phase 2: read (and hash) what is needed, blob by blob.
    let mut fetched: FetchedBy = HashMap::new();
    let mut from_cache: Scans = HashMap::new();
    for (i, hit) in hits {
        let blob = meta.layers[i].blob.clone();
        fetched.insert(blob.clone(), Fetched::Cached);
        from_cache.insert(blob, adjust_hit(hit, &scan_opts, true));
    }
    let results: Mutex<(Scans, FetchedBy)> = Mutex::new((from_cache, fetched));
    pool.scope_fifo(|s| {
        for &(i, _) in &unique {
            if results
                .lock()
                .is_ok_and(|r| r.0.contains_key(&meta.layers[i].blob))
            {
                continue;
            }
            let (results, indexed, open, scan_opts, cancel) =
                (&results, &indexed, &open, &scan_opts, &cancel);
            s.spawn_fifo(move |_| {
                // A docker-save legacy layer the cache holds under its
                // diff_id: its bytes are hashed, not scanned.
                let rehashed = || {
                    let d = disk.filter(|_| verify)?;
                    let (key, trusted) = cache_key(&meta.layers[i], verify)?;
                    if trusted {
                        // Looked up in phase 0.
                        return None;
                    }
                    let hit = d.get(&key, &scan_opts.rules, scan_opts.hash_content)?;
                    rehash(open(i).ok()?, hit, scan_opts)
                };
                let fresh = || {
                    let ix = indexed.lock().ok().and_then(|mut m| m.remove(&i));
                    match (ix, open(i)?) {
                        (Some(Ok(Some(Indexed::Entries(ix)))), Blob::File { file, start, .. }) => {
                            hash_indexed(ix, &file, start, scan_opts)
                        }
                        (_, blob) => {
                            let (r, len) = blob
                                .into_reader()
                                .map_err(|e| blob_error(&meta.layers[i].blob, e))?;
                            scan_layer(r, len, scan_opts)
                        }
                    }
                };
                let read = || match rehashed() {
                    Some(hit) => (adjust_hit(hit, scan_opts, false), Fetched::Rehashed),
                    None => (fresh(), Fetched::Read),
                };
                let shared = opts
                    .cache
                    .as_ref()
                    .zip(shared_key(&meta.layers[i]))
                    .and_then(|(c, key)| c.cell(&key));
                let (r, how) = match shared {
                    Some(cell) => cell.get_or_init(read).clone(),
                    None => read(),
                };
                if r.is_err() {
                    cancel.store(true, Ordering::Relaxed);
                }
                if let Ok(mut m) = results.lock() {
                    let blob = meta.layers[i].blob.clone();
                    m.1.insert(blob.clone(), how);
                    m.0.insert(blob, r);
                }
            });
        }
    });
    results
        .into_inner()
        .map_err(|_| Error::Usage("a layer worker panicked".into()))
}
