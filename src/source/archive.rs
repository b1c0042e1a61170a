//! Stage 1, read: an uncompressed tar on disk (docker-save, Docker 25+
//! OCI-in-tar, oci-archive), indexed header by header by mlsize's own tar
//! reader (data is skipped by seeking), then read member by member at its
//! offset.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use super::meta::{self, ImageMeta, LayerDesc, MAX_DOC_BYTES, Selection, Store};
use super::{Blob, RandomAccess, archive_format};
use crate::error::{Error, Result};

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

/// Where a member of an uncompressed tar is.
#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

/// An uncompressed tar archive on disk, indexed by member name.
pub(crate) struct TarArchive {
    path: PathBuf,
    origin: String,
    members: HashMap<String, Member>,
    order: Vec<String>,
}

impl TarArchive {
    /// Reads only the headers of the archive (data is skipped by seeking).
    pub(crate) fn index(origin: &str, f: File) -> Result<TarArchive> {
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
        Ok(TarArchive {
            path: PathBuf::from(origin),
            origin: origin.to_string(),
            members,
            order,
        })
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
    fn member_blob(&self, name: &str) -> io::Result<Blob> {
        let (start, size) = self
            .find(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "missing"))?;
        let file = File::open(&self.path)?;
        let len = size.min(file.metadata()?.len().saturating_sub(start));
        Ok(Blob::File { file, start, len })
    }

    fn open_member(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        self.member_blob(name)?.into_reader().map(|(r, _)| r)
    }
}

impl Store for TarArchive {
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

impl RandomAccess for TarArchive {
    fn resolve(&self, sel: &Selection) -> Result<ImageMeta> {
        let mut meta = meta::resolve(self, sel)?;
        meta.format = archive_format(&meta.format);
        Ok(meta)
    }

    fn positioned(&self) -> bool {
        true
    }

    fn open_blob(&self, layer: &LayerDesc) -> io::Result<Blob> {
        self.member_blob(&layer.blob)
    }
}
