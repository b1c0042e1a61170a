//! Stage 1, read: an image wherever it is → [`LoadedImage`] (metadata plus
//! one [`LayerScan`] per layer).
//!
//! The stage has two halves. A *source* knows a medium: it resolves the
//! image's documents (index, manifest, config) and opens its layer blobs.
//! The *loader* (`load.rs`), one for every source, does the rest: it plans
//! which blobs to read (each once, largest first), indexes uncompressed ones
//! from their headers, shares the size census and the scans of layers that
//! images read together have in common (`shared.rs`), scans, verifies every
//! blob against its descriptor and diff_id, and assembles the layers in order.
//!
//! Sources come in two kinds ([`Source`]):
//! - [`RandomAccess`]: documents and blobs can be read in any order, a blob
//!   as a range of a file (read at any offset, so an uncompressed one is
//!   indexed from its headers first) or as a stream read once. An OCI image
//!   layout directory (`layout.rs`), skopeo's `dir:` layout
//!   (`dir_transport.rs`), a plain tar on disk (docker-save, Docker 25+
//!   OCI-in-tar, oci-archive: `archive.rs`, indexed header by header).
//! - [`Sequential`]: one tar read front to back, once: standard input, a tar
//!   compressed as a whole (gzip, zstd, xz or bzip2), an engine's export
//!   stream. The manifest may come last, so the loader scans every blob as it
//!   streams by and picks the layers afterwards (`stream.rs`).
//!
//! Inputs on the host are detected from content, never from file names:
//! a directory holding `index.json` is an OCI image layout; one holding
//! `manifest.json` (and `version`) is a `dir:` layout; a file is sniffed for
//! compression, then for a tar header.

mod archive;
pub mod cache;
mod dir_transport;
pub mod engine;
mod layout;
mod load;
pub mod meta;
pub mod reference;
pub mod registry;
mod shared;
mod stream;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::error::{Error, Result};
use crate::layer::{Compression, LayerScan, ScanOptions};
use meta::{ImageMeta, LayerDesc, Selection};

pub use load::layer_label;
pub use shared::{CensusSeat, ScanCache, SizeCensus};
pub use stream::Sequential;

/// An image with every selected layer read once.
#[derive(Debug)]
pub struct LoadedImage {
    /// Metadata of the selected image.
    pub meta: ImageMeta,
    /// One scan per layer, in layer order.
    pub scans: Vec<LayerScan>,
    /// Whether digests were verified.
    pub verified: bool,
    /// What came from the layer cache (`None`: no cache was used).
    pub cache: Option<cache::CacheUse>,
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
    /// The layer cache on disk (`None`: `--no-cache`).
    pub disk: Option<Arc<cache::LayerCache>>,
    /// This image's seat in the size census of the images read together;
    /// `None` when it is read alone.
    pub census: Option<Arc<CensusSeat>>,
    /// Set, before any layer is read, to the bytes of layer blobs that
    /// [`ScanOptions::progress`] will count up to, when every blob's size is
    /// known up front (every random-access source; not a sequential one,
    /// which is read in one pass).
    pub progress_total: Option<Arc<AtomicU64>>,
    /// Blobs being read as streams (a registry's downloads), each with its
    /// own count, for a progress line per layer.
    pub layer_progress: Option<Arc<LayerProgress>>,
}

/// The stream blobs being read right now, for a progress line per layer.
#[derive(Debug, Default)]
pub struct LayerProgress {
    next: AtomicU64,
    active: std::sync::Mutex<Vec<LayerRead>>,
}

/// One blob being read.
#[derive(Debug, Clone)]
pub struct LayerRead {
    /// Stable while the blob is read.
    pub id: u64,
    /// `layer 3/7 sha256:0123456789ab`.
    pub label: String,
    /// The blob's size, when known.
    pub total: Option<u64>,
    /// Bytes read so far.
    pub read: Arc<AtomicU64>,
}

impl LayerProgress {
    /// The blobs being read now, in the order they started.
    pub fn snapshot(&self) -> Vec<LayerRead> {
        self.active.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Counts what `reader` gives under `label` until it is dropped.
    fn track(
        self: &Arc<Self>,
        label: String,
        total: Option<u64>,
        reader: Box<dyn Read + Send>,
    ) -> Box<dyn Read + Send> {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let read = Arc::new(AtomicU64::new(0));
        if let Ok(mut a) = self.active.lock() {
            a.push(LayerRead {
                id,
                label,
                total,
                read: read.clone(),
            });
        }
        Box::new(Tracked {
            inner: reader,
            read,
            id,
            progress: self.clone(),
        })
    }
}

/// A blob's reader that counts for [`LayerProgress`] and leaves it when done.
struct Tracked {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
    id: u64,
    progress: Arc<LayerProgress>,
}

impl Read for Tracked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Ok(mut a) = self.progress.active.lock() {
            a.retain(|r| r.id != self.id);
        }
    }
}

/// A layer blob as a source opens it.
pub enum Blob {
    /// `len` bytes of `file` from offset `start`: positioned reads, so an
    /// uncompressed blob can be indexed from its headers and then read only
    /// where needed.
    File {
        /// The file holding the blob.
        file: File,
        /// Where the blob starts in it.
        start: u64,
        /// The blob's length (a blob cut short by a truncated archive ends
        /// where the file does).
        len: u64,
    },
    /// A stream read once, front to back (a registry's response body).
    Stream {
        /// The blob's bytes.
        reader: Box<dyn Read + Send>,
        /// Its length, when the source knows it before reading.
        len: Option<u64>,
    },
}

impl Blob {
    /// The blob as a stream, whatever it is.
    fn into_reader(self) -> io::Result<(Box<dyn Read + Send>, Option<u64>)> {
        match self {
            Blob::File {
                mut file,
                start,
                len,
            } => {
                file.seek(SeekFrom::Start(start))?;
                Ok((Box::new(file.take(len)), Some(len)))
            }
            Blob::Stream { reader, len } => Ok((reader, len)),
        }
    }
}

/// A source whose documents and blobs can be read in any order, any number
/// of times. It only resolves documents and opens blobs; the loader does the
/// rest, the same for every source.
///
/// Its documents are read through [`meta::Store`] (which also names the
/// input in messages, [`meta::Store::origin`]).
pub trait RandomAccess: meta::Store + Send + Sync {
    /// The selected image's metadata, from its documents alone (no layer is
    /// read), with [`ImageMeta::format`] naming the medium and layout.
    fn resolve(&self, sel: &Selection) -> Result<ImageMeta>;

    /// Whether [`RandomAccess::open_blob`] gives [`Blob::File`]s: the loader
    /// then indexes uncompressed blobs before reading them. A source whose
    /// blobs are streams says no, so that nothing is opened twice.
    fn positioned(&self) -> bool;

    /// Opens the blob a layer names ([`LayerDesc::blob`]).
    fn open_blob(&self, layer: &LayerDesc) -> io::Result<Blob>;

    /// Completes the metadata with what only reading the layers told (a
    /// Docker schema 1 manifest declares no diff_ids). Most sources have
    /// nothing to add.
    fn complete(&self, _meta: &mut ImageMeta, _scans: &[LayerScan]) {}
}

/// A place images come from: see the module documentation.
pub enum Source {
    /// Documents and blobs read in any order.
    Random(Box<dyn RandomAccess>),
    /// One archive read front to back, once.
    Sequential(Sequential),
}

impl Source {
    /// Reads metadata, then every layer of the selected image once.
    pub fn load(self, opts: &LoadOptions) -> Result<LoadedImage> {
        match self {
            Source::Random(src) => load::load_random(&*src, opts),
            Source::Sequential(src) => load::load_sequential(src, opts),
        }
    }

    /// Reads only the metadata of the selected image (for `--base`). A
    /// sequential source has to read everything anyway.
    pub fn metadata(self, opts: &LoadOptions) -> Result<ImageMeta> {
        match self {
            Source::Random(src) => src.resolve(&opts.selection),
            Source::Sequential(_) => self.load(opts).map(|l| l.meta),
        }
    }
}

/// An image archive read once from any stream (plain, gzip, zstd, xz or
/// bzip2 tar); `name` names it in messages.
pub fn open_reader(name: &str, reader: Box<dyn Read + Send>) -> Source {
    Source::Sequential(Sequential::new(name.to_string(), reader))
}

/// An image argument opened ([`open_reference`]).
pub struct Opened {
    /// Where the image is read from.
    pub source: Source,
    /// What was read, for the report header and JSON `image.source`: the
    /// argument as typed for a file, else the transport and the canonical
    /// name (`docker://docker.io/library/python:3.11`, `docker-daemon:app:dev`),
    /// so that a user never has to guess which source a bare name reached.
    pub described: String,
    /// The image the reference selects inside an archive or layout
    /// (`oci:DIR:REF`, `docker-archive:FILE:NAME`), as `--image` would.
    pub image: Option<String>,
}

/// Opens an image argument: a file or directory, `-`, or a reference in
/// skopeo's transport syntax ([`reference::Reference`]). A bare `NAME[:TAG]`
/// that is no path is read from the local engine (Docker, then Podman) when
/// one answers and has it, as dive does, else from its registry.
pub fn open_reference(arg: &str, registry: &registry::RegistryOptions) -> Result<Opened> {
    use reference::Reference;
    let r = Reference::parse(arg)?;
    let described = r.describe();
    let opened = |source: Source, image: Option<String>, described: String| Opened {
        source,
        described,
        image,
    };
    let host = |p: &std::path::Path| open(&p.to_string_lossy());
    match r {
        Reference::Stdin => Ok(opened(open("-")?, None, "-".into())),
        Reference::Path(p) => Ok(opened(host(&p)?, None, described)),
        Reference::OciLayout { dir, tag } | Reference::OciArchive { file: dir, tag } => {
            Ok(opened(host(&dir)?, tag, described))
        }
        Reference::DockerArchive { file, name } => Ok(opened(host(&file)?, name, described)),
        Reference::Registry(name) => open_registry(&name, registry),
        Reference::Engine { engine, name } => {
            let e = match engine {
                reference::EngineKind::Docker => engine::Engine::docker()?,
                reference::EngineKind::Podman => engine::Engine::podman()?,
            };
            let info = e.find_image(&name)?;
            Ok(opened(export(&e, &info, &described)?, None, described))
        }
        Reference::Bare(name) => {
            let mut tried = Vec::new();
            for kind in [reference::EngineKind::Docker, reference::EngineKind::Podman] {
                let e = match kind {
                    reference::EngineKind::Docker => engine::Engine::docker(),
                    reference::EngineKind::Podman => engine::Engine::podman(),
                };
                // An engine that cannot be asked, or does not have the image,
                // leaves the name to the next place.
                match e.and_then(|e| e.find_image(&name).map(|info| (e, info))) {
                    Ok((e, info)) => {
                        let described = format!("{}:{name}", kind.transport());
                        return Ok(opened(export(&e, &info, &described)?, None, described));
                    }
                    Err(Error::Selection { .. }) => {
                        tried.push(format!("{}: no such image", kind.name()))
                    }
                    Err(_) => tried.push(format!("{}: no engine answered", kind.name())),
                }
            }
            open_registry(&name, registry).map_err(|e| match e {
                // Say where else the name was looked for.
                Error::Io { path, kind, what } => Error::Io {
                    path,
                    kind,
                    what: format!(
                        "not in a local engine ({}), and from the registry: {what}",
                        tried.join("; ")
                    ),
                },
                other => other,
            })
        }
    }
}

/// An engine's export stream as a sequential source.
fn export(e: &engine::Engine, info: &engine::ImageInfo, described: &str) -> Result<Source> {
    Ok(open_reader(described, e.export(info)?))
}

/// An image in a registry, by its name without `docker://`.
fn open_registry(name: &str, opts: &registry::RegistryOptions) -> Result<Opened> {
    let r = registry::RegistryRef::parse(name)?;
    let described = format!("docker://{}", r.display());
    let image = registry::RegistryImage::open(&r, opts, &described)?;
    Ok(Opened {
        source: Source::Random(Box::new(image)),
        described,
        image: None,
    })
}

/// Opens `input` (`-` for standard input) as an image source, detecting its format.
pub fn open(input: &str) -> Result<Source> {
    if input == "-" {
        widen_pipe(&io::stdin());
        return Ok(open_reader("-", Box::new(io::stdin())));
    }
    let path = PathBuf::from(input);
    let md = std::fs::metadata(&path).map_err(|e| Error::io(input, e))?;
    if md.is_dir() {
        if !path.join("index.json").is_file() {
            if path.join("manifest.json").is_file() {
                return Ok(Source::Random(Box::new(dir_transport::DirTransport::open(
                    path, input,
                )?)));
            }
            return Err(Error::NotAnImage {
                path: input.into(),
                what: "the directory has neither index.json (an OCI image layout has oci-layout, index.json and blobs/) nor manifest.json (as 'skopeo copy IMAGE dir:DIR' writes)".into(),
            });
        }
        return Ok(Source::Random(Box::new(layout::Layout::new(path, input))));
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
            return Ok(open_reader(input, Box::new(f)));
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
    Ok(Source::Random(Box::new(archive::TarArchive::index(
        input, f,
    )?)))
}

/// Asks for a 1 MiB pipe buffer (the most an unprivileged process may set by
/// default) when `fd` is a pipe. With the default 64 KiB, streaming an image
/// through `cat image.tar | mlsize analyze -` wakes the reader once per
/// 64 KiB; anything else (a file, a terminal) is left alone.
fn widen_pipe(fd: &impl std::os::fd::AsFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Not a pipe, or not allowed: the default buffer still works.
        let _ = rustix::pipe::fcntl_setpipe_size(fd, 1 << 20);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = fd;
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

/// The format name of an archive whose documents `meta::resolve` read:
/// OCI documents in a tar are an `oci-archive`.
fn archive_format(documents: &str) -> String {
    match documents {
        "oci" => "oci-archive".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracked_blob_counts_its_bytes_and_leaves_when_read() {
        let p = Arc::new(LayerProgress::default());
        let mut r = p.track(
            "layer 1/2 sha256:0123456789ab".into(),
            Some(10),
            Box::new(&b"0123456789"[..]),
        );
        let mut buf = [0u8; 4];
        r.read_exact(&mut buf).unwrap();
        let now = p.snapshot();
        assert_eq!(now.len(), 1);
        assert_eq!(
            (now[0].label.as_str(), now[0].total),
            ("layer 1/2 sha256:0123456789ab", Some(10))
        );
        assert_eq!(now[0].read.load(std::sync::atomic::Ordering::Relaxed), 4);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(now[0].read.load(std::sync::atomic::Ordering::Relaxed), 10);
        drop(r);
        assert!(p.snapshot().is_empty());
    }
}
