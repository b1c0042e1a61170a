//! The layer cache (issue 14): a warm run gives the same report as a cold
//! one, byte for byte, under every option; damaged, foreign and concurrent
//! entries never change a figure; eviction and `mlsize cache`.

mod support;

use std::path::{Path, PathBuf};

use mlsize::layer::Compression;
use mlsize::testutil::ImageBuilder;
use serde_json::Value;
use support::*;

/// Runs mlsize with `cache` as its cache directory (`None`: `--no-cache`);
/// exit code, stdout, stderr.
fn run(cache: Option<&Path>, cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = mlsize();
    c.current_dir(cwd).args(args);
    match cache {
        Some(d) => c.env("MLSIZE_CACHE_DIR", d),
        None => c.arg("--no-cache"),
    };
    let out = c.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The output without what is about the cache itself: `image.cache` in the
/// JSON of `analyze` and `check`, `old.cache` and `new.cache` in `diff`'s,
/// `baseline_cache` in `check --baseline`'s; the `cache:` lines of the
/// table and markdown (with the blank line that ends such a paragraph).
fn without_cache_notes(out: &str) -> String {
    if let Ok(mut v) = serde_json::from_str::<Value>(out) {
        for side in ["image", "old", "new"] {
            if let Some(im) = v.get_mut(side).and_then(Value::as_object_mut) {
                im.remove("cache");
            }
        }
        if let Some(o) = v.as_object_mut() {
            o.remove("baseline_cache");
        }
        return serde_json::to_string_pretty(&v).unwrap();
    }
    let mut kept = String::new();
    let mut after_note = false;
    for l in out.lines() {
        let note = l.starts_with("cache: ");
        let drop = note || (after_note && l.is_empty());
        if !drop {
            kept.push_str(l);
            kept.push('\n');
        }
        after_note = note;
    }
    kept
}

fn cache_of(out: &str) -> Value {
    let v: Value = checked(serde_json::from_str(out).unwrap());
    v["image"]["cache"].clone()
}

/// Every image the test reads, as (file name, how to write it).
fn images(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| out.push(write(dir, name, &bytes));
    let naive = mlsize::testutil::naive_ml(1);
    let optimized = mlsize::testutil::optimized_ml(1);
    add("naive.docker.tar", naive.docker_archive());
    add("naive.docker-oci.tar", naive.docker_oci_archive());
    add("naive.oci-gzip.tar", naive.oci_archive());
    add(
        "naive.oci-zstd.tar",
        naive.clone().compression(Compression::Zstd).oci_archive(),
    );
    add("naive.docker.tar.gz", gzip(&naive.docker_archive()));
    add("naive.oci.tar.zst", zstd(&naive.oci_archive()));
    add("optimized.docker.tar", optimized.docker_archive());
    add(
        "optimized.oci-gzip.tar",
        optimized
            .clone()
            .compression(Compression::Gzip)
            .oci_archive(),
    );
    add("sink.docker.tar", kitchen_sink().docker_archive());
    add("sink.oci.tar", kitchen_sink().oci_archive());
    let layout = dir.join("naive-layout");
    naive.oci_layout(&layout);
    out.push(layout.to_str().unwrap().to_string());
    let dirt = dir.join("naive-dir");
    dir_layout(&naive.build(), &dirt);
    out.push(dirt.to_str().unwrap().to_string());
    // The committed real-producer fixtures.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for f in [
        "real/real-docker.tar",
        "real/real-oci-gzip.tar",
        "real/real-oci-zstd.tar",
        "real/real-docker.tar.gz",
        "real/oci-dir",
        "producers/skopeo-dir",
        "producers/skopeo-dir-v2s1",
        "producers/skopeo-dir-v2s2-gz",
        "producers/podman-docker-dir",
    ] {
        let p = root.join(f);
        if p.exists() {
            out.push(p.to_str().unwrap().to_string());
        }
    }
    out
}

/// Cold (`--no-cache`), then the first run with the cache (which fills it),
/// then the warm run: the three give the same output apart from the cache
/// notes, and the warm one read fewer layers.
fn assert_same(cache: &Path, cwd: &Path, args: &[&str]) -> (String, String) {
    let (c0, cold, e0) = run(None, cwd, args);
    let (c1, first, e1) = run(Some(cache), cwd, args);
    let (c2, warm, e2) = run(Some(cache), cwd, args);
    assert_eq!(
        (c0, c1, c2),
        (c0, c0, c0),
        "{args:?}: exit codes\n{e0}{e1}{e2}"
    );
    assert_eq!(e0, e1, "{args:?}: the same warnings with the cache");
    assert_eq!(e0, e2, "{args:?}: the same warnings from the cache");
    assert_eq!(
        without_cache_notes(&cold),
        without_cache_notes(&first),
        "{args:?}: filling the cache changes nothing"
    );
    assert_eq!(
        without_cache_notes(&cold),
        without_cache_notes(&warm),
        "{args:?}: a warm report is the cold one"
    );
    (first, warm)
}

// See: #14
#[test]
fn issue_14_warm_reports_are_byte_identical_on_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "r.toml",
        b"[[rule]]\nname = \"app\"\nglobs = [\"/app/**\", \"/usr/lib/**\"]\nposition = 1\n",
    );
    let imgs = images(dir.path());
    let base = &imgs[0];
    for img in &imgs {
        let cache = fresh_cache_dir();
        let every: &[&[&str]] = &[
            &[],
            &["--rules", &rules],
            &["--base", base],
            &["--no-verify"],
            &["--no-content-hash"],
            &["-j1", "--dup-min-bytes", "1"],
        ];
        for fmt in ["json", "table", "markdown"] {
            // The renderers only print what the JSON holds: two option sets
            // each are enough for them.
            let extras = if fmt == "json" { every } else { &every[..2] };
            for &extra in extras {
                let args = [&["analyze", img, "--format", fmt][..], extra].concat();
                let (first, warm) = assert_same(&cache, dir.path(), &args);
                if fmt == "json" && extra.is_empty() {
                    let (f, w) = (cache_of(&first), cache_of(&warm));
                    assert_eq!(f["layers_from_cache"], 0, "{img}: cold: {f}");
                    // Docker's `<id>/layer.tar` in a stream is read again;
                    // skopeo's `<diff_id>.tar` (real-docker) is re-hashed.
                    let stream_legacy = img.ends_with("naive.docker.tar.gz");
                    assert_eq!(
                        w["layers_read"] == 0,
                        !stream_legacy,
                        "{img}: warm reads no layer, but a legacy layer in a stream: {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn warm_diff_and_check_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path());
    let budget = write(
        dir.path(),
        "mlsize.toml",
        b"max_visible_bytes = \"1MB\"\nmax_growth_bytes = \"10kB\"\n[categories]\npip-cache = 0\n",
    );
    let pairs = [
        (&imgs[0], &imgs[6]),
        (&imgs[2], &imgs[7]),
        (&imgs[0], &imgs[2]),
        (&imgs[4], &imgs[3]),
        (&imgs[8], &imgs[10]),
    ];
    for (n, (old, new)) in pairs.into_iter().enumerate() {
        // A cache filled by analysing one image, then read by a diff whose
        // size census is another: the hashes it holds must do.
        let cache = fresh_cache_dir();
        run(Some(&cache), dir.path(), &["analyze", old]);
        // The renderers print what the JSON holds: markdown on two pairs.
        let formats: &[&str] = if n < 2 {
            &["json", "table", "markdown"]
        } else {
            &["json", "table"]
        };
        for &fmt in formats {
            let (_, warm) = assert_same(&cache, dir.path(), &["diff", old, new, "--format", fmt]);
            if fmt == "json" {
                let v: Value = checked(serde_json::from_str(&warm).unwrap());
                for (side, img) in [("old", old), ("new", new)] {
                    let stream_legacy = img.ends_with("docker.tar.gz");
                    assert_eq!(
                        v[side]["cache"]["layers_read"] == 0,
                        !stream_legacy,
                        "{old} {new}: warm, the {side} image reads no layer, but a legacy layer in a stream: {v}"
                    );
                }
            }
            let check = ["check", new, "--budget", &budget, "--format", fmt];
            assert_same(
                &cache,
                dir.path(),
                &[&check[..], &["--baseline", old]].concat(),
            );
            // The growth rules need a baseline: without one, a budget of
            // the other rules.
            let plain = write(dir.path(), "plain.toml", b"max_visible_bytes = \"1MB\"\n");
            assert_same(
                &cache,
                dir.path(),
                &["check", new, "--budget", &plain, "--format", fmt],
            );
        }
    }
}

/// An image of `layers` (path, size, seed), one layer each, as an
/// oci-archive, and its layer blobs' sizes.
fn oci_image(dir: &Path, name: &str, layers: &[(&str, usize, u64)]) -> (String, Vec<u64>) {
    let mut b = ImageBuilder::new();
    for &(path, len, seed) in layers {
        b = b.layer(&format!("COPY {path} {path}"), |l| {
            l.file_seeded(path, len, seed)
        });
    }
    let sizes = b
        .build()
        .layers
        .iter()
        .map(|l| l.blob.len() as u64)
        .collect();
    (write(dir, name, &b.oci_archive()), sizes)
}

fn cache_use(from: &[usize], read: &[usize], blobs: &[u64], rehashed: &[usize]) -> Value {
    let sum = |ix: &[usize]| ix.iter().map(|&i| blobs[i]).sum::<u64>();
    let not_reread: Vec<usize> = from
        .iter()
        .copied()
        .filter(|i| !rehashed.contains(i))
        .collect();
    serde_json::json!({
        "layers_from_cache": from.len(),
        "bytes_from_cache": sum(from),
        "layers_read": read.len(),
        "bytes_read": sum(read),
        "not_reread": not_reread,
        "rehashed": rehashed,
    })
}

// See: #14
#[test]
fn issue_14_warm_diff_and_check_say_what_came_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    // NEW shares OLD's two lower layers; its top two are its own.
    let base = [
        ("/usr/lib/libbase.so", 300_000, 1),
        ("/opt/venv/torch.so", 200_000, 2),
    ];
    let (old, old_blobs) = oci_image(
        dir.path(),
        "old.tar",
        &[base[0], base[1], ("/app/v1.py", 40_000, 3)],
    );
    let (new, new_blobs) = oci_image(
        dir.path(),
        "new.tar",
        &[
            base[0],
            base[1],
            ("/app/v2.py", 50_000, 4),
            ("/app/model.bin", 70_000, 5),
        ],
    );
    assert_eq!(old_blobs[..2], new_blobs[..2], "the same lower blobs");
    let budget = write(dir.path(), "mlsize.toml", b"max_visible_bytes = \"1MB\"\n");
    // A cache that holds OLD's layers (analysed before), and nothing of NEW's own.
    let warm = || {
        let cache = fresh_cache_dir();
        let (code, _, err) = run(Some(&cache), dir.path(), &["analyze", &old]);
        assert_eq!(code, 0, "{err}");
        cache
    };
    let old_use = cache_use(&[0, 1, 2], &[], &old_blobs, &[]);
    let new_use = cache_use(&[0, 1], &[2, 3], &new_blobs, &[]);

    let json = |cache: &Path, args: &[&str]| -> Value {
        let (code, out, err) = run(
            Some(cache),
            dir.path(),
            &[args, &["--format", "json"]].concat(),
        );
        assert!(code == 0, "{args:?}: {err}");
        checked(serde_json::from_str(&out).unwrap())
    };
    let v = json(&warm(), &["diff", &old, &new]);
    assert_eq!(
        v["old"]["cache"], old_use,
        "diff: all of OLD from the cache"
    );
    assert_eq!(
        v["new"]["cache"], new_use,
        "diff: NEW's own layers read, the shared ones not"
    );
    let v = json(&warm(), &["check", &new, "--budget", &budget]);
    assert_eq!(v["image"]["cache"], new_use, "check: NEW's own layers read");
    assert_eq!(v["baseline_cache"], Value::Null, "check: no baseline");
    let v = json(
        &warm(),
        &["check", &new, "--budget", &budget, "--baseline", &old],
    );
    assert_eq!(v["image"]["cache"], new_use, "check --baseline: the image");
    assert_eq!(
        v["baseline_cache"], old_use,
        "check --baseline: the baseline"
    );

    // Read in one run, a layer both images hold is read once and counted
    // on both sides.
    let v = json(&fresh_cache_dir(), &["diff", &old, &new]);
    assert_eq!(
        v["old"]["cache"],
        cache_use(&[], &[0, 1, 2], &old_blobs, &[])
    );
    assert_eq!(
        v["new"]["cache"],
        cache_use(&[], &[0, 1, 2, 3], &new_blobs, &[])
    );

    // The same figures in words, exact with --bytes: the line analyze prints.
    let (old_sum, shared, own) = (
        old_blobs.iter().sum::<u64>(),
        new_blobs[0] + new_blobs[1],
        new_blobs[2] + new_blobs[3],
    );
    let old_line = format!(
        "cache: old: 3 of 3 layers ({old_sum}) from the layer cache (3 not re-read); --no-cache reads them again"
    );
    let new_line = |which: &str| {
        format!(
            "cache: {which}2 of 4 layers ({shared}) from the layer cache (2 not re-read), 2 read ({own}); --no-cache reads them again"
        )
    };
    let text = |args: &[&str]| {
        let (code, out, err) = run(Some(&warm()), dir.path(), &[args, &["--bytes"]].concat());
        assert!(code == 0, "{args:?}: {err}");
        out
    };
    let lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("cache: "))
            .map(str::to_string)
            .collect()
    };
    for fmt in ["table", "markdown"] {
        let out = text(&["diff", &old, &new, "--format", fmt]);
        assert_eq!(
            lines(&out),
            [old_line.clone(), new_line("new: ")],
            "diff {fmt}: {out}"
        );
        let out = text(&["check", &new, "--budget", &budget, "--format", fmt]);
        assert_eq!(lines(&out), [new_line("")], "check {fmt}: {out}");
        let out = text(&[
            "check",
            &new,
            "--budget",
            &budget,
            "--baseline",
            &old,
            "--format",
            fmt,
        ]);
        let baseline = old_line.replace("cache: old: ", "cache: baseline: ");
        assert_eq!(
            lines(&out),
            [new_line(""), baseline],
            "check --baseline {fmt}: {out}"
        );
        let out = text(&["analyze", &new, "--format", fmt]);
        assert_eq!(lines(&out), [new_line("")], "analyze {fmt}: {out}");
    }
    // The table puts it under the header line.
    let out = text(&["diff", &old, &new]);
    assert_eq!(out.lines().nth(1), Some(old_line.as_str()), "{out}");
}

#[test]
fn rules_apply_to_cached_layers() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(
        dir.path(),
        "n.tar",
        &mlsize::testutil::naive_ml(1).oci_archive(),
    );
    let rules = write(
        dir.path(),
        "r.toml",
        b"[[rule]]\nname = \"app\"\nglobs = [\"/app/**\"]\nposition = 1\n",
    );
    let cache = fresh_cache_dir();
    // Filled without the rules, read with them.
    run(Some(&cache), dir.path(), &["analyze", &img]);
    let (_, warm, _) = run(
        Some(&cache),
        dir.path(),
        &["analyze", &img, "--rules", &rules, "--format", "json"],
    );
    let v: Value = serde_json::from_str(&warm).unwrap();
    assert_eq!(v["image"]["cache"]["layers_read"], 0, "all from the cache");
    assert_eq!(v["categories"][0]["name"], "app");
    assert_eq!(
        u(&v, "/categories/0/visible_bytes"),
        1_000,
        "the rule classifies cached entries"
    );
}

#[test]
fn the_table_says_which_layers_were_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(
        dir.path(),
        "n.tar",
        &mlsize::testutil::naive_ml(1).oci_archive(),
    );
    let legacy = write(
        dir.path(),
        "d.tar",
        &mlsize::testutil::naive_ml(1).docker_archive(),
    );
    let cache = fresh_cache_dir();
    let (_, cold, _) = run(Some(&cache), dir.path(), &["analyze", &img]);
    assert!(!cold.contains("cache:"), "a cold run has no cache line");
    let (_, warm, _) = run(Some(&cache), dir.path(), &["analyze", &img]);
    let line = warm.lines().nth(1).unwrap();
    assert!(
        line.starts_with("cache: 6 of 6 layers (")
            && line.ends_with("from the layer cache (6 not re-read); --no-cache reads them again"),
        "{line}"
    );
    run(Some(&cache), dir.path(), &["analyze", &legacy]);
    let (_, warm, _) = run(Some(&cache), dir.path(), &["analyze", &legacy]);
    assert!(
        warm.contains("(6 re-hashed to verify)"),
        "docker-save legacy layers are still hashed: {warm}"
    );
    let (_, warm, _) = run(
        Some(&cache),
        dir.path(),
        &["analyze", &legacy, "--no-verify", "--format", "json"],
    );
    let c = cache_of(&warm);
    assert_eq!(
        c["not_reread"],
        serde_json::json!([0, 1, 2, 3, 4, 5]),
        "without verification a diff_id hit is used as it is: {c}"
    );
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(cache.join(format!("v{}", mlsize::source::cache::FORMAT_VERSION)))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n != "stats" && !n.starts_with(".tmp")
            })
            .collect();
    v.sort();
    v
}

#[test]
fn damaged_entries_are_ignored_warned_once_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(
        dir.path(),
        "n.tar",
        &mlsize::testutil::naive_ml(1).oci_archive(),
    );
    let args = ["analyze", img.as_str(), "--format", "json"];
    let (_, cold, _) = run(None, dir.path(), &args);
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 5] = [
        ("bit flip", |b| {
            let n = b.len() - 3;
            b[n] ^= 0x10
        }),
        ("truncated", |b| b.truncate(b.len() / 2)),
        ("empty", |b| b.clear()),
        ("foreign", |b| *b = b"{\"not\": \"an entry\"}".to_vec()),
        ("other version", |b| b[8] = 99),
    ];
    for (what, damage) in damages {
        let cache = fresh_cache_dir();
        run(Some(&cache), dir.path(), &args);
        let files = entries(&cache);
        assert_eq!(files.len(), 6, "one entry per layer");
        for f in &files {
            let mut b = std::fs::read(f).unwrap();
            damage(&mut b);
            std::fs::write(f, b).unwrap();
        }
        let (code, out, err) = run(Some(&cache), dir.path(), &args);
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(
            without_cache_notes(&out),
            without_cache_notes(&cold),
            "{what}: a damaged cache changes no figure"
        );
        assert_eq!(cache_of(&out)["layers_read"], 6, "{what}: all read again");
        assert_eq!(err.lines().count(), 1, "{what}: warned once: {err}");
        assert!(
            err.starts_with("mlsize: warning: cache: ignored 6 damaged entries (first '"),
            "{what}: {err}"
        );
        let (_, again, err) = run(Some(&cache), dir.path(), &args);
        assert!(err.is_empty(), "{what}: rewritten: {err}");
        assert_eq!(cache_of(&again)["layers_read"], 0, "{what}: rewritten");
    }
    // A renamed entry (another layer's) is foreign too.
    let cache = fresh_cache_dir();
    run(Some(&cache), dir.path(), &args);
    let files = entries(&cache);
    std::fs::copy(&files[0], &files[1]).unwrap();
    let (_, out, err) = run(Some(&cache), dir.path(), &args);
    assert_eq!(without_cache_notes(&out), without_cache_notes(&cold));
    assert!(err.contains("not this file's key"), "{err}");
    assert_eq!(cache_of(&out)["layers_read"], 1);
}

#[test]
fn an_unwritable_cache_degrades_to_no_cache_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(
        dir.path(),
        "n.tar",
        &mlsize::testutil::naive_ml(1).oci_archive(),
    );
    // A file where the directory should be: nothing can be created in it
    // (a read-only directory would be writable for root).
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"").unwrap();
    let (code, cold, _) = run(None, dir.path(), &["analyze", &img]);
    let (code2, out, err) = run(Some(&blocked), dir.path(), &["analyze", &img]);
    assert_eq!((code, code2), (0, 0));
    assert_eq!(out, cold, "the report is the same");
    assert_eq!(err.lines().count(), 1, "one warning: {err}");
    assert!(
        err.starts_with("mlsize: warning: cache: cannot write to '")
            && err.contains("this run stores nothing"),
        "{err}"
    );
    let (_, _, err) = run(Some(&blocked), dir.path(), &["analyze", &img, "-q"]);
    assert!(err.is_empty(), "--quiet hides it: {err}");
}

#[test]
fn concurrent_runs_share_a_cache_dir() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(
        dir.path(),
        "n.tar",
        &mlsize::testutil::naive_ml(4).oci_archive(),
    );
    let (_, cold, _) = run(None, dir.path(), &["analyze", &img, "--format", "json"]);
    let cache = fresh_cache_dir();
    let children: Vec<_> = (0..6)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_mlsize"))
                .args(["analyze", &img, "--format", "json"])
                .env("MLSIZE_CACHE_DIR", &cache)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = String::from_utf8(out.stdout).unwrap();
        assert_eq!(without_cache_notes(&out), without_cache_notes(&cold));
    }
    let (_, warm, err) = run(
        Some(&cache),
        dir.path(),
        &["analyze", &img, "--format", "json"],
    );
    assert!(err.is_empty(), "no damaged entry: {err}");
    assert_eq!(cache_of(&warm)["layers_read"], 0);
    assert_eq!(entries(&cache).len(), 6, "no temporary file left");
}

#[test]
fn the_cache_stays_under_its_bound_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.tar",
        &mlsize::testutil::naive_ml(1).oci_archive(),
    );
    let b = write(
        dir.path(),
        "b.tar",
        &ImageBuilder::new()
            .layer("COPY x /x", |l| l.file("/x/one", 10).file("/x/two", 20))
            .oci_archive(),
    );
    let cache = fresh_cache_dir();
    run(Some(&cache), dir.path(), &["analyze", &a]);
    let total: u64 = entries(&cache)
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    // Age a's entries, then make one of them recent again by a hit.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for p in entries(&cache) {
        std::fs::File::options()
            .append(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    // With a bound of a's size, adding b's entry evicts a's oldest.
    let mut c = mlsize();
    c.current_dir(dir.path())
        .env("MLSIZE_CACHE_DIR", &cache)
        .env("MLSIZE_CACHE_MAX", total.to_string())
        .args(["analyze", &b])
        .assert()
        .success();
    let after: u64 = entries(&cache)
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(after <= total, "{after} > {total}");
    let (_, out, _) = run(
        Some(&cache),
        dir.path(),
        &["analyze", &b, "--format", "json"],
    );
    assert_eq!(
        cache_of(&out)["layers_read"],
        0,
        "the newest entry was kept"
    );
    // `cache prune` and `cache clear`.
    let info = |cache: &Path| {
        let (code, out, err) = run(Some(cache), dir.path(), &["cache", "info"]);
        assert_eq!(code, 0, "{err}");
        out
    };
    let text = info(&cache);
    assert!(
        text.starts_with(&format!("cache:   {}\nentries: ", cache.display())),
        "{text}"
    );
    assert!(text.contains("hits:    "), "{text}");
    let (code, out, _) = run(Some(&cache), dir.path(), &["cache", "prune", "--max", "0"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("removed "), "{out}");
    assert!(info(&cache).contains("entries: 0 (0 B"), "{}", info(&cache));
    run(Some(&cache), dir.path(), &["analyze", &b]);
    let (code, out, _) = run(Some(&cache), dir.path(), &["cache", "clear"]);
    assert_eq!(
        (code, out.starts_with("removed 1 entries")),
        (0, true),
        "{out}"
    );
    let (code, _, err) = run(
        Some(&cache),
        dir.path(),
        &["cache", "prune", "--max", "12XB"],
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with("mlsize: --max: invalid size '12XB'"),
        "{err}"
    );
}

#[test]
fn no_cache_neither_reads_nor_writes() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(
        dir.path(),
        "n.tar",
        &mlsize::testutil::naive_ml(1).oci_archive(),
    );
    let cache = fresh_cache_dir();
    let out = mlsize()
        .current_dir(dir.path())
        .env("MLSIZE_CACHE_DIR", &cache)
        .args(["analyze", &img, "--no-cache", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!cache.exists(), "nothing written");
    let v: Value = checked(serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(v["image"]["cache"], Value::Null);
    // --cache-dir wins over the environment.
    let other = fresh_cache_dir();
    mlsize()
        .current_dir(dir.path())
        .env("MLSIZE_CACHE_DIR", &cache)
        .args(["analyze", &img, "--cache-dir"])
        .arg(&other)
        .assert()
        .success();
    assert!(
        other
            .join(format!("v{}", mlsize::source::cache::FORMAT_VERSION))
            .is_dir()
            && !cache.exists()
    );
    let err = mlsize()
        .env("MLSIZE_CACHE_MAX", "lots")
        .args(["analyze", &img])
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2));
    let err = String::from_utf8(err.stderr).unwrap();
    assert!(
        err.starts_with("mlsize: MLSIZE_CACHE_MAX: invalid size 'lots'"),
        "{err}"
    );
}
