//! Bad input: one-line errors naming the file and layer, exit code 2, no panic.

mod support;

use mlsize::layer::Compression;
use mlsize::testutil::{ImageBuilder, tar_of};
use support::*;

fn small() -> ImageBuilder {
    ImageBuilder::new()
        .layer("ADD x /", |l| l.file("/a", 5000).file("/b", 3000))
        .layer("RUN y", |l| l.file("/c", 4000))
}

/// The path of the first layer blob of an OCI layout.
fn first_layer_blob(dir: &std::path::Path, img: &ImageBuilder) -> std::path::PathBuf {
    let b = img.build();
    dir.join("blobs/sha256").join(&b.layers[0].digest[7..])
}

#[test]
fn tampered_blob_is_a_digest_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let img = small().compression(Compression::None);
    let layout = dir.path().join("l");
    img.oci_layout(&layout);
    let blob = first_layer_blob(&layout, &img);
    let mut bytes = std::fs::read(&blob).unwrap();
    // Flip a byte of file content, keeping the tar valid.
    bytes[600] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let err = fails(&["analyze", layout.to_str().unwrap()]);
    assert!(
        err.contains("layer 1/2")
            && err.contains("digest mismatch")
            && err.contains("expected sha256:"),
        "{err}"
    );
    // --no-verify is the only way past it.
    let v = json(&["analyze", layout.to_str().unwrap(), "--no-verify"]);
    assert_eq!(v["image"]["verified"], serde_json::Value::Bool(false));
}

#[test]
fn tampered_docker_layer_fails_its_diff_id() {
    let dir = tempfile::tempdir().unwrap();
    let img = small().compression(Compression::None);
    let mut tar = img.docker_archive();
    let b = img.build();
    // Find the layer's bytes inside the outer tar and flip one.
    let pos = tar
        .windows(64)
        .position(|w| w == &b.layers[0].tar[600..664])
        .unwrap();
    tar[pos] ^= 0xff;
    let path = write(dir.path(), "d.tar", &tar);
    let err = fails(&["analyze", &path]);
    assert!(
        err.contains("layer 1/2") && err.contains("diff_id digest mismatch"),
        "{err}"
    );
}

#[test]
fn missing_blob_names_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let img = small();
    let layout = dir.path().join("l");
    img.oci_layout(&layout);
    std::fs::remove_file(first_layer_blob(&layout, &img)).unwrap();
    let err = fails(&["analyze", layout.to_str().unwrap()]);
    assert!(
        err.contains("layer 1/2") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn truncated_and_corrupt_layers() {
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let img = small().compression(c);
        let layout = dir.path().join("l");
        img.oci_layout(&layout);
        let blob = first_layer_blob(&layout, &img);
        let bytes = std::fs::read(&blob).unwrap();
        // Truncated.
        std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
        let err = fails(&["analyze", layout.to_str().unwrap()]);
        assert!(
            err.contains("layer 1/2 (sha256:") && err.contains("truncated"),
            "{}: {err}",
            c.name()
        );
        let err = fails(&["analyze", layout.to_str().unwrap(), "--no-verify"]);
        assert!(
            err.contains("layer 1/2") && err.contains("truncated"),
            "{} --no-verify: {err}",
            c.name()
        );
        if c == Compression::None {
            continue;
        }
        // Corrupt in the middle.
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        for b in &mut bad[mid..mid + 16] {
            *b ^= 0x5a;
        }
        std::fs::write(&blob, &bad).unwrap();
        let err = fails(&["analyze", layout.to_str().unwrap()]);
        assert!(err.contains("layer 1/2"), "{}: {err}", c.name());
        if c == Compression::Gzip {
            // gzip's CRC catches it even unverified (zstd frames may carry no checksum).
            let err = fails(&["analyze", layout.to_str().unwrap(), "--no-verify"]);
            assert!(err.contains("layer 1/2") && err.contains("gzip"), "{err}");
        }
        // Trailing garbage after the compressed stream.
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"garbage after the stream");
        std::fs::write(&blob, &trailing).unwrap();
        let err = fails(&["analyze", layout.to_str().unwrap(), "--no-verify"]);
        assert!(err.contains("layer 1/2"), "{}: {err}", c.name());
    }
}

#[test]
fn truncated_outer_archives() {
    let dir = tempfile::tempdir().unwrap();
    let tar = small().oci_archive();
    let cut = write(dir.path(), "cut.tar", &tar[..tar.len() * 2 / 3]);
    let err = fails(&["analyze", &cut]);
    assert!(err.contains("cut.tar"), "{err}");
    // A docker-archive of uncompressed layers is indexed from its headers
    // (seeking over data) when content hashing allows it: a cut anywhere must
    // still fail, verified or not.
    let plain = small().compression(Compression::None).docker_archive();
    for (k, frac) in [(1, 4), (1, 2), (2, 3), (9, 10)].into_iter().enumerate() {
        let cut = write(
            dir.path(),
            &format!("plain-cut{k}.tar"),
            &plain[..plain.len() * frac.0 / frac.1],
        );
        for extra in [&[][..], &["--no-verify"][..]] {
            let mut args = vec!["analyze", cut.as_str()];
            args.extend_from_slice(extra);
            let err = fails(&args);
            assert!(
                err.contains(&format!("plain-cut{k}.tar")),
                "{extra:?}: {err}"
            );
        }
    }
    let docker = small().docker_archive();
    for (name, packed) in [
        ("cut.tar.gz", gzip(&docker)),
        ("cut.tar.xz", xz(&docker)),
        ("cut.tar.bz2", bzip2(&docker)),
    ] {
        let cut = write(dir.path(), name, &packed[..packed.len() / 2]);
        let err = fails(&["analyze", &cut]);
        assert!(err.contains(name) && err.contains("truncated"), "{err}");
    }
}

#[test]
fn inputs_that_are_not_images() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = tar_of(&[
        ("etc/passwd".into(), b"root:x:0:0".to_vec()),
        ("usr/bin/sh".into(), vec![1; 10]),
    ]);
    let p = write(dir.path(), "rootfs.tar", &rootfs);
    let err = fails(&["analyze", &p]);
    assert!(
        err.contains("root filesystem") && err.contains("docker save"),
        "{err}"
    );
    let p = write(dir.path(), "empty.tar", &[0u8; 1024]);
    assert!(fails(&["analyze", &p]).contains("empty"));
    let p = write(dir.path(), "zero", b"");
    assert!(fails(&["analyze", &p]).contains("empty"));
    let p = write(
        dir.path(),
        "text.txt",
        &b"hello, this is not a tar file at all".repeat(40),
    );
    assert!(fails(&["analyze", &p]).contains("not an image archive"));
    assert!(fails(&["analyze", "/nonexistent/image.tar"]).contains("/nonexistent/image.tar"));
    let d = dir.path().join("emptydir");
    std::fs::create_dir(&d).unwrap();
    assert_eq!(
        fails(&["analyze", d.to_str().unwrap()]).trim_end(),
        format!(
            "mlsize: '{}' is not an image archive: the directory has neither index.json (an OCI image layout has oci-layout, index.json and blobs/) nor manifest.json (as 'skopeo copy IMAGE dir:DIR' writes)",
            d.display()
        )
    );
}

#[test]
fn broken_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let bad_json = tar_of(&[("manifest.json".into(), b"[{\"Config\": ".to_vec())]);
    let p = write(dir.path(), "badjson.tar", &bad_json);
    let err = fails(&["analyze", &p]);
    assert!(err.contains("invalid JSON in 'manifest.json'"), "{err}");
    let missing_cfg = tar_of(&[(
        "manifest.json".into(),
        br#"[{"Config":"abc.json","RepoTags":["a:1"],"Layers":[]}]"#.to_vec(),
    )]);
    let p = write(dir.path(), "nocfg.tar", &missing_cfg);
    assert!(fails(&["analyze", &p]).contains("config 'abc.json' is missing"));
    // diff_ids count differs from the layers.
    let cfg =
        br#"{"os":"linux","architecture":"amd64","rootfs":{"diff_ids":["sha256:00"]}}"#.to_vec();
    let two = tar_of(&[
        ("c.json".into(), cfg),
        (
            "manifest.json".into(),
            br#"[{"Config":"c.json","Layers":[]}]"#.to_vec(),
        ),
    ]);
    let p = write(dir.path(), "count.tar", &two);
    assert!(fails(&["analyze", &p]).contains("1 diff_ids but the manifest has 0 layers"));
    // A hostile digest never names a file outside the layout.
    let layout = dir.path().join("hostile");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(
        layout.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../../etc/passwd","size":1}]}"#,
    )
    .unwrap();
    assert!(fails(&["analyze", layout.to_str().unwrap()]).contains("invalid digest"));
}

// See: issue 12 (these ran against a file that did not exist, so exit 2 was
// guaranteed whatever the validation did).
#[test]
fn usage_errors_exit_2() {
    let out = mlsize().args(["analyze"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "ok.tar",
        &ImageBuilder::new()
            .layer("RUN x", |l| l.file("/a", 10))
            .docker_archive(),
    );
    json(&["analyze", &p]);
    let err = fails(&["analyze", &p, "--platform", "linux"]);
    assert!(
        err.contains("'linux'"),
        "the platform is what is wrong: {err}"
    );
    let err = fails(&["analyze", &p, "-j", "0"]);
    assert_eq!(err, "mlsize: -j/--threads must be at least 1\n");
    let out = mlsize().args(["--version"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn max_uncompressed_stops_a_bomb() {
    let dir = tempfile::tempdir().unwrap();
    let img = ImageBuilder::new().layer("RUN big", |l| l.file_bytes("/zeros", &vec![0u8; 4 << 20]));
    let p = write(dir.path(), "bomb.tar", &img.oci_archive());
    let err = fails(&["analyze", &p, "--max-uncompressed", "1MiB"]);
    assert!(
        err.contains("layer 1/1") && err.contains("--max-uncompressed"),
        "{err}"
    );
    let v = json(&["analyze", &p, "--max-uncompressed", "8MiB"]);
    assert_eq!(u(&v, "/image/visible_bytes"), 4 << 20);
}

/// A gzip layer blob whose tar holds one file of `gib` GiB of zeros, made of
/// repeated gzip members (cheap to build, slow to read: what a big sibling
/// layer is to an early error).
fn big_zero_layer(gib: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path("zeros").unwrap();
    h.set_size(gib << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = gzip(h.as_bytes());
    let chunk = gzip(&vec![0u8; 64 << 20]);
    for _ in 0..(gib * 16) {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&gzip(&[0u8; 1024]));
    out
}

// See: issue 12 (a truncated 50 kB layer was reported after 19.9 s because a
// 24 GB sibling layer was read to the end first).
#[test]
fn issue_12_first_error_stops_the_other_layers() {
    let dir = tempfile::tempdir().unwrap();
    let img = ImageBuilder::new()
        .compression(Compression::Gzip)
        .layer("ADD big /", |l| l.file("/placeholder", 10))
        .layer("RUN small", |l| l.file_seeded("/c", 200_000, 3));
    let layout = dir.path().join("l");
    img.oci_layout(&layout);
    let built = img.build();
    let blob = |k: usize| {
        layout
            .join("blobs/sha256")
            .join(&built.layers[k].digest[7..])
    };
    std::fs::write(blob(0), big_zero_layer(2)).unwrap();
    let run = || {
        let start = std::time::Instant::now();
        let out = mlsize()
            .args([
                "analyze",
                layout.to_str().unwrap(),
                "--no-verify",
                "-j",
                "2",
            ])
            .output()
            .unwrap();
        (start.elapsed(), out)
    };
    // Both layers intact: the big one is read to its end (whatever it reports).
    let (whole, _) = run();
    let small = std::fs::read(blob(1)).unwrap();
    std::fs::write(blob(1), &small[..small.len() / 2]).unwrap();
    let (early, out) = run();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("layer 2/2") && err.contains("truncated"),
        "the error that stopped the others is the one reported: {err}"
    );
    assert!(
        early * 3 < whole,
        "the truncated layer is reported without reading the 2 GiB one: {early:?} vs {whole:?}"
    );
}

#[test]
fn dir_layouts_that_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let img = small().compression(Compression::None);
    let built = img.build();
    let d = dir.path().join("d");
    dir_layout(&built, &d);
    let p = d.to_str().unwrap();

    std::fs::write(d.join("version"), "Directory Transport Version: 2.0\n").unwrap();
    assert_eq!(
        fails(&["analyze", p]).trim_end(),
        format!(
            "mlsize: '{p}' is not an image archive: its 'version' says 'Directory Transport Version: 2.0', not 'Directory Transport Version: 1.x' (a layout that 'skopeo copy IMAGE dir:DIR' writes)"
        ),
        "an unknown layout version is refused"
    );
    std::fs::write(d.join("version"), "Directory Transport Version: 1.1\n").unwrap();

    let hex = &built.layers[1].digest[7..];
    let mut blob = built.layers[1].blob.clone();
    // File content, past the first header: the tar stays valid.
    blob[600] ^= 0xff;
    std::fs::write(d.join(hex), &blob).unwrap();
    let err = fails(&["analyze", p]);
    assert!(
        err.contains("layer 2/2") && err.contains("digest mismatch"),
        "a dir: layout is verified like an OCI layout: {err}"
    );
    std::fs::remove_file(d.join(hex)).unwrap();
    assert_eq!(
        fails(&["analyze", p]).trim_end(),
        format!(
            "mlsize: '{p}': layer 2/2 (sha256:{}): blob '{hex}' is missing from the archive",
            &hex[..12]
        ),
        "a missing layer names its file"
    );
    std::fs::remove_file(d.join(&built.config_digest[7..])).unwrap();
    assert_eq!(
        fails(&["analyze", p]).trim_end(),
        format!(
            "mlsize: '{p}': config blob '{}' is missing from the archive",
            &built.config_digest[7..]
        ),
        "a missing config names its file, not an OCI layout path"
    );

    std::fs::write(d.join("manifest.json"), br#"[{"Config": "c.json"}]"#).unwrap();
    assert_eq!(
        fails(&["analyze", p]).trim_end(),
        format!(
            "mlsize: '{p}' is not an image archive: its manifest.json is a docker-save list: an unpacked 'docker save' archive; pack it again with 'tar -C {p} -cf image.tar .'"
        )
    );
    std::fs::write(d.join("manifest.json"), b"{not json").unwrap();
    assert!(
        fails(&["analyze", p]).contains("invalid JSON in 'manifest.json'"),
        "broken manifest.json"
    );
}
