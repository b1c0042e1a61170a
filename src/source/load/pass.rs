//! The loader's one pass over a sequential source's tar.
//!
//! The manifest may come after the layers (docker-save writes it last), so the
//! pass keeps every small JSON member and scans every other blob as it goes by,
//! each in its own worker fed through a bounded channel; afterwards the
//! metadata picks the layers from the scans. Blobs of other images or
//! platforms in the same archive are scanned too: nothing can be skipped in a
//! stream before the manifest is known.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, Read};
use std::thread::ScopedJoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::{FetchedBy, Scans, adjust_hit, rehash_chunks, rehash_reader};
use crate::error::{Error, Result};
use crate::layer::tar::{Kind, Limits, TarStream};
use crate::layer::{Compression, LayerScan, scan_layer, scan_plain_chunks};
use crate::source::LoadOptions;
use crate::source::archive::link_member;
use crate::source::cache::{CacheKey, Fetched};
use crate::source::meta::{self, MAX_DOC_BYTES, Store};
use crate::source::stream::outer_error;

/// What the pass keeps: JSON members, sizes, links and scans.
pub(super) struct StreamStore {
    origin: String,
    docs: HashMap<String, Vec<u8>>,
    sizes: HashMap<String, u64>,
    links: HashMap<String, String>,
    order: Vec<String>,
}

impl StreamStore {
    /// The member a name ends at, following links.
    pub(super) fn resolve_name(&self, name: &str) -> String {
        let mut n = name.to_string();
        for _ in 0..16 {
            match self.links.get(&n) {
                Some(t) => n = t.clone(),
                None => break,
            }
        }
        n
    }

    /// Whether the pass kept the member as a document (it is no layer).
    pub(super) fn is_doc(&self, name: &str) -> bool {
        self.docs.contains_key(name)
    }
}

impl Store for StreamStore {
    fn read_doc(&self, path: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.docs.get(&self.resolve_name(path)).cloned())
    }
    fn size_of(&self, path: &str) -> Option<u64> {
        self.sizes.get(&self.resolve_name(path)).copied()
    }
    fn origin(&self) -> &str {
        &self.origin
    }
    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    fn sample_names(&self) -> Vec<String> {
        self.order.iter().take(8).cloned().collect()
    }
}

/// How many bytes of a blob the pass gathers before handing them to the
/// blob's worker. A pipe or a socket gives 64 KiB or less per read; one
/// hand-over per read cost more in wake-ups and context switches than the
/// reading itself (`cat image.tar | mlsize analyze -` spent 6 of its 11
/// seconds in the kernel, mostly switching between the pass and its workers).
const BATCH: usize = 1 << 20;

/// The first bytes of a member, which decide what it is.
const HEAD: usize = 512;

/// A buffer for a batch: from `pool` (buffers the workers have emptied: a
/// fresh 1 MiB allocation per batch would be a fresh mapping, page faults
/// included), else a new one. Its length is [`BATCH`]: the pass reads into
/// it, and sends on only what it filled.
fn batch_buffer(pool: &Receiver<Vec<u8>>) -> Vec<u8> {
    let mut buf = pool.try_recv().unwrap_or_default();
    // Zeroes only what the last use did not fill (most batches are full).
    buf.resize(BATCH, 0);
    buf
}

/// Reads a blob from the batches the pass sends, and gives each emptied
/// buffer back to the pass.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    pool: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    let used = std::mem::replace(&mut self.cur, c);
                    self.pos = 0;
                    if used.capacity() > 0 {
                        // A full pool lets the buffer go.
                        let _ = self.pool.try_send(used);
                    }
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The diff_id a member's name gives a layer: docker-archives written by
/// containers/image (skopeo, podman, buildah) store each layer uncompressed
/// as `<hex>.tar`, named for the sha256 of its bytes, which is its diff_id.
/// Docker's own `docker save` names them `<id>/layer.tar`, after an ID that
/// is no digest of the bytes.
fn named_diff_id(name: &str) -> Option<String> {
    let hex = name.strip_suffix(".tar")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| format!("sha256:{hex}"))
}

/// What the layer cache holds for a member, looked up by its name before
/// its bytes go by.
enum Hit {
    /// A blob named for its digest (an OCI layout in a tar): its scan,
    /// used without reading the blob, as the random-access loader does.
    Trusted(LayerScan),
    /// A layer named for its diff_id, read with verification: its bytes are
    /// hashed, not scanned, to check that they are the layer the entry
    /// describes, as the random-access loader re-hashes a legacy layer.
    Rehash(LayerScan),
    /// A layer named for its diff_id, read without verification: the entry
    /// is used as it is once the config confirms that diff_id (see
    /// [`Assumed`]), as the random-access loader uses it by the config's.
    Named(LayerScan, String),
}

/// Members whose scan came from the cache by the diff_id their name gives,
/// without their bytes being hashed (no verification): that diff_id, which
/// the config must give the layer too.
pub(super) type Assumed = HashMap<String, String>;

fn looks_like_json(head: &[u8]) -> bool {
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{' || b == b'[')
}

/// The sequential pass: keeps JSON, scans blobs in workers, at most
/// `threads` blobs in flight.
pub(super) fn pass<R: BufRead + Send>(
    origin: &str,
    reader: R,
    opts: &LoadOptions,
) -> Result<(StreamStore, Scans, FetchedBy, Assumed)> {
    let mut store = StreamStore {
        origin: origin.to_string(),
        docs: HashMap::new(),
        sizes: HashMap::new(),
        links: HashMap::new(),
        order: Vec::new(),
    };
    let mut results: Scans = HashMap::new();
    let mut fetched: FetchedBy = HashMap::new();
    let mut assumed: Assumed = HashMap::new();
    // A blob named for its digest (an OCI layout in a tar) can be looked up
    // in the cache as it goes by: a hit is skipped over, not scanned. A
    // docker-save legacy layer is known only by the diff_id of its bytes,
    // which the config and the manifest, written last, tie to it; when its
    // name gives that diff_id (`<hex>.tar`), a hit is hashed (or, without
    // verification, skipped over and checked against the config at the
    // end). Any other layer (`<id>/layer.tar`) is scanned (and stored).
    let cached = |name: &str, size: u64| -> Option<Hit> {
        let disk = opts.disk.as_deref()?;
        let get = |digest: &str| {
            let key = CacheKey::new(digest, size)?;
            disk.get(&key, &opts.scan.rules, opts.scan.hash_content)
        };
        if let Some(d) = meta::digest_of_path(name) {
            return get(&d).map(Hit::Trusted);
        }
        let d = named_diff_id(name)?;
        let scan = get(&d)?;
        Some(if opts.scan.verify {
            Hit::Rehash(scan)
        } else {
            Hit::Named(scan, d)
        })
    };
    let max_workers = opts.threads.max(1);
    let mut doc_bytes = 0u64;
    let mut stream = TarStream::new(reader, Limits::default());
    // Emptied batch buffers, back from the workers.
    let (pool_tx, pool_rx) = bounded::<Vec<u8>>(2 * max_workers + 8);
    std::thread::scope(|s| -> Result<()> {
        let mut workers: VecDeque<(String, ScopedJoinHandle<'_, Result<LayerScan, String>>)> =
            VecDeque::new();
        let collect_one =
            |workers: &mut VecDeque<(String, ScopedJoinHandle<'_, Result<LayerScan, String>>)>,
             results: &mut Scans| {
                if let Some((name, h)) = workers.pop_front() {
                    let r = h
                        .join()
                        .unwrap_or_else(|_| Err("layer worker panicked".into()));
                    results.insert(name, r);
                }
            };
        while let Some(h) = stream
            .next_header()
            .map_err(|e| outer_error(origin, e, "while reading its headers"))?
        {
            let name = meta::normalize_member(&String::from_utf8_lossy(&h.path));
            match h.kind {
                Kind::Symlink | Kind::HardLink => {
                    let resolved = link_member(&name, &h);
                    store.order.push(name.clone());
                    store.links.insert(name, resolved);
                    continue;
                }
                Kind::File => {}
                _ => continue,
            }
            store.order.push(name.clone());
            let size = h.size;
            store.sizes.insert(name.clone(), size);
            if size == 0 {
                // Docker's `VERSION` files and other empties: not layers.
                continue;
            }
            let inside = |e| outer_error(origin, e, &format!("inside '{name}'"));
            // The first 512 bytes decide: JSON is kept, anything else is
            // streamed to a worker as it arrives, read straight into the
            // batches the worker gets.
            let mut buf = batch_buffer(&pool_rx);
            let mut filled = 0;
            let head_len = usize::try_from(size).map_or(HEAD, |s| s.min(HEAD));
            while filled < head_len {
                match stream
                    .read_data_into(&mut buf[filled..head_len])
                    .map_err(inside)?
                {
                    0 => break,
                    n => filled += n,
                }
            }
            let head = &buf[..filled];
            if looks_like_json(head) && size <= MAX_DOC_BYTES {
                let mut doc = head.to_vec();
                let _ = pool_tx.try_send(buf);
                stream
                    .read_data(|chunk| doc.extend_from_slice(chunk))
                    .map_err(inside)?;
                doc_bytes += doc.len() as u64;
                if doc_bytes > MAX_DOC_BYTES * 4 {
                    return Err(Error::format(
                        origin,
                        format!(
                            "more than {} bytes of JSON members; refusing to keep more",
                            MAX_DOC_BYTES * 4
                        ),
                    ));
                }
                store.docs.insert(name, doc);
                continue;
            }
            let hit = match cached(&name, size) {
                Some(Hit::Trusted(scan)) => Err((scan, None)),
                Some(Hit::Named(scan, d)) => Err((scan, Some(d))),
                Some(Hit::Rehash(scan)) => Ok(Some(scan)),
                None => Ok(None),
            };
            let hit = match hit {
                Ok(hit) => hit,
                Err((scan, named)) => {
                    // Skipped over, not scanned.
                    let _ = pool_tx.try_send(buf);
                    stream.read_data(|_| {}).map_err(inside)?;
                    fetched.insert(name.clone(), Fetched::Cached);
                    if let Some(d) = named {
                        assumed.insert(name.clone(), d);
                    }
                    results.insert(name, adjust_hit(scan, &opts.scan, true));
                    continue;
                }
            };
            // An uncompressed blob's batches go to its scan as they are;
            // a compressed one is read through them.
            let plain = matches!(Compression::sniff(head), Ok(Compression::None));
            if hit.is_some() {
                fetched.insert(name.clone(), Fetched::Rehashed);
            }
            let (tx, rx) = bounded::<Vec<u8>>(4);
            let scan_opts = &opts.scan;
            let pool = pool_tx.clone();
            let member = name.clone();
            let handle = s.spawn(move || {
                let input = |rx, pool| ChannelReader {
                    rx,
                    pool,
                    cur: Vec::new(),
                    pos: 0,
                };
                let Some(hit) = hit else {
                    return if plain {
                        scan_plain_chunks(rx, pool, Some(size), scan_opts)
                    } else {
                        scan_layer(input(rx, pool), Some(size), scan_opts)
                    };
                };
                let rehashed = if plain {
                    rehash_chunks(rx, pool, hit, scan_opts)
                } else {
                    rehash_reader(input(rx, pool), hit, scan_opts)
                };
                rehashed
                    .and_then(|scan| adjust_hit(scan, scan_opts, false))
                    .map_err(|why| {
                        if why == crate::layer::CANCELLED {
                            return why;
                        }
                        format!(
                            "'{member}' is named for a layer the layer cache holds, so it was hashed instead of scanned, but {why}; a stream cannot be read twice: run again with --no-cache"
                        )
                    })
            });
            // Batches of at most BATCH bytes; the worker takes data until it
            // stops early (it then has its error), and the rest of the
            // member is read past.
            let mut alive = true;
            let read = loop {
                if filled == buf.len() {
                    let next = batch_buffer(&pool_rx);
                    alive = tx.send(std::mem::replace(&mut buf, next)).is_ok();
                    filled = 0;
                    if !alive {
                        break stream.read_data(|_| {}).map(|_| ());
                    }
                }
                match stream.read_data_into(&mut buf[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => filled += n,
                    Err(e) => break Err(e),
                }
            };
            if let Err(e) = read {
                drop(tx);
                let _ = handle.join();
                return Err(inside(e));
            }
            if alive && filled > 0 {
                buf.truncate(filled);
                let _ = tx.send(buf);
            }
            drop(tx);
            workers.push_back((name, handle));
            while workers.len() >= max_workers {
                collect_one(&mut workers, &mut results);
            }
        }
        while !workers.is_empty() {
            collect_one(&mut workers, &mut results);
        }
        Ok(())
    })?;
    // Whole-archive compression: the rest of the stream must decode cleanly.
    let mut rest = stream.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| outer_error(origin, e, "after its last member"))?;
    Ok((store, results, fetched, assumed))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::category::Rules;
    use crate::layer::ScanOptions;
    use crate::source::cache::{CacheUse, LayerCache};
    use crate::source::meta::Selection;
    use crate::source::{LoadedImage, open_reader};
    use crate::testutil::{Built, ImageBuilder, tar_of};

    fn options(disk: Option<&Path>, verify: bool) -> LoadOptions {
        LoadOptions {
            selection: Selection {
                image: None,
                platform: None,
                verify,
            },
            scan: ScanOptions {
                verify,
                hash_content: true,
                hash_sizes: None,
                rules: Arc::new(Rules::builtin()),
                max_uncompressed_bytes: None,
                progress: None,
                cancel: None,
            },
            threads: 2,
            cache: None,
            disk: disk.map(|d| Arc::new(LayerCache::new(d.to_path_buf(), 1 << 30))),
            census: None,
            progress_total: None,
            layer_progress: None,
        }
    }

    fn load(archive: &[u8], opts: &LoadOptions) -> crate::error::Result<LoadedImage> {
        open_reader("-", Box::new(io::Cursor::new(archive.to_vec()))).load(opts)
    }

    /// What a report is made of, comparable.
    fn figures(l: &LoadedImage) -> String {
        format!("{:?}", l.scans)
    }

    fn image(compression: Compression) -> Built {
        ImageBuilder::new()
            .compression(compression)
            .layer("ADD base", |l| {
                l.file("/usr/lib/a.so", 300_000)
                    .file("/usr/lib/b.so", 5_000)
                    .file("/etc/os-release", 40)
            })
            .layer("RUN pip install", |l| {
                l.file("/usr/lib/a-copy.so", 300_000)
                    .file("/site-packages/x.py", 2_000_000)
                    .file_seeded("/site-packages/y.py", 5_000, 7)
            })
            .build()
    }

    /// A docker-archive as containers/image (skopeo, podman) writes it:
    /// each layer `<hex>.tar`, named by `name_of` (the diff_id's hex), then
    /// the config and `manifest.json`.
    fn skopeo_archive(b: &Built, name_of: impl Fn(usize) -> String) -> Vec<u8> {
        let mut files = Vec::new();
        let mut layers = Vec::new();
        for (i, l) in b.layers.iter().enumerate() {
            let name = format!("{}.tar", name_of(i));
            files.push((name.clone(), l.blob.clone()));
            layers.push(name);
        }
        let cfg = format!("{}.json", &b.config_digest[7..]);
        files.push((cfg.clone(), b.config.clone()));
        let manifest = serde_json::json!([{"Config": cfg, "RepoTags": [b.name], "Layers": layers}]);
        files.push((
            "manifest.json".into(),
            serde_json::to_vec(&manifest).unwrap(),
        ));
        tar_of(&files)
    }

    fn cache_use(l: &LoadedImage) -> &CacheUse {
        l.cache.as_ref().expect("a cache was used")
    }

    #[test]
    fn a_cached_layer_named_for_its_diff_id_is_hashed_not_scanned() {
        for compression in [Compression::None, Compression::Gzip] {
            let b = image(compression);
            let archive = skopeo_archive(&b, |i| b.layers[i].diff_id[7..].to_string());
            let dir = tempfile::tempdir().unwrap();
            let cold = load(&archive, &options(None, true)).unwrap();
            let first = load(&archive, &options(Some(dir.path()), true)).unwrap();
            assert_eq!(cache_use(&first).layers_read, 2, "{compression:?}: stored");
            let warm = load(&archive, &options(Some(dir.path()), true)).unwrap();
            assert_eq!(
                (cache_use(&warm).layers_read, &cache_use(&warm).rehashed),
                (0, &vec![0, 1]),
                "{compression:?}: re-hashed, as a file's legacy layers are"
            );
            assert_eq!(
                figures(&warm),
                figures(&cold),
                "{compression:?}: the same figures"
            );
            // Without verification the entry is used unread, as the
            // config's diff_ids agree with the names.
            let unverified = load(&archive, &options(None, false)).unwrap();
            let warm = load(&archive, &options(Some(dir.path()), false)).unwrap();
            assert_eq!(
                cache_use(&warm).not_reread,
                vec![0, 1],
                "{compression:?}: not re-read"
            );
            assert_eq!(figures(&warm), figures(&unverified), "{compression:?}");
        }
    }

    #[test]
    fn a_layer_that_is_not_the_cached_one_its_name_gives_is_an_error() {
        for compression in [Compression::None, Compression::Gzip] {
            let b = image(compression);
            let archive = skopeo_archive(&b, |i| b.layers[i].diff_id[7..].to_string());
            let dir = tempfile::tempdir().unwrap();
            let opts = options(Some(dir.path()), true);
            let cold = load(&archive, &opts).unwrap();
            // An entry for layer 0's name and size that describes layer 1
            // (a hostile cache directory: entries are verified when written).
            let key = CacheKey::new(&b.layers[0].diff_id, b.layers[0].blob.len() as u64).unwrap();
            std::fs::remove_dir_all(dir.path()).unwrap();
            LayerCache::new(dir.path().to_path_buf(), 1 << 30).put(&key, &cold.scans[1], true);
            let Err(e) = load(&archive, &options(Some(dir.path()), true)) else {
                panic!("{compression:?}: the stream cannot be read again");
            };
            let e = e.to_string();
            assert!(
                e.contains("layer 1/2")
                    && e.contains("are not that layer")
                    && e.ends_with("run again with --no-cache"),
                "{compression:?}: {e}"
            );
            // Without the cache: read as usual.
            assert!(load(&archive, &options(None, true)).is_ok());
        }
    }

    #[test]
    fn an_unverified_layer_is_taken_by_its_name_only_when_the_config_agrees() {
        let b = image(Compression::None);
        // Layer 0 stored under another layer's name: `<hex>.tar` names need
        // not be diff_ids.
        let other = "ab".repeat(32);
        let archive = skopeo_archive(&b, |i| {
            if i == 0 {
                other.clone()
            } else {
                b.layers[i].diff_id[7..].to_string()
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let opts = options(Some(dir.path()), true);
        let cold = load(&archive, &opts).unwrap();
        // An entry for that name and layer 0's size.
        let key = CacheKey::new(&format!("sha256:{other}"), b.layers[0].blob.len() as u64).unwrap();
        LayerCache::new(dir.path().to_path_buf(), 1 << 30).put(&key, &cold.scans[0], true);
        // Verified: the bytes are hashed and are that entry's layer.
        let warm = load(&archive, &options(Some(dir.path()), true)).unwrap();
        assert_eq!(cache_use(&warm).rehashed, vec![0, 1]);
        assert_eq!(figures(&warm), figures(&cold));
        // Unverified: skipped over, then refused, since the config gives
        // layer 0 another diff_id than its name.
        let Err(e) = load(&archive, &options(Some(dir.path()), false)) else {
            panic!("refused");
        };
        let e = e.to_string();
        assert!(
            e.contains("layer 1/2")
                && e.contains(&format!("'{other}.tar' is named for sha256:{other}"))
                && e.ends_with("run again with --no-cache"),
            "{e}"
        );
    }
}
