//! Image metadata as real tools write it, and as hostile archives bend it:
//! Go `null` lists, one manifest reached twice, unknown media types, a
//! misnamed legacy config, non-ASCII digests and counts over mlsize's caps.
//! Every archive is built here, in code.

mod support;

use std::cell::RefCell;
use std::collections::HashMap;

use mlsize::source::meta::{self, Selection, Store};
use mlsize::testutil::{Built, ImageBuilder, oci_files, sha256, tar_of, write_dir};
use serde_json::{Value, json};
use support::*;

type Files = Vec<(String, Vec<u8>)>;

fn image() -> Built {
    ImageBuilder::new()
        .name("app:1")
        .layer("RUN a", |l| l.file("/a", 100))
        .layer("RUN b", |l| l.file("/b", 20))
        .build()
}

/// Adds `bytes` as a blob and returns its digest.
fn blob(files: &mut Files, bytes: Vec<u8>) -> String {
    let d = sha256(&bytes);
    let path = format!("blobs/sha256/{}", &d[7..]);
    if !files.iter().any(|f| f.0 == path) {
        files.push((path, bytes));
    }
    d
}

fn replace(files: &mut Files, name: &str, bytes: Vec<u8>) {
    files.retain(|f| f.0 != name);
    files.push((name.to_string(), bytes));
}

fn to_vec(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// A manifest descriptor for an index.
fn manifest_desc(manifest: &[u8], digest: &str, name: Option<&str>) -> Value {
    let mut d = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": manifest.len(),
    });
    if let Some(n) = name {
        d["annotations"] = json!({"org.opencontainers.image.ref.name": n});
    }
    d
}

fn index(manifests: Vec<Value>) -> Vec<u8> {
    to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
}

/// Writes an archive (a tar of `files`) and returns its path.
fn archive(dir: &tempfile::TempDir, name: &str, files: &Files) -> String {
    write(dir.path(), name, &tar_of(files))
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = mlsize().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn warnings(v: &Value) -> Vec<String> {
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

/// A FROM-scratch image as BuildKit exports it: `"layers": null` in the
/// manifest, `diff_ids`, `history` and `created` null in the config.
fn scratch_oci() -> (Files, Vec<u8>, String) {
    let config = to_vec(&json!({
        "architecture": "amd64", "os": "linux", "created": null,
        "config": {"Env": null, "Labels": null},
        "rootfs": {"type": "layers", "diff_ids": null},
        "history": null,
    }));
    let mut files = Vec::new();
    let cd = blob(&mut files, config.clone());
    let manifest = to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": null,
    }));
    let md = blob(&mut files, manifest.clone());
    files.push((
        "index.json".into(),
        index(vec![manifest_desc(&manifest, &md, Some("latest"))]),
    ));
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    (files, config, cd)
}

// See: issue 12 item 1 (Go writes nil slices and maps as `null`).
#[test]
fn go_null_lists_read_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let b = image();
    let layers: Vec<String> = b
        .layers
        .iter()
        .map(|l| format!("blobs/sha256/{}", &l.digest[7..]))
        .collect();

    // Docker 25+ `docker save` of a single-platform image: `"manifests": null`
    // in index.json, the image named in manifest.json.
    let mut docker25 = oci_files(&[(&b, true)], true);
    replace(
        &mut docker25,
        "index.json",
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#.to_vec(),
    );
    docker25.push((
        "manifest.json".into(),
        to_vec(&json!([{
            "Config": format!("blobs/sha256/{}", &b.config_digest[7..]),
            "RepoTags": ["app:1"],
            "Layers": layers,
        }])),
    ));
    let p = archive(&dir, "docker25.tar", &docker25);
    let v = json(&["analyze", &p]);
    assert_eq!(
        u(&v, "/image/visible_bytes"),
        120,
        "read through manifest.json"
    );
    assert_eq!(v["image"]["name"], "app:1");
    assert_eq!(v["image"]["format"], "docker-archive");

    // Legacy docker-save with `"RepoTags": null` (an untagged image).
    let mut untagged = Vec::new();
    let cfg = format!("{}.json", &b.config_digest[7..]);
    untagged.push((cfg.clone(), b.config.clone()));
    let mut paths = Vec::new();
    for l in &b.layers {
        let p = format!("{}/layer.tar", &l.diff_id[7..]);
        untagged.push((p.clone(), l.blob.clone()));
        paths.push(p);
    }
    untagged.push((
        "manifest.json".into(),
        to_vec(&json!([{"Config": cfg, "RepoTags": null, "Layers": paths}])),
    ));
    let p = archive(&dir, "untagged.tar", &untagged);
    let v = json(&["analyze", &p]);
    assert_eq!(u(&v, "/image/visible_bytes"), 120, "RepoTags null");
    assert_eq!(
        v["image"]["name"],
        Value::Null,
        "an untagged image has no name"
    );

    // `"Layers": null` with a config of no layers: a valid, empty image.
    let scratch_cfg = to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": null}, "history": null,
    }));
    let cfg = format!("{}.json", &sha256(&scratch_cfg)[7..]);
    let empty = vec![
        (cfg.clone(), scratch_cfg),
        (
            "manifest.json".into(),
            to_vec(&json!([{"Config": cfg, "RepoTags": ["scratch:1"], "Layers": null}])),
        ),
    ];
    let p = archive(&dir, "layers-null.tar", &empty);
    let v = json(&["analyze", &p]);
    assert_eq!(u(&v, "/image/layer_count"), 0, "Layers null is no layer");
    assert_eq!(u(&v, "/image/visible_bytes"), 0);
}

// See: issue 12 item 1: a zero-layer image is a valid (empty) report, as an
// OCI layout, an oci-archive and a gzip-compressed one, in every format.
#[test]
fn from_scratch_export_is_an_empty_report() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _, _) = scratch_oci();
    let layout = dir.path().join("scratch");
    write_dir(&layout, &files);
    let tar = tar_of(&files);
    let inputs = [
        layout.to_str().unwrap().to_string(),
        write(dir.path(), "scratch.tar", &tar),
        write(dir.path(), "scratch.tar.gz", &gzip(&tar)),
    ];
    for input in &inputs {
        let v = json(&["analyze", input]);
        assert_eq!(u(&v, "/image/layer_count"), 0, "{input}: no layers");
        assert_eq!(u(&v, "/image/content_bytes"), 0, "{input}");
        assert_eq!(v["layers"], json!([]), "{input}");
        assert_eq!(v["history"], json!([]), "{input}: history null");
        assert_eq!(v["image"]["platform"], "linux/amd64", "{input}");
        for format in ["table", "markdown"] {
            let (code, out, err) = run(&["analyze", input, "--format", format]);
            assert_eq!(code, Some(0), "{input} as {format}: {err}");
            assert!(!out.is_empty(), "{input} as {format} prints a report");
        }
    }
}

// See: issue 12 item 6: `null` values inside annotation maps.
#[test]
fn null_annotation_values_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let b = image();
    let mut files = oci_files(&[(&b, true)], false);
    let mut d = manifest_desc(&b.manifest, &b.manifest_digest, None);
    d["annotations"] = json!({"org.opencontainers.image.ref.name": "1", "org.example.note": null});
    d["platform"] = json!({"os": "linux", "architecture": "amd64", "os.features": null});
    replace(&mut files, "index.json", index(vec![d]));
    let layout = dir.path().join("l");
    write_dir(&layout, &files);
    let v = json(&["analyze", layout.to_str().unwrap()]);
    assert_eq!(u(&v, "/image/visible_bytes"), 120);
}

// See: issue 12 item 2: one manifest reached more than once is one image.
#[test]
fn one_manifest_reached_twice_is_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let b = image();
    let base = oci_files(&[(&b, true)], false);
    let with_platform = |mut d: Value| {
        d["platform"] = json!({"os": "linux", "architecture": "amd64"});
        d
    };

    // Two ref.names for one digest, once with and once without a platform.
    let mut two_names = base.clone();
    replace(
        &mut two_names,
        "index.json",
        index(vec![
            with_platform(manifest_desc(&b.manifest, &b.manifest_digest, Some("1"))),
            manifest_desc(&b.manifest, &b.manifest_digest, Some("latest")),
        ]),
    );

    // Through a nested OCI index and through a Docker manifest list.
    let mut nested = base.clone();
    let inner = index(vec![with_platform(manifest_desc(
        &b.manifest,
        &b.manifest_digest,
        None,
    ))]);
    let inner_d = blob(&mut nested, inner.clone());
    let list = to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [with_platform(manifest_desc(&b.manifest, &b.manifest_digest, None))],
    }));
    let list_d = blob(&mut nested, list.clone());
    replace(
        &mut nested,
        "index.json",
        index(vec![
            json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": inner_d, "size": inner.len(),
                   "annotations": {"org.opencontainers.image.ref.name": "1"}}),
            json!({"mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "digest": list_d, "size": list.len(),
                   "annotations": {"org.opencontainers.image.ref.name": "latest"}}),
        ]),
    );

    for (what, files) in [("two names", &two_names), ("nested", &nested)] {
        let layout = dir.path().join(what);
        write_dir(&layout, files);
        let l = layout.to_str().unwrap();
        let v = json(&["analyze", l]);
        assert_eq!(u(&v, "/image/visible_bytes"), 120, "{what}: one image");
        assert_eq!(v["image"]["platform"], "linux/amd64", "{what}");
        let v = json(&["analyze", l, "--image", "latest"]);
        assert_eq!(
            v["image"]["name"], "latest",
            "{what}: either name selects it"
        );
        let v = json(&["analyze", l, "--image", "1"]);
        assert_eq!(v["image"]["name"], "1", "{what}");
    }

    // Two different images are still a choice to make.
    let other = ImageBuilder::new()
        .name("other:2")
        .layer("RUN c", |l| l.file("/c", 7))
        .build();
    let two = oci_files(&[(&b, true), (&other, true)], false);
    let layout = dir.path().join("two");
    write_dir(&layout, &two);
    let err = fails(&["analyze", layout.to_str().unwrap()]);
    assert!(
        err.contains("holds 2 images") && err.contains("--image"),
        "{err}"
    );
}

// See: issue 12 item 2: image-index.md, "An encountered mediaType that is
// unknown to the implementation MUST be ignored".
#[test]
fn unknown_media_types_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let b = image();
    let mut files = oci_files(&[(&b, true)], false);
    replace(
        &mut files,
        "index.json",
        index(vec![
            json!({"mediaType": "application/vnd.example.future.v9+json", "digest": {"v9": "tree"}, "size": "large"}),
            json!({"mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws",
                   "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "size": 10,
                   "annotations": {"org.opencontainers.image.ref.name": "schema1"}}),
            manifest_desc(&b.manifest, &b.manifest_digest, Some("1")),
        ]),
    );
    let layout = dir.path().join("l");
    write_dir(&layout, &files);
    let v = json(&["analyze", layout.to_str().unwrap()]);
    assert_eq!(u(&v, "/image/visible_bytes"), 120);
    assert_eq!(v["image"]["name"], "1", "the only image mlsize can read");
}

// See: issue 12 item 3: the file name of a legacy config is not a descriptor.
#[test]
fn misnamed_legacy_config_warns_once_with_both_digests() {
    let dir = tempfile::tempdir().unwrap();
    let b = image();
    let named = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let mut files = Vec::new();
    let cfg = format!("{}.json", &named[7..]);
    files.push((cfg.clone(), b.config.clone()));
    let mut paths = Vec::new();
    for l in &b.layers {
        let p = format!("{}/layer.tar", &l.diff_id[7..]);
        files.push((p.clone(), l.blob.clone()));
        paths.push(p);
    }
    files.push((
        "manifest.json".into(),
        to_vec(&json!([{"Config": cfg, "RepoTags": ["app:1"], "Layers": paths}])),
    ));
    let p = archive(&dir, "renamed.tar", &files);
    for extra in [None, Some("--no-verify")] {
        let mut args = vec!["analyze", p.as_str()];
        args.extend(extra);
        let v = json(&args);
        assert_eq!(u(&v, "/image/visible_bytes"), 120, "{extra:?}: loads");
        assert_eq!(
            v["image"]["id"], b.config_digest,
            "{extra:?}: the image ID is the computed one"
        );
        let about: Vec<String> = warnings(&v)
            .into_iter()
            .filter(|w| w.contains(&b.config_digest))
            .collect();
        assert_eq!(about.len(), 1, "{extra:?}: warned once: {about:?}");
        assert!(about[0].contains(named), "both digests: {}", about[0]);
        args.extend(["--format", "table"]);
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(
            err.matches(named).count(),
            1,
            "one stderr line names it: {err}"
        );
    }
}

/// A docker-save archive whose config's first diff_id is `diff_id`.
fn docker_with_diff_id(diff_id: &str) -> Files {
    let b = image();
    let mut config: Value = serde_json::from_slice(&b.config).unwrap();
    config["rootfs"]["diff_ids"][0] = diff_id.into();
    let config = to_vec(&config);
    let cfg = format!("{}.json", &sha256(&config)[7..]);
    let mut files = vec![(cfg.clone(), config)];
    let mut paths = Vec::new();
    for l in &b.layers {
        let p = format!("{}/layer.tar", &l.diff_id[7..]);
        files.push((p.clone(), l.blob.clone()));
        paths.push(p);
    }
    files.push((
        "manifest.json".into(),
        to_vec(&json!([{"Config": cfg, "RepoTags": ["app:1"], "Layers": paths}])),
    ));
    files
}

// See: issue 12 item 4: a non-ASCII diff_id panicked cutting the short digest.
#[test]
fn non_ascii_diff_id_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = format!("sha256:a{}", "é".repeat(40));
    let cases = [
        bad.clone(),
        format!("sha256:{}", "ab".repeat(31) + "\u{2603}"),
        "sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789AB".to_string(),
        "sha512:0123".to_string(),
    ];
    for (i, diff_id) in cases.iter().enumerate() {
        let p = archive(&dir, &format!("d{i}.tar"), &docker_with_diff_id(diff_id));
        for extra in [None, Some("--no-verify")] {
            let mut args = vec!["analyze", p.as_str()];
            args.extend(extra);
            let err = fails(&args);
            assert!(
                err.contains("invalid digest") && err.contains("rootfs.diff_ids[0]"),
                "{diff_id} {extra:?}: {err}"
            );
        }
    }
}

/// A layout whose one manifest lists `n` layers (blobs absent) and whose
/// config lists `n` diff_ids and `history` entries.
fn many_layers(n: usize, history: usize) -> Files {
    let d = |i: usize| format!("sha256:{i:064x}");
    let config = to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": (0..n).map(d).collect::<Vec<_>>()},
        "history": (0..history).map(|_| json!({"created_by": "RUN x"})).collect::<Vec<_>>(),
    }));
    let mut files = Vec::new();
    let cd = blob(&mut files, config.clone());
    let manifest = to_vec(&json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": (0..n).map(|i| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d(i), "size": 1024})).collect::<Vec<_>>(),
    }));
    let md = blob(&mut files, manifest.clone());
    files.push((
        "index.json".into(),
        index(vec![manifest_desc(&manifest, &md, Some("1"))]),
    ));
    files
}

// See: issue 12 item 5: counts over the documented caps are one-line errors.
#[test]
fn counts_over_the_caps_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let layers = many_layers(meta::MAX_LAYERS + 1, 0);
    let p = archive(&dir, "layers.tar", &layers);
    let err = fails(&["analyze", &p]);
    assert!(
        err.contains(&format!("{} layers", meta::MAX_LAYERS + 1))
            && err.contains(&format!("limit of {} layers", meta::MAX_LAYERS)),
        "{err}"
    );

    let history = many_layers(0, meta::MAX_HISTORY + 1);
    let p = archive(&dir, "history.tar", &history);
    let err = fails(&["analyze", &p]);
    assert!(
        err.contains(&format!("limit of {} history entries", meta::MAX_HISTORY)),
        "{err}"
    );

    let b = image();
    let mut wide = oci_files(&[(&b, true)], false);
    let descs: Vec<Value> = (0..=meta::MAX_DESCRIPTORS)
        .map(|i| manifest_desc(&b.manifest, &b.manifest_digest, Some(&format!("t{i}"))))
        .collect();
    replace(&mut wide, "index.json", index(descs));
    let p = archive(&dir, "wide.tar", &wide);
    let err = fails(&["analyze", &p]);
    assert!(
        err.contains(&format!("limit of {} manifests", meta::MAX_DESCRIPTORS)),
        "{err}"
    );

    let paths: Vec<String> = (0..=meta::MAX_LAYERS)
        .map(|i| format!("{i}/layer.tar"))
        .collect();
    let docker = vec![(
        "manifest.json".into(),
        to_vec(&json!([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": paths}])),
    )];
    let p = archive(&dir, "docker-layers.tar", &docker);
    let err = fails(&["analyze", &p]);
    assert!(
        err.contains(&format!("limit of {} layers", meta::MAX_LAYERS)),
        "{err}"
    );
}

/// An in-memory store that counts reads.
struct Counting {
    files: HashMap<String, Vec<u8>>,
    reads: RefCell<HashMap<String, usize>>,
}

impl Store for Counting {
    fn read_doc(&self, path: &str) -> mlsize::Result<Option<Vec<u8>>> {
        *self.reads.borrow_mut().entry(path.into()).or_default() += 1;
        Ok(self.files.get(path).cloned())
    }
    fn size_of(&self, path: &str) -> Option<u64> {
        self.files.get(path).map(|f| f.len() as u64)
    }
    fn origin(&self) -> &str {
        "mem"
    }
    fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
    fn sample_names(&self) -> Vec<String> {
        Vec::new()
    }
}

// See: issue 12 item 5: an index listing 1 000 copies of one large config
// kept 1 000 parsed copies (1.06 GB for a 1 MB config).
#[test]
fn many_copies_of_one_config_are_read_once() {
    let b = ImageBuilder::new()
        .layer("RUN a", |l| l.file("/a", 10))
        .build();
    let mut config: Value = serde_json::from_slice(&b.config).unwrap();
    config["config"]["Labels"] = json!({"pad": "x".repeat(100_000)});
    let config = to_vec(&config);
    let mut files: Files = Vec::new();
    let cd = blob(&mut files, config.clone());
    let mut descs = Vec::new();
    for i in 0..1_000 {
        // 1 000 manifests (no platform in the index) of one config, plus
        // each of them listed twice.
        let manifest = to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": b.layers[0].digest, "size": b.layers[0].blob.len()}],
            "annotations": {"copy": i.to_string()},
        }));
        let md = blob(&mut files, manifest.clone());
        descs.push(manifest_desc(&manifest, &md, Some("latest")));
        descs.push(manifest_desc(&manifest, &md, Some("latest")));
    }
    files.push(("index.json".into(), index(descs)));
    let store = Counting {
        files: files.into_iter().collect(),
        reads: RefCell::default(),
    };
    for verify in [true, false] {
        store.reads.borrow_mut().clear();
        let sel = Selection {
            image: None,
            platform: Some(meta::Platform::parse("linux/amd64").unwrap()),
            verify,
        };
        let m = meta::resolve(&store, &sel).unwrap();
        assert_eq!(m.layers.len(), 1);
        let reads = store.reads.borrow();
        let config_reads = reads[&format!("blobs/sha256/{}", &cd[7..])];
        assert!(
            config_reads <= 2,
            "verify {verify}: the config is read {config_reads} times"
        );
        let most = reads.values().max().copied().unwrap_or(0);
        assert!(
            most <= 2,
            "verify {verify}: no blob is read more than twice ({most})"
        );
    }
}
