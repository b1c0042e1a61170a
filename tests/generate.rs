//! `mlsize --generate`: shell completions and the man page, tried in a real
//! bash and a real `man`.

mod support;

use std::process::Command;

use support::mlsize;
use support::tools::have;

fn generated(kind: &str) -> String {
    let out = mlsize().args(["--generate", kind]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What bash completes for the words of a command line, the last being
/// completed, with the script loaded.
fn complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; complete -p mlsize >/dev/null || exit 3; \
         COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _mlsize mlsize '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("mlsize.bash");
    std::fs::write(&script, generated("complete-bash")).unwrap();
    assert_eq!(complete(&script, &["mlsize", "an"]), vec!["analyze"]);
    assert_eq!(
        complete(&script, &["mlsize", "analyze", "--no-v"]),
        vec!["--no-verify"]
    );
    assert_eq!(
        complete(&script, &["mlsize", "check", "--format", "ju"]),
        vec!["junit"]
    );
    assert_eq!(
        complete(&script, &["mlsize", "--generate", "complete-f"]),
        vec!["complete-fish"]
    );
}

#[test]
fn other_shells_get_their_scripts() {
    assert!(generated("complete-zsh").starts_with("#compdef mlsize"));
    assert!(
        generated("complete-fish")
            .contains("complete -c mlsize -n \"__fish_mlsize_needs_command\" -f -a \"analyze\"")
    );
    assert!(
        generated("complete-powershell")
            .contains("Register-ArgumentCompleter -Native -CommandName 'mlsize'")
    );
}

#[test]
fn man_renders_the_page() {
    if !have(&["man"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("mlsize.1");
    std::fs::write(&page, generated("man")).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "NAME",
        "SYNOPSIS",
        "--generate",
        "analyze",
        "diff",
        "check",
        "VERSION",
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
}

#[test]
fn version_names_the_commit_when_built_from_git() {
    let out = mlsize().arg("--version").output().unwrap();
    let v = String::from_utf8(out.stdout).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let from_git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match from_git {
        Some(commit) => assert_eq!(v, format!("mlsize {version} (git {commit})\n")),
        None => assert_eq!(v, format!("mlsize {version}\n")),
    }
}

#[test]
fn generate_takes_no_subcommand() {
    let out = mlsize()
        .args(["--generate", "man", "analyze"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
