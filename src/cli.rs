//! Command-line arguments (clap derive only). `app.rs` turns them into options.

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "Exit codes: 0 ok; 1 a budget or --fail-over threshold was exceeded; 2 usage, input or format error; 130 interrupted (Ctrl-C).";

/// Where the gigabytes of a machine-learning container image go, and how to get them back.
#[derive(Debug, Parser)]
#[command(
    name = "mlsize",
    version = crate::VERSION,
    about,
    after_help = EXIT_CODES,
    arg_required_else_help = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Print a shell completion script or the man page, then exit (as ripgrep does):
    /// `mlsize --generate complete-bash > /etc/bash_completion.d/mlsize`, `mlsize --generate man | man -l -`.
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    pub generate: Option<Generate>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When standard output is a terminal (NO_COLOR and CLICOLOR_FORCE respected).
    Auto,
    /// Always, even in a pipe.
    Always,
    /// Never.
    Never,
}

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// Completion script for bash.
    CompleteBash,
    /// Completion script for zsh.
    CompleteZsh,
    /// Completion script for fish.
    CompleteFish,
    /// Completion script for PowerShell.
    CompletePowershell,
    /// Completion script for elvish.
    CompleteElvish,
    /// The man page (roff), `mlsize.1`.
    Man,
    /// JSON Schema of `analyze --format json [--tree]` (schema/analyze.schema.json).
    SchemaAnalyze,
    /// JSON Schema of `diff --format json [--tree]` (schema/diff.schema.json).
    SchemaDiff,
    /// JSON Schema of `check --format json` (schema/check.schema.json).
    SchemaCheck,
    /// JSON Schema of `fix --format json` (schema/fix.schema.json).
    SchemaFix,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per-layer and per-instruction report: sizes, waste, categories, duplicates, fixes.
    #[command(after_help = EXIT_CODES)]
    Analyze(AnalyzeArgs),
    /// What grew between two versions of an image, and why.
    #[command(after_help = EXIT_CODES)]
    Diff(DiffArgs),
    /// A size budget for CI: PASS/FAIL per rule, exit 1 when any rule fails.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// A Dockerfile patch that fixes the findings, with the predicted size after it.
    #[command(after_help = EXIT_CODES)]
    Fix(FixArgs),
    /// Print the active category rules (built-in, plus --rules).
    Rules(RulesArgs),
    /// Inspect or empty the layer cache (scans of layers already read).
    Cache(CacheArgs),
}

/// `mlsize cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// What to do with the cache.
    #[command(subcommand)]
    pub action: CacheAction,
    /// The cache directory [default: $MLSIZE_CACHE_DIR, else $XDG_CACHE_HOME/mlsize, else the platform's cache directory].
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<std::path::PathBuf>,
}

/// `mlsize cache` actions.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Where the cache is, its entries and bytes, and how often it was hit.
    Info,
    /// Remove least-recently-used entries until the cache fits a size.
    Prune {
        /// The size to fit, e.g. 500MB [default: $MLSIZE_CACHE_MAX, else 2GiB].
        #[arg(long, value_name = "SIZE")]
        max: Option<String>,
    },
    /// Remove every entry.
    Clear,
}

/// `mlsize analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The image: a file or directory (docker save, oci-archive, OCI layout, skopeo dir:, optionally compressed), - for stdin, or a reference: docker://REGISTRY/REPO:TAG, docker-daemon:NAME, podman:NAME, oci:DIR (optionally :REF), or a bare NAME:TAG (the local engine, else its registry).
    pub image: String,
    /// Label the layers shared with this base image and report "base" vs "your layers".
    #[arg(long, value_name = "BASE")]
    pub base: Option<String>,
    /// How the image is read.
    #[command(flatten, next_help_heading = "Input")]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, help_heading = "Output")]
    pub format: Format,
    /// With --format json: add `tree`, where the bytes are by directory (what the HTML treemap draws).
    #[arg(long, help_heading = "Output")]
    pub tree: bool,
    /// Rows in the recommendation, CUDA-library and largest-file lists [default: 10].
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Output")]
    pub top: usize,
    /// How the report is printed.
    #[command(flatten, next_help_heading = "Output")]
    pub output: OutputArgs,
}

/// `mlsize diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old image (any input `analyze` reads).
    pub old: String,
    /// The new image.
    pub new: String,
    /// Exit 1 when NEW grew by more than SIZE (e.g. 100MB) or PERCENT (e.g. 5%) of OLD.
    #[arg(long, value_name = "SIZE|PERCENT")]
    pub fail_over: Option<String>,
    /// Apply --fail-over to compressed bytes instead of visible bytes.
    #[arg(long)]
    pub compressed: bool,
    /// How the images are read.
    #[command(flatten, next_help_heading = "Input")]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, help_heading = "Output")]
    pub format: Format,
    /// With --format json: add `tree`, where the bytes are by directory (what the HTML treemap draws).
    #[arg(long, help_heading = "Output")]
    pub tree: bool,
    /// Rows in the changed-file and package lists [default: 10].
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Output")]
    pub top: usize,
    /// How the report is printed.
    #[command(flatten, next_help_heading = "Output")]
    pub output: OutputArgs,
}

/// `mlsize check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The image to check (any input `analyze` reads).
    pub image: String,
    /// Budget file [default: mlsize.toml or .mlsize.toml in this directory or a parent].
    #[arg(long, value_name = "FILE")]
    pub budget: Option<String>,
    /// The previous image, for the growth rules (max_growth_bytes, max_growth_percent, category_growth).
    #[arg(long, value_name = "OLD_IMAGE")]
    pub baseline: Option<String>,
    /// Limit on visible bytes (overrides max_visible_bytes), e.g. 3GB.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Limit on compressed bytes (overrides max_compressed_bytes), e.g. 1.5GB.
    #[arg(long, value_name = "SIZE")]
    pub max_compressed: Option<String>,
    /// Limit on a category's bytes, e.g. pip-cache=0 (repeatable; overrides the categories table).
    #[arg(long, value_name = "NAME=SIZE")]
    pub max_category: Vec<String>,
    /// Also apply the rules of a dive .dive-ci file (lowestEfficiency, highestWastedBytes, highestUserWastedPercent).
    #[arg(long, value_name = "FILE")]
    pub dive_ci: Option<String>,
    /// Dockerfile whose lines the github format annotates.
    #[arg(long, value_name = "PATH")]
    pub dockerfile: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Table, help_heading = "Output")]
    pub format: CheckFormat,
    /// Files listed per failed rule in --format json, and changed files read against --baseline [default: 10].
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Output")]
    pub top: usize,
    /// How the images are read.
    #[command(flatten, next_help_heading = "Input")]
    pub input: InputArgs,
    /// How the report is printed.
    #[command(flatten, next_help_heading = "Output")]
    pub output: OutputArgs,
}

/// `mlsize fix`.
#[derive(Debug, Args)]
pub struct FixArgs {
    /// The image the Dockerfile built (any input `analyze` reads).
    pub image: String,
    /// The Dockerfile that built the image: the patch edits it (paths in the patch are as given here).
    #[arg(long, value_name = "PATH", default_value = "Dockerfile")]
    pub dockerfile: String,
    /// Fix only these findings (ids of analyze's recommendations, e.g. pip-cache,apt-cache).
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Leave these findings alone.
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Label the layers shared with this base image as the base's (as analyze --base).
    #[arg(long, value_name = "BASE")]
    pub base: Option<String>,
    /// How the image is read.
    #[command(flatten, next_help_heading = "Input")]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FixFormat::Patch, help_heading = "Output")]
    pub format: FixFormat,
    /// How the report is printed.
    #[command(flatten, next_help_heading = "Output")]
    pub output: OutputArgs,
}

/// Output formats of `fix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FixFormat {
    /// A unified diff for git apply / patch -p1, after a summary in # lines.
    Patch,
    /// The edits as data (lines, old and new text, finding, bytes), the estimate and the patch.
    Json,
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// One line per rule for people.
    Table,
    /// The results as JSON.
    Json,
    /// JUnit XML, one testcase per rule, for CI test reports.
    Junit,
    /// GitHub Actions workflow commands (::error), annotating --dockerfile lines.
    Github,
    /// Markdown, for pull-request comments.
    Markdown,
    /// One self-contained HTML page (no network access).
    Html,
}

/// `mlsize rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// TOML file of rules that add to or override the built-in ones.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<String>,
}

/// How images are read.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Platform to select from a multi-platform index (default: this machine's, or the only one).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Image to select when the archive holds several, by name and optional tag.
    #[arg(long = "image", value_name = "NAME[:TAG]")]
    pub image_name: Option<String>,
    /// Skip digest verification of blobs and diff_ids (faster; the report says "unverified").
    #[arg(long)]
    pub no_verify: bool,
    /// Skip hashing file contents: no duplicate groups, no moved files (for timing the hash's cost).
    #[arg(long, hide_short_help = true)]
    pub no_content_hash: bool,
    /// Layers read at once [default: number of CPUs].
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
    /// Stop when a layer decompresses to more than SIZE (guards against decompression bombs) [default: off].
    #[arg(long, value_name = "SIZE")]
    pub max_uncompressed: Option<String>,
    /// TOML file of category rules that add to or override the built-in ones.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<String>,
    /// Smallest file size for duplicate groups (e.g. 64KiB, 1MB).
    #[arg(long, value_name = "SIZE", default_value = "64KiB")]
    pub dup_min_bytes: String,
    /// Registry credentials (else MLSIZE_REGISTRY_USER/PASSWORD, then the auth files docker and podman use).
    #[arg(long, value_name = "USER:PASSWORD", help_heading = "Registry")]
    pub creds: Option<String>,
    /// Verify registry TLS certificates [default: true, except for localhost and 127.0.0.1, which may also be plain HTTP].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true, help_heading = "Registry")]
    pub tls_verify: Option<bool>,
    /// Directory of extra CA certificates for registries (ca.crt and other *.crt, as for skopeo).
    #[arg(long, value_name = "DIR", help_heading = "Registry")]
    pub cert_dir: Option<std::path::PathBuf>,
    /// Layer cache directory [default: $MLSIZE_CACHE_DIR, else $XDG_CACHE_HOME/mlsize, else the platform's cache directory; bounded by $MLSIZE_CACHE_MAX, default 2GiB].
    #[arg(long, value_name = "DIR", help_heading = "Cache")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Read every layer, neither using nor filling the layer cache [default: the cache is used].
    #[arg(long, help_heading = "Cache")]
    pub no_cache: bool,
}

/// How results are printed.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Decimal units (kB, MB, GB) instead of binary (KiB, MiB, GiB).
    #[arg(long)]
    pub si: bool,
    /// Print exact byte counts instead of human sizes.
    #[arg(long)]
    pub bytes: bool,
    /// No progress and no warnings on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the report to FILE instead of standard output (replaced whole: written aside, then renamed).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output_file: Option<std::path::PathBuf>,
    /// Colour in tables: auto (a terminal, unless NO_COLOR; CLICOLOR_FORCE forces it), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// With --format html: open the page in the system browser when there is a display (without -o, the page goes to a temporary file).
    #[arg(long)]
    pub open: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people.
    Table,
    /// The full report as JSON (schema mlsize/v1).
    Json,
    /// GitHub-flavoured markdown, for pull-request comments.
    Markdown,
    /// One self-contained HTML page with a treemap (no network access).
    Html,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
