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

use super::{FetchedBy, Scans, adjust_hit};
use crate::error::{Error, Result};
use crate::layer::tar::{Kind, Limits, TarStream};
use crate::layer::{LayerScan, scan_layer};
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

/// A blob being streamed to its worker: the bytes gathered so far, and
/// buffers the workers have emptied, to be filled again (a fresh 1 MiB
/// allocation per batch would be a fresh mapping, page faults included).
struct Feed<'s> {
    tx: Sender<Vec<u8>>,
    /// The worker still takes data (one that stopped early has its error).
    alive: bool,
    handle: ScopedJoinHandle<'s, Result<LayerScan, String>>,
    buf: Vec<u8>,
}

impl Feed<'_> {
    fn push(&mut self, chunk: &[u8], pool: &Receiver<Vec<u8>>) {
        if self.alive {
            self.buf.extend_from_slice(chunk);
            if self.buf.len() >= BATCH {
                self.flush(pool);
            }
        }
    }

    fn flush(&mut self, pool: &Receiver<Vec<u8>>) {
        if self.alive && !self.buf.is_empty() {
            let next = pool.try_recv().unwrap_or_else(|_| batch_buffer());
            let full = std::mem::replace(&mut self.buf, next);
            self.alive = self.tx.send(full).is_ok();
        }
    }
}

fn batch_buffer() -> Vec<u8> {
    Vec::with_capacity(BATCH + (64 << 10))
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
                    let mut used = std::mem::replace(&mut self.cur, c);
                    self.pos = 0;
                    if used.capacity() > 0 {
                        used.clear();
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
) -> Result<(StreamStore, Scans, FetchedBy)> {
    let mut store = StreamStore {
        origin: origin.to_string(),
        docs: HashMap::new(),
        sizes: HashMap::new(),
        links: HashMap::new(),
        order: Vec::new(),
    };
    let mut results: Scans = HashMap::new();
    let mut fetched: FetchedBy = HashMap::new();
    // A blob named for its digest (an OCI layout in a tar) can be looked up
    // in the cache as it goes by: a hit is skipped over, not scanned. A
    // docker-save legacy layer (`<id>/layer.tar`) is known only by the
    // diff_id of its bytes, which the manifest, written last, ties to it:
    // it is always scanned (and stored).
    let cached = |name: &str, size: u64| {
        let disk = opts.disk.as_deref()?;
        let key = CacheKey::new(&meta::digest_of_path(name)?, size)?;
        disk.get(&key, &opts.scan.rules, opts.scan.hash_content)
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
            // The first 512 bytes decide: JSON is kept, anything else is
            // streamed to a scanning worker as it arrives.
            enum Sink<'s> {
                Head(Vec<u8>),
                Doc(Vec<u8>),
                Blob(Feed<'s>),
                Cached(Box<LayerScan>),
            }
            let mut sink = Sink::Head(Vec::with_capacity(512));
            let spawn = |head: Vec<u8>| {
                let (tx, rx) = bounded::<Vec<u8>>(4);
                let scan_opts = &opts.scan;
                let pool = pool_tx.clone();
                let handle = s.spawn(move || {
                    scan_layer(
                        ChannelReader {
                            rx,
                            pool,
                            cur: Vec::new(),
                            pos: 0,
                        },
                        Some(size),
                        scan_opts,
                    )
                });
                let mut buf = pool_rx.try_recv().unwrap_or_else(|_| batch_buffer());
                buf.extend_from_slice(&head);
                Sink::Blob(Feed {
                    tx,
                    alive: true,
                    handle,
                    buf,
                })
            };
            let decide = |head: Vec<u8>| {
                if looks_like_json(&head) && size <= MAX_DOC_BYTES {
                    Sink::Doc(head)
                } else if let Some(scan) = cached(&name, size) {
                    Sink::Cached(Box::new(scan))
                } else {
                    spawn(head)
                }
            };
            let read = stream.read_data(|chunk| {
                sink = match std::mem::replace(&mut sink, Sink::Head(Vec::new())) {
                    Sink::Head(mut head) => {
                        head.extend_from_slice(chunk);
                        if head.len() >= 512 {
                            decide(head)
                        } else {
                            Sink::Head(head)
                        }
                    }
                    Sink::Doc(mut doc) => {
                        doc.extend_from_slice(chunk);
                        Sink::Doc(doc)
                    }
                    // A worker that stopped early has its error; keep consuming the entry.
                    Sink::Blob(mut feed) => {
                        feed.push(chunk, &pool_rx);
                        Sink::Blob(feed)
                    }
                    cached @ Sink::Cached(_) => cached,
                };
            });
            if let Sink::Head(head) = sink {
                sink = decide(head);
            }
            if let Err(e) = read {
                if let Sink::Blob(feed) = sink {
                    drop(feed.tx);
                    let _ = feed.handle.join();
                }
                return Err(outer_error(origin, e, &format!("inside '{name}'")));
            }
            match sink {
                Sink::Doc(doc) => {
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
                }
                Sink::Blob(mut feed) => {
                    feed.flush(&pool_rx);
                    drop(feed.tx);
                    workers.push_back((name, feed.handle));
                    while workers.len() >= max_workers {
                        collect_one(&mut workers, &mut results);
                    }
                }
                Sink::Cached(scan) => {
                    fetched.insert(name.clone(), Fetched::Cached);
                    results.insert(name, adjust_hit(*scan, &opts.scan, true));
                }
                Sink::Head(_) => {}
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
    Ok((store, results, fetched))
}
