//! Stage 1, read: an archive that can only be read front to back, once:
//! standard input, a tar compressed as a whole (`docker save app | gzip`, or
//! zstd, xz, bzip2), an engine's export stream. This source detects and
//! undoes the outer compression and checks that a tar comes out; the
//! loader's one pass (`load/pass.rs`) does the rest.

use std::io::{self, BufRead, BufReader, Read};

use crate::error::{Error, Result};
use crate::layer::Compression;

/// Buffer of the reader of the input and of the decompressed tar. The pass
/// (`load/pass.rs`) reads a layer's data in 1 MiB batches, straight from the
/// source into the batch whenever this buffer is empty (a `BufReader` reads
/// past its buffer a read at least as large as it), and the batches go on to
/// the layer's scan as they are. With a 1 MiB buffer every byte was copied
/// into it, then into a batch, then into the scan's own chunk: on the 1.5 GiB
/// image of benches/sources/run.sh (`--no-cache`), 0.41 s of the 2.7 s of
/// CPU time, 0.02 s since.
const BUFFER: usize = 64 << 10;

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

    /// The report's format name for an archive so compressed whose
    /// documents `meta::resolve` found (`docker-archive`, `oci-archive+gzip`).
    pub(crate) fn format(self, documents: &str) -> String {
        let format = super::archive_format(documents);
        match self {
            Outer::Layer(Compression::None) => format,
            c => format!("{format}+{}", c.name()),
        }
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
pub struct Sequential {
    origin: String,
    reader: Box<dyn Read + Send>,
}

/// A [`Sequential`] source opened: the tar inside its compression.
pub(crate) struct Opened {
    /// How messages name the input.
    pub(crate) origin: String,
    /// The archive's tar stream, decompressed.
    pub(crate) tar: Box<dyn BufRead + Send>,
    /// The compression of the whole archive.
    pub(crate) compression: Outer,
}

impl Sequential {
    /// Wraps a stream; `origin` names it in messages.
    pub fn new(origin: String, reader: Box<dyn Read + Send>) -> Sequential {
        Sequential { origin, reader }
    }

    /// Detects the archive's compression and checks that a tar comes out.
    pub(crate) fn open(self) -> Result<Opened> {
        let origin = self.origin;
        let mut br = BufReader::with_capacity(BUFFER, self.reader);
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
            // Already buffered: a second buffer would only copy.
            Outer::Layer(Compression::None) => return check_tar(origin, br, compression),
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
        check_tar(origin, BufReader::with_capacity(BUFFER, inner), compression)
    }
}

/// Checks the first block before trusting the stream to be a tar.
fn check_tar<R: BufRead + Send + 'static>(
    origin: String,
    mut tar: R,
    compression: Outer,
) -> Result<Opened> {
    let first = tar
        .fill_buf()
        .map_err(|e| outer_error(&origin, e, "at its start"))?;
    if first.len() >= 512 && !super::is_tar_header(&first[..512]) {
        return Err(Error::NotAnImage {
            path: origin,
            what: "it is not a tar archive (try 'docker save IMAGE -o image.tar')".into(),
        });
    }
    Ok(Opened {
        origin,
        tar: Box::new(tar),
        compression,
    })
}

/// An error of the archive itself (not of a layer in it), `what` saying where.
pub(crate) fn outer_error(origin: &str, e: io::Error, what: &str) -> Error {
    let msg = if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("archive truncated {what}")
    } else {
        format!("cannot read the archive {what}: {e}")
    };
    Error::format(origin, msg)
}
