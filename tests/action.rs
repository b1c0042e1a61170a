//! The GitHub Action (`action.yml`): its one step, `.github/action/run.sh`,
//! run outside GitHub with `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` pointed at
//! temp files and the inputs as the `INPUT_*` variables action.yml sets.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.github/action/run.sh");
const ACTION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml");

/// The naive ML image's figures (`mlsize analyze --format json`).
const NAIVE_OUTPUTS: &str = "visible-bytes=1840000\ncompressed-bytes=2364533\ndownload-bytes=2364533\nwasted-bytes=400000\n";

const DOCKERFILE: &str = "FROM nvidia/cuda:12.4.1-devel-ubuntu22.04\nRUN apt-get update && apt-get install -y python3-pip\nRUN pip install torch\nRUN rm -rf /root/.cache/pip\nCOPY app /app\n";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    outputs: String,
    summary: String,
}

struct Env {
    dir: tempfile::TempDir,
    image: String,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let image = write(
        dir.path(),
        "naive.tar",
        &mlsize::testutil::naive_ml(1).docker_archive(),
    );
    Env { dir, image }
}

impl Env {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the action's script with `inputs` (`IMAGE`, `BUDGET`, ...) as
    /// `INPUT_*` variables, in the temp dir, as the action's step does.
    fn run(&self, inputs: &[(&str, &str)]) -> Run {
        let outputs = self.path("github_output");
        let summary = self.path("step_summary");
        std::fs::write(&outputs, "earlier=1\n").unwrap();
        std::fs::write(&summary, "earlier\n").unwrap();
        let runner_temp = self.path("runner_temp");
        std::fs::create_dir_all(&runner_temp).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg(SCRIPT)
            .current_dir(self.dir.path())
            .env("MLSIZE", env!("CARGO_BIN_EXE_mlsize"))
            // Never the user's layer cache (see support::mlsize).
            .env("MLSIZE_CACHE_DIR", support::fresh_cache_dir())
            .env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("RUNNER_TEMP", &runner_temp)
            .env_remove("COLUMNS");
        for name in ["IMAGE", "BASELINE", "BUDGET", "ARGS"] {
            cmd.env_remove(format!("INPUT_{name}"));
        }
        for (k, v) in inputs {
            cmd.env(format!("INPUT_{k}"), v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(
            std::fs::read_dir(&runner_temp).unwrap().count(),
            0,
            "the script removes its temp dir"
        );
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
            outputs: read(&outputs)
                .strip_prefix("earlier=1\n")
                .expect("GITHUB_OUTPUT is appended to, never replaced")
                .to_string(),
            summary: read(&summary)
                .strip_prefix("earlier\n")
                .expect("GITHUB_STEP_SUMMARY is appended to, never replaced")
                .to_string(),
        }
    }
}

#[test]
fn outputs_are_the_figures_of_analyze_json() {
    let e = env();
    let v = json(&["analyze", &e.image]);
    let want = format!(
        "visible-bytes={}\ncompressed-bytes={}\ndownload-bytes={}\nwasted-bytes={}\n",
        u(&v, "/image/visible_bytes"),
        u(&v, "/image/compressed_bytes"),
        u(&v, "/image/download_bytes"),
        u(&v, "/image/wasted_bytes"),
    );
    assert_eq!(want, NAIVE_OUTPUTS, "the naive image's figures");
}

#[test]
fn a_passing_budget_sets_outputs_writes_the_summary_and_exits_0() {
    let e = env();
    let budget = write(
        e.dir.path(),
        "budget.toml",
        b"max_visible_bytes = 1840000\nmax_layers = 6\n",
    );
    let r = e.run(&[
        ("IMAGE", &e.image),
        ("BUDGET", &budget),
        ("ARGS", "--bytes"),
    ]);
    assert_eq!(r.code, 0, "every rule passes: {}", r.stderr);
    assert_eq!(
        r.stdout, "PASS max_visible_bytes 1840000 <= 1840000\nPASS max_layers 6 <= 6\n",
        "one PASS line per rule, no annotation"
    );
    assert_eq!(r.outputs, format!("{NAIVE_OUTPUTS}passed=true\n"));
    assert_eq!(
        r.summary,
        "### :white_check_mark: mlsize check `ml/naive:1`: 0 of 2 rules failed\n\n\
         | | rule | actual | limit |\n|---|---|---:|---:|\n\
         | PASS | max_visible_bytes | 1840000 | 1840000 |\n\
         | PASS | max_layers | 6 | 6 |\n\n",
        "the markdown report, appended"
    );
    assert_eq!(r.stderr, "", "no warning, no error");
}

#[test]
fn a_failing_budget_annotates_the_dockerfile_and_exits_1() {
    let e = env();
    // The budget found in the working directory, as in a checkout.
    write(
        e.dir.path(),
        "mlsize.toml",
        b"[categories]\napt-cache = 0\n",
    );
    write(e.dir.path(), "Dockerfile", DOCKERFILE.as_bytes());
    let r = e.run(&[
        ("IMAGE", "naive.tar"),
        // Check-only flags, and input flags that analyze gets too.
        (
            "ARGS",
            " --dockerfile Dockerfile  --bytes -j 1 --no-verify\n--platform=linux/amd64 ",
        ),
    ]);
    assert_eq!(r.code, 1, "the apt-cache rule fails: {}", r.stderr);
    let mlsize_toml = e.path("mlsize.toml").display().to_string();
    assert_eq!(
        r.stdout,
        format!(
            "::error file=Dockerfile,line=2,title=mlsize%3A categories.apt-cache over budget::apt-cache bytes is 50000, over the limit of 0 (categories.apt-cache = 0 at {mlsize_toml}:2); 50000 (100%25): apt lists and archives left in the layer in layer 2 `RUN apt-get update && apt-get install -y python3-pip` (Dockerfile:2); fix: end the same RUN with 'rm -rf /var/lib/apt/lists/*' (and 'apt-get clean'), or use RUN --mount=type=cache,target=/var/cache/apt; largest file /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages (50000)\n"
        ),
        "one annotation on the Dockerfile line"
    );
    assert_eq!(r.outputs, format!("{NAIVE_OUTPUTS}passed=false\n"));
    assert!(
        r.summary
            .starts_with("### :x: mlsize check `ml/naive:1`: 1 of 1 rules failed\n\n"),
        "{}",
        r.summary
    );
    assert!(
        r.summary
            .contains("| **FAIL** | categories.apt-cache | 50000 | 0 |\n"),
        "{}",
        r.summary
    );
}

#[test]
fn a_baseline_is_passed_to_check() {
    let e = env();
    let old = write(
        e.dir.path(),
        "old.tar",
        &mlsize::testutil::ImageBuilder::new()
            .name("ml/naive:0")
            .layer("ADD file:base in /", |l| l.file("/etc/os-release", 1000))
            .docker_archive(),
    );
    let budget = write(e.dir.path(), "budget.toml", b"max_growth_bytes = 0\n");
    let r = e.run(&[
        ("IMAGE", &e.image),
        ("BASELINE", &old),
        ("BUDGET", &budget),
        ("ARGS", "--bytes"),
    ]);
    assert_eq!(
        r.code, 1,
        "the image grew against its baseline: {}",
        r.stderr
    );
    assert!(
        r.stdout.starts_with(
            "::error title=mlsize%3A max_growth_bytes over budget::growth against the baseline is 1839000, over the limit of 0 (max_growth_bytes = 0 at "
        ),
        "{}",
        r.stdout
    );
    assert_eq!(r.outputs, format!("{NAIVE_OUTPUTS}passed=false\n"));
}

#[test]
fn errors_are_annotated_and_exit_2_without_outputs() {
    let e = env();
    let budget = write(e.dir.path(), "budget.toml", b"max_layers = 6\n");
    // (inputs, the annotation, mlsize's stderr line)
    let missing = e.path("missing.tar").display().to_string();
    type Inputs<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Inputs, String, String)> = vec![
        (
            vec![("BUDGET", budget.as_str())],
            "::error title=mlsize::the 'image' input is empty: give an image archive or a reference such as docker://ghcr.io/org/app:tag\n".into(),
            String::new(),
        ),
        (
            vec![("IMAGE", missing.as_str()), ("BUDGET", budget.as_str())],
            format!("::error title=mlsize::mlsize: '{missing}': no such file or directory\n"),
            format!("mlsize: '{missing}': no such file or directory\n"),
        ),
        (
            vec![("IMAGE", e.image.as_str())],
            "::error title=mlsize::mlsize: no budget: write an mlsize.toml (see the README), pass --budget FILE, or give --max-size / --max-category\n".into(),
            "mlsize: no budget: write an mlsize.toml (see the README), pass --budget FILE, or give --max-size / --max-category\n".into(),
        ),
        (
            vec![("IMAGE", e.image.as_str()), ("BUDGET", budget.as_str()), ("ARGS", "--max-size 10%")],
            "::error title=mlsize::mlsize: --max-size: 'max_visible_bytes': invalid size '10%25': expected a number followed by B, kB, MB, GB, TB (decimal) or KiB, MiB, GiB, TiB (binary), e.g. 3GB or 2.5GiB\n".into(),
            "mlsize: --max-size: 'max_visible_bytes': invalid size '10%': expected a number followed by B, kB, MB, GB, TB (decimal) or KiB, MiB, GiB, TiB (binary), e.g. 3GB or 2.5GiB\n".into(),
        ),
    ];
    for (inputs, annotation, stderr) in cases {
        let r = e.run(&inputs);
        assert_eq!(r.code, 2, "{inputs:?}: {}", r.stderr);
        assert_eq!(r.stdout, annotation, "{inputs:?}");
        assert_eq!(r.stderr, stderr, "{inputs:?}");
        assert_eq!(r.outputs, "", "{inputs:?}: no outputs on an error");
        assert_eq!(r.summary, "", "{inputs:?}: no summary on an error");
    }
}

#[test]
fn action_yml_passes_every_input_the_script_reads_and_maps_every_output() {
    let action = std::fs::read_to_string(ACTION).unwrap();
    let script = std::fs::read_to_string(SCRIPT).unwrap();
    for input in ["image", "baseline", "budget", "args"] {
        let var = format!("INPUT_{}", input.to_uppercase());
        assert!(
            action.contains(&format!("  {input}:\n")),
            "action.yml declares the input {input}"
        );
        assert!(
            action.contains(&format!("{var}: ${{{{ inputs.{input} }}}}")),
            "action.yml passes {input} as {var}"
        );
        assert!(script.contains(&var), "run.sh reads {var}");
    }
    for output in [
        "visible-bytes",
        "compressed-bytes",
        "download-bytes",
        "wasted-bytes",
        "passed",
    ] {
        assert!(
            action.contains(&format!("  {output}:\n    description: "))
                && action.contains(&format!("value: ${{{{ steps.check.outputs.{output} }}}}")),
            "action.yml maps the output {output}"
        );
        assert!(
            script.contains(&format!("'{output}=%s\\n'")),
            "run.sh writes {output}"
        );
    }
    assert!(
        action.contains("sh \"$GITHUB_ACTION_PATH/.github/action/run.sh\""),
        "the action's step is the script this test runs"
    );
}
