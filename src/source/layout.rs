//! Stage 1, read: an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/<alg>/<hex>`), as `skopeo copy ... oci:DIR`,
//! `podman save --format oci-dir` and umoci write it.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::meta::{self, ImageMeta, LayerDesc, MAX_DOC_BYTES, Selection, Store};
use super::{Blob, RandomAccess};
use crate::error::{Error, Result};

/// An OCI image layout directory.
pub(crate) struct Layout {
    root: PathBuf,
    origin: String,
}

impl Layout {
    pub(crate) fn new(root: PathBuf, origin: &str) -> Layout {
        Layout {
            root,
            origin: origin.to_string(),
        }
    }

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

impl Store for Layout {
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
}

impl RandomAccess for Layout {
    fn resolve(&self, sel: &Selection) -> Result<ImageMeta> {
        let mut meta = meta::resolve(self, sel)?;
        meta.format = "oci-layout".into();
        Ok(meta)
    }

    fn positioned(&self) -> bool {
        true
    }

    fn open_blob(&self, layer: &LayerDesc) -> io::Result<Blob> {
        let p = self
            .host_path(&layer.blob)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "invalid blob path"))?;
        host_blob(&p)
    }
}

/// A whole host file as a blob.
pub(super) fn host_blob(p: &Path) -> io::Result<Blob> {
    let file = File::open(p)?;
    let len = file.metadata()?.len();
    Ok(Blob::File {
        file,
        start: 0,
        len,
    })
}

/// A metadata document from a host file (`None` when there is no such file),
/// refused past [`MAX_DOC_BYTES`]; `name` is how the error names it.
pub(super) fn read_host_doc(origin: &str, name: &str, p: &Path) -> Result<Option<Vec<u8>>> {
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
pub(super) fn host_file_bytes(p: &Path) -> Option<u64> {
    std::fs::metadata(p)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}
