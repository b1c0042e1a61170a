//! Stage 1, read: an image in a registry, as a random-access source. The
//! documents come from the registry API and are seen through [`Store`] as an
//! OCI layout whose `index.json` lists the manifest the reference names, so
//! selection (`--platform`), document verification and the loader are those
//! of every other input; layer blobs are HTTP response bodies streamed
//! straight into the scanners.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Mutex;

use super::{Client, Fetched, RegistryOptions, RegistryRef};
use crate::error::Result;
use crate::source::meta::{self, ImageMeta, LayerDesc, MAX_DOC_BYTES, Selection, Store};
use crate::source::{Blob, RandomAccess};

/// An image in a registry.
pub(crate) struct RegistryImage {
    client: Client,
    origin: String,
    /// The manifest (or index) the reference names.
    top: Fetched,
    /// `index.json` as an OCI layout would have it: one descriptor, `top`.
    index: Vec<u8>,
    /// Digests that name manifests (fetched from `/manifests/`, not `/blobs/`).
    manifests: Mutex<HashSet<String>>,
    /// Documents already fetched, by digest.
    docs: Mutex<HashMap<String, Vec<u8>>>,
}

impl RegistryImage {
    /// Connects and fetches the manifest `r` names; `origin` names the image
    /// in messages and the report.
    pub(crate) fn open(r: &RegistryRef, opts: &RegistryOptions, origin: &str) -> Result<Self> {
        let client = Client::new(r, opts)?;
        let top = client.manifest(r.reference())?;
        let mut desc = serde_json::json!({
            "digest": top.digest,
            "size": top.bytes.len(),
        });
        if let Some(mt) = &top.media_type {
            desc["mediaType"] = serde_json::Value::from(mt.as_str());
        }
        // A tag names the image, as RepoTags do in an archive.
        if let Some(tag) = &r.tag {
            let name = format!("{}/{}:{tag}", r.registry_name(), r.repository);
            desc["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": name });
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc]}).to_string();
        let image = RegistryImage {
            client,
            origin: origin.to_string(),
            index: index.into_bytes(),
            manifests: Mutex::default(),
            docs: Mutex::default(),
            top,
        };
        image.note_children(&image.top.bytes);
        Ok(image)
    }

    /// Remembers the manifests an index lists, to fetch them as manifests.
    fn note_children(&self, bytes: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Desc {
            digest: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Index {
            manifests: Option<Vec<Desc>>,
        }
        if let Ok(Index {
            manifests: Some(list),
        }) = serde_json::from_slice::<Index>(bytes)
            && let Ok(mut m) = self.manifests.lock()
        {
            m.extend(list.into_iter().filter_map(|d| d.digest));
        }
    }
}

impl Store for RegistryImage {
    fn read_doc(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if path == "index.json" {
            return Ok(Some(self.index.clone()));
        }
        let Some(digest) = meta::digest_of_path(path) else {
            // `manifest.json` and the like: a registry has no docker-save list.
            return Ok(None);
        };
        if digest == self.top.digest {
            return Ok(Some(self.top.bytes.clone()));
        }
        if let Some(d) = self.docs.lock().ok().and_then(|d| d.get(&digest).cloned()) {
            return Ok(Some(d));
        }
        let is_manifest = self
            .manifests
            .lock()
            .map(|m| m.contains(&digest))
            .unwrap_or(false);
        let bytes = if is_manifest {
            self.client.manifest(&digest)?.bytes
        } else {
            self.client.blob_bytes(&digest, MAX_DOC_BYTES)?
        };
        self.note_children(&bytes);
        if let Ok(mut d) = self.docs.lock() {
            d.insert(digest, bytes.clone());
        }
        Ok(Some(bytes))
    }
    fn size_of(&self, _path: &str) -> Option<u64> {
        // Only docker-save lists need it; descriptors carry sizes here.
        None
    }
    fn origin(&self) -> &str {
        &self.origin
    }
}

impl RandomAccess for RegistryImage {
    fn resolve(&self, sel: &Selection) -> Result<ImageMeta> {
        let mut meta = meta::resolve(self, sel)?;
        meta.format = "registry".into();
        Ok(meta)
    }

    fn positioned(&self) -> bool {
        false
    }

    fn open_blob(&self, layer: &LayerDesc) -> io::Result<Blob> {
        let digest = layer
            .digest
            .as_deref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the layer has no digest"))?;
        Ok(Blob::Stream {
            reader: self.client.blob(digest, layer.size)?,
            len: layer.size,
        })
    }
}
