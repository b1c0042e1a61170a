//! The README's first command: writes a naive PyTorch-on-CUDA example image
//! (and its optimised twin) as oci-archives under `target/mlsize-example/`,
//! then runs `mlsize analyze` on the naive one.
//!
//! `cargo run --release --features test-support --example demo [-- ARGS...]`
//! Extra arguments are passed to `mlsize analyze` (e.g. `--format json`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mlsize::testutil::{naive_ml, optimized_ml};

fn main() -> ExitCode {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/mlsize-example");
    let naive = dir.join("naive-ml.tar");
    let optimized = dir.join("optimized-ml.tar");
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&naive, naive_ml(100).compressible().oci_archive()))
        .and_then(|()| std::fs::write(&optimized, optimized_ml(100).compressible().oci_archive()))
    {
        eprintln!(
            "demo: cannot write the example images in {}: {e}",
            dir.display()
        );
        return ExitCode::from(2);
    }
    // Name the image relative to where the demo runs, so the report's
    // header is the same on every machine (`target/mlsize-example/...`).
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| naive.strip_prefix(cwd).ok().map(PathBuf::from))
        .unwrap_or_else(|| naive.clone());
    eprintln!(
        "demo: wrote {} and {}\ndemo: mlsize analyze {}\n",
        naive.display(),
        optimized.display(),
        shown.display()
    );
    let mut args = vec![
        "mlsize".to_string(),
        "analyze".into(),
        shown.display().to_string(),
    ];
    args.extend(std::env::args().skip(1));
    match mlsize::app::run(mlsize::cli::Cli::parse_from(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mlsize: {e:#}");
            ExitCode::from(2)
        }
    }
}
