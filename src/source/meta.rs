//! Image metadata: docker-save `manifest.json`, OCI `index.json`, manifests,
//! indexes and configs → [`ImageMeta`]. Parsers take bytes from a [`Store`];
//! they never touch host files themselves.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use sha2::{Digest, Sha256, Sha512};

use crate::error::{Error, Result};
use crate::history::HistoryEntry;

/// Largest metadata document read into memory (manifests, indexes, configs).
pub const MAX_DOC_BYTES: u64 = 64 << 20;

/// Read access to the files of an image archive or layout.
pub trait Store {
    /// Reads a small metadata file, or `None` when it doesn't exist.
    fn read_doc(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// Size of a file, when it exists.
    fn size_of(&self, path: &str) -> Option<u64>;
    /// Host name of the input, for messages.
    fn origin(&self) -> &str;
    /// Whether the store has any file at all.
    fn is_empty(&self) -> bool;
    /// A few file names, to describe what a non-image archive holds.
    fn sample_names(&self) -> Vec<String>;
}

/// An OCI content descriptor (also Docker's schema 2).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    #[serde(default)]
    pub media_type: Option<String>,
    /// `alg:hex`.
    #[serde(default)]
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: i64,
    /// Platform of a manifest in an index.
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default)]
    pub annotations: Option<HashMap<String, String>>,
}

/// A platform as an index states it.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`).
    #[serde(default)]
    pub architecture: String,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// CPU variant (`v8`, `v7`).
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`.
    pub fn display(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// Parses `os/arch[/variant]`, normalising architecture aliases.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::Usage(format!(
                "invalid platform '{s}': expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
            )));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: normalize_arch(parts[1]),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// The platform of this machine (images are Linux).
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: normalize_arch(std::env::consts::ARCH),
            variant: None,
        }
    }

    /// containerd-style match: variant only matters when asked for; `arm64`
    /// without a variant is `arm64/v8`.
    fn matches(&self, want: &Platform) -> bool {
        if self.os != want.os || normalize_arch(&self.architecture) != want.architecture {
            return false;
        }
        match &want.variant {
            None => true,
            Some(v) => {
                let mine = self.variant.clone().unwrap_or_default();
                mine == *v || (want.architecture == "arm64" && v == "v8" && mine.is_empty())
            }
        }
    }
}

fn normalize_arch(a: &str) -> String {
    match a.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" | "i686" => "386".into(),
        other => other.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// The parts of an image config mlsize uses (OCI and Docker alike).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ImageConfig {
    /// `architecture`, `os` and `variant`.
    #[serde(flatten)]
    pub platform: Platform,
    /// Root filesystem: the layers' diff_ids.
    #[serde(default)]
    pub rootfs: RootFs,
    /// Build history.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct RootFs {
    /// `sha256:<hex>` of each uncompressed layer, in order.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One layer as the metadata describes it.
#[derive(Debug, Clone)]
pub struct LayerDesc {
    /// Path of the blob inside the archive or layout.
    pub blob: String,
    /// Declared blob digest, when the format has one.
    pub digest: Option<String>,
    /// Declared blob size, when the format has one.
    pub size: Option<u64>,
    /// Declared media type.
    pub media_type: Option<String>,
    /// The config's diff_id for this layer.
    pub diff_id: Option<String>,
}

/// Everything known about the selected image before its layers are read.
#[derive(Debug, Clone)]
pub struct ImageMeta {
    /// Repository name and tag, when the archive names the image.
    pub name: Option<String>,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Archive format (`docker-archive`, `oci-layout`, `oci-archive`, ...).
    pub format: String,
    /// The config.
    pub config: ImageConfig,
    /// Layers in order.
    pub layers: Vec<LayerDesc>,
    /// Non-fatal oddities.
    pub warnings: Vec<String>,
}

/// What the user asked to select.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--image NAME[:TAG]`.
    pub image: Option<String>,
    /// `--platform os/arch[/variant]`.
    pub platform: Option<Platform>,
    /// Verify metadata digests.
    pub verify: bool,
}

/// Checks a digest's form and returns its blob path, `blobs/<alg>/<hex>`.
/// The check is what keeps a hostile digest from naming `../../etc/passwd`.
pub fn blob_path(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    let alg_ok = !alg.is_empty()
        && alg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        && alg.as_bytes()[0].is_ascii_alphanumeric();
    let hex_ok = hex.len() >= 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (alg_ok && hex_ok).then(|| format!("blobs/{alg}/{hex}"))
}

/// The digest a `blobs/<alg>/<hex>` path names, if it is one.
pub fn digest_of_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    let d = format!("{alg}:{hex}");
    blob_path(&d).map(|_| d)
}

/// First 12 hex characters of a digest, with its algorithm: `sha256:0123456789ab`.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", &hex[..hex.len().min(12)]),
        None => d.chars().take(12).collect(),
    }
}

/// Digest of bytes in the given algorithm, or `None` when unsupported.
pub fn digest_bytes(alg: &str, bytes: &[u8]) -> Option<String> {
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match alg {
        "sha256" => Some(format!("sha256:{}", hex(&Sha256::digest(bytes)))),
        "sha512" => Some(format!("sha512:{}", hex(&Sha512::digest(bytes)))),
        _ => None,
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(
    store: &dyn Store,
    path: &str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format(store.origin(), format!("invalid JSON in '{path}': {e}")))
}

/// Reads a blob named by a descriptor and checks its size and digest.
fn read_blob(store: &dyn Store, d: &Descriptor, what: &str, verify: bool) -> Result<Vec<u8>> {
    let path = blob_path(&d.digest).ok_or_else(|| {
        Error::format(
            store.origin(),
            format!("{what} has an invalid digest '{}'", d.digest),
        )
    })?;
    let bytes = store.read_doc(&path)?.ok_or_else(|| {
        Error::format(
            store.origin(),
            format!("{what} blob '{path}' is missing from the archive"),
        )
    })?;
    if verify {
        if d.size >= 0 && bytes.len() as u64 != d.size as u64 {
            return Err(Error::format(
                store.origin(),
                format!(
                    "{what} blob '{path}' is {} bytes but its descriptor says {}",
                    bytes.len(),
                    d.size
                ),
            ));
        }
        let alg = d.digest.split_once(':').map(|x| x.0).unwrap_or("");
        if let Some(found) = digest_bytes(alg, &bytes)
            && found != d.digest
        {
            return Err(Error::DigestMismatch {
                path: store.origin().to_string(),
                what: what.to_string(),
                expected: d.digest.clone(),
                found,
            });
        }
    }
    Ok(bytes)
}

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

struct Candidate {
    desc: Descriptor,
    name: Option<String>,
}

fn name_annotation(d: &Descriptor) -> Option<String> {
    let a = d.annotations.as_ref()?;
    a.get("io.containerd.image.name")
        .or_else(|| a.get("org.opencontainers.image.ref.name"))
        .cloned()
}

fn is_attestation(d: &Descriptor) -> bool {
    let by_annotation = d
        .annotations
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    let unknown = d
        .platform
        .as_ref()
        .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown");
    by_annotation || unknown
}

fn collect(
    store: &dyn Store,
    manifests: &[Descriptor],
    inherited: Option<&str>,
    depth: usize,
    verify: bool,
    out: &mut Vec<Candidate>,
) -> Result<()> {
    if depth > 8 {
        return Err(Error::format(
            store.origin(),
            "image indexes are nested more than 8 deep",
        ));
    }
    for d in manifests {
        let name = name_annotation(d).or_else(|| inherited.map(str::to_string));
        let mt = d.media_type.as_deref().unwrap_or("");
        if INDEX_TYPES.contains(&mt) {
            let bytes = read_blob(store, d, "image index", verify)?;
            let idx: Index = parse_json(store, &d.digest, &bytes)?;
            collect(
                store,
                &idx.manifests,
                name.as_deref(),
                depth + 1,
                verify,
                out,
            )?;
        } else if MANIFEST_TYPES.contains(&mt) || mt.is_empty() {
            if is_attestation(d) {
                continue;
            }
            // A descriptor without a media type may still be an index: look inside.
            if mt.is_empty() {
                let bytes = read_blob(store, d, "manifest", verify)?;
                let m: Manifest = parse_json(store, &d.digest, &bytes)?;
                if let Some(children) = m.manifests {
                    collect(store, &children, name.as_deref(), depth + 1, verify, out)?;
                    continue;
                }
            }
            out.push(Candidate {
                desc: d.clone(),
                name,
            });
        }
    }
    Ok(())
}

/// Does `name` (as stored: `docker.io/library/app:latest`) answer to `want` (`app`, `app:latest`)?
pub fn name_matches(name: &str, want: &str) -> bool {
    let norm = |s: &str| -> String {
        let s = s.strip_prefix("docker.io/").unwrap_or(s);
        let s = s.strip_prefix("library/").unwrap_or(s);
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.contains(':') || s.contains('@') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    name == want || norm(name) == norm(want)
}

/// Resolves the selected image of a store.
pub fn resolve(store: &dyn Store, sel: &Selection) -> Result<ImageMeta> {
    let docker = match store.read_doc("manifest.json")? {
        Some(b) => Some(parse_json::<Vec<DockerEntry>>(store, "manifest.json", &b)?),
        None => None,
    };
    if let Some(index) = store.read_doc("index.json")? {
        let index: Index = parse_json(store, "index.json", &index)?;
        let format = if docker.is_some() {
            "docker-archive"
        } else {
            "oci"
        };
        return resolve_oci(store, sel, index, docker.as_deref(), format);
    }
    if let Some(entries) = docker {
        return resolve_docker(store, sel, entries);
    }
    Err(not_an_image(store))
}

fn not_an_image(store: &dyn Store) -> Error {
    let path = store.origin().to_string();
    if store.is_empty() {
        return Error::NotAnImage {
            path,
            what: "the archive is empty".into(),
        };
    }
    let names = store.sample_names();
    let rootfs = names.iter().any(|n| {
        ["etc/", "usr/", "bin/", "lib/", "var/"]
            .iter()
            .any(|p| n.starts_with(p) || n.trim_start_matches("./").starts_with(p))
    });
    let what = if rootfs {
        "it looks like a root filesystem (as 'docker export' writes), not an image; save the image instead: 'docker save IMAGE -o image.tar' or 'skopeo copy docker://IMAGE docker-archive:image.tar'".to_string()
    } else {
        format!(
            "found neither manifest.json nor index.json (first entries: {}); try 'docker save IMAGE -o image.tar'",
            names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        )
    };
    Error::NotAnImage { path, what }
}

fn resolve_docker(
    store: &dyn Store,
    sel: &Selection,
    entries: Vec<DockerEntry>,
) -> Result<ImageMeta> {
    let origin = store.origin().to_string();
    if entries.is_empty() {
        return Err(Error::format(&origin, "manifest.json lists no image"));
    }
    let all_names: Vec<String> = entries
        .iter()
        .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
        .collect();
    let entry = match &sel.image {
        Some(want) => entries
            .iter()
            .find(|e| e.repo_tags.iter().flatten().any(|t| name_matches(t, want)))
            .ok_or_else(|| Error::Selection {
                path: origin.clone(),
                what: format!(
                    "no image named '{want}'; the archive holds: {}",
                    list_or_none(&all_names)
                ),
            })?,
        None if entries.len() > 1 => {
            return Err(Error::Selection {
                path: origin,
                what: format!(
                    "the archive holds {} images; choose one with --image: {}",
                    entries.len(),
                    list_or_none(&all_names)
                ),
            });
        }
        None => &entries[0],
    };
    let config_path = normalize_member(&entry.config);
    let config_bytes = store.read_doc(&config_path)?.ok_or_else(|| {
        Error::format(
            &origin,
            format!("config '{config_path}' is missing from the archive"),
        )
    })?;
    if sel.verify
        && let Some(d) = config_digest_from_name(&config_path)
    {
        let alg = d.split_once(':').map(|x| x.0).unwrap_or("");
        if let Some(found) = digest_bytes(alg, &config_bytes)
            && found != d
        {
            return Err(Error::DigestMismatch {
                path: origin,
                what: "config".into(),
                expected: d,
                found,
            });
        }
    }
    let config: ImageConfig = parse_json(store, &config_path, &config_bytes)?;
    let mut layers = Vec::new();
    for (i, l) in entry.layers.iter().enumerate() {
        let blob = normalize_member(l);
        layers.push(LayerDesc {
            digest: digest_of_path(&blob),
            size: store.size_of(&blob),
            media_type: None,
            diff_id: config.rootfs.diff_ids.get(i).cloned(),
            blob,
        });
    }
    check_diff_id_count(&origin, &config, layers.len())?;
    let platform = config.platform.clone();
    if let Some(want) = &sel.platform
        && !platform.matches(want)
    {
        return Err(Error::Selection {
            path: origin,
            what: format!(
                "no image for platform '{}'; platforms present: {}",
                want.display(),
                platform.display()
            ),
        });
    }
    Ok(ImageMeta {
        name: entry.repo_tags.as_ref().and_then(|t| t.first().cloned()),
        platform: platform.display(),
        format: "docker-archive".into(),
        config,
        layers,
        warnings: Vec::new(),
    })
}

/// `abc.json` or `blobs/sha256/abc` → the config digest the name promises.
fn config_digest_from_name(path: &str) -> Option<String> {
    if let Some(d) = digest_of_path(path) {
        return Some(d);
    }
    let hex = path.strip_suffix(".json")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

/// Member names in manifest.json are relative to the archive root.
pub fn normalize_member(p: &str) -> String {
    let (n, _) = crate::layer::path::normalize(p.as_bytes());
    n.trim_start_matches('/').to_string()
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(no names)".into()
    } else {
        names.join(", ")
    }
}

fn check_diff_id_count(origin: &str, config: &ImageConfig, layers: usize) -> Result<()> {
    let n = config.rootfs.diff_ids.len();
    if n != layers {
        return Err(Error::format(
            origin,
            format!("the config lists {n} diff_ids but the manifest has {layers} layers"),
        ));
    }
    Ok(())
}

fn resolve_oci(
    store: &dyn Store,
    sel: &Selection,
    index: Index,
    docker: Option<&[DockerEntry]>,
    format: &str,
) -> Result<ImageMeta> {
    let origin = store.origin().to_string();
    let mut cands = Vec::new();
    collect(store, &index.manifests, None, 0, sel.verify, &mut cands)?;
    if cands.is_empty() {
        return Err(Error::format(&origin, "index.json lists no image manifest"));
    }
    // Docker 25+ also names images in manifest.json: map its config paths to tags.
    let mut docker_tags: HashMap<String, Vec<String>> = HashMap::new();
    for e in docker.unwrap_or_default() {
        docker_tags.insert(
            normalize_member(&e.config),
            e.repo_tags.clone().unwrap_or_default(),
        );
    }
    if let Some(want) = &sel.image {
        let all: BTreeSet<String> = cands.iter().filter_map(|c| c.name.clone()).collect();
        cands.retain(|c| c.name.as_deref().is_some_and(|n| name_matches(n, want)));
        if cands.is_empty() {
            return Err(Error::Selection {
                path: origin,
                what: format!(
                    "no image named '{want}'; the archive holds: {}",
                    list_or_none(&all.into_iter().collect::<Vec<_>>())
                ),
            });
        }
    }
    let names: BTreeSet<Option<String>> = cands.iter().map(|c| c.name.clone()).collect();
    if names.len() > 1 {
        let listed: Vec<String> = names
            .into_iter()
            .map(|n| n.unwrap_or("(unnamed)".into()))
            .collect();
        return Err(Error::Selection {
            path: origin,
            what: format!(
                "the archive holds {} images; choose one with --image: {}",
                listed.len(),
                listed.join(", ")
            ),
        });
    }
    // Platforms: from the index, else from each manifest's config.
    type Loaded = (Candidate, Platform, Option<(Manifest, ImageConfig)>);
    let mut loaded: Vec<Loaded> = Vec::new();
    for c in cands {
        match c.desc.platform.clone() {
            Some(p) if !p.os.is_empty() => loaded.push((c, p, None)),
            _ => {
                let (m, cfg) = load_manifest(store, &c.desc, sel.verify)?;
                let p = cfg.platform.clone();
                loaded.push((c, p, Some((m, cfg))));
            }
        }
    }
    let present = || {
        loaded
            .iter()
            .map(|(_, p, _)| p.display())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = if loaded.len() == 1 && sel.platform.is_none() {
        0
    } else {
        let want = sel.platform.clone().unwrap_or_else(Platform::host);
        let matching: Vec<usize> = (0..loaded.len())
            .filter(|&i| loaded[i].1.matches(&want))
            .collect();
        let variants: BTreeSet<String> = matching.iter().map(|&i| loaded[i].1.display()).collect();
        match (matching.first(), variants.len()) {
            (None, _) => {
                let how = if sel.platform.is_some() {
                    ""
                } else {
                    " (this machine's)"
                };
                return Err(Error::Selection {
                    path: origin,
                    what: format!(
                        "no image for platform '{}'{how}; platforms present: {} (choose with --platform)",
                        want.display(),
                        present()
                    ),
                });
            }
            (Some(&i), 1) => i,
            (Some(&i), _) if want.architecture == "arm64" => i,
            (Some(_), _) => {
                return Err(Error::Selection {
                    path: origin,
                    what: format!(
                        "platform '{}' is ambiguous; give the variant: {}",
                        want.display(),
                        variants.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    };
    let (cand, platform, pre) = loaded.swap_remove(chosen);
    let (manifest, config) = match pre {
        Some(x) => x,
        None => load_manifest(store, &cand.desc, sel.verify)?,
    };
    let config_desc = manifest.config.clone().unwrap_or_default();
    let config_path = blob_path(&config_desc.digest).unwrap_or_default();
    let mut layers = Vec::new();
    let mut warnings = Vec::new();
    for (i, l) in manifest.layers.iter().enumerate() {
        let blob = blob_path(&l.digest).ok_or_else(|| {
            Error::format(
                &origin,
                format!(
                    "layer {}/{} has an invalid digest '{}'",
                    i + 1,
                    manifest.layers.len(),
                    l.digest
                ),
            )
        })?;
        if let Some(mt) = &l.media_type
            && !is_layer_media_type(mt)
        {
            warnings.push(format!(
                "layer {}/{} has media type '{mt}'; reading it as a tar layer",
                i + 1,
                manifest.layers.len()
            ));
        }
        layers.push(LayerDesc {
            blob,
            digest: Some(l.digest.clone()),
            size: u64::try_from(l.size).ok(),
            media_type: l.media_type.clone(),
            diff_id: config.rootfs.diff_ids.get(i).cloned(),
        });
    }
    check_diff_id_count(&origin, &config, layers.len())?;
    let name = docker_tags
        .get(&config_path)
        .and_then(|t| t.first().cloned())
        .or(cand.name);
    let format = if format == "oci" {
        "oci".to_string()
    } else {
        format.to_string()
    };
    Ok(ImageMeta {
        name,
        platform: platform.display(),
        format,
        config,
        layers,
        warnings,
    })
}

fn is_layer_media_type(mt: &str) -> bool {
    mt.starts_with("application/vnd.oci.image.layer.")
        || mt.starts_with("application/vnd.docker.image.rootfs.")
        || mt.starts_with("application/vnd.oci.image.layer.nondistributable.")
}

fn load_manifest(
    store: &dyn Store,
    d: &Descriptor,
    verify: bool,
) -> Result<(Manifest, ImageConfig)> {
    let bytes = read_blob(store, d, "manifest", verify)?;
    let m: Manifest = parse_json(store, &d.digest, &bytes)?;
    if let Some(mt) = &m.media_type
        && INDEX_TYPES.contains(&mt.as_str())
    {
        return Err(Error::format(
            store.origin(),
            format!("'{}' is an index where a manifest was expected", d.digest),
        ));
    }
    let cd = m.config.clone().ok_or_else(|| {
        Error::format(
            store.origin(),
            format!("manifest '{}' has no config", d.digest),
        )
    })?;
    let cbytes = read_blob(store, &cd, "config", verify)?;
    let config: ImageConfig = parse_json(store, &cd.digest, &cbytes)?;
    Ok((m, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_reject_hostile_digests() {
        let good = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            blob_path(good).as_deref(),
            Some("blobs/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        );
        for bad in [
            "sha256:../../etc/passwd",
            "../x:0123456789abcdef0123456789abcdef0123",
            "sha256:",
            "sha256",
            "sha256:0123456789ABCDEF0123456789ABCDEF0123",
            "sha256:0123/../../0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(blob_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn platform_matching_follows_containerd() {
        let p = |s: &str| Platform::parse(s).unwrap();
        let arm64v8 = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        assert!(arm64v8.matches(&p("linux/arm64")));
        assert!(arm64v8.matches(&p("linux/arm64/v8")));
        assert!(!arm64v8.matches(&p("linux/amd64")));
        let arm64 = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: None,
        };
        assert!(arm64.matches(&p("linux/arm64/v8")));
        assert_eq!(p("linux/x86_64").architecture, "amd64");
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn names_match_loosely() {
        assert!(name_matches("docker.io/library/app:latest", "app"));
        assert!(name_matches("docker.io/library/app:latest", "app:latest"));
        assert!(name_matches("app:1.0", "app:1.0"));
        assert!(!name_matches("app:1.0", "app"));
        assert!(name_matches("ghcr.io/org/app:2", "ghcr.io/org/app:2"));
    }
}
