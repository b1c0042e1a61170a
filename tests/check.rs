//! `mlsize check`: budgets that pass and fail, exit codes, every output format.

mod support;

use mlsize::testutil::ImageBuilder;
use serde_json::Value;
use support::*;

fn naive() -> ImageBuilder {
    mlsize::testutil::naive_ml(1)
}

const DOCKERFILE: &str = "FROM nvidia/cuda:12.4.1-devel-ubuntu22.04\nRUN apt-get update && apt-get install -y python3-pip\n# install\nRUN --mount=type=cache,target=/root/.cache/pip pip install torch\nRUN rm -rf /root/.cache/pip\nCOPY app /app\n";

struct Env {
    dir: tempfile::TempDir,
    image: String,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "naive.tar", &naive().docker_archive());
    Env { dir, image }
}

fn check(e: &Env, budget: &str, extra: &[&str]) -> (i32, String) {
    let b = write(e.dir.path(), "mlsize.toml", budget.as_bytes());
    let out = mlsize()
        .current_dir(e.dir.path())
        .args(["check", &e.image, "--budget", &b])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn results(e: &Env, budget: &str, extra: &[&str]) -> (i32, Value) {
    let (code, out) = check(e, budget, &[extra, &["--format", "json"]].concat());
    (code, checked(serde_json::from_str(&out).unwrap()))
}

#[test]
fn each_rule_passes_and_fails() {
    let e = env();
    // (budget line, passes?) against the naive image's exact figures.
    let cases = [
        ("max_visible_bytes = 1840000", true),
        ("max_visible_bytes = 1839999", false),
        ("max_compressed_bytes = \"1GB\"", true),
        ("max_compressed_bytes = 1000", false),
        ("max_wasted_bytes = 400000", true),
        ("max_wasted_bytes = \"399999\"", false),
        ("max_wasted_percent = 18", true),
        ("max_wasted_percent = \"17%\"", false),
        ("max_duplicate_bytes = 380000", true),
        ("max_duplicate_bytes = 0", false),
        ("max_cuda_duplicate_bytes = 390000", true),
        ("max_cuda_duplicate_bytes = \"100kB\"", false),
        ("max_layer_bytes = 1372000", true),
        ("max_layer_bytes = \"1MB\"", false),
        ("max_layers = 6", true),
        ("max_layers = 5", false),
        ("[categories]\npip-cache = 400000", true),
        ("[categories]\npip-cache = 0", false),
        ("[categories]\ncupti = \"160kB\"", true),
        ("[categories]\ncupti = \"159kB\"", false),
    ];
    for (budget, pass) in cases {
        let (code, v) = results(&e, budget, &[]);
        assert_eq!(code, if pass { 0 } else { 1 }, "{budget}");
        assert_eq!(v["passed"], pass, "{budget}");
        assert_eq!(v["rules"].as_array().unwrap().len(), 1, "{budget}");
        assert_eq!(v["rules"][0]["passed"], pass, "{budget}");
    }
}

#[test]
fn failures_name_instruction_files_fix_and_dockerfile_line() {
    let e = env();
    let df = write(e.dir.path(), "Dockerfile", DOCKERFILE.as_bytes());
    let (code, v) = results(&e, "[categories]\npip-cache = 0\n", &["--dockerfile", &df]);
    assert_eq!(code, 1);
    let r = &v["rules"][0];
    assert_eq!(r["rule"], "categories.pip-cache");
    assert_eq!(r["actual"], 400_000.0);
    assert_eq!(
        r["origin"].as_str().unwrap().rsplit('/').next().unwrap(),
        "mlsize.toml:2"
    );
    assert_eq!(r["instructions"][0]["layer_index"], 3);
    assert_eq!(r["instructions"][0]["instruction"], "RUN pip install torch");
    assert_eq!(
        r["instructions"][0]["dockerfile_line"], 4,
        "RUN --mount in the Dockerfile matches BuildKit's history"
    );
    assert_eq!(
        r["top_files"][0]["path"],
        "/root/.cache/pip/http-v2/a/b/c/body"
    );
    assert!(r["fix"].as_str().unwrap().contains("--no-cache-dir"));
}

#[test]
fn table_output_and_flags_override_the_file() {
    let e = env();
    let (code, out) = check(
        &e,
        "max_visible_bytes = \"3GB\"\n[categories]\npip-cache = \"1GB\"\n",
        &["--bytes"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("mlsize check ml/naive:1: PASS (0 of 2 rules failed)\n"),
        "{out}"
    );
    let (code, out) = check(
        &e,
        "max_visible_bytes = \"3GB\"\n[categories]\npip-cache = \"1GB\"\n",
        &[
            "--bytes",
            "--max-category",
            "pip-cache=0",
            "--max-size",
            "1MB",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL  max_visible_bytes     1840000 > 1000000"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  categories.pip-cache  400000 > 0"),
        "{out}"
    );
    assert!(
        out.contains("      layer 4 `RUN pip install torch`: 400000"),
        "{out}"
    );
    assert!(out.contains("      fix: add --no-cache-dir"), "{out}");
}

#[test]
fn junit_is_valid_xml_with_one_testcase_per_rule() {
    let e = env();
    let (code, out) = check(
        &e,
        "max_layers = 10\nmax_wasted_bytes = 0\n[categories]\npip-cache = 0\n",
        &["--format", "junit"],
    );
    assert_eq!(code, 1);
    let doc = roxmltree::Document::parse(&out).unwrap();
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    assert_eq!(suites.attribute("tests"), Some("3"));
    assert_eq!(suites.attribute("failures"), Some("2"));
    let cases: Vec<(String, bool)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            (
                n.attribute("name").unwrap().to_string(),
                n.children().any(|c| c.has_tag_name("failure")),
            )
        })
        .collect();
    assert_eq!(
        cases,
        [
            ("max_wasted_bytes".into(), true),
            ("max_layers".into(), false),
            ("categories.pip-cache".into(), true)
        ]
    );
}

#[test]
fn github_format_annotates_the_dockerfile_and_writes_the_step_summary() {
    let e = env();
    let df = write(e.dir.path(), "Dockerfile", DOCKERFILE.as_bytes());
    let summary = e.dir.path().join("summary.md");
    std::fs::write(&summary, "existing\n").unwrap();
    let b = write(
        e.dir.path(),
        "mlsize.toml",
        b"max_layers = 10\n[categories]\napt-cache = 0\n",
    );
    let out = mlsize()
        .args([
            "check",
            &e.image,
            "--budget",
            &b,
            "--format",
            "github",
            "--dockerfile",
            &df,
            "--bytes",
        ])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "PASS max_layers 6 <= 10");
    let want = format!(
        "::error file={},line=2,title=mlsize%3A categories.apt-cache over budget::apt-cache bytes is 50000, over the limit of 0 (categories.apt-cache = 0 at {b}:3); 50000 (100%25): apt lists and archives left in the layer in layer 2 `RUN apt-get update && apt-get install -y python3-pip` ({}:2); fix: end the same RUN with 'rm -rf /var/lib/apt/lists/*' (and 'apt-get clean'), or use RUN --mount=type=cache,target=/var/cache/apt; largest file /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages (50000)",
        df.replace(':', "%3A").replace(',', "%2C"),
        df
    );
    assert_eq!(lines[1], want);
    assert_eq!(lines.len(), 2);
    let s = std::fs::read_to_string(&summary).unwrap();
    assert!(
        s.starts_with("existing\n### :x: mlsize check `ml/naive:1`: 1 of 2 rules failed"),
        "{s}"
    );
}

// See: #11 (item 9)
#[test]
fn issue_11_github_annotation_without_a_matched_line_points_at_the_final_from() {
    let e = env();
    // No instruction of the final stage wrote these layers.
    let df = write(
        e.dir.path(),
        "Dockerfile",
        b"FROM golang AS build\nRUN make\n\nFROM python:3.11-slim\nCOPY --from=build /out /usr/local/bin/\n",
    );
    let (code, out) = check(
        &e,
        "max_layers = 1\n",
        &["--format", "github", "--dockerfile", &df, "--bytes"],
    );
    assert_eq!(code, 1);
    let b = e.dir.path().join("mlsize.toml").display().to_string();
    let want = format!(
        "::error file={},line=4,title=mlsize%3A max_layers over budget::layer count is 6, over the limit of 1 (max_layers = 1 at {b}:1); fix: join consecutive RUN instructions with && (each RUN, COPY and ADD makes a layer), or build in stages and COPY --from the result into a final stage with few layers\n",
        df.replace(':', "%3A").replace(',', "%2C"),
    );
    assert_eq!(
        out, want,
        "annotated at the final stage's FROM, never without a file"
    );
}

#[test]
fn budget_file_is_found_in_parent_directories() {
    let e = env();
    std::fs::write(
        e.dir.path().join(".mlsize.toml"),
        "[categories]\npip-cache = 0\n",
    )
    .unwrap();
    let sub = e.dir.path().join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    let out = mlsize()
        .current_dir(&sub)
        .args(["check", &e.image])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  categories.pip-cache"));
    let empty = tempfile::tempdir().unwrap();
    let out = mlsize()
        .current_dir(empty.path())
        .args(["check", &e.image])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no budget"));
}

#[test]
fn growth_rules_need_and_use_a_baseline() {
    let e = env();
    let old = write(
        e.dir.path(),
        "old.tar",
        &mlsize::testutil::optimized_ml(1).oci_archive(),
    );
    let b = write(e.dir.path(), "g.toml", b"max_growth_bytes = \"1MB\"\nmax_growth_percent = 100\n[category_growth]\npip-cache = 0\ncuda-libs = \"300kB\"\n");
    let err = fails(&["check", &e.image, "--budget", &b]);
    assert!(err.contains("--baseline"), "{err}");
    let out = mlsize()
        .args([
            "check",
            &e.image,
            "--budget",
            &b,
            "--baseline",
            &old,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = checked(serde_json::from_slice(&out.stdout).unwrap());
    let got: Vec<(&str, bool, f64)> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap(),
                r["passed"].as_bool().unwrap(),
                r["actual"].as_f64().unwrap(),
            )
        })
        .collect();
    // visible: 1_840_000 (naive) − 997_000 (optimized) = +843_000 = +84.55%;
    // pip-cache is wasted, not visible, so its visible growth is 0; cuda-libs +400_000.
    assert_eq!(got[0], ("max_growth_bytes", true, 843_000.0));
    assert_eq!(got[1].0, "max_growth_percent");
    assert!((got[1].2 - 84.553_660_982_948_85).abs() < 1e-6, "{got:?}");
    assert_eq!(
        (got[2].0, got[2].1, got[2].2),
        ("category_growth.cuda-libs", false, 400_000.0)
    );
    assert_eq!((got[3].0, got[3].1), ("category_growth.pip-cache", true));
    let (code, _) = {
        let b = write(e.dir.path(), "g2.toml", b"max_growth_bytes = \"800kB\"\n");
        let out = mlsize()
            .args(["check", &e.image, "--budget", &b, "--baseline", &old])
            .output()
            .unwrap();
        (out.status.code().unwrap(), ())
    };
    assert_eq!(code, 1, "+843 kB is over 800 kB");
}

#[test]
fn dive_ci_rules_and_bad_budgets() {
    let e = env();
    let dive = write(e.dir.path(), ".dive-ci", b"rules:\n  lowestEfficiency: 0.9\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n");
    let out = mlsize()
        .args(["check", &e.image, "--dive-ci", &dive])
        .current_dir(e.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "17.9% wasted is over 10%: {text}"
    );
    assert!(text.contains("FAIL  max_wasted_percent"), "{text}");
    assert!(text.contains("PASS  max_wasted_bytes"), "{text}");
    assert!(
        text.contains("note: wasted bytes differ from dive's"),
        "{text}"
    );
    let b = write(e.dir.path(), "bad.toml", b"max_layers = 3\nmax_size = 1\n");
    let err = fails(&["check", &e.image, "--budget", &b]);
    assert!(
        err.contains("bad.toml:2: unknown key 'max_size'; known keys:"),
        "{err}"
    );
    let err = fails(&["check", &e.image, "--max-category", "pip-cache"]);
    assert!(err.contains("expected NAME=SIZE"), "{err}");
    let err = fails(&["check", &e.image, "--max-category", "nope=0"]);
    assert!(err.contains("unknown category 'nope'"), "{err}");
}
