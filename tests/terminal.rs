//! mlsize in a real terminal (issue 11, items 10 and 13): tmux runs the
//! binary in an 80-column pane, and the test reads the screen back with
//! `capture-pane`, as a person would see it.
//!
//! tmux is required: CI installs it (`.ci/run`); elsewhere a test without it
//! says so and passes.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mlsize::testutil::{naive_ml, sha256};
use serde_json::Value;
use support::{json, mlsize, write};

const WIDTH: usize = 80;

/// A tmux server of its own (`tmux -S` on a socket in a temporary
/// directory), killed on drop so that a failing test leaves nothing running.
struct Tmux {
    socket: String,
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// Runs `cmd` in a detached `WIDTH`×40 pane started in `cwd`, through
    /// `bash -c 'cmd; echo EXIT=$?; sleep 60'`: the pane stays open, so tmux
    /// reads all of the output, and the status line comes after all of it.
    /// (bash, not dash: on Ctrl-C bash waits for the command and goes on
    /// when the command exits rather than dies of the signal; dash dies.)
    /// `None` when tmux is not installed (a failure on CI).
    fn start(test: &str, cwd: &Path, cmd: &[&str]) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tmux is not installed: .ci/run installs it"
            );
            eprintln!("{test}: skipped, tmux is not installed (apt-get install tmux)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("tmux.conf");
        std::fs::write(&conf, "set -g history-limit 10000\nset -g status off\n").unwrap();
        let tmux = Tmux {
            socket: dir.path().join("tmux.sock").to_str().unwrap().to_string(),
            _dir: dir,
        };
        let width = WIDTH.to_string();
        let out = tmux.run_with_conf(
            &conf,
            &[
                &["new-session", "-d", "-x", &width, "-y", "40"],
                &["-c", cwd.to_str().unwrap()][..],
                &["bash", "-c", r#""$0" "$@"; echo EXIT=$?; sleep 60"#],
                cmd,
            ]
            .concat(),
        );
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(tmux)
    }

    fn run_with_conf(&self, conf: &Path, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-u", "-S", &self.socket, "-f", conf.to_str().unwrap()])
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            // The server this starts passes it on: never the user's cache.
            .env("MLSIZE_CACHE_DIR", support::fresh_cache_dir())
            .output()
            .unwrap()
    }

    fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("tmux")
            .args(["-u", "-S", &self.socket])
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!(
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8(out.stdout).unwrap())
    }

    fn run(&self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Polls the screen until `ok` holds; panics with the screen after `secs`.
    /// The screen is read with its scrollback, lines the terminal wrapped
    /// joined back (`-J`), so that a line too long for the pane shows as one.
    fn wait_for(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self
                .try_run(&["capture-pane", "-p", "-J", "-S", "-"])
                .unwrap_or_else(|e| {
                    panic!(
                        "waiting for {what}, the pane closed: bash ended before its \
                         `echo EXIT=`, so the command died of a signal ({e})"
                    )
                });
            if ok(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "waited {secs}s for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status of the command (from its `EXIT=` line) and the
    /// screen without that line, once the command has ended.
    fn exit_status(&self, secs: u64) -> (String, String) {
        let screen = self.wait_for("the command to end", secs, |s| {
            s.lines().any(|l| l.starts_with("EXIT="))
        });
        let mut status = String::new();
        let mut rest = String::new();
        for l in screen.lines() {
            match l.strip_prefix("EXIT=") {
                Some(s) => status = s.trim().to_string(),
                None => rest.push_str(&format!("{l}\n")),
            }
        }
        (status, rest)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .output();
    }
}

/// Lines on the screen, without trailing blanks.
fn output_lines(screen: &str) -> Vec<&str> {
    screen.lines().map(str::trim_end).collect()
}

/// `shown` is `full`, or `full` with its middle cut out for `…`.
fn shows_path(shown: &str, full: &str) -> bool {
    shown == full
        || shown
            .split_once('…')
            .is_some_and(|(a, b)| full.starts_with(a) && full.ends_with(b))
}

/// The lines of the table that follows the `title` line.
fn table_after<'a>(lines: &[&'a str], title: &str) -> Vec<&'a str> {
    lines
        .iter()
        .skip_while(|l| !l.starts_with(title))
        .skip(1)
        .take_while(|l| l.starts_with(['┌', '│', '╞', '└']))
        .copied()
        .collect()
}

/// Cells of the body rows of a table (header and borders left out).
fn body_cells(table: &[&str]) -> Vec<Vec<String>> {
    table
        .iter()
        .skip_while(|l| !l.starts_with('╞'))
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            l.trim_matches('│')
                .split('┆')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

fn strings(v: &Value, ptr: &str, field: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{ptr} is an array"))
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect()
}

// See: issue 11, item 10.
#[test]
fn tables_fit_an_80_column_terminal_and_paths_are_never_split() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "naive.tar", &naive_ml(1).docker_archive());
    let Some(tmux) = Tmux::start(
        "width",
        dir.path(),
        &[
            env!("CARGO_BIN_EXE_mlsize"),
            "analyze",
            "naive.tar",
            "--top",
            "5",
        ],
    ) else {
        return;
    };
    let (status, screen) = tmux.exit_status(60);
    assert_eq!(status, "0", "mlsize analyze succeeds:\n{screen}");
    let lines = output_lines(&screen);
    assert!(lines.len() > 40, "the whole report is captured:\n{screen}");
    for l in &lines {
        assert!(
            l.chars().count() <= WIDTH,
            "every line fits the {WIDTH}-column terminal (no line wrapped by it):\n{l}\nscreen:\n{screen}"
        );
    }

    let v = json(&["analyze", &p, "--top", "5"]);
    // Largest files: one line per file, each path whole or cut in the middle.
    let files = body_cells(&table_after(&lines, "Largest files"));
    let want = strings(&v, "/top_files", "path");
    assert_eq!(
        files.len(),
        want.len(),
        "one line per file, none wrapped onto a second line:\n{screen}"
    );
    for (row, full) in files.iter().zip(&want) {
        let shown = row.last().unwrap();
        assert!(
            shows_path(shown, full),
            "'{shown}' is '{full}' or its middle cut out:\n{screen}"
        );
    }
    assert!(
        files.iter().any(|r| r.last().unwrap().contains('…')),
        "the long paths had to be shortened at {WIDTH} columns:\n{screen}"
    );

    // CUDA copies: every path starts a line (its own or after "L3 293.0 KiB
    // identical") and is whole or cut in the middle; no line holds a piece.
    let cuda = body_cells(&table_after(
        &lines,
        "CUDA libraries in more than one place",
    ));
    let copies: Vec<String> = v["cuda_duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| strings(d, "/copies", "path"))
        .collect();
    let shown: Vec<&str> = cuda
        .iter()
        .map(|r| r.last().unwrap().as_str())
        .filter(|c| !c.is_empty())
        .map(|c| c.split_once("  ").map_or(c, |x| x.1))
        .filter(|c| !c.starts_with('L'))
        .collect();
    assert_eq!(
        shown.len(),
        copies.len(),
        "each copy's path on one line: {shown:#?}\n{screen}"
    );
    for (s, full) in shown.iter().zip(&copies) {
        assert!(
            shows_path(s, full),
            "'{s}' is '{full}' or its middle cut out:\n{screen}"
        );
    }
}

/// An OCI layout with one uncompressed layer holding a `bytes`-long file,
/// written as a sparse file (a hole costs no disk), so that reading it takes
/// long enough to watch. Its digests are made up: the read is interrupted
/// before they are compared.
fn sparse_layout(dir: &Path, bytes: u64) {
    let fake = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let (layer, diff_id) = (fake('a'), fake('b'));
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("data/weights.bin").unwrap();
    h.set_size(bytes);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let blob_bytes = 512 + bytes.div_ceil(512) * 512 + 1024;
    let f = std::fs::File::create(blobs.join(&layer[7..])).unwrap();
    std::io::Write::write_all(&mut &f, h.as_bytes()).unwrap();
    f.set_len(blob_bytes).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "COPY weights /data # buildkit"}],
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer, "size": blob_bytes}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha256(&manifest), "size": manifest.len()}],
    }))
    .unwrap();
    for (name, data) in [
        (sha256(&config)[7..].to_string(), &config),
        (sha256(&manifest)[7..].to_string(), &manifest),
    ] {
        std::fs::write(blobs.join(name), data).unwrap();
    }
    std::fs::write(dir.join("index.json"), index).unwrap();
    std::fs::write(
        dir.join("oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#,
    )
    .unwrap();
}

// See: issue 11, item 13.
#[test]
fn progress_shows_the_total_and_ctrl_c_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    sparse_layout(&dir.path().join("big"), 64 << 30);
    let Some(tmux) = Tmux::start(
        "progress",
        dir.path(),
        &[env!("CARGO_BIN_EXE_mlsize"), "analyze", "big", "-j1"],
    ) else {
        return;
    };
    let screen = tmux.wait_for("a progress bar with a total and a percentage", 30, |s| {
        s.lines()
            .any(|l| l.contains("/64.00 GiB") && !l.contains(" 0 B/") && l.contains(" ETA "))
    });
    let bar = screen.lines().find(|l| l.contains(" ETA ")).unwrap();
    assert!(
        bar.starts_with("big ") && bar.chars().count() < WIDTH - 1,
        "the bar names the input and leaves room for the terminal's ^C: {bar:?}"
    );
    tmux.run(&["send-keys", "C-c"]);
    let (status, screen) = tmux.exit_status(10);
    assert_eq!(
        status, "130",
        "Ctrl-C exits with 130 (128 + SIGINT), not killed by the signal:\n{screen}"
    );
    assert!(
        output_lines(&screen).iter().all(|l| l.is_empty()),
        "the progress line is cleared from the screen:\n{screen}"
    );
}

// See: issue 11, item 10: `$COLUMNS` sets the width when stdout is not a
// terminal, and paths are cut in the middle instead of wrapped.
#[test]
fn columns_sets_the_width_of_a_piped_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "naive.tar", &naive_ml(1).docker_archive());
    let out = mlsize()
        .args(["analyze", &p, "--top", "5"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let largest = text
        .split("\nLargest files (5 of 18 visible; --top N for more)\n")
        .nth(1)
        .unwrap();
    assert_eq!(
        largest,
        "\
┌───────────┬───────┬─────────────┬───────────────────────────────────────────┐
│      size ┆ layer ┆ category    ┆ path                                      │
╞═══════════╪═══════╪═════════════╪═══════════════════════════════════════════╡
│ 488.3 KiB ┆     4 ┆ other       ┆ /usr/local/lib/…/lib/libtorch_cuda.so     │
│ 293.0 KiB ┆     3 ┆ cuda-libs   ┆ /usr/local/…/lib/libcublasLt.so.12.4.5.8  │
│ 293.0 KiB ┆     4 ┆ cuda-libs   ┆ /usr/local/lib/…/lib/libcublasLt.so.12    │
│ 146.5 KiB ┆     3 ┆ static-libs ┆ /usr/local/cuda-12.4/…/libcublas_static.a │
│  97.7 KiB ┆     3 ┆ cuda-libs   ┆ /usr/local/…/lib/libcudart.so.12.4.127    │
└───────────┴───────┴─────────────┴───────────────────────────────────────────┘
",
        "the Largest files table at 80 columns"
    );
    insta::assert_snapshot!("naive_table_80_columns", text.replace(&p, "naive.tar"));
}

/// Runs a failing `check` in the terminal (with `env` settings first) and
/// returns the screen with its escape codes (`capture-pane -e`).
fn check_screen(dir: &Path, env_vars: &[&str]) -> Option<String> {
    let cmd: Vec<&str> = ["env"]
        .iter()
        .copied()
        .chain(env_vars.iter().copied())
        .chain([
            env!("CARGO_BIN_EXE_mlsize"),
            "check",
            "naive.tar",
            "--budget",
            "budget.toml",
        ])
        .collect();
    let tmux = Tmux::start("colour", dir, &cmd)?;
    let (status, _) = tmux.exit_status(60);
    assert_eq!(status, "1", "the budget fails");
    Some(tmux.run(&["capture-pane", "-p", "-e", "-J", "-S", "-"]))
}

#[test]
fn colour_in_a_terminal_none_in_a_pipe_no_color_and_clicolor_force_respected() {
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "naive.tar", &naive_ml(1).docker_archive());
    let budget = write(
        dir.path(),
        "budget.toml",
        b"max_wasted_bytes = 1\nmax_layers = 100\n",
    );
    // A real terminal: FAIL in bold red, PASS in green.
    let Some(screen) = check_screen(dir.path(), &[]) else {
        return;
    };
    let fail = screen
        .lines()
        .find(|l| l.contains("max_wasted_bytes"))
        .unwrap();
    assert!(
        fail.starts_with("\x1b[1m\x1b[31mFAIL") || fail.starts_with("\x1b[1;31mFAIL"),
        "{fail:?}"
    );
    let pass = screen.lines().find(|l| l.contains("max_layers")).unwrap();
    assert!(pass.starts_with("\x1b[32mPASS"), "{pass:?}");
    // NO_COLOR in the same terminal: not one escape code.
    let plain = check_screen(dir.path(), &["NO_COLOR=1"]).unwrap();
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("FAIL  max_wasted_bytes"));

    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = mlsize();
        c.args(["check", &image, "--budget", &budget]).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    // A pipe: no colour, unless asked for.
    assert!(!run(&[], &[]).contains('\x1b'));
    assert!(run(&["--color", "always"], &[]).contains("\x1b[1;31mFAIL\x1b[0m  max_wasted_bytes"));
    assert!(run(&[], &[("CLICOLOR_FORCE", "1")]).contains("\x1b[32mPASS\x1b[0m"));
    assert!(!run(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\x1b'));
    assert!(!run(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]).contains('\x1b'));

    // Tables: the wasted bytes of the analysis in red, in a pipe with --color always.
    let out = mlsize()
        .args(["analyze", &image, "--color", "always"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let wasted = text.lines().find(|l| l.contains(" wasted ")).unwrap();
    assert!(
        wasted.contains("\x1b[38;5;9m\x1b[1m 390.6 KiB \x1b[0m"),
        "{wasted:?}"
    );
}
