//! Stage 1, read: containers/image's directory transport (`skopeo copy ...
//! dir:D`, `podman save --format docker-dir`) → the documents and blobs that
//! [`meta`] resolves.
//!
//! Such a directory holds one image: `manifest.json` is the manifest itself
//! (Docker schema 2, OCI, an index when copied with `--all`, or Docker
//! schema 1), `version` says `Directory Transport Version: 1.1`, and every
//! blob is a file named by the hex of its digest, without `sha256:` (an
//! index's instance manifests as `<hex>.manifest.json`). Seen through
//! [`Store`] it is an OCI layout whose `index.json` lists that one manifest,
//! so selection, verification and scanning are those of every other input.
//! Schema 1 has no config and no diff_ids: [`resolve_schema1`] converts it.

use std::io;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::Digest as _;

use super::layout::{host_blob, host_file_bytes, read_host_doc};
use super::meta::{
    self, ImageConfig, ImageMeta, LayerDesc, MAX_DOC_BYTES, Platform, Selection, Store,
};
use super::{Blob, RandomAccess};
use crate::error::{Error, Result};
use crate::history::HistoryEntry;
use crate::layer::LayerScan;

/// What `version` starts with in every layout this reader knows (1.0, 1.1).
const VERSION_PREFIX: &str = "Directory Transport Version: 1.";

/// A `dir:` layout on disk.
pub(crate) struct DirTransport {
    root: PathBuf,
    origin: String,
    /// The bytes of `manifest.json`.
    manifest: Vec<u8>,
    /// Their sha256 digest: the name the synthetic index gives them.
    manifest_digest: String,
    /// A schema 1 manifest, which [`meta`] does not read.
    schema1: bool,
    /// `index.json` as an OCI layout would have it.
    index: Vec<u8>,
}

/// The part of any manifest that tells its kind.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kind {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
}

impl DirTransport {
    /// Reads `manifest.json` and `version` of the layout at `root`.
    pub(crate) fn open(root: PathBuf, origin: &str) -> Result<DirTransport> {
        let not_an_image = |what: String| Error::NotAnImage {
            path: origin.to_string(),
            what,
        };
        match std::fs::read(root.join("version")) {
            Ok(v) => {
                let v = String::from_utf8_lossy(&v);
                if !v.starts_with(VERSION_PREFIX) {
                    return Err(not_an_image(format!(
                        "its 'version' says '{}', not '{VERSION_PREFIX}x' (a layout that 'skopeo copy IMAGE dir:DIR' writes)",
                        v.lines()
                            .next()
                            .unwrap_or("")
                            .chars()
                            .take(60)
                            .collect::<String>()
                    )));
                }
            }
            // Layouts written before the version file existed have none.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(root.join("version").display().to_string(), e)),
        }
        let path = root.join("manifest.json");
        let len = std::fs::metadata(&path)
            .map_err(|e| Error::io(path.display().to_string(), e))?
            .len();
        if len > MAX_DOC_BYTES {
            return Err(Error::format(
                origin,
                format!("'manifest.json' is {len} bytes, too large for a metadata file"),
            ));
        }
        let manifest =
            std::fs::read(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        if manifest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(not_an_image(format!(
                "its manifest.json is a docker-save list: an unpacked 'docker save' archive; pack it again with 'tar -C {origin} -cf image.tar .'"
            )));
        }
        let kind: Kind = serde_json::from_slice(&manifest)
            .map_err(|e| Error::format(origin, format!("invalid JSON in 'manifest.json': {e}")))?;
        let schema1 = kind.schema_version == Some(1)
            || kind
                .media_type
                .as_deref()
                .is_some_and(|m| m.starts_with("application/vnd.docker.distribution.manifest.v1"));
        let manifest_digest = meta::digest_bytes("sha256", &manifest).unwrap_or_default();
        let mut desc = serde_json::json!({
            "digest": manifest_digest,
            "size": manifest.len(),
        });
        if let Some(mt) = &kind.media_type {
            desc["mediaType"] = serde_json::Value::from(mt.as_str());
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc]}).to_string();
        Ok(DirTransport {
            root,
            origin: origin.to_string(),
            manifest,
            manifest_digest,
            schema1,
            index: index.into_bytes(),
        })
    }

    /// The host file of a `blobs/<alg>/<hex>` path: `<hex>.manifest.json` for
    /// an instance manifest of an index, else `<hex>`.
    fn host_file(&self, path: &str) -> Option<PathBuf> {
        let digest = meta::digest_of_path(path)?;
        let hex = digest.split_once(':')?.1;
        let manifest = self.root.join(format!("{hex}.manifest.json"));
        if manifest.is_file() {
            return Some(manifest);
        }
        Some(self.root.join(hex))
    }

    /// The metadata of the image, with layer blobs named by their files.
    fn resolve(&self, sel: &Selection) -> Result<ImageMeta> {
        let mut meta = if self.schema1 {
            resolve_schema1(&self.origin, &self.manifest, sel, |p| {
                self.host_file(p)
                    .and_then(|f| std::fs::metadata(f).ok())
                    .map(|m| m.len())
            })?
        } else {
            meta::resolve(self, sel).map_err(|e| self.with_file_names(e))?
        };
        meta.format = "dir".into();
        for l in &mut meta.layers {
            if let Some(d) = meta::digest_of_path(&l.blob)
                && let Some((_, hex)) = d.split_once(':')
            {
                l.blob = hex.to_string();
            }
        }
        Ok(meta)
    }

    /// Messages of [`meta`] name blobs as an OCI layout stores them; here
    /// the file is the bare hex.
    fn with_file_names(&self, e: Error) -> Error {
        match e {
            Error::Format { path, what } => Error::Format {
                path,
                what: what.replace("'blobs/sha256/", "'"),
            },
            other => other,
        }
    }
}

impl Store for DirTransport {
    fn read_doc(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if path == "index.json" {
            return Ok(Some(self.index.clone()));
        }
        if meta::digest_of_path(path).as_deref() == Some(self.manifest_digest.as_str()) {
            return Ok(Some(self.manifest.clone()));
        }
        // `manifest.json` is not docker-save's list here: only blobs are documents.
        let Some(p) = self.host_file(path) else {
            return Ok(None);
        };
        // Errors name the file as it is in the directory (bare hex).
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        read_host_doc(&self.origin, &name, &p)
    }
    fn size_of(&self, path: &str) -> Option<u64> {
        host_file_bytes(&self.host_file(path)?)
    }
    fn origin(&self) -> &str {
        &self.origin
    }
}

impl RandomAccess for DirTransport {
    fn resolve(&self, sel: &Selection) -> Result<ImageMeta> {
        DirTransport::resolve(self, sel)
    }

    fn positioned(&self) -> bool {
        true
    }

    fn open_blob(&self, layer: &LayerDesc) -> io::Result<Blob> {
        // Layer blobs are bare hex names (see `resolve`); nothing else is opened.
        let name = &layer.blob;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "invalid blob name"));
        }
        host_blob(&self.root.join(name))
    }

    /// Schema 1 declares no diff_ids; the verified read measured them.
    fn complete(&self, meta: &mut ImageMeta, scans: &[LayerScan]) {
        if self.schema1 && scans.iter().all(|s| s.diff_id.is_some()) {
            let ids: Vec<String> = scans.iter().filter_map(|s| s.diff_id.clone()).collect();
            for (l, id) in meta.layers.iter_mut().zip(&ids) {
                l.diff_id = Some(id.clone());
            }
            meta.config.rootfs.diff_ids = ids;
        }
    }
}

/// Docker image manifest schema 1 (`schemaVersion: 1`), as
/// containers/image `manifest/docker_schema1.go` reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Schema1 {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    fs_layers: Option<Vec<FsLayer>>,
    #[serde(default)]
    history: Option<Vec<V1History>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FsLayer {
    #[serde(default)]
    blob_sum: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1History {
    #[serde(default)]
    v1_compatibility: String,
}

/// One `v1Compatibility` document: the layer's legacy image JSON.
#[derive(Deserialize, Default)]
struct V1Compatibility {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    /// The layer is empty and a schema 2 image would have none (`docker
    /// pull` skips it).
    #[serde(default)]
    throwaway: bool,
    #[serde(default)]
    container_config: Option<ContainerConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    #[serde(default)]
    cmd: Option<Vec<String>>,
}

/// Converts a schema 1 manifest to the metadata of its image: `fsLayers`
/// and `history` run newest first and pair up one to one; a history entry
/// marked `throwaway` has an empty layer that is left out, as schema 2 leaves
/// it out; `created_by` is the entry's `container_config.Cmd` joined with
/// spaces, as Docker converts it. There are no diff_ids; `size_of` gives a
/// blob's size, since the manifest doesn't.
pub(crate) fn resolve_schema1(
    origin: &str,
    bytes: &[u8],
    sel: &Selection,
    size_of: impl Fn(&str) -> Option<u64>,
) -> Result<ImageMeta> {
    let m: Schema1 = serde_json::from_slice(bytes).map_err(|e| {
        Error::format(
            origin,
            format!("invalid JSON in 'manifest.json' (schema 1): {e}"),
        )
    })?;
    let fs_layers = m.fs_layers.unwrap_or_default();
    let history = m.history.unwrap_or_default();
    if fs_layers.len() != history.len() {
        return Err(Error::format(
            origin,
            format!(
                "schema 1 manifest has {} fsLayers but {} history entries (convert it with 'skopeo copy --format v2s2')",
                fs_layers.len(),
                history.len()
            ),
        ));
    }
    let mut entries = Vec::with_capacity(history.len());
    let mut layers = Vec::new();
    let mut os = None;
    for (i, (layer, h)) in fs_layers.iter().zip(&history).enumerate().rev() {
        let c: V1Compatibility = serde_json::from_str(&h.v1_compatibility).map_err(|e| {
            Error::format(
                origin,
                format!("invalid JSON in 'manifest.json' history[{i}].v1Compatibility: {e}"),
            )
        })?;
        if i == 0 {
            os = c.os.clone();
        }
        let created_by = c
            .container_config
            .and_then(|cc| cc.cmd)
            .map(|cmd| cmd.join(" "))
            .unwrap_or_default();
        entries.push(HistoryEntry {
            created_by,
            empty_layer: c.throwaway,
            comment: c.comment.unwrap_or_default(),
        });
        if c.throwaway {
            continue;
        }
        let blob = meta::blob_path(&layer.blob_sum).ok_or_else(|| {
            Error::format(
                origin,
                format!(
                    "schema 1 fsLayers[{i}] has an invalid digest '{}'",
                    layer.blob_sum
                ),
            )
        })?;
        layers.push(LayerDesc {
            size: size_of(&blob),
            blob,
            digest: Some(layer.blob_sum.clone()),
            media_type: None,
            diff_id: None,
        });
    }
    let platform = Platform {
        os: os.unwrap_or_else(|| "linux".into()),
        architecture: m.architecture.unwrap_or_default(),
        variant: None,
    };
    if let Some(want) = &sel.platform {
        let mine = Platform::parse(&platform.display()).unwrap_or_else(|_| platform.clone());
        if mine.os != want.os || mine.architecture != want.architecture {
            return Err(Error::Selection {
                path: origin.into(),
                what: format!(
                    "no image for platform '{}'; platforms present: {}",
                    want.display(),
                    platform.display()
                ),
            });
        }
    }
    let name = match (m.name.filter(|n| !n.is_empty()), m.tag) {
        (Some(n), Some(t)) if !t.is_empty() => Some(format!("{n}:{t}")),
        (n, _) => n,
    };
    if let Some(want) = &sel.image
        && !name.as_deref().is_some_and(|n| meta::name_matches(n, want))
    {
        return Err(Error::Selection {
            path: origin.into(),
            what: format!(
                "no image named '{want}'; the archive holds: {}",
                name.as_deref().unwrap_or("(no names)")
            ),
        });
    }
    Ok(ImageMeta {
        name,
        // Schema 1 has no config blob: the manifest's own digest names it.
        image_id: crate::layer::sha256_string(&sha2::Sha256::digest(bytes)),
        platform: platform.display(),
        format: "dir".into(),
        config: ImageConfig {
            platform,
            history: entries,
            ..ImageConfig::default()
        },
        layers,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compat(cmd: &str, throwaway: bool) -> String {
        let c = serde_json::json!({
            "container_config": {"Cmd": ["/bin/sh", "-c", cmd]},
            "throwaway": throwaway,
        });
        serde_json::json!({"v1Compatibility": c.to_string()}).to_string()
    }

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn schema1_layers_run_oldest_first_without_throwaways() {
        // Newest first, as the format has it: RUN, ENV (throwaway), ADD.
        let doc = format!(
            r#"{{"schemaVersion": 1, "name": "app", "tag": "1", "architecture": "amd64",
                "fsLayers": [{{"blobSum": "{}"}}, {{"blobSum": "{}"}}, {{"blobSum": "{}"}}],
                "history": [{}, {}, {}]}}"#,
            digest(3),
            digest(2),
            digest(1),
            compat("pip install torch", false),
            compat("#(nop)  ENV A=b", true),
            compat("#(nop) ADD file:abc in /", false),
        );
        let m = resolve_schema1("d", doc.as_bytes(), &Selection::default(), |_| Some(7)).unwrap();
        let blobs: Vec<&str> = m.layers.iter().map(|l| l.blob.as_str()).collect();
        assert_eq!(
            blobs,
            [
                format!("blobs/sha256/{}", &digest(1)[7..]),
                format!("blobs/sha256/{}", &digest(3)[7..])
            ],
            "oldest layer first, the throwaway one left out"
        );
        let hist: Vec<(&str, bool)> = m
            .config
            .history
            .iter()
            .map(|h| (h.created_by.as_str(), h.empty_layer))
            .collect();
        assert_eq!(
            hist,
            [
                ("/bin/sh -c #(nop) ADD file:abc in /", false),
                ("/bin/sh -c #(nop)  ENV A=b", true),
                ("/bin/sh -c pip install torch", false)
            ]
        );
        assert_eq!(m.name.as_deref(), Some("app:1"));
        assert_eq!(m.platform, "linux/amd64");
        assert_eq!(m.layers[0].size, Some(7));
        assert_eq!(m.layers[0].diff_id, None, "schema 1 declares no diff_ids");
    }

    #[test]
    fn schema1_errors_name_what_is_wrong() {
        let cases = [
            (
                r#"{"schemaVersion": 1, "fsLayers": [{"blobSum": "sha256:00"}], "history": []}"#,
                "schema 1 manifest has 1 fsLayers but 0 history entries (convert it with 'skopeo copy --format v2s2')",
            ),
            (
                r#"{"schemaVersion": 1, "fsLayers": [{"blobSum": "md5:../x"}], "history": [{"v1Compatibility": "{}"}]}"#,
                "schema 1 fsLayers[0] has an invalid digest 'md5:../x'",
            ),
            (
                r#"{"schemaVersion": 1, "fsLayers": [{"blobSum": "x"}], "history": [{"v1Compatibility": "{"}]}"#,
                "invalid JSON in 'manifest.json' history[0].v1Compatibility: EOF while parsing an object at line 1 column 1",
            ),
        ];
        for (doc, want) in cases {
            let e =
                resolve_schema1("d", doc.as_bytes(), &Selection::default(), |_| None).unwrap_err();
            assert_eq!(e.to_string(), format!("'d': {want}"), "{doc}");
        }
        // Null lists are empty lists: an image without layers.
        let m = resolve_schema1(
            "d",
            br#"{"schemaVersion": 1, "fsLayers": null, "history": null}"#,
            &Selection::default(),
            |_| None,
        )
        .unwrap();
        assert!(m.layers.is_empty());
    }
}
