//! One sequential pass over an archive that cannot seek: standard input, or a
//! tar compressed as a whole (`docker save app | gzip`, or zstd, xz, bzip2).
//!
//! The manifest may come after the layers (docker-save writes it last), so the
//! pass keeps every small JSON member and scans every other blob as it goes by,
//! each in its own worker fed through a bounded channel; afterwards the
//! metadata picks the layers from the scans. Blobs of other images or
//! platforms in the same archive are scanned too: nothing can be skipped in a
//! stream before the manifest is known.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read};
use std::thread::ScopedJoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::meta::{self, MAX_DOC_BYTES, Store};
use super::{ImageSource, LoadOptions, LoadedImage, layer_error, verify_layers};
use crate::error::{Error, Result};
use crate::layer::tar::{Kind, Limits, TarStream};
use crate::layer::{Compression, LayerScan, scan_layer};

const CHUNK: usize = 64 * 1024;

/// The most memory an xz stream may make the decoder allocate: its
/// dictionary (64 MiB at `xz -9`, at most 1.5 GiB by the format), as zstd's
/// window is allowed up to 2 GiB.
const XZ_MEMLIMIT: u64 = 2 << 30;

/// How a whole archive is compressed: any compression a layer may have, and
/// also xz and bzip2, which `docker load` accepts for the archive though the
/// image-spec defines neither for layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outer {
    /// Plain, gzip or zstd.
    Layer(Compression),
    /// xz (one or more streams, as `xz -T0` and pixz write them).
    Xz,
    /// bzip2 (one or more streams, as pbzip2 and lbzip2 write them).
    Bzip2,
}

impl Outer {
    /// Detects the compression of a whole archive from its first bytes.
    pub(crate) fn sniff(head: &[u8]) -> io::Result<Outer> {
        // xz file format 1.0.4, 2.1.1.1 "Header Magic Bytes".
        if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            return Ok(Outer::Xz);
        }
        // bzip2: "BZh", the block size '1'..'9', then the first block's magic
        // (pi) or, for an empty stream, the end-of-stream magic (sqrt pi).
        if head.len() >= 10
            && head.starts_with(b"BZh")
            && (b'1'..=b'9').contains(&head[3])
            && (head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
                || head[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
        {
            return Ok(Outer::Bzip2);
        }
        Compression::sniff(head).map(Outer::Layer)
    }

    /// Lower-case name, as the report's format suffix (`docker-archive+xz`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Outer::Layer(c) => c.name(),
            Outer::Xz => "xz",
            Outer::Bzip2 => "bzip2",
        }
    }
}

/// An archive read once from a stream.
pub struct StreamSource {
    origin: String,
    reader: Box<dyn Read + Send>,
}

impl StreamSource {
    /// Wraps a stream; `origin` names it in messages.
    pub fn new(origin: String, reader: Box<dyn Read + Send>) -> StreamSource {
        StreamSource { origin, reader }
    }
}

/// What the pass keeps: JSON members, sizes, links and scans.
struct StreamStore {
    origin: String,
    docs: HashMap<String, Vec<u8>>,
    sizes: HashMap<String, u64>,
    links: HashMap<String, String>,
    order: Vec<String>,
}

impl StreamStore {
    fn resolve_name(&self, name: &str) -> String {
        let mut n = name.to_string();
        for _ in 0..16 {
            match self.links.get(&n) {
                Some(t) => n = t.clone(),
                None => break,
            }
        }
        n
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

/// Reads a blob from the chunks the pass sends.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
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

fn outer_error(origin: &str, e: io::Error, what: &str) -> Error {
    let msg = if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("archive truncated {what}")
    } else {
        format!("cannot read the archive {what}: {e}")
    };
    Error::format(origin, msg)
}

impl ImageSource for StreamSource {
    fn load(self: Box<Self>, opts: &LoadOptions) -> Result<LoadedImage> {
        // One pass over a stream cannot know file sizes in advance.
        if let Some(seat) = &opts.census {
            seat.contribute(None);
        }
        let origin = self.origin.clone();
        let mut br = BufReader::with_capacity(CHUNK, self.reader);
        let head = br.fill_buf().map_err(|e| Error::io(&origin, e))?;
        if head.is_empty() {
            return Err(Error::NotAnImage {
                path: origin,
                what: "the input is empty".into(),
            });
        }
        let compression = Outer::sniff(head).map_err(|e| Error::NotAnImage {
            path: origin.clone(),
            what: e.to_string(),
        })?;
        let inner: Box<dyn Read + Send> = match compression {
            Outer::Layer(Compression::None) => Box::new(br),
            Outer::Layer(Compression::Gzip) => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
            Outer::Layer(Compression::Zstd) => {
                let mut d = zstd::stream::read::Decoder::with_buffer(br)
                    .map_err(|e| Error::io(&origin, e))?;
                d.window_log_max(31).map_err(|e| Error::io(&origin, e))?;
                Box::new(d)
            }
            Outer::Xz => {
                let stream = liblzma::stream::Stream::new_stream_decoder(
                    XZ_MEMLIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(|e| Error::format(&origin, format!("cannot start the xz decoder: {e}")))?;
                Box::new(liblzma::bufread::XzDecoder::new_stream(br, stream))
            }
            Outer::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(br)),
        };
        let mut inner = BufReader::with_capacity(CHUNK, inner);
        // Check the first block before trusting the stream to be a tar.
        let first = inner
            .fill_buf()
            .map_err(|e| outer_error(&origin, e, "at its start"))?;
        if first.len() >= 512 && !super::is_tar_header(&first[..512]) {
            return Err(Error::NotAnImage {
                path: origin,
                what: "it is not a tar archive (try 'docker save IMAGE -o image.tar')".into(),
            });
        }
        let (store, mut scans) = pass(&origin, inner, opts)?;
        let mut meta = meta::resolve(&store, &opts.selection)?;
        if meta.format == "oci" {
            meta.format = "oci-archive".into();
        }
        if compression != Outer::Layer(Compression::None) {
            meta.format = format!("{}+{}", meta.format, compression.name());
        }
        let mut out = Vec::with_capacity(meta.layers.len());
        for (i, l) in meta.layers.iter().enumerate() {
            let key = store.resolve_name(&l.blob);
            // A blob used twice is cloned; the last use takes it.
            let used_later = meta.layers[i + 1..]
                .iter()
                .any(|m| store.resolve_name(&m.blob) == key);
            let scan = if used_later {
                scans.get(&key).cloned()
            } else {
                scans.remove(&key)
            };
            match scan {
                Some(Ok(s)) => out.push(s),
                Some(Err(what)) => return Err(layer_error(&origin, &meta, i, what)),
                None if store.docs.contains_key(&key) => {
                    return Err(layer_error(
                        &origin,
                        &meta,
                        i,
                        format!("blob '{}' is JSON, not a layer", l.blob),
                    ));
                }
                None => {
                    return Err(layer_error(
                        &origin,
                        &meta,
                        i,
                        format!("blob '{}' is missing from the archive", l.blob),
                    ));
                }
            }
        }
        verify_layers(&origin, &meta, &out, opts.selection.verify)?;
        Ok(LoadedImage {
            meta,
            scans: out,
            verified: opts.selection.verify,
        })
    }
}

type ScanResults = HashMap<String, Result<LayerScan, String>>;

/// The sequential pass: keeps JSON, scans blobs in workers, at most
/// `threads` blobs in flight.
fn pass<R: BufRead + Send>(
    origin: &str,
    reader: R,
    opts: &LoadOptions,
) -> Result<(StreamStore, ScanResults)> {
    let mut store = StreamStore {
        origin: origin.to_string(),
        docs: HashMap::new(),
        sizes: HashMap::new(),
        links: HashMap::new(),
        order: Vec::new(),
    };
    let mut results: ScanResults = HashMap::new();
    let max_workers = opts.threads.max(1);
    let mut doc_bytes = 0u64;
    let mut stream = TarStream::new(reader, Limits::default());
    std::thread::scope(|s| -> Result<()> {
        let mut workers: VecDeque<(String, ScopedJoinHandle<'_, Result<LayerScan, String>>)> =
            VecDeque::new();
        let collect_one =
            |workers: &mut VecDeque<(String, ScopedJoinHandle<'_, Result<LayerScan, String>>)>,
             results: &mut ScanResults| {
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
                    let resolved = super::link_member(&name, &h);
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
                Blob(
                    Sender<Vec<u8>>,
                    bool,
                    ScopedJoinHandle<'s, Result<LayerScan, String>>,
                ),
            }
            let mut sink = Sink::Head(Vec::with_capacity(512));
            let spawn = |head: Vec<u8>| {
                let (tx, rx) = bounded::<Vec<u8>>(4);
                let scan_opts = &opts.scan;
                let handle = s.spawn(move || {
                    scan_layer(
                        ChannelReader {
                            rx,
                            cur: Vec::new(),
                            pos: 0,
                        },
                        Some(size),
                        scan_opts,
                    )
                });
                let alive = tx.send(head).is_ok();
                Sink::Blob(tx, alive, handle)
            };
            let decide = |head: Vec<u8>| {
                if looks_like_json(&head) && size <= MAX_DOC_BYTES {
                    Sink::Doc(head)
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
                    Sink::Blob(tx, alive, handle) => {
                        let alive = alive && tx.send(chunk.to_vec()).is_ok();
                        Sink::Blob(tx, alive, handle)
                    }
                };
            });
            if let Sink::Head(head) = sink {
                sink = decide(head);
            }
            if let Err(e) = read {
                if let Sink::Blob(tx, _, handle) = sink {
                    drop(tx);
                    let _ = handle.join();
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
                Sink::Blob(tx, _, handle) => {
                    drop(tx);
                    workers.push_back((name, handle));
                    while workers.len() >= max_workers {
                        collect_one(&mut workers, &mut results);
                    }
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
    Ok((store, results))
}
