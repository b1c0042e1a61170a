//! Image metadata: docker-save `manifest.json`, OCI `index.json`, manifests,
//! indexes and configs → [`ImageMeta`]. Parsers take bytes from a [`Store`];
//! they never touch host files themselves.
//!
//! Every document is read the same way: its JSON values are counted before
//! anything is built ([`MAX_JSON_VALUES`]), it is parsed to a
//! `serde_json::Value`, one normalisation step turns what real tools write
//! into what the specs mean (Go writes a nil list or map as `null`, some
//! builders write `"Entrypoint": "/bin/sh"`, some leave `null` in label
//! maps), digests are checked against the image-spec grammar, counts against
//! the caps below, and only then does it become a typed document. OCI indexes,
//! manifests, descriptors, platforms and image configs (Docker's config is
//! the same document) are `oci-spec` types; Docker-only documents, which
//! `oci-spec` has no type for, stay ours: `manifest.json` (`DockerEntry`).
//! mlsize reads no other Docker-only document: the per-layer v1 `json` files
//! of a legacy `docker save` repeat what the config says, and a schema-1
//! manifest is a media type mlsize does not know, ignored as the image-index
//! spec says.
//!
//! Of a parsed config only what mlsize uses is kept ([`ImageConfig`]), and
//! only for the chosen image: configs read to learn a platform are dropped
//! as soon as it is known.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use oci_spec::image::{
    Descriptor, Digest as OciDigest, ImageConfiguration, ImageIndex, ImageManifest,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::error::{Error, Result};
use crate::history::HistoryEntry;

/// Largest metadata document read into memory (manifests, indexes, configs).
pub const MAX_DOC_BYTES: u64 = 64 << 20;

/// Most JSON values (keys included) in one metadata document. A document is
/// parsed to a `serde_json::Value` before it is normalised, at some 50 to 100
/// bytes a value, so 64 MiB of `0,0,0,…` would take gigabytes; this keeps it
/// near 100 MB. A real config or index holds a few thousand values; an index
/// of [`MAX_DESCRIPTORS`] manifests about 150 000.
pub const MAX_JSON_VALUES: usize = 1_000_000;

/// Most layers in one image: a manifest's `layers`, a `manifest.json`
/// entry's `Layers`, a config's `rootfs.diff_ids`. Real images have fewer
/// than 128 (Docker's overlay2 driver refuses to stack more than 125).
pub const MAX_LAYERS: usize = 1_000;

/// Most `history` entries in one config. Instructions that make no layer
/// (`ENV`, `LABEL`, `CMD`) add entries, tens of them, not thousands.
pub const MAX_HISTORY: usize = 10_000;

/// Most manifest descriptors read from the indexes of one input (`index.json`
/// and every index it leads to, counted each time one is reached), and most
/// images in one `manifest.json`. A multi-platform image lists a few dozen;
/// an OCI layout used as a store of many tags, hundreds.
pub const MAX_DESCRIPTORS: usize = 10_000;

/// Deepest chain of indexes from `index.json` to a manifest. Docker and
/// BuildKit nest one level (`index.json` → the image's index → manifests).
pub const MAX_INDEX_DEPTH: usize = 8;

/// Read access to the files of an image archive or layout.
pub trait Store {
    /// Reads a small metadata file, or `None` when it doesn't exist.
    fn read_doc(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// Size of a file, when it exists.
    fn size_of(&self, path: &str) -> Option<u64>;
    /// Host name of the input, for messages.
    fn origin(&self) -> &str;
    /// Whether the store has any file at all.
    /// (A layout or a registry always has something.)
    fn is_empty(&self) -> bool {
        false
    }
    /// A few file names, to describe what a non-image archive holds (none
    /// where files have no names worth showing).
    fn sample_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A platform to match: `os/arch[/variant]` as the user asks for it, as an
/// index descriptor ([`oci_spec::image::Platform`]) or a config states it.
/// Matching needs architecture aliases and containerd's variant rules, which
/// the `oci-spec` enums don't have, so selection works on this one type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v8`, `v7`).
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
        let invalid = || {
            Error::Usage(format!(
                "invalid platform '{s}': expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
            ))
        };
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(invalid());
        }
        match parts.as_slice() {
            [os, arch, rest @ ..] => Ok(Platform {
                os: os.to_ascii_lowercase(),
                architecture: normalize_arch(arch),
                variant: rest.first().map(|v| v.to_ascii_lowercase()),
            }),
            _ => Err(invalid()),
        }
    }

    /// The platform of this machine (images are Linux).
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: normalize_arch(std::env::consts::ARCH),
            variant: None,
        }
    }

    /// The platform an index descriptor states.
    pub fn from_oci(p: &oci_spec::image::Platform) -> Platform {
        Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
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

/// One image of a docker-save `manifest.json`. Docker-only (the OCI specs
/// and `oci-spec` have no such document), so the type is ours.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    #[serde(default)]
    layers: Vec<String>,
}

/// The parts of an image config mlsize uses (OCI and Docker alike), taken
/// from the parsed [`ImageConfiguration`], which is then dropped.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// `architecture`, `os` and `variant`.
    pub platform: Platform,
    /// Root filesystem: the layers' diff_ids.
    pub rootfs: RootFs,
    /// Build history.
    pub history: Vec<HistoryEntry>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default)]
pub struct RootFs {
    /// `sha256:<hex>` of each uncompressed layer, in order.
    pub diff_ids: Vec<String>,
}

impl ImageConfig {
    fn from_oci(mut c: ImageConfiguration) -> ImageConfig {
        let platform = Platform {
            os: c.os().to_string(),
            architecture: c.architecture().to_string(),
            variant: c.variant().clone(),
        };
        let diff_ids = std::mem::take(c.rootfs_mut().diff_ids_mut());
        let history = c
            .history_mut()
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|h| HistoryEntry {
                created_by: h.created_by().clone().unwrap_or_default(),
                empty_layer: h.empty_layer().unwrap_or(false),
                comment: h.comment().clone().unwrap_or_default(),
            })
            .collect();
        ImageConfig {
            platform,
            rootfs: RootFs { diff_ids },
            history,
        }
    }
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
    /// Image ID: the sha256 of the config as read, whatever the archive
    /// names it (Docker's image ID; a legacy config's file name may differ).
    pub image_id: String,
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
    let alg_ok = alg
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && alg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
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

/// First 12 characters of a digest's encoded part, with its algorithm:
/// `sha256:0123456789ab`. Counted in characters, never bytes, so any text
/// is safe to shorten.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.chars().take(12).collect::<String>()),
        None => d.chars().take(12).collect(),
    }
}

/// Checks `d` against the image-spec digest grammar (descriptor.md,
/// "Digests"): `algorithm ":" encoded`, where a `sha256` digest is 64 and a
/// `sha512` digest 128 lowercase hex digits. The error says what was expected.
pub fn check_digest(d: &str) -> std::result::Result<(), String> {
    match OciDigest::try_from(d) {
        Ok(_) => Ok(()),
        Err(_) => Err(match d.split_once(':').map(|x| x.0) {
            Some("sha256") => "expected 'sha256:' and 64 lowercase hex digits".into(),
            Some("sha512") => "expected 'sha512:' and 128 lowercase hex digits".into(),
            _ => "expected ALGORITHM:ENCODED, e.g. 'sha256:' and 64 lowercase hex digits".into(),
        }),
    }
}

/// A string from a document as a message may show it: at most 80
/// characters, control characters escaped, so the message stays one line.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(80)
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect();
    if s.chars().nth(80).is_some() {
        out.push('…');
    }
    out
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

// ---- Reading a document: count, parse, normalise, type ----

/// A metadata document being read, for messages: `'index.json'`,
/// `'sha256:…'` (a blob, by its digest) or `'abc.json'`.
struct Doc<'a> {
    origin: &'a str,
    name: &'a str,
}

impl Doc<'_> {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::format(self.origin, format!("{what} in '{}'", self.name))
    }

    fn invalid_json(&self, what: impl std::fmt::Display) -> Error {
        Error::format(
            self.origin,
            format!("invalid JSON in '{}': {what}", self.name),
        )
    }

    /// `field` lists `n` things, over `limit`.
    fn over(&self, field: &str, n: usize, limit: usize, unit: &str) -> Error {
        Error::format(
            self.origin,
            format!(
                "{field} in '{}' lists {n} {unit}, more than mlsize's limit of {limit} {unit}",
                self.name
            ),
        )
    }

    /// Counts the values, then parses.
    fn value(&self, bytes: &[u8]) -> Result<Value> {
        if !json_values_at_most(bytes, MAX_JSON_VALUES) {
            return Err(self.err(format!(
                "the document holds more than {MAX_JSON_VALUES} JSON values, mlsize's limit for a metadata document"
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| self.invalid_json(e))
    }

    /// The normalised value as a typed document.
    fn typed<T: DeserializeOwned>(&self, v: Value) -> Result<T> {
        serde_json::from_value(v).map_err(|e| self.invalid_json(e))
    }

    fn digest(&self, field: &str, d: &str) -> Result<()> {
        check_digest(d)
            .map_err(|why| self.err(format!("invalid digest '{}' at {field} ({why})", shown(d))))
    }
}

/// Whether a JSON document holds at most `max` values, counted without
/// building any: every value or key after the first follows a `[`, `{`,
/// `,` or `:` outside a string, so their count bounds the values.
fn json_values_at_most(bytes: &[u8], max: usize) -> bool {
    let (mut n, mut in_string, mut escaped) = (1usize, false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b'[' | b'{' | b',' | b':') {
            n += 1;
            if n > max {
                return false;
            }
        }
    }
    true
}

fn root<'v>(doc: &Doc, v: &'v mut Value) -> Result<&'v mut Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(doc.invalid_json("expected a JSON object")),
    }
}

/// `null` or absent → `[]`: Go writes a nil slice as `null`.
fn null_list(m: &mut Map<String, Value>, key: &str) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), Value::Array(Vec::new()));
    }
}

/// `null` or absent → `default`, for a field the spec requires.
fn null_default(m: &mut Map<String, Value>, key: &str, default: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), default);
    }
}

/// A string map (labels, annotations): `null` → absent, `null` values
/// dropped (a key without a value says nothing).
fn string_map(m: &mut Map<String, Value>, key: &str) {
    match m.get_mut(key) {
        Some(Value::Null) => {
            m.remove(key);
        }
        Some(Value::Object(map)) => map.retain(|_, v| !v.is_null()),
        _ => {}
    }
}

/// A Go `map[string]struct{}` (`ExposedPorts`, `Volumes`): `null` → absent,
/// `null` values → `{}`.
fn go_set(m: &mut Map<String, Value>, key: &str) {
    match m.get_mut(key) {
        Some(Value::Null) => {
            m.remove(key);
        }
        Some(Value::Object(map)) => {
            for v in map.values_mut() {
                if v.is_null() {
                    *v = Value::Object(Map::new());
                }
            }
        }
        _ => {}
    }
}

/// A command (`Entrypoint`, `Cmd`) given as one string means a one-element
/// list, as Docker reads it.
fn string_to_list(m: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(s)) = m.get(key) {
        let one = Value::Array(vec![Value::String(s.clone())]);
        m.insert(key.into(), one);
    }
}

/// The list at `key` has at most `limit` items (`field` names it in messages).
fn check_count(
    doc: &Doc,
    m: &Map<String, Value>,
    key: &str,
    field: &str,
    limit: usize,
    unit: &str,
) -> Result<()> {
    match m.get(key) {
        Some(Value::Array(a)) if a.len() > limit => Err(doc.over(field, a.len(), limit, unit)),
        _ => Ok(()),
    }
}

/// Media type of a descriptor with none stated: an old layout or a tool that
/// leaves it out. Its blob says what it is (see [`Walk::unstated`]).
const UNSTATED: &str = "";

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A descriptor: media type stated (or [`UNSTATED`]), digest checked, maps
/// and platform normalised.
fn normalize_descriptor(doc: &Doc, v: &mut Value, field: &str) -> Result<()> {
    let Value::Object(m) = v else {
        return Err(doc.err(format!("{field} is not a descriptor (a JSON object)")));
    };
    null_default(m, "mediaType", Value::String(UNSTATED.into()));
    match m.get("digest") {
        Some(Value::String(d)) => doc.digest(&format!("{field}.digest"), d)?,
        _ => {
            return Err(doc.err(format!(
                "invalid digest at {field}.digest (expected a string)"
            )));
        }
    }
    string_map(m, "annotations");
    match m.get_mut("platform") {
        Some(Value::Null) => {
            m.remove("platform");
        }
        Some(Value::Object(p)) => {
            null_default(p, "architecture", Value::String(String::new()));
            null_default(p, "os", Value::String(String::new()));
        }
        _ => {}
    }
    Ok(())
}

/// An image index (or Docker manifest list). Descriptors of a media type
/// mlsize does not know are dropped before anything else is checked:
/// image-index.md, "An encountered mediaType that is unknown to the
/// implementation MUST be ignored."
fn parse_index(doc: &Doc, bytes: &[u8]) -> Result<ImageIndex> {
    let mut v = doc.value(bytes)?;
    normalize_index(doc, &mut v)?;
    doc.typed(v)
}

fn normalize_index(doc: &Doc, v: &mut Value) -> Result<()> {
    let m = root(doc, v)?;
    null_default(m, "schemaVersion", Value::from(2));
    null_list(m, "manifests");
    check_count(
        doc,
        m,
        "manifests",
        "manifests",
        MAX_DESCRIPTORS,
        "manifests",
    )?;
    string_map(m, "annotations");
    if let Some(Value::Array(list)) = m.get_mut("manifests") {
        list.retain(|d| match d.get("mediaType") {
            None | Some(Value::Null) => true,
            Some(Value::String(t)) => {
                INDEX_TYPES.contains(&t.as_str()) || MANIFEST_TYPES.contains(&t.as_str())
            }
            Some(_) => false,
        });
        for (i, d) in list.iter_mut().enumerate() {
            normalize_descriptor(doc, d, &format!("manifests[{i}]"))?;
        }
    }
    normalize_subject(doc, m)
}

/// The optional `subject` descriptor of an index or manifest (`null` is absent).
fn normalize_subject(doc: &Doc, m: &mut serde_json::Map<String, Value>) -> Result<()> {
    match m.get_mut("subject") {
        Some(s) if s.is_null() => {
            m.remove("subject");
            Ok(())
        }
        Some(s) => normalize_descriptor(doc, s, "subject"),
        None => Ok(()),
    }
}

fn normalize_manifest(doc: &Doc, v: &mut Value) -> Result<()> {
    let m = root(doc, v)?;
    null_default(m, "schemaVersion", Value::from(2));
    match m.get_mut("config") {
        Some(c) if !c.is_null() => normalize_descriptor(doc, c, "config")?,
        _ => {
            return Err(Error::format(
                doc.origin,
                format!("manifest '{}' has no config", doc.name),
            ));
        }
    }
    null_list(m, "layers");
    check_count(doc, m, "layers", "layers", MAX_LAYERS, "layers")?;
    if let Some(Value::Array(list)) = m.get_mut("layers") {
        for (i, d) in list.iter_mut().enumerate() {
            normalize_descriptor(doc, d, &format!("layers[{i}]"))?;
        }
    }
    string_map(m, "annotations");
    normalize_subject(doc, m)
}

/// An image config, Docker's or OCI's. `diff_ids` are checked later, by
/// [`check_config`], against the layers.
fn parse_config(doc: &Doc, bytes: &[u8]) -> Result<ImageConfig> {
    let mut v = doc.value(bytes)?;
    normalize_config(doc, &mut v)?;
    doc.typed::<ImageConfiguration>(v)
        .map(ImageConfig::from_oci)
}

fn normalize_config(doc: &Doc, v: &mut Value) -> Result<()> {
    let m = root(doc, v)?;
    null_default(m, "architecture", Value::String(String::new()));
    null_default(m, "os", Value::String(String::new()));
    null_default(m, "rootfs", serde_json::json!({"type": "layers"}));
    if let Some(Value::Object(r)) = m.get_mut("rootfs") {
        null_default(r, "type", Value::String("layers".into()));
        null_list(r, "diff_ids");
        check_count(doc, r, "diff_ids", "rootfs.diff_ids", MAX_LAYERS, "layers")?;
    }
    check_count(doc, m, "history", "history", MAX_HISTORY, "history entries")?;
    if let Some(Value::Object(c)) = m.get_mut("config") {
        string_to_list(c, "Entrypoint");
        string_to_list(c, "Cmd");
        string_map(c, "Labels");
        go_set(c, "ExposedPorts");
        go_set(c, "Volumes");
    }
    Ok(())
}

/// `manifest.json`: `RepoTags` and `Layers` may be `null` (Go), counts capped.
fn parse_docker_manifest(doc: &Doc, bytes: &[u8]) -> Result<Vec<DockerEntry>> {
    let mut v = doc.value(bytes)?;
    let Value::Array(entries) = &mut v else {
        return Err(doc.invalid_json("expected a JSON list of images"));
    };
    if entries.len() > MAX_DESCRIPTORS {
        return Err(doc.over("the list", entries.len(), MAX_DESCRIPTORS, "images"));
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if let Value::Object(m) = e {
            null_list(m, "RepoTags");
            null_list(m, "Layers");
            let field = format!("Layers of image {}", i + 1);
            check_count(doc, m, "Layers", &field, MAX_LAYERS, "layers")?;
        }
    }
    doc.typed(v)
}

/// Reads a blob named by a descriptor and checks its size and digest.
fn read_blob(store: &dyn Store, d: &Descriptor, what: &str, verify: bool) -> Result<Vec<u8>> {
    let digest = d.digest().as_ref();
    let path = blob_path(digest).ok_or_else(|| {
        Error::format(
            store.origin(),
            format!("{what} has an invalid digest '{}'", shown(digest)),
        )
    })?;
    let bytes = store.read_doc(&path)?.ok_or_else(|| {
        Error::format(
            store.origin(),
            format!("{what} blob '{path}' is missing from the archive"),
        )
    })?;
    if verify {
        if bytes.len() as u64 != d.size() {
            return Err(Error::format(
                store.origin(),
                format!(
                    "{what} blob '{path}' is {} bytes but its descriptor says {}",
                    bytes.len(),
                    d.size()
                ),
            ));
        }
        let alg = digest.split_once(':').map(|x| x.0).unwrap_or("");
        if let Some(found) = digest_bytes(alg, &bytes)
            && found != digest
        {
            return Err(Error::DigestMismatch {
                path: store.origin().to_string(),
                what: what.to_string(),
                expected: digest.to_string(),
                found,
            });
        }
    }
    Ok(bytes)
}

fn media_type(d: &Descriptor) -> &str {
    d.media_type().as_ref()
}

fn name_annotation(d: &Descriptor) -> Option<String> {
    let a = d.annotations().as_ref()?;
    a.get("io.containerd.image.name")
        .or_else(|| a.get("org.opencontainers.image.ref.name"))
        .cloned()
}

fn is_attestation(d: &Descriptor) -> bool {
    let by_annotation = d
        .annotations()
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    let unknown = d
        .platform()
        .as_ref()
        .map(Platform::from_oci)
        .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown");
    by_annotation || unknown
}

/// A platform an index states, when it states one.
fn stated_platform(d: &Descriptor) -> Option<Platform> {
    d.platform()
        .as_ref()
        .map(Platform::from_oci)
        .filter(|p| !p.os.is_empty())
}

/// One image manifest the indexes lead to, however many times they do.
struct Candidate {
    desc: Descriptor,
    /// Every name it was reached by, in order, without repeats.
    names: Vec<String>,
    /// The first platform an index stated for it.
    platform: Option<Platform>,
}

/// The walk from `index.json` to image manifests. One manifest digest is one
/// candidate however often it is reached (two ref.names, with and without a
/// platform, through a nested index and a Docker manifest list); each index
/// blob is read and parsed once.
struct Walk<'s> {
    store: &'s dyn Store,
    verify: bool,
    /// Descriptors walked so far, against [`MAX_DESCRIPTORS`].
    walked: usize,
    /// Index blobs read, by digest.
    indexes: HashMap<String, Rc<Vec<Descriptor>>>,
    /// Blobs without a stated media type found to be manifests.
    manifests: BTreeSet<String>,
    cands: Vec<Candidate>,
    by_digest: HashMap<String, usize>,
}

enum Unstated {
    Index(Rc<Vec<Descriptor>>),
    Manifest,
}

impl Walk<'_> {
    fn walk(
        &mut self,
        manifests: &[Descriptor],
        inherited: Option<&str>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::format(
                self.store.origin(),
                format!("image indexes are nested more than {MAX_INDEX_DEPTH} deep"),
            ));
        }
        self.walked += manifests.len();
        if self.walked > MAX_DESCRIPTORS {
            return Err(Error::format(
                self.store.origin(),
                format!(
                    "the image indexes reach more than {MAX_DESCRIPTORS} manifests (each time one is reached counts), mlsize's limit of {MAX_DESCRIPTORS} manifests"
                ),
            ));
        }
        for d in manifests {
            let name = name_annotation(d).or_else(|| inherited.map(str::to_string));
            let mt = media_type(d);
            if INDEX_TYPES.contains(&mt) {
                let children = self.index(d)?;
                self.walk(&children, name.as_deref(), depth + 1)?;
            } else if MANIFEST_TYPES.contains(&mt) || mt == UNSTATED {
                if is_attestation(d) {
                    continue;
                }
                if mt == UNSTATED
                    && let Unstated::Index(children) = self.unstated(d)?
                {
                    self.walk(&children, name.as_deref(), depth + 1)?;
                    continue;
                }
                self.add(d, name);
            }
            // Any other media type: image-index.md says to ignore it (the
            // index normalisation already dropped those it listed).
        }
        Ok(())
    }

    fn index(&mut self, d: &Descriptor) -> Result<Rc<Vec<Descriptor>>> {
        let digest = d.digest().to_string();
        if let Some(c) = self.indexes.get(&digest) {
            return Ok(c.clone());
        }
        let bytes = read_blob(self.store, d, "image index", self.verify)?;
        let doc = Doc {
            origin: self.store.origin(),
            name: &digest,
        };
        let idx = parse_index(&doc, &bytes)?;
        let children = Rc::new(idx.manifests().clone());
        self.indexes.insert(digest, children.clone());
        Ok(children)
    }

    /// A descriptor without a media type may be an index: look inside.
    fn unstated(&mut self, d: &Descriptor) -> Result<Unstated> {
        let digest = d.digest().to_string();
        if let Some(c) = self.indexes.get(&digest) {
            return Ok(Unstated::Index(c.clone()));
        }
        if self.manifests.contains(&digest) {
            return Ok(Unstated::Manifest);
        }
        let bytes = read_blob(self.store, d, "manifest", self.verify)?;
        let doc = Doc {
            origin: self.store.origin(),
            name: &digest,
        };
        let mut v = doc.value(&bytes)?;
        if v.get("manifests").is_some() {
            normalize_index(&doc, &mut v)?;
            let idx: ImageIndex = doc.typed(v)?;
            let children = Rc::new(idx.manifests().clone());
            self.indexes.insert(digest, children.clone());
            return Ok(Unstated::Index(children));
        }
        self.manifests.insert(digest);
        Ok(Unstated::Manifest)
    }

    fn add(&mut self, d: &Descriptor, name: Option<String>) {
        let digest = d.digest().to_string();
        let i = match self.by_digest.get(&digest) {
            Some(&i) => i,
            None => {
                self.by_digest.insert(digest, self.cands.len());
                self.cands.push(Candidate {
                    desc: d.clone(),
                    names: Vec::new(),
                    platform: None,
                });
                self.cands.len() - 1
            }
        };
        let Some(c) = self.cands.get_mut(i) else {
            return;
        };
        if let Some(n) = name
            && !c.names.contains(&n)
        {
            c.names.push(n);
        }
        if c.platform.is_none() {
            c.platform = stated_platform(d);
        }
    }
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
    let origin = store.origin();
    let docker = match store.read_doc("manifest.json")? {
        Some(b) => {
            let doc = Doc {
                origin,
                name: "manifest.json",
            };
            Some(parse_docker_manifest(&doc, &b)?)
        }
        None => None,
    };
    if let Some(bytes) = store.read_doc("index.json")? {
        let doc = Doc {
            origin,
            name: "index.json",
        };
        let index = parse_index(&doc, &bytes)?;
        drop(bytes);
        let format = if docker.is_some() {
            "docker-archive"
        } else {
            "oci"
        };
        return resolve_oci(store, sel, &index, docker, format);
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
    let all_names: Vec<String> = entries
        .iter()
        .flat_map(|e| e.repo_tags.iter().cloned())
        .collect();
    let mut entries = entries.into_iter();
    let entry = match (&sel.image, entries.len()) {
        (_, 0) => return Err(Error::format(&origin, "manifest.json lists no image")),
        (Some(want), _) => entries
            .find(|e| e.repo_tags.iter().any(|t| name_matches(t, want)))
            .ok_or_else(|| Error::Selection {
                path: origin.clone(),
                what: format!(
                    "no image named '{want}'; the archive holds: {}",
                    list_or_none(&all_names)
                ),
            })?,
        (None, 1) => entries
            .next()
            .ok_or_else(|| Error::format(&origin, "manifest.json lists no image"))?,
        (None, n) => {
            return Err(Error::Selection {
                path: origin,
                what: format!(
                    "the archive holds {n} images; choose one with --image: {}",
                    list_or_none(&all_names)
                ),
            });
        }
    };
    let config_path = normalize_member(&entry.config);
    let config_bytes = store.read_doc(&config_path)?.ok_or_else(|| {
        Error::format(
            &origin,
            format!(
                "config '{}' is missing from the archive",
                shown(&config_path)
            ),
        )
    })?;
    let image_id = digest_bytes("sha256", &config_bytes).unwrap_or_default();
    let mut warnings = Vec::new();
    if let Some(named) = digest_of_path(&config_path) {
        // A content-addressed blob (Docker 25+): its name is a descriptor.
        let alg = named.split_once(':').map(|x| x.0).unwrap_or("");
        if sel.verify
            && let Some(found) = digest_bytes(alg, &config_bytes)
            && found != named
        {
            return Err(Error::DigestMismatch {
                path: origin,
                what: "config".into(),
                expected: named,
                found,
            });
        }
    } else if let Some(named) = legacy_config_digest(&config_path)
        && named != image_id
    {
        // A legacy `<hex>.json` name is only a name: docker load and skopeo
        // load the archive whatever it says, and the image ID is the hash.
        warnings.push(format!(
            "config '{}' is named for {named} but its content is {image_id}; the image ID is {image_id} (docker load accepts such archives)",
            shown(&config_path)
        ));
    }
    let doc = Doc {
        origin: &origin,
        name: &config_path,
    };
    let config = parse_config(&doc, &config_bytes)?;
    drop(config_bytes);
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
    check_config(&doc, &config, layers.len())?;
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
        name: entry.repo_tags.into_iter().next(),
        image_id,
        platform: platform.display(),
        format: "docker-archive".into(),
        config,
        layers,
        warnings,
    })
}

/// `abc….json` (64 hex digits) → the config digest a legacy name suggests.
fn legacy_config_digest(path: &str) -> Option<String> {
    let hex = path.strip_suffix(".json")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
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

/// One diff_id per layer, each a valid digest: diff_ids name layers in
/// messages and key the layer cache, so nothing reads them unchecked.
fn check_config(doc: &Doc, config: &ImageConfig, layers: usize) -> Result<()> {
    let n = config.rootfs.diff_ids.len();
    if n != layers {
        return Err(Error::format(
            doc.origin,
            format!("the config lists {n} diff_ids but the manifest has {layers} layers"),
        ));
    }
    for (i, d) in config.rootfs.diff_ids.iter().enumerate() {
        doc.digest(&format!("rootfs.diff_ids[{i}]"), d)?;
    }
    Ok(())
}

fn resolve_oci(
    store: &dyn Store,
    sel: &Selection,
    index: &ImageIndex,
    docker: Option<Vec<DockerEntry>>,
    format: &str,
) -> Result<ImageMeta> {
    let origin = store.origin().to_string();
    let mut walk = Walk {
        store,
        verify: sel.verify,
        walked: 0,
        indexes: HashMap::new(),
        manifests: BTreeSet::new(),
        cands: Vec::new(),
        by_digest: HashMap::new(),
    };
    walk.walk(index.manifests(), None, 0)?;
    let mut cands = walk.cands;
    drop(walk.indexes);
    if cands.is_empty() {
        // Docker 25+ writes `"manifests": null` in index.json for some
        // single-platform images; its manifest.json names the image.
        if let Some(entries) = docker {
            return resolve_docker(store, sel, entries);
        }
        return Err(Error::format(&origin, "index.json lists no image manifest"));
    }
    // Docker 25+ also names images in manifest.json: map its config paths to tags.
    let docker_tags: HashMap<String, Vec<String>> = docker
        .unwrap_or_default()
        .into_iter()
        .map(|e| (normalize_member(&e.config), e.repo_tags))
        .collect();
    if let Some(want) = &sel.image {
        let all: BTreeSet<String> = cands.iter().flat_map(|c| c.names.clone()).collect();
        cands.retain(|c| c.names.iter().any(|n| name_matches(n, want)));
        if cands.is_empty() {
            return Err(Error::Selection {
                path: origin,
                what: format!(
                    "no image named '{want}'; the archive holds: {}",
                    list_or_none(&all.into_iter().collect::<Vec<_>>())
                ),
            });
        }
    } else {
        // One image: every manifest answers to one name (the platforms of a
        // multi-platform image), or none has a name.
        let unnamed = cands.iter().all(|c| c.names.is_empty());
        let shared = cands.first().is_some_and(|first| {
            first
                .names
                .iter()
                .any(|n| cands.iter().all(|c| c.names.contains(n)))
        });
        if !(unnamed || shared) {
            let listed: BTreeSet<String> = cands
                .iter()
                .flat_map(|c| {
                    if c.names.is_empty() {
                        vec!["(unnamed)".to_string()]
                    } else {
                        c.names.clone()
                    }
                })
                .collect();
            return Err(Error::Selection {
                path: origin,
                what: format!(
                    "the archive holds {} images; choose one with --image: {}",
                    listed.len(),
                    listed.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    // Platforms: from the index, else from each manifest's config. A config
    // read for its platform is dropped at once; one config is read once.
    let mut config_platforms: HashMap<String, Platform> = HashMap::new();
    let mut loaded: Vec<(Candidate, Platform)> = Vec::with_capacity(cands.len());
    for c in cands {
        let p = match &c.platform {
            Some(p) => p.clone(),
            None => {
                let manifest = load_manifest(store, &c.desc, sel.verify)?;
                let cd = manifest.config();
                let key = cd.digest().to_string();
                match config_platforms.get(&key) {
                    Some(p) => p.clone(),
                    None => {
                        let (config, _) = load_config(store, cd, sel.verify)?;
                        config_platforms.insert(key, config.platform.clone());
                        config.platform
                    }
                }
            }
        };
        loaded.push((c, p));
    }
    drop(config_platforms);
    let present = |loaded: &[(Candidate, Platform)]| {
        loaded
            .iter()
            .map(|(_, p)| p.display())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = if loaded.len() == 1 && sel.platform.is_none() {
        0
    } else {
        let want = sel.platform.clone().unwrap_or_else(Platform::host);
        let matching: Vec<usize> = loaded
            .iter()
            .enumerate()
            .filter(|(_, (_, p))| p.matches(&want))
            .map(|(i, _)| i)
            .collect();
        let variants: BTreeSet<String> = matching
            .iter()
            .filter_map(|&i| loaded.get(i))
            .map(|(_, p)| p.display())
            .collect();
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
                        present(&loaded)
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
    if chosen >= loaded.len() {
        return Err(Error::format(&origin, "index.json lists no image manifest"));
    }
    let (cand, platform) = loaded.swap_remove(chosen);
    drop(loaded);
    let manifest = load_manifest(store, &cand.desc, sel.verify)?;
    let (config, image_id) = load_config(store, manifest.config(), sel.verify)?;
    let config_path = blob_path(manifest.config().digest().as_ref()).unwrap_or_default();
    let count = manifest.layers().len();
    let mut layers = Vec::with_capacity(count);
    let mut warnings = Vec::new();
    for (i, l) in manifest.layers().iter().enumerate() {
        let digest = l.digest().to_string();
        let blob = blob_path(&digest).ok_or_else(|| {
            Error::format(
                &origin,
                format!(
                    "layer {}/{count} has an invalid digest '{}'",
                    i + 1,
                    shown(&digest)
                ),
            )
        })?;
        let mt = media_type(l);
        if mt != UNSTATED && !is_layer_media_type(mt) {
            warnings.push(format!(
                "layer {}/{count} has media type '{}'; reading it as a tar layer",
                i + 1,
                shown(mt)
            ));
        }
        layers.push(LayerDesc {
            blob,
            digest: Some(digest),
            size: Some(l.size()),
            media_type: (mt != UNSTATED).then(|| mt.to_string()),
            diff_id: config.rootfs.diff_ids.get(i).cloned(),
        });
    }
    let config_name = manifest.config().digest().to_string();
    let doc = Doc {
        origin: &origin,
        name: &config_name,
    };
    check_config(&doc, &config, layers.len())?;
    let name = docker_tags
        .get(&config_path)
        .and_then(|t| t.first().cloned())
        .or_else(|| match &sel.image {
            Some(want) => cand.names.iter().find(|n| name_matches(n, want)).cloned(),
            None => cand.names.first().cloned(),
        });
    Ok(ImageMeta {
        name,
        image_id,
        platform: platform.display(),
        format: format.to_string(),
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

fn load_manifest(store: &dyn Store, d: &Descriptor, verify: bool) -> Result<ImageManifest> {
    let bytes = read_blob(store, d, "manifest", verify)?;
    let digest = d.digest().to_string();
    let doc = Doc {
        origin: store.origin(),
        name: &digest,
    };
    let mut v = doc.value(&bytes)?;
    drop(bytes);
    let is_index = v.get("manifests").is_some()
        || v.get("mediaType")
            .and_then(Value::as_str)
            .is_some_and(|t| INDEX_TYPES.contains(&t));
    if is_index {
        return Err(Error::format(
            store.origin(),
            format!("'{digest}' is an index where a manifest was expected"),
        ));
    }
    normalize_manifest(&doc, &mut v)?;
    doc.typed(v)
}

/// The config a manifest names, and its sha256 (the image ID).
fn load_config(store: &dyn Store, d: &Descriptor, verify: bool) -> Result<(ImageConfig, String)> {
    let bytes = read_blob(store, d, "config", verify)?;
    let image_id = digest_bytes("sha256", &bytes).unwrap_or_default();
    let digest = d.digest().to_string();
    let doc = Doc {
        origin: store.origin(),
        name: &digest,
    };
    Ok((parse_config(&doc, &bytes)?, image_id))
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

    const D1: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn doc() -> Doc<'static> {
        Doc {
            origin: "i.tar",
            name: "doc.json",
        }
    }

    fn config_of(raw: &str) -> Result<ImageConfiguration> {
        let d = doc();
        let mut v = d.value(raw.as_bytes())?;
        normalize_config(&d, &mut v)?;
        d.typed(v)
    }

    fn manifest_of(raw: &str) -> Result<ImageManifest> {
        let d = doc();
        let mut v = d.value(raw.as_bytes())?;
        normalize_manifest(&d, &mut v)?;
        d.typed(v)
    }

    // See: issue 12 items 1 and 6. Each row is a quirk real tools write:
    // whether oci-spec alone rejects it, and what it means once normalised.
    #[test]
    fn config_quirks_mean_what_the_spec_means() {
        type Check = fn(&ImageConfiguration) -> bool;
        let cases: &[(&str, &str, bool, Check)] = &[
            (
                "BuildKit FROM scratch: diff_ids null",
                r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":null}}"#,
                true,
                |c| c.rootfs().diff_ids().is_empty(),
            ),
            (
                "history null",
                r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"history":null}"#,
                false,
                |c| c.history().is_none(),
            ),
            (
                "created null",
                r#"{"created":null,"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
                false,
                |c| c.created().is_none(),
            ),
            (
                "rootfs without type",
                r#"{"architecture":"amd64","os":"linux","rootfs":{"diff_ids":[]}}"#,
                true,
                |c| c.rootfs().typ() == "layers",
            ),
            (
                "rootfs null",
                r#"{"architecture":"amd64","os":"linux","rootfs":null}"#,
                true,
                |c| c.rootfs().diff_ids().is_empty(),
            ),
            (
                "os and architecture absent",
                r#"{"rootfs":{"type":"layers","diff_ids":[]}}"#,
                true,
                |c| c.os().to_string().is_empty() && c.architecture().to_string().is_empty(),
            ),
            (
                "Entrypoint and Cmd as strings",
                r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Entrypoint":"/bin/sh -c","Cmd":"serve"}}"#,
                true,
                |c| {
                    let cfg = c.config().clone().unwrap_or_default();
                    cfg.entrypoint().as_deref() == Some(&["/bin/sh -c".to_string()][..])
                        && cfg.cmd().as_deref() == Some(&["serve".to_string()][..])
                },
            ),
            (
                "null label values",
                r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"a":null,"b":"2"}}}"#,
                true,
                |c| {
                    c.labels_of_config()
                        .map(|l| l.keys().cloned().collect::<Vec<_>>())
                        == Some(vec!["b".to_string()])
                },
            ),
            (
                "Labels, Env, Entrypoint, Volumes null",
                r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":null,"Env":null,"Entrypoint":null,"Volumes":null}}"#,
                false,
                |c| c.labels_of_config().is_none(),
            ),
            (
                "null in a Go set",
                r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"ExposedPorts":{"80/tcp":null}}}"#,
                true,
                |c| {
                    c.config().as_ref().and_then(|x| x.exposed_ports().clone())
                        == Some(vec!["80/tcp".to_string()])
                },
            ),
        ];
        for (what, raw, oci_rejects, check) in cases {
            assert_eq!(
                serde_json::from_str::<ImageConfiguration>(raw).is_err(),
                *oci_rejects,
                "{what}: oci-spec alone rejects it: {oci_rejects}"
            );
            let c = config_of(raw).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(check(&c), "{what}: normalised to {c:?}");
        }
    }

    #[test]
    fn index_and_manifest_quirks_mean_what_the_spec_means() {
        let m = format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D1}","size":5"#
        );
        let index_cases: &[(&str, String, bool, usize)] = &[
            (
                "Docker 25+: manifests null",
                r#"{"schemaVersion":2,"manifests":null}"#.into(),
                true,
                0,
            ),
            ("manifests absent", r#"{"schemaVersion":2}"#.into(), true, 0),
            (
                "schemaVersion absent",
                format!(r#"{{"manifests":[{m}}}]}}"#),
                true,
                1,
            ),
            (
                "null annotation value",
                format!(r#"{{"schemaVersion":2,"manifests":[{m},"annotations":{{"a":null}}}}]}}"#),
                true,
                1,
            ),
            (
                "null annotations",
                format!(r#"{{"schemaVersion":2,"manifests":[{m},"annotations":null}}]}}"#),
                false,
                1,
            ),
            (
                "unknown media type, unknown shape",
                format!(
                    r#"{{"schemaVersion":2,"manifests":[{m}}},{{"mediaType":"application/x-future","digest":7}}]}}"#
                ),
                true,
                1,
            ),
            (
                "schema 1 manifest",
                format!(
                    r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","digest":"{D1}","size":1}}]}}"#
                ),
                false,
                0,
            ),
            (
                "media type unstated",
                format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{D1}","size":5}}]}}"#),
                true,
                1,
            ),
        ];
        for (what, raw, oci_rejects, n) in index_cases {
            assert_eq!(
                serde_json::from_str::<ImageIndex>(raw).is_err(),
                *oci_rejects,
                "{what}: oci-spec alone rejects it: {oci_rejects}"
            );
            let idx = parse_index(&doc(), raw.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(idx.manifests().len(), *n, "{what}");
        }
        let cfg = format!(
            r#""config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}}"#
        );
        for (what, raw, oci_rejects) in [
            (
                "BuildKit FROM scratch: layers null",
                format!(r#"{{"schemaVersion":2,{cfg},"layers":null}}"#),
                true,
            ),
            (
                "layers absent",
                format!(r#"{{"schemaVersion":2,{cfg}}}"#),
                true,
            ),
        ] {
            assert_eq!(
                serde_json::from_str::<ImageManifest>(&raw).is_err(),
                oci_rejects,
                "{what}"
            );
            let m = manifest_of(&raw).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(m.layers().is_empty(), "{what}");
        }
    }

    // See: issue 12 item 4.
    #[test]
    fn digests_follow_the_image_spec_grammar() {
        let ok = [
            D1.to_string(),
            format!("sha512:{}", "ab".repeat(64)),
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8".to_string(),
        ];
        for d in &ok {
            assert_eq!(check_digest(d), Ok(()), "{d}");
        }
        let bad = [
            "",
            "sha256",
            "sha256:",
            ":0123",
            "sha256:0123456789abcdef",
            "sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
            "sha256:aéééééééééééééééééééééééééééééééééééééééé",
            "sha256:../../../../etc/passwd",
            "SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ];
        for d in bad {
            assert!(check_digest(d).is_err(), "{d}");
        }
        let d = doc();
        let err = d
            .digest("rootfs.diff_ids[0]", "sha256:aé\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "'i.tar': invalid digest 'sha256:aé\\n' at rootfs.diff_ids[0] (expected 'sha256:' and 64 lowercase hex digits) in 'doc.json'"
        );
    }

    #[test]
    fn short_digests_count_characters() {
        for (d, want) in [
            (D1, "sha256:0123456789ab"),
            ("sha256:aéééééééééééééééé", "sha256:aééééééééééé"),
            ("sha256:ab", "sha256:ab"),
            ("ééééééééééééééé", "éééééééééééé"),
        ] {
            assert_eq!(short_digest(d), want, "{d}");
        }
    }

    #[test]
    fn json_values_are_counted_before_parsing() {
        for (json, max, want) in [
            ("[1,2,3]", 4, true),
            ("[1,2,3]", 3, false),
            (r#"{"a":1}"#, 3, true),
            (r#"{"a":1}"#, 2, false),
            (r#"["a,b,c,d,e,\",f,g"]"#, 2, true),
            (r#"["\\",1,2]"#, 3, false),
        ] {
            assert_eq!(
                json_values_at_most(json.as_bytes(), max),
                want,
                "{json} ≤ {max}"
            );
        }
        let d = doc();
        let many = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
        let err = d.value(many.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "'i.tar': the document holds more than {MAX_JSON_VALUES} JSON values, mlsize's limit for a metadata document in 'doc.json'"
            )
        );
    }

    // See: issue 12 item 5.
    #[test]
    fn counts_over_the_caps_name_the_limit() {
        let layer = format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D1}","size":1}}"#
        );
        let layers = vec![layer.as_str(); MAX_LAYERS + 1].join(",");
        let raw = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{D1}","size":1}},"layers":[{layers}]}}"#
        );
        assert_eq!(
            manifest_of(&raw).unwrap_err().to_string(),
            "'i.tar': layers in 'doc.json' lists 1001 layers, more than mlsize's limit of 1000 layers"
        );
        assert!(manifest_of(&raw.replacen(&format!("{layer},"), "", 1)).is_ok());
        let ids = vec![format!("\"{D1}\""); MAX_LAYERS + 1].join(",");
        let raw = format!(
            r#"{{"os":"linux","architecture":"amd64","rootfs":{{"type":"layers","diff_ids":[{ids}]}}}}"#
        );
        assert_eq!(
            config_of(&raw).unwrap_err().to_string(),
            "'i.tar': rootfs.diff_ids in 'doc.json' lists 1001 layers, more than mlsize's limit of 1000 layers"
        );
        let history = vec!["{}"; MAX_HISTORY + 1].join(",");
        let raw = format!(
            r#"{{"os":"linux","architecture":"amd64","rootfs":{{"type":"layers","diff_ids":[]}},"history":[{history}]}}"#
        );
        assert_eq!(
            config_of(&raw).unwrap_err().to_string(),
            "'i.tar': history in 'doc.json' lists 10001 history entries, more than mlsize's limit of 10000 history entries"
        );
        let descs = vec![format!(r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D1}","size":1}}"#); MAX_DESCRIPTORS + 1].join(",");
        let raw = format!(r#"{{"schemaVersion":2,"manifests":[{descs}]}}"#);
        assert_eq!(
            parse_index(&doc(), raw.as_bytes()).unwrap_err().to_string(),
            "'i.tar': manifests in 'doc.json' lists 10001 manifests, more than mlsize's limit of 10000 manifests"
        );
    }

    /// Files in memory.
    struct Mem(HashMap<String, Vec<u8>>);

    impl Store for Mem {
        fn read_doc(&self, path: &str) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(path).cloned())
        }
        fn size_of(&self, path: &str) -> Option<u64> {
            self.0.get(path).map(|f| f.len() as u64)
        }
        fn origin(&self) -> &str {
            "mem"
        }
        fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        fn sample_names(&self) -> Vec<String> {
            Vec::new()
        }
    }

    fn put(files: &mut HashMap<String, Vec<u8>>, bytes: &[u8]) -> String {
        let d = digest_bytes("sha256", bytes).unwrap();
        files.insert(blob_path(&d).unwrap(), bytes.to_vec());
        d
    }

    // See: issue 12 item 2: a digest reached twice is one candidate, with
    // both its names and the platform one of the paths states.
    #[test]
    fn a_manifest_reached_twice_is_one_candidate() {
        let mut files = HashMap::new();
        let config =
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cd = put(&mut files, config);
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":null}}"#,
            config.len()
        );
        let md = put(&mut files, manifest.as_bytes());
        let desc = |name: &str, platform: &str| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{name}"}}{platform}}}"#,
                manifest.len()
            )
        };
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{},{},{}]}}"#,
            desc("a", ""),
            desc(
                "b",
                r#","platform":{"os":"linux","architecture":"arm64","variant":"v8"}"#
            ),
            desc("a", ""),
        );
        let index = parse_index(&doc(), index.as_bytes()).unwrap();
        let store = Mem(files);
        let mut walk = Walk {
            store: &store,
            verify: true,
            walked: 0,
            indexes: HashMap::new(),
            manifests: BTreeSet::new(),
            cands: Vec::new(),
            by_digest: HashMap::new(),
        };
        walk.walk(index.manifests(), None, 0).unwrap();
        assert_eq!(walk.cands.len(), 1, "one manifest, one candidate");
        let c = &walk.cands[0];
        assert_eq!(c.names, ["a", "b"]);
        assert_eq!(
            c.platform.as_ref().map(Platform::display).as_deref(),
            Some("linux/arm64/v8"),
            "the platform the second path states"
        );
        assert_eq!(walk.walked, 3);
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
