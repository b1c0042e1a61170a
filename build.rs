//! Sets `MLSIZE_VERSION`: the package version and, when built from a git
//! checkout, the commit (`0.1.0 (git 1a2b3c4d5e6f)`), as `mlsize --version`
//! prints it. A build from the published crate has no git and prints the
//! version alone.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    // Only this package's own repository counts (not one it is vendored in).
    let own = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        std::path::Path::new(&top) == std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
    });
    let commit = own
        .then(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .flatten();
    match commit {
        Some(c) => println!("cargo:rustc-env=MLSIZE_VERSION={version} (git {c})"),
        None => println!("cargo:rustc-env=MLSIZE_VERSION={version}"),
    }
    // Rebuild when HEAD moves (a commit, a checkout).
    if let Some(dir) = own
        .then(|| git(&["rev-parse", "--absolute-git-dir"]))
        .flatten()
    {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{r}");
        }
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
