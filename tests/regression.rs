//! Regressions, each named after the issue (and item) that reported it.

mod support;

use mlsize::testutil::ImageBuilder;
use serde_json::{Value, json};
use support::*;

const MIB: usize = 1 << 20;

/// A chmod rewrites an 8 MiB model (overwritten-later), a pip cache of 6 MiB is
/// deleted in a later RUN (pip-cache), and apt lists stay visible: the apt fix
/// explains none of the wasted bytes.
fn rewrite_and_cache() -> ImageBuilder {
    ImageBuilder::new()
        .name("app:1")
        .layer("/bin/sh -c #(nop) ADD file:0a1b2c3d in / ", |l| {
            l.file("/usr/bin/python3", 100_000)
        })
        .layer(
            "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl",
            |l| l.file("/var/lib/apt/lists/deb_Packages", 50_000),
        )
        .layer("COPY model.bin /data/model.bin # buildkit", |l| {
            l.file_seeded("/data/model.bin", 8 * MIB, 7)
        })
        .layer("RUN /bin/sh -c chmod 644 /data/model.bin # buildkit", |l| {
            l.file_seeded("/data/model.bin", 8 * MIB, 7)
        })
        .layer("RUN /bin/sh -c pip install torch # buildkit", |l| {
            l.file("/root/.cache/pip/http-v2/a/body", 6 * MIB)
                .file("/usr/local/lib/python3.11/site-packages/torch/x.py", 1_000)
        })
        .layer("RUN /bin/sh -c rm -rf /root/.cache # buildkit", |l| {
            l.whiteout("/root/.cache")
        })
}

fn check_out(img: &ImageBuilder, budget: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "app.tar", &img.docker_archive());
    let b = write(dir.path(), "mlsize.toml", budget.as_bytes());
    let out = mlsize()
        .current_dir(dir.path())
        .args(["check", &image, "--budget", &b])
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(dir.path().to_str().unwrap(), "DIR");
    (out.status.code().unwrap(), text)
}

// See: issue 11 item 1 (a wasted-bytes failure explained by the apt fix).
#[test]
fn issue_11_check_explains_wasted_bytes_by_what_is_wasted() {
    let (code, text) = check_out(&rewrite_and_cache(), "max_wasted_bytes = \"1MiB\"\n", &[]);
    assert_eq!(code, 1);
    let want = "\
mlsize check app:1: FAIL (1 of 1 rules failed)
FAIL  max_wasted_bytes  14.0 MiB > 1.0 MiB (1MiB)  (DIR/mlsize.toml:1)
      explained by:
        8.0 MiB (57%)  files rewritten by a later layer: layer 4 `RUN chmod 644 /data/model.bin`
          in layer 3 `COPY model.bin /data/model.bin`
          fix: a later layer writes these paths again, so both copies ship (a chmod/chown/touch copies whole files; a reinstall or regenerated file rewrites them): produce the final version in the RUN that writes them, or use COPY --chmod/--chown
        6.0 MiB (43%)  pip's download cache left in the layer (deleted by a later layer, but still shipped in this one)
          in layer 5 `RUN pip install torch`
          fix: add --no-cache-dir to pip install (or set PIP_NO_CACHE_DIR=1), or keep the cache out of the image with RUN --mount=type=cache,target=/root/.cache/pip
      layer 3 `COPY model.bin /data/model.bin`: 8.0 MiB
      layer 5 `RUN pip install torch`: 6.0 MiB
      file /data/model.bin (8.0 MiB, layer 3)
      file /root/.cache/pip/http-v2/a/body (6.0 MiB, layer 5)
";
    assert_eq!(text, want, "the apt fix explains none of the wasted bytes");
    assert!(!text.contains("apt/lists"), "{text}");
}

// See: issue 11 item 1 (a visible-bytes failure explained by a cache with 0 visible bytes).
#[test]
fn issue_11_check_explains_visible_bytes_by_what_is_visible() {
    let (code, text) = check_out(&rewrite_and_cache(), "max_visible_bytes = \"1MB\"\n", &[]);
    assert_eq!(code, 1);
    assert!(
        !text.contains("--no-cache-dir"),
        "the pip cache is not visible: {text}"
    );
    let want = "\
mlsize check app:1: FAIL (1 of 1 rules failed)
FAIL  max_visible_bytes  8.1 MiB > 976.6 KiB (1MB)  (DIR/mlsize.toml:1)
      explained by:
        48.8 KiB (0.6%)  apt lists and archives left in the layer
          in layer 2 `RUN apt-get update && apt-get install -y --no-install-recommends curl`
          fix: end the same RUN with 'rm -rf /var/lib/apt/lists/*' (and 'apt-get clean'), or use RUN --mount=type=cache,target=/var/cache/apt
      no recommendation covers most of it: the fixes explain 48.8 KiB of 8.1 MiB visible bytes (0.6%); the rest is in the layers and files below
      layer 4 `RUN chmod 644 /data/model.bin`: 8.0 MiB
      layer 1 `ADD file:0a1b2c3d in /`: 97.7 KiB
      layer 2 `RUN apt-get update && apt-get install -y --no-install-recommends curl`: 48.8 KiB
      (1 more layers in --format json)
      file /data/model.bin (8.0 MiB, layer 4)
      file /usr/bin/python3 (97.7 KiB, layer 1)
      file /var/lib/apt/lists/deb_Packages (48.8 KiB, layer 2)
";
    assert_eq!(text, want);
    let (_, json) = check_out(
        &rewrite_and_cache(),
        "max_visible_bytes = \"1MB\"\n",
        &["--format", "json"],
    );
    let v: Value = checked(serde_json::from_str(&json).unwrap());
    let r = &v["rules"][0];
    assert_eq!(r["measured_bytes"], 8 * MIB as u64 + 151_000);
    assert_eq!(r["explained_bytes"], 50_000);
    assert_eq!(r["findings"][0]["bytes"], 50_000);
    assert_eq!(r["findings"][0]["recommendation"]["id"], "apt-cache");
}

/// Layers from `docker import` (empty created_by) and a rootfs `ADD`.
fn imported_base() -> ImageBuilder {
    ImageBuilder::new()
        .name("app:2")
        .layer("", |l| {
            l.file("/var/lib/apt/lists/deb_Packages", 300_000)
                .file("/etc/big.conf", 200_000)
                .file("/usr/share/doc/x/README", 100_000)
        })
        .layer("RUN /bin/sh -c chmod 600 /etc/big.conf # buildkit", |l| {
            l.file("/etc/big.conf", 200_000)
        })
        .layer("RUN /bin/sh -c rm -rf /usr/share/doc # buildkit", |l| {
            l.whiteout("/usr/share/doc")
        })
}

// See: issue 11 item 3 (advice to edit an instruction that does not exist).
#[test]
fn issue_11_base_layers_get_advice_about_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "app.tar", &imported_base().docker_archive());
    let v = json(&["analyze", &image]);
    assert_eq!(v["layers"][0]["base_image"], "no-history");
    assert_eq!(v["layers"][1]["base_image"], Value::Null);
    let recs: Vec<(String, String, String)> = v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["title"].as_str().unwrap().to_string(),
                r["base_image"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        recs,
        [
            (
                "apt-cache".to_string(),
                "apt lists and archives shipped by the base image".to_string(),
                "true".to_string()
            ),
            (
                "overwritten-later".into(),
                "files of the base image rewritten by a later layer".into(),
                "true".into()
            ),
            (
                "deleted-later".into(),
                "files of the base image deleted by a later layer".into(),
                "true".into()
            ),
        ]
    );
    for r in v["recommendations"].as_array().unwrap() {
        let fix = r["fix"].as_str().unwrap();
        assert!(!fix.contains("same RUN"), "no RUN to edit: {fix}");
    }
    let out = mlsize()
        .args(["analyze", &image])
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("``"), "no empty instruction: {text}");
    assert!(
        text.contains("in layer 1 of the base image (no instruction recorded)"),
        "{text}"
    );
    assert!(
        text.contains("│ 1 ┆ [base] (no instruction recorded)"),
        "{text}"
    );
}

// See: issue 11 item 4 (--no-install-recommends never suggested).
#[test]
fn issue_11_apt_recommends_that_bring_compilers_are_named_first() {
    let gcc = "/usr/lib/gcc/x86_64-linux-gnu/12";
    let img = ImageBuilder::new()
        .name("app:3")
        .layer("/bin/sh -c #(nop) ADD file:0a1b2c3d in / ", |l| {
            l.file("/usr/bin/python3", 10_000)
        })
        .layer(
            "/bin/sh -c apt-get update && apt-get install -y python3-pip",
            |l| {
                l.file(&format!("{gcc}/cc1"), 400_000)
                    .file(&format!("{gcc}/cc1plus"), 500_000)
                    .file("/usr/bin/x86_64-linux-gnu-gcc-12", 90_000)
                    .file("/usr/lib/x86_64-linux-gnu/libstdc++.a", 300_000)
                    .file("/usr/include/stdio.h", 10_000)
                    .file("/usr/lib/python3/dist-packages/pip/__init__.py", 8_000)
                    .file("/var/lib/dpkg/info/gcc-12.list", 100)
                    .file("/var/lib/dpkg/info/g++-12.list", 100)
                    .file("/var/lib/dpkg/info/cpp-12.list", 100)
                    .file("/var/lib/dpkg/info/libstdc++-12-dev:amd64.list", 100)
                    .file("/var/lib/dpkg/info/python3-pip.list", 100)
            },
        );
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "app.tar", &img.docker_archive());
    let v = json(&["analyze", &image]);
    let r = &v["recommendations"][0];
    assert_eq!(r["id"], "apt-install-recommends");
    assert_eq!(r["layer_index"], 1);
    assert_eq!(
        r["savings_bytes"], 1_300_000,
        "cc1, cc1plus, gcc, libstdc++.a and stdio.h"
    );
    assert_eq!(
        r["packages"],
        json!(["cpp-12", "g++-12", "gcc-12", "libstdc++-12-dev"])
    );
    assert!(
        r["fix"]
            .as_str()
            .unwrap()
            .starts_with("add --no-install-recommends to apt-get install"),
        "{r}"
    );
    let ids = recommendation_ids(&v);
    assert_eq!(
        ids,
        ["apt-install-recommends"],
        "headers and static libraries of that layer are the same finding"
    );
    // With --no-install-recommends, the generic advice stays.
    let img2 = ImageBuilder::new().layer(
        "/bin/sh -c apt-get install -y --no-install-recommends gcc",
        |l| {
            l.file(&format!("{gcc}/cc1"), 400_000)
                .file("/usr/include/a.h", 10)
        },
    );
    let image2 = write(dir.path(), "app2.tar", &img2.docker_archive());
    let v = json(&["analyze", &image2]);
    assert_eq!(v["recommendations"][0]["id"], "headers");
}

// See: issue 11 items 5 and 15 (layer numbers and units inside the JSON's text).
#[test]
fn issue_11_json_text_has_no_layer_numbers_or_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "app.tar", &rewrite_and_cache().docker_archive());
    let v = json(&["analyze", &image]);
    for r in v["recommendations"].as_array().unwrap() {
        for field in ["title", "fix"] {
            let t = r[field].as_str().unwrap();
            let words: Vec<&str> = t.split_whitespace().collect();
            assert!(
                !words
                    .windows(2)
                    .any(|w| w[0] == "layer" && w[1].starts_with(|c: char| c.is_ascii_digit())),
                "{field} names a layer number: {t}"
            );
            assert!(
                !["KiB", "MiB", "GiB", "kB", "MB", "GB"]
                    .iter()
                    .any(|u| words.contains(u)),
                "{field} has a unit: {t}"
            );
        }
    }
    let rewrite = v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "overwritten-later")
        .unwrap();
    assert_eq!(rewrite["layer_index"], 2);
    assert_eq!(rewrite["cause_layer_index"], 3);
    assert_eq!(
        rewrite["cause_instruction"],
        "RUN chmod 644 /data/model.bin"
    );
    assert_eq!(rewrite["wasted_bytes"], 8 * MIB as u64);
    assert_eq!(rewrite["visible_bytes"], 0);
}

const SP: &str = "/usr/local/lib/python3.11/site-packages";

/// sympy 1.14.0, optionally with its bytecode.
fn sympy(with_pyc: bool) -> ImageBuilder {
    let record = "sympy/__init__.py,sha256=a,3000\nsympy/__pycache__/__init__.cpython-311.pyc,,\nsympy-1.14.0.dist-info/RECORD,,\n";
    ImageBuilder::new()
        .name("app:1")
        .layer("/bin/sh -c #(nop) ADD file:0a1b2c3d in / ", |l| {
            l.file("/usr/bin/python3", 10_000).file_bytes(
                "/var/lib/dpkg/status",
                b"Package: libc6\nStatus: install ok installed\nInstalled-Size: 12000\nVersion: 2.36-9\n",
            )
        })
        .layer("RUN /bin/sh -c pip install sympy # buildkit", move |l| {
            let l = l
                .file(&format!("{SP}/sympy/__init__.py"), 3000)
                .file_bytes(
                    &format!("{SP}/sympy-1.14.0.dist-info/RECORD"),
                    record.as_bytes(),
                );
            if with_pyc {
                l.file(&format!("{SP}/sympy/__pycache__/__init__.cpython-311.pyc"), 48_000)
            } else {
                l
            }
        })
}

// See: issue 11 item 8 (`sympy changed 1.14.0 1.14.0 -46.4 MiB` with no reason).
#[test]
fn issue_11_same_version_package_change_says_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.tar", &sympy(true).docker_archive());
    let new = write(dir.path(), "new.tar", &sympy(false).docker_archive());
    let v = json(&["diff", &old, &new]);
    let p = &v["packages"]["python"][0];
    assert_eq!(p["name"], "sympy");
    assert_eq!(p["change"], "changed");
    assert_eq!(p["old_version"], p["new_version"]);
    assert_eq!(p["delta"], -48_000);
    assert_eq!(
        p["files"],
        json!({"added": 0, "removed": 1, "resized": 0, "added_bytes": 0, "removed_bytes": 48_000,
               "categories": {"python-bytecode": -48_000}})
    );
    let out = mlsize()
        .args(["diff", &old, &new, "--bytes"])
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "│ python ┆ sympy   ┆ changed ┆ 1.14.0 ┆ 1.14.0 ┆ -48000 ┆ 1 files removed (-48000); mostly python-bytecode -48000 │"
        ),
        "{text}"
    );
}

// See: issue 11 item 7 (cut tables that do not say so; packages sorted by kind).
#[test]
fn issue_11_cut_lists_say_how_many_more() {
    let lib = "/usr/local/cuda-12.4/targets/x86_64-linux/lib";
    let img = ImageBuilder::new()
        .layer("COPY dir:cuda in /usr/local/cuda-12.4", |l| {
            l.file_seeded(&format!("{lib}/libcublas.so.12"), 30_000, 1)
                .file_seeded(&format!("{lib}/libcufft.so.11"), 20_000, 2)
                .file_seeded(&format!("{lib}/libcurand.so.10"), 10_000, 3)
        })
        .layer("RUN /bin/sh -c pip install torch # buildkit", |l| {
            l.file_seeded(
                &format!("{SP}/nvidia/cublas/lib/libcublas.so.12"),
                30_000,
                1,
            )
            .file_seeded(&format!("{SP}/nvidia/cufft/lib/libcufft.so.11"), 20_000, 2)
            .file_seeded(
                &format!("{SP}/nvidia/curand/lib/libcurand.so.10"),
                10_000,
                3,
            )
        });
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "app.tar", &img.docker_archive());
    let out = mlsize()
        .args(["analyze", &image, "--top", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("3 CUDA libraries shipped twice"), "{text}");
    let cuda = text
        .split("CUDA libraries in more than one place")
        .nth(1)
        .unwrap();
    assert_eq!(
        cuda.lines().filter(|l| l.starts_with("│ libcu")).count(),
        2,
        "2 of 3 families shown: {cuda}"
    );
    assert!(
        cuda.contains("┘\n(1 more: --top 3 shows them all, or --format json)\n"),
        "{cuda}"
    );

    // Packages: one table sorted by bytes across Python and Debian.
    let old = sympy(true);
    let new = sympy(false).layer("RUN /bin/sh -c apt-get install -y libfoo # buildkit", |l| {
        l.file_bytes(
            "/var/lib/dpkg/status",
            b"Package: libc6\nStatus: install ok installed\nInstalled-Size: 12000\nVersion: 2.36-10\n\nPackage: libfoo\nStatus: install ok installed\nInstalled-Size: 1\nVersion: 1\n",
        )
    });
    let o = write(dir.path(), "old.tar", &old.docker_archive());
    let n = write(dir.path(), "new.tar", &new.docker_archive());
    let out = mlsize()
        .args(["diff", &o, &n, "--top", "2", "--bytes"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let pk = text.split("Packages\n").nth(1).unwrap();
    let rows: Vec<&str> = pk
        .lines()
        .filter(|l| l.starts_with("│ python") || l.starts_with("│ debian"))
        .collect();
    assert_eq!(rows.len(), 2, "{pk}");
    assert!(rows[0].contains("sympy"), "-48000 first: {pk}");
    assert!(rows[1].contains("libfoo"), "+1024 second: {pk}");
    assert!(
        pk.contains("(1 more: --top 3 shows them all, or --format json)"),
        "libc6 has the same size: it is cut: {pk}"
    );
}

/// Runs mlsize in `dir`, expects exit 2, returns stderr with `dir` as `DIR`.
fn fails_in(dir: &std::path::Path, args: &[&str], stdin: Option<Vec<u8>>) -> String {
    let mut c = mlsize();
    c.current_dir(dir).args(args);
    if let Some(b) = stdin {
        c.write_stdin(b);
    }
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "nothing but the error is written");
    String::from_utf8(out.stderr)
        .unwrap()
        .replace(dir.to_str().unwrap(), "DIR")
}

// See: issue 11 item 12 (a doubled cause, and no word on what mlsize reads).
#[test]
fn issue_11_errors_name_the_cause_once_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A name that is no file is an image reference (issue 13): the local
    // engines are asked first, then the registry, and the error says so.
    let out = mlsize()
        .current_dir(d)
        .env("DOCKER_HOST", format!("unix://{}/none.sock", d.display()))
        .env(
            "CONTAINER_HOST",
            format!("unix://{}/none.sock", d.display()),
        )
        .args(["analyze", "127.0.0.1:9/myimage:latest"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "mlsize: '127.0.0.1:9/myimage:latest': not in a local engine (Docker: no engine answered; Podman: no engine answered), and from the registry: cannot connect to '127.0.0.1:9': connection refused (is a registry listening there?)\n"
    );
    assert_eq!(
        fails_in(d, &["analyze", "app.tar"], None),
        "mlsize: 'app.tar': no such file or directory\n"
    );
    let image = write(d, "app.tar", &rewrite_and_cache().docker_archive());
    assert_eq!(
        fails_in(d, &["check", &image, "--budget", "missing.toml"], None),
        "mlsize: 'missing.toml': no such file or directory\n"
    );
    assert_eq!(
        fails_in(d, &["analyze", "/"], None),
        "mlsize: '/' is not an image archive: the directory has neither index.json (an OCI image layout has oci-layout, index.json and blobs/) nor manifest.json (as 'skopeo copy IMAGE dir:DIR' writes)\n"
    );
}

// See: issue 11 item 12 (a cut docker-save archive called "not an image archive").
#[test]
fn issue_11_truncated_archive_is_truncated_from_a_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let full = rewrite_and_cache().docker_archive();
    let cut = full[..full.len() / 2].to_vec();
    let file = write(dir.path(), "t.tar", &cut);
    let from_file = fails_in(dir.path(), &["analyze", &file], None);
    let from_stdin = fails_in(dir.path(), &["analyze", "-"], Some(cut));
    assert!(
        from_file.contains("archive truncated inside '"),
        "{from_file}"
    );
    assert!(from_stdin.contains("archive truncated"), "{from_stdin}");
    assert!(!from_file.contains("not an image"), "{from_file}");
}

fn ok_out(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = mlsize().current_dir(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout)
            .unwrap()
            .replace(dir.to_str().unwrap(), "DIR"),
    )
}

// See: issue 11 item 14 (the smaller ones).
#[test]
fn issue_11_names_origins_and_every_budget_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An OCI archive names its image by the index's tag: say it is a tag of the file.
    let oci = write(d, "app.tar", &rewrite_and_cache().oci_archive());
    let (code, text) = ok_out(
        d,
        &[
            "check",
            &oci,
            "--max-size",
            "1kB",
            "--max-category",
            "pip-cache=0",
        ],
    );
    assert_eq!(code, 1);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "mlsize check DIR/app.tar (tag 1): FAIL (2 of 2 rules failed)"
    );
    assert_eq!(
        lines[1],
        "FAIL  max_visible_bytes     8.1 MiB > 1.0 KiB (1kB)  (--max-size)"
    );
    assert!(
        text.contains("FAIL  categories.pip-cache  6.0 MiB > 0 B  (--max-category pip-cache)"),
        "{text}"
    );
    let (_, json) = ok_out(d, &["check", &oci, "--max-size", "1kB", "--format", "json"]);
    let v: Value = checked(serde_json::from_str(&json).unwrap());
    assert_eq!(v["rules"][0]["origin"], "--max-size");
    let (_, gh) = ok_out(
        d,
        &["check", &oci, "--max-size", "1kB", "--format", "github"],
    );
    assert!(
        gh.contains("over the limit of 1.0 KiB (1kB) (--max-size 1kB)"),
        "{gh}"
    );

    // Every problem of a budget file, not only the first.
    let b = write(
        d,
        "mlsize.toml",
        b"max_visible = 1\nmax_layers = 3\n\n[categories]\npip_cache = 0\n",
    );
    let err = fails_in(d, &["check", &oci, "--budget", &b], None);
    assert!(
        err.starts_with(
            "mlsize: 'DIR/mlsize.toml' has 2 problems: DIR/mlsize.toml:1: unknown key 'max_visible'"
        ),
        "{err}"
    );
    assert!(
        err.contains("; DIR/mlsize.toml:5: unknown category 'pip_cache' in [categories]"),
        "{err}"
    );

    // diff's --top is about diff's lists.
    let (_, help) = ok_out(d, &["diff", "--help"]);
    assert!(help.contains("--top <N>"), "{help}");
    assert!(help.contains("changed-file and package lists"), "{help}");
    assert!(!help.contains("recommendation"), "{help}");
}

// See: issue 11 item 2 (a docker-save archive's plain tar presented as "what a
// pull downloads", so `check --max-compressed` failed it and passed the same
// image as a gzip oci-archive).
#[test]
fn issue_11_compressed_budget_is_the_same_for_docker_save_and_oci() {
    let img = rewrite_and_cache()
        .compressible()
        .compression(mlsize::layer::Compression::None);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = write(d, "plain.tar", &img.docker_archive());
    let gz = img
        .clone()
        .compression(mlsize::layer::Compression::Gzip)
        .gzip_level(6);
    let oci = write(d, "gzip.tar", &gz.oci_archive());
    let vp = json(&["analyze", &plain]);
    let vg = json(&["analyze", &oci]);
    assert_eq!(vp["image"]["download_bytes_basis"], "estimated");
    assert_eq!(vg["image"]["download_bytes_basis"], "stored");
    let tar = u(&vp, "/image/tar_bytes");
    let (est, real) = (
        u(&vp, "/image/download_bytes"),
        u(&vg, "/image/download_bytes"),
    );
    assert!(est < tar / 2, "the estimate is a gzip size: {est} of {tar}");
    // A budget between the gzip size and the tar size passes both.
    let limit = (est.max(real) + tar) / 2;
    for image in [&plain, &oci] {
        let (code, text) = ok_out(d, &["check", image, "--max-compressed", &limit.to_string()]);
        assert_eq!(code, 0, "{image}: {text}");
    }
    let (code, text) = ok_out(d, &["check", &plain, "--max-compressed", "1kB"]);
    assert_eq!(code, 1);
    assert!(
        text.contains("FAIL  max_compressed_bytes  ~")
            && text.contains("(estimated gzip size: layers not stored compressed) > 1.0 KiB (1kB)"),
        "{text}"
    );
    let (_, table) = ok_out(d, &["analyze", &plain]);
    assert!(
        table.contains("estimate of what a push stores (gzip -6, as docker push)"),
        "{table}"
    );
    assert!(!table.contains("what a pull downloads"), "{table}");
    assert!(
        table.contains("~ not stored compressed: the gzip size a push would store, estimated"),
        "{table}"
    );
}

/// `apt-install-recommends` counts what `--no-install-recommends` really
/// removes when the layer's dpkg status says it: every package apt
/// installed only as a recommendation (and what only they depend on), with
/// its files from `info/*.list`, not just the compilers among them.
#[test]
fn apt_recommends_count_every_recommended_package() {
    let status = "\
Package: libc6
Status: install ok installed

Package: libc6-dev
Status: install ok installed
Depends: libc6 (= 2.36-9), linux-libc-dev | linux-kernel-headers
Recommends: gcc | c-compiler

Package: linux-libc-dev
Status: install ok installed
Provides: linux-kernel-headers

Package: gcc
Status: install ok installed
Depends: cpp (= 4:12.2.0-3), gcc-12
Provides: c-compiler

Package: gcc-12
Status: install ok installed
Depends: cpp-12, libgcc-12-dev

Package: fonts-dejavu-core
Status: install ok installed

Package: cpp
Status: install ok installed
Depends: cpp-12

Package: cpp-12
Status: install ok installed

Package: libgcc-12-dev
Status: install ok installed
";
    let gcc = "/usr/lib/gcc/x86_64-linux-gnu/12";
    let lists: [(&str, &[&str]); 8] = [
        (
            "libc6-dev",
            &["/usr/include/stdio.h", "/usr/lib/x86_64-linux-gnu/libc.a"],
        ),
        ("linux-libc-dev", &["/usr/include/linux/types.h"]),
        ("gcc", &["/usr/bin/gcc"]),
        ("gcc-12", &["/usr/bin/x86_64-linux-gnu-gcc-12"]),
        ("cpp", &["/usr/bin/cpp"]),
        ("cpp-12", &["/usr/lib/gcc/x86_64-linux-gnu/12/cc1"]),
        (
            "libgcc-12-dev",
            &["/usr/lib/gcc/x86_64-linux-gnu/12/libgcc.a"],
        ),
        ("fonts-dejavu-core", &["/usr/share/fonts/DejaVuSans.ttf"]),
    ];
    let img = ImageBuilder::new()
        .name("app:4")
        .layer("/bin/sh -c #(nop) ADD file:0a1b2c3d in / ", |l| {
            l.file("/usr/bin/sh", 1_000)
                .file("/var/lib/dpkg/info/libc6:amd64.list", 20)
        })
        .layer(
            "/bin/sh -c apt-get update && apt-get install -y libc6-dev",
            |mut l| {
                l = l
                    .file_bytes("/var/lib/dpkg/status", status.as_bytes())
                    .file("/usr/include/stdio.h", 10_000)
                    .file("/usr/lib/x86_64-linux-gnu/libc.a", 300_000)
                    .file("/usr/include/linux/types.h", 2_000)
                    .file("/usr/bin/gcc", 1_000)
                    .file("/usr/bin/cpp", 1_000)
                    .file("/usr/bin/x86_64-linux-gnu-gcc-12", 90_000)
                    .file(&format!("{gcc}/cc1"), 400_000)
                    .file(&format!("{gcc}/libgcc.a"), 50_000)
                    .file("/usr/share/fonts/DejaVuSans.ttf", 3_000);
                for (pkg, files) in lists {
                    let text: String = files.iter().map(|f| format!("{f}\n")).collect();
                    l = l.file_bytes(&format!("/var/lib/dpkg/info/{pkg}.list"), text.as_bytes());
                }
                l
            },
        );
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "app.tar", &img.docker_archive());
    let v = json(&["analyze", &image]);
    let r = &v["recommendations"][0];
    assert_eq!(r["id"], "apt-install-recommends", "{v:#}");
    assert_eq!(
        r["packages"],
        json!([
            "cpp",
            "cpp-12",
            "gcc",
            "gcc-12",
            "libgcc-12-dev",
            "fonts-dejavu-core"
        ]),
        "gcc came as libc6-dev's recommendation (the build tools first); linux-libc-dev is a dependency"
    );
    let lists_of = |pkgs: &[&str]| -> u64 {
        lists
            .iter()
            .filter(|(p, _)| pkgs.contains(p))
            .map(|(_, f)| f.iter().map(|f| f.len() as u64 + 1).sum::<u64>())
            .sum()
    };
    let recommended = [
        "gcc",
        "gcc-12",
        "cpp",
        "cpp-12",
        "libgcc-12-dev",
        "fonts-dejavu-core",
    ];
    assert_eq!(
        u(r, "/savings_bytes"),
        1_000 + 90_000 + 1_000 + 400_000 + 50_000 + 3_000 + lists_of(&recommended),
        "the recommended packages' files and info lists, not libc6-dev's headers"
    );
    // libc6-dev's own headers and static library stay findings of their own.
    let ids = recommendation_ids(&v);
    assert_eq!(ids, ["apt-install-recommends", "static-libs", "headers"]);
}
