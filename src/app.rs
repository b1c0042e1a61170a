//! The command-line driver: options → stages → renderer. Progress and warnings
//! go to stderr here; reports go to stdout through `render`.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::category::Rules;
use crate::cli::{
    AnalyzeArgs, CacheAction, CacheArgs, CheckArgs, CheckFormat, Cli, Command, DiffArgs, FixArgs,
    FixFormat, Format, InputArgs, OutputArgs,
};
use crate::error::Error;
use crate::layer::ScanOptions;
use crate::render::RenderOptions;
use crate::report::budget::{Budget, CheckReport};
use crate::report::{Analysis, ReportOptions, analyze};
use crate::size::parse_size;
use crate::source::cache::{self, LayerCache};
use crate::source::meta::{ImageMeta, Platform, Selection};
use crate::source::registry::{RegistryOptions, creds_from_env, parse_creds};
use crate::source::{LoadOptions, Opened, ScanCache, SizeCensus, open_reference};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(kind) = cli.generate {
        generate(kind, &mut io::stdout().lock())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(command) = cli.command else {
        // clap requires one of the two; this is for callers building a Cli.
        return Err(Error::Usage("a subcommand is required (see mlsize --help)".into()).into());
    };
    match command {
        Command::Analyze(a) => run_analyze(a),
        Command::Diff(d) => run_diff(d),
        Command::Check(c) => run_check(c),
        Command::Fix(f) => run_fix(f),
        Command::Cache(c) => run_cache(c),
        Command::Rules(r) => {
            let rules = load_rules(r.rules.as_deref())?;
            let mut out = io::stdout().lock();
            out.write_all(rules.describe().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a completion script or the man page, generated from the clap
/// definitions (so they never drift from the options).
pub fn generate(kind: crate::cli::Generate, out: &mut dyn Write) -> io::Result<()> {
    use crate::cli::Generate;
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let shell = match kind {
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
        Generate::CompletePowershell => Shell::PowerShell,
        Generate::CompleteElvish => Shell::Elvish,
        Generate::Man => return clap_mangen::Man::new(cmd).render(out),
        Generate::SchemaAnalyze
        | Generate::SchemaDiff
        | Generate::SchemaCheck
        | Generate::SchemaFix => {
            use crate::report::schema::{Kind, schema};
            let kind = match kind {
                Generate::SchemaAnalyze => Kind::Analyze,
                Generate::SchemaDiff => Kind::Diff,
                Generate::SchemaFix => Kind::Fix,
                _ => Kind::Check,
            };
            return crate::render::json::render(&schema(kind), out);
        }
    };
    clap_complete::generate(shell, &mut cmd, "mlsize", out);
    Ok(())
}

/// Loads the built-in rules, plus a user file when given.
pub fn load_rules(file: Option<&str>) -> Result<Rules> {
    match file {
        None => Ok(Rules::builtin()),
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
            Ok(Rules::with_user_file(&text, f)?)
        }
    }
}

/// Options derived from [`InputArgs`].
#[derive(Clone)]
pub struct InputOptions {
    /// Selection and scan options.
    pub load: LoadOptions,
    /// Compiled rules.
    pub rules: Arc<Rules>,
    /// Show progress on stderr.
    pub progress: bool,
    /// How registries are reached.
    pub registry: RegistryOptions,
}

/// Validates input arguments into options.
pub fn input_options(a: &InputArgs, quiet: bool) -> Result<InputOptions> {
    let platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    let max_uncompressed = a
        .max_uncompressed
        .as_deref()
        .map(|s| parse_size(s).map_err(|e| Error::Usage(format!("--max-uncompressed: {e}"))))
        .transpose()?;
    let threads = match a.threads {
        Some(0) => return Err(Error::Usage("-j/--threads must be at least 1".into()).into()),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let rules = Arc::new(load_rules(a.rules.as_deref())?);
    Ok(InputOptions {
        load: LoadOptions {
            selection: Selection {
                image: a.image_name.clone(),
                platform,
                verify: !a.no_verify,
            },
            scan: ScanOptions {
                verify: !a.no_verify,
                hash_content: !a.no_content_hash,
                hash_sizes: None,
                rules: rules.clone(),
                max_uncompressed_bytes: max_uncompressed,
                progress: None,
                cancel: None,
            },
            threads,
            cache: None,
            disk: layer_cache(a.cache_dir.as_deref(), a.no_cache)?,
            census: None,
            progress_total: None,
            layer_progress: None,
        },
        rules,
        progress: !quiet && io::stderr().is_terminal(),
        registry: registry_options(a)?,
    })
}

/// The layer cache a run uses: `None` with `--no-cache` (or when no
/// directory can be named).
fn layer_cache(dir: Option<&std::path::Path>, no_cache: bool) -> Result<Option<Arc<LayerCache>>> {
    if no_cache {
        return Ok(None);
    }
    let Some(dir) = dir
        .map(std::path::Path::to_path_buf)
        .or_else(cache::default_dir)
    else {
        return Ok(None);
    };
    Ok(Some(Arc::new(LayerCache::new(dir, cache_max()?))))
}

/// The cache's bound: `$MLSIZE_CACHE_MAX`, else 2 GiB.
fn cache_max() -> Result<u64> {
    match std::env::var("MLSIZE_CACHE_MAX") {
        Ok(v) if !v.trim().is_empty() => {
            Ok(parse_size(&v).map_err(|e| Error::Usage(format!("MLSIZE_CACHE_MAX: {e}")))?)
        }
        _ => Ok(cache::DEFAULT_MAX_BYTES),
    }
}

/// Ends a run's use of the layer cache (eviction, hit counts) and prints
/// its warnings.
fn finish_cache(opts: &InputOptions, quiet: bool) {
    if let Some(c) = &opts.load.disk {
        print_warnings(&c.finish(), quiet);
    }
}

/// `mlsize cache info | prune | clear`.
fn run_cache(c: CacheArgs) -> Result<ExitCode> {
    let Some(dir) = c.cache_dir.clone().or_else(cache::default_dir) else {
        return Err(Error::Usage(
            "no cache directory: set MLSIZE_CACHE_DIR or HOME, or pass --cache-dir".into(),
        )
        .into());
    };
    let shown = dir.display().to_string();
    let io_err = |e: io::Error| Error::io(&shown, e);
    let max = cache_max()?;
    let cache = LayerCache::new(dir.clone(), max);
    let size = |b: u64| crate::render::units::format_bytes(b, false);
    let mut out = io::stdout().lock();
    match c.action {
        CacheAction::Info => {
            let i = cache.info().map_err(io_err)?;
            let looked = i.hits + i.misses;
            writeln!(out, "cache:   {shown}")?;
            writeln!(
                out,
                "entries: {} ({} of at most {})",
                i.entries,
                size(i.bytes),
                size(max)
            )?;
            writeln!(
                out,
                "hits:    {} of {looked} layer lookups in {} runs{}",
                i.hits,
                i.runs,
                (i.hits * 100)
                    .checked_div(looked)
                    .map(|p| format!(" ({p}%)"))
                    .unwrap_or_default()
            )?;
        }
        CacheAction::Prune { max: m } => {
            let max = match m {
                Some(m) => parse_size(&m).map_err(|e| Error::Usage(format!("--max: {e}")))?,
                None => max,
            };
            let (n, b) = cache.prune(max).map_err(io_err)?;
            writeln!(out, "removed {n} entries ({}) from {shown}", size(b))?;
        }
        CacheAction::Clear => {
            let (n, b) = cache.clear().map_err(io_err)?;
            writeln!(out, "removed {n} entries ({}) from {shown}", size(b))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Registry options from `--creds`, `--tls-verify`, `--cert-dir` and the
/// environment.
fn registry_options(a: &InputArgs) -> Result<RegistryOptions> {
    let creds = match &a.creds {
        Some(c) => Some(parse_creds(c)?),
        None => creds_from_env(),
    };
    if let Some(dir) = &a.cert_dir
        && !dir.is_dir()
    {
        return Err(Error::Usage(format!(
            "--cert-dir '{}' is not a directory (it holds ca.crt and other *.crt files, as for skopeo)",
            dir.display()
        ))
        .into());
    }
    let mut opts = RegistryOptions {
        tls_verify: a.tls_verify,
        cert_dir: a.cert_dir.clone(),
        creds,
        ..RegistryOptions::default()
    };
    if let Some(t) = registry_timeout(std::env::var_os(REGISTRY_TIMEOUT_ENV).as_deref())? {
        opts.connect_timeout = opts.connect_timeout.min(t);
        opts.read_timeout = t;
    }
    Ok(opts)
}

/// Seconds a registry read may stall before the transfer resumes or fails
/// (default [`RegistryOptions::read_timeout`]); hidden from `--help`, for
/// slow links and for tests.
const REGISTRY_TIMEOUT_ENV: &str = "MLSIZE_REGISTRY_TIMEOUT";

/// Parses [`REGISTRY_TIMEOUT_ENV`]: unset or empty is `None`, else a positive
/// number of seconds (decimals allowed).
fn registry_timeout(v: Option<&std::ffi::OsStr>) -> Result<Option<Duration>> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let text = v.to_string_lossy();
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(Error::Usage(format!(
            "invalid {REGISTRY_TIMEOUT_ENV} '{text}': expected a number of seconds above 0, e.g. 120"
        ))
        .into()),
    }
}

/// Opens an image argument, applying the image its reference selects
/// (`oci:DIR:REF`) as `--image` would.
fn open_input(input: &str, opts: &InputOptions) -> Result<(Opened, LoadOptions)> {
    let opened = open_reference(input, &opts.registry)?;
    let mut load = opts.load.clone();
    if let Some(want) = &opened.image {
        match &load.selection.image {
            Some(given) if given != want => {
                return Err(Error::Usage(format!(
                    "'{input}' names the image '{want}' but --image asks for '{given}': give one of them"
                ))
                .into());
            }
            _ => load.selection.image = Some(want.clone()),
        }
    }
    Ok((opened, load))
}

/// Reads and analyses one image, with progress on stderr when asked.
pub fn load_analysis(input: &str, opts: &InputOptions, report: &ReportOptions) -> Result<Analysis> {
    let (opened, mut load) = open_input(input, opts)?;
    let mut report = report.clone();
    report.source = opened.described;
    let read = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    load.scan.progress = Some(read.clone());
    load.progress_total = Some(total.clone());
    let layers = Arc::new(crate::source::LayerProgress::default());
    if opts.progress {
        load.layer_progress = Some(layers.clone());
    }
    let done = Arc::new(AtomicBool::new(false));
    let shown = opts
        .progress
        .then(|| show_progress(input, read, total, layers, done.clone()));
    let loaded = opened.source.load(&load);
    done.store(true, Ordering::Relaxed);
    if let Some(h) = shown {
        let _ = h.join();
    }
    let loaded = loaded?;
    Ok(analyze(loaded, &opts.rules, &report))
}

/// Draws the progress of a load on stderr until `done`: a bar with the
/// total, percentage and time left once the loader knows the total, a
/// spinner with the bytes read so far while it does not (standard input, an
/// engine's export); under it, a line per blob being downloaded (a registry)
/// with its bytes and rate.
fn show_progress(
    input: &str,
    read: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    layers: Arc<crate::source::LayerProgress>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    let style = |template: &str| {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
    };
    let mp = MultiProgress::with_draw_target(NarrowStderr::target());
    let pb = mp.add(ProgressBar::new(0));
    pb.set_style(style(
        "{spinner} {msg}: read {bytes} of layer blobs ({binary_bytes_per_sec})",
    ));
    pb.set_message(crate::render::table::fit_path(input, 24));
    clear_on_interrupt(&mp);
    std::thread::spawn(move || {
        let mut sized = false;
        let mut lines: Vec<(u64, ProgressBar)> = Vec::new();
        while !done.load(Ordering::Relaxed) {
            let len = total.load(Ordering::Relaxed);
            if !sized && len > 0 {
                pb.set_length(len);
                pb.set_style(style(
                    "{msg} {wide_bar} {bytes}/{total_bytes} {percent}% {binary_bytes_per_sec} ETA {eta}",
                ));
                pb.reset_eta();
                sized = true;
            }
            pb.set_position(read.load(Ordering::Relaxed));
            if !sized {
                pb.tick();
            }
            // One line per blob being downloaded; gone when it is read.
            let now = layers.snapshot();
            lines.retain(|(id, bar)| {
                let alive = now.iter().any(|r| r.id == *id);
                if !alive {
                    bar.finish_and_clear();
                    mp.remove(bar);
                }
                alive
            });
            for r in &now {
                let bar = match lines.iter().find(|(id, _)| *id == r.id) {
                    Some((_, bar)) => bar.clone(),
                    None => {
                        let bar = mp.add(ProgressBar::new(r.total.unwrap_or(0)));
                        bar.set_style(style(match r.total {
                            Some(_) => {
                                "  {msg} {bar:24} {bytes}/{total_bytes} {binary_bytes_per_sec}"
                            }
                            None => "  {msg} {bytes} {binary_bytes_per_sec}",
                        }));
                        bar.set_message(r.label.clone());
                        lines.push((r.id, bar.clone()));
                        bar
                    }
                };
                bar.set_position(r.read.load(Ordering::Relaxed));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for (_, bar) in &lines {
            bar.finish_and_clear();
        }
        pb.finish_and_clear();
        let _ = mp.clear();
        if let Ok(mut bar) = ON_SCREEN.lock() {
            *bar = None;
        }
    })
}

/// Standard error as the progress bar sees it, two columns narrower than
/// the terminal: a terminal echoes Ctrl-C as `^C` after the bar, and after a
/// line as wide as the terminal that echo would start a new line, below the
/// bar, where clearing "the current line" would leave the bar on the screen.
#[derive(Debug)]
struct NarrowStderr(console::Term);

impl NarrowStderr {
    fn target() -> indicatif::ProgressDrawTarget {
        let term = console::Term::buffered_stderr();
        // As ProgressDrawTarget::stderr(): nothing where it would be garbage.
        if !term.is_term() || std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
            return indicatif::ProgressDrawTarget::hidden();
        }
        indicatif::ProgressDrawTarget::term_like_with_hz(Box::new(NarrowStderr(term)), 20)
    }
}

impl indicatif::TermLike for NarrowStderr {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(2)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The progress bars on screen, for the Ctrl-C handler to clear.
static ON_SCREEN: Mutex<Option<indicatif::MultiProgress>> = Mutex::new(None);

/// Makes Ctrl-C clear `pb` before exiting with 130 (128 + SIGINT, what a
/// shell reports for a command it interrupted). Without the handler SIGINT
/// kills the process mid-draw and the bar stays on the screen.
fn clear_on_interrupt(pb: &indicatif::MultiProgress) {
    static HANDLER: Once = Once::new();
    HANDLER.call_once(|| {
        // Fails only when another handler is set; the bar then stays, as before.
        let _ = ctrlc::set_handler(|| {
            if let Some(mp) = ON_SCREEN.lock().ok().and_then(|mut b| b.take()) {
                let _ = mp.clear();
            }
            std::process::exit(130);
        });
    });
    if let Ok(mut bar) = ON_SCREEN.lock() {
        *bar = Some(pb.clone());
    }
}

/// Reads only the metadata of an image (for `--base`).
pub fn load_meta(input: &str, opts: &InputOptions) -> Result<ImageMeta> {
    let (opened, load) = open_input(input, opts)?;
    Ok(opened.source.metadata(&load)?)
}

/// Report options shared by every command.
fn report_options(i: &InputArgs, top: usize, source: &str) -> Result<ReportOptions> {
    let dup_min_bytes =
        parse_size(&i.dup_min_bytes).map_err(|e| Error::Usage(format!("--dup-min-bytes: {e}")))?;
    Ok(ReportOptions {
        top,
        dup_min_bytes,
        base_diff_ids: None,
        source: source.to_string(),
        content_hashed: !i.no_content_hash,
    })
}

/// Reads two images at once, sharing the scans of layers both contain.
fn load_pair(
    old: &str,
    new: &str,
    opts: &mut InputOptions,
    i: &InputArgs,
    top: usize,
) -> Result<(Analysis, Analysis)> {
    opts.progress = false;
    opts.load.cache = Some(Arc::new(ScanCache::default()));
    // One failure stops both images' readers.
    opts.load.scan.cancel = Some(Arc::default());
    let (old_ro, new_ro) = (report_options(i, top, old)?, report_options(i, top, new)?);
    // One size census for both, so that moved files are found (see SizeCensus).
    let mut seats = SizeCensus::seats(2).into_iter();
    let (mut old_opts, mut new_opts) = (opts.clone(), opts.clone());
    old_opts.load.census = seats.next();
    new_opts.load.census = seats.next();
    let (a, b) = std::thread::scope(|s| {
        // Each side owns its options: when it ends, even early, its seat is
        // given up and the other side stops waiting for it.
        let a = s.spawn(move || load_analysis(old, &old_opts, &old_ro));
        let b = load_analysis(new, &new_opts, &new_ro);
        drop(new_opts);
        let a = a
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader of '{old}' panicked")));
        (a, b)
    });
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        // When both failed, one of them was stopped by the other's failure:
        // report the failure.
        (Err(a), Err(b)) if format!("{a:#}").contains(crate::layer::CANCELLED) => Err(b),
        (Err(a), _) => Err(a),
        (_, Err(b)) => Err(b),
    }
}

fn render_options(o: &OutputArgs, top: usize) -> RenderOptions {
    RenderOptions {
        si: o.si,
        exact: o.bytes,
        top,
        width: terminal_width(),
        color: crate::render::style::use_color(
            o.color,
            |k| std::env::var(k).ok(),
            io::stdout().is_terminal(),
        ),
    }
}

/// The table width: the terminal's when stdout is one, else `$COLUMNS`,
/// else 100 columns.
fn terminal_width() -> u16 {
    let tty = terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| w.0);
    pick_width(tty, std::env::var("COLUMNS").ok().as_deref())
}

/// The width from the terminal's size (`None` when stdout is not a
/// terminal), then from `$COLUMNS` (bash sets it without exporting it, so a
/// pipe gets it only when asked: `COLUMNS=200 mlsize ... | less`), then 100
/// columns; never under 60, below which the tables cannot fit anyway.
fn pick_width(tty: Option<u16>, columns: Option<&str>) -> u16 {
    tty.filter(|&w| w > 0)
        .or_else(|| columns?.trim().parse().ok().filter(|&w: &u16| w > 0))
        .unwrap_or(100)
        .max(60)
}

/// Prints warnings on stderr (at most 20, then a count).
pub fn print_warnings(warnings: &[String], quiet: bool) {
    if quiet {
        return;
    }
    let mut err = io::stderr().lock();
    for w in warnings.iter().take(20) {
        let _ = writeln!(err, "mlsize: warning: {w}");
    }
    if warnings.len() > 20 {
        let _ = writeln!(
            err,
            "mlsize: warning: ... and {} more (all are in --format json)",
            warnings.len() - 20
        );
    }
}

/// The diff_ids of `--base`: only its metadata is read, with its own
/// platform/name selection.
fn base_diff_ids(base: Option<&str>, input: &InputArgs) -> Result<Option<Vec<String>>> {
    let Some(b) = base else { return Ok(None) };
    let mut base_opts = input_options(input, true)?;
    base_opts.load.selection.image = None;
    let meta = load_meta(b, &base_opts).with_context(|| format!("reading --base '{b}'"))?;
    Ok(Some(meta.config.rootfs.diff_ids))
}

fn run_analyze(a: AnalyzeArgs) -> Result<ExitCode> {
    let opts = input_options(&a.input, a.output.quiet)?;
    let base_diff_ids = base_diff_ids(a.base.as_deref(), &a.input)?;
    let mut report_opts = report_options(&a.input, a.top, &a.image)?;
    report_opts.base_diff_ids = base_diff_ids;
    check_output_args(&a.output, a.format == Format::Html)?;
    let analysis = load_analysis(&a.image, &opts, &report_opts);
    finish_cache(&opts, a.output.quiet);
    let analysis = analysis?;
    let report = &analysis.report;
    print_warnings(&report.warnings, a.output.quiet);
    let ro = render_options(&a.output, a.top);
    let tree = (a.format == Format::Html || (a.format == Format::Json && a.tree)).then(|| {
        crate::report::tree::build(
            &analysis.inodes,
            &opts.rules,
            crate::report::tree::NODE_BUDGET,
        )
    });
    let data = crate::report::schema::AnalyzeOutput {
        report,
        tree: tree.as_ref(),
    };
    write_report(&a.output, |out| match a.format {
        Format::Table => crate::render::table::render(report, &ro, out),
        Format::Json => crate::render::json::render(&data, out),
        Format::Markdown => crate::render::markdown::render(report, &ro, out),
        Format::Html => crate::render::html::render_analyze(&data, &ro, out),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_fix(a: FixArgs) -> Result<ExitCode> {
    check_output_args(&a.output, false)?;
    let ids = |v: &[String], flag: &str| -> Result<std::collections::BTreeSet<String>> {
        let mut out = std::collections::BTreeSet::new();
        for id in v.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if !crate::fix::FINDINGS.contains(&id) {
                return Err(Error::Usage(format!(
                    "{flag}: unknown finding '{id}'; known: {}",
                    crate::fix::FINDINGS.join(", ")
                ))
                .into());
            }
            out.insert(id.to_string());
        }
        Ok(out)
    };
    let selection = crate::fix::Selection {
        only: (!a.only.is_empty())
            .then(|| ids(&a.only, "--only"))
            .transpose()?,
        skip: ids(&a.skip, "--skip")?,
    };
    // The Dockerfile first: a wrong path fails before the image is read.
    let text = read_text(&a.dockerfile)?;
    let opts = input_options(&a.input, a.output.quiet)?;
    let mut report_opts = report_options(&a.input, 10, &a.image)?;
    report_opts.base_diff_ids = base_diff_ids(a.base.as_deref(), &a.input)?;
    let analysis = load_analysis(&a.image, &opts, &report_opts);
    finish_cache(&opts, a.output.quiet);
    let analysis = analysis?;
    print_warnings(&analysis.report.warnings, a.output.quiet);
    let mut report =
        crate::fix::plan(&analysis, &text, &a.dockerfile, &selection).map_err(Error::Usage)?;
    let ro = render_options(&a.output, 10);
    report.patch = crate::render::fix::patch(&report, &ro);
    write_report(&a.output, |out| match a.format {
        FixFormat::Patch => crate::render::fix::render_text(&report, &ro, out),
        FixFormat::Json => crate::render::json::render(&report, out),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Refuses `--open` with a format that is not a page, before any work.
fn check_output_args(o: &OutputArgs, html: bool) -> Result<()> {
    if o.open && !html {
        return Err(Error::Usage("--open needs --format html".into()).into());
    }
    Ok(())
}

/// Writes the report where `-o`/`--open` say (standard output by default).
/// A file is written beside its destination and renamed over it, so a
/// reader never sees half a report and a failed run leaves the old one.
fn write_report(
    o: &OutputArgs,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let path = match (&o.output_file, o.open) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => {
            Some(std::env::temp_dir().join(format!("mlsize-report-{}.html", std::process::id())))
        }
        (None, false) => None,
    };
    let Some(path) = path else {
        let mut out = io::BufWriter::new(io::stdout().lock());
        render(&mut out)?;
        out.flush()?;
        return Ok(());
    };
    let shown = path.display().to_string();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&shown, e))?;
    {
        let mut out = io::BufWriter::new(tmp.as_file_mut());
        render(&mut out).map_err(|e| Error::io(&shown, e))?;
        out.flush().map_err(|e| Error::io(&shown, e))?;
    }
    // A temporary file is private (0600); a report is not: keep the mode
    // of the file it replaces, else the usual 0644.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&shown, e))?;
    }
    tmp.persist(&path).map_err(|e| Error::io(&shown, e.error))?;
    if o.open {
        open_in_browser(&path, o.quiet);
    }
    Ok(())
}

/// Opens a page in the system browser when there is a display to show it
/// on; otherwise says where the page is.
fn open_in_browser(path: &std::path::Path, quiet: bool) {
    let display = cfg!(target_os = "macos")
        || cfg!(windows)
        || std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty());
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let opened = display
        && std::process::Command::new(opener)
            .arg(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok();
    if !opened && !quiet {
        let _ = writeln!(
            io::stderr().lock(),
            "mlsize: no display to open a browser on; the report is at {}",
            path.display()
        );
    }
}

/// Parses `--fail-over`: a size, or a percentage of `base`.
pub fn parse_growth_limit(s: &str, base: u64) -> Result<u64, Error> {
    if let Some(p) = s.trim().strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| {
            Error::Usage(format!(
                "invalid percentage '{s}': expected a number followed by %, e.g. 5%"
            ))
        })?;
        if !(p.is_finite() && p >= 0.0) {
            return Err(Error::Usage(format!("invalid percentage '{s}'")));
        }
        return Ok((base as f64 * p / 100.0).floor() as u64);
    }
    parse_size(s).map_err(Error::Usage)
}

fn run_diff(a: DiffArgs) -> Result<ExitCode> {
    check_output_args(&a.output, a.format == Format::Html)?;
    let mut opts = input_options(&a.input, a.output.quiet)?;
    if let Some(f) = &a.fail_over {
        parse_growth_limit(f, 0)?;
    }
    let pair = load_pair(&a.old, &a.new, &mut opts, &a.input, a.top);
    finish_cache(&opts, a.output.quiet);
    let (old, new) = pair?;
    let mut warnings: Vec<String> = old
        .report
        .warnings
        .iter()
        .map(|w| format!("old: {w}"))
        .collect();
    warnings.extend(new.report.warnings.iter().map(|w| format!("new: {w}")));
    print_warnings(&warnings, a.output.quiet);
    let mut d = crate::report::diff::diff(&old, &new, a.top);
    if let Some(f) = &a.fail_over {
        let (measure, o, n) = if a.compressed {
            (
                "download_bytes",
                old.report.image.download_bytes,
                new.report.image.download_bytes,
            )
        } else {
            (
                "visible_bytes",
                old.report.image.visible_bytes,
                new.report.image.visible_bytes,
            )
        };
        let limit_bytes = parse_growth_limit(f, o)?;
        let growth = crate::report::diff::signed_delta(o, n);
        d.threshold = Some(crate::report::diff::Threshold {
            measure: measure.into(),
            limit: f.clone(),
            limit_bytes,
            growth_bytes: growth,
            exceeded: growth > i128::from(limit_bytes),
        });
    }
    let ro = render_options(&a.output, a.top);
    let growth = (a.format == Format::Html || (a.format == Format::Json && a.tree)).then(|| {
        crate::report::tree::growth(&old.inodes, &new.inodes, crate::report::tree::NODE_BUDGET)
    });
    let data = crate::report::schema::DiffOutput {
        diff: &d,
        growth: growth.as_ref(),
    };
    write_report(&a.output, |out| match a.format {
        Format::Table => crate::render::diff::render_table(&d, &ro, out),
        Format::Json => crate::render::json::render(&data, out),
        Format::Markdown => crate::render::diff::render_markdown(&d, &ro, out),
        Format::Html => crate::render::html::render_diff(&data, &ro, out),
    })?;
    let failed = d.threshold.as_ref().is_some_and(|t| t.exceeded);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Finds `mlsize.toml` or `.mlsize.toml` in `dir` or its parents (as rustfmt and ruff do).
pub fn find_budget_file(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    for d in dir.ancestors() {
        for name in ["mlsize.toml", ".mlsize.toml"] {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn read_text(path: &str) -> Result<String> {
    Ok(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?)
}

fn run_check(a: CheckArgs) -> Result<ExitCode> {
    check_output_args(&a.output, a.format == CheckFormat::Html)?;
    let mut opts = input_options(&a.input, a.output.quiet)?;
    // The budget: the file, then the dive rules, then the flags (which win).
    let budget_file = match &a.budget {
        Some(b) => Some(b.clone()),
        None => std::env::current_dir()
            .ok()
            .and_then(|d| find_budget_file(&d))
            .map(|p| p.display().to_string()),
    };
    let mut budget = match &budget_file {
        Some(f) => Budget::parse(&read_text(f)?, f, &opts.rules)?,
        None => Budget::default(),
    };
    if let Some(f) = &a.dive_ci {
        budget.merge(Budget::from_dive_ci(&read_text(f)?, f)?);
    }
    // Flags win over the file; each rule says which flag set it.
    let mut flags = Budget::default();
    let flag_errors = |e: String| Error::Usage(e);
    if let Some(v) = &a.max_size {
        flags
            .set(
                "max_visible_bytes",
                &toml::Value::String(v.clone()),
                "--max-size",
            )
            .map_err(flag_errors)?;
    }
    if let Some(v) = &a.max_compressed {
        flags
            .set(
                "max_compressed_bytes",
                &toml::Value::String(v.clone()),
                "--max-compressed",
            )
            .map_err(flag_errors)?;
    }
    for c in &a.max_category {
        let (name, size) = c.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "--max-category '{c}': expected NAME=SIZE, e.g. pip-cache=0"
            ))
        })?;
        flags
            .set_category(
                "categories",
                name.trim(),
                &toml::Value::String(size.trim().to_string()),
                &format!("--max-category {}", name.trim()),
                &opts.rules,
            )
            .map_err(flag_errors)?;
    }
    budget.merge(flags);
    if budget.is_empty() {
        return Err(Error::Usage(
            "no budget: write an mlsize.toml (see the README), pass --budget FILE, or give --max-size / --max-category".into(),
        )
        .into());
    }
    if budget.needs_baseline() && a.baseline.is_none() {
        return Err(Error::Usage(
            "the budget has growth rules (max_growth_bytes, max_growth_percent or [category_growth]): pass --baseline OLD_IMAGE".into(),
        )
        .into());
    }
    let dockerfile = match &a.dockerfile {
        Some(p) => Some(crate::history::dockerfile::parse(&read_text(p)?)),
        None => None,
    };
    let loaded = match &a.baseline {
        None => report_options(&a.input, a.top, &a.image)
            .and_then(|ro| load_analysis(&a.image, &opts, &ro))
            .map(|image| (image, None)),
        Some(b) => load_pair(b, &a.image, &mut opts, &a.input, a.top).map(|(old, new)| {
            let d = crate::report::diff::diff(&old, &new, a.top);
            (new, Some(d))
        }),
    };
    finish_cache(&opts, a.output.quiet);
    let (image, baseline) = loaded?;
    print_warnings(&image.report.warnings, a.output.quiet);
    let mut rules = crate::report::budget::check(&image, &opts.rules, &budget, baseline.as_ref());
    if let Some(df) = &dockerfile {
        let history = &image.report.history;
        let entries: Vec<&str> = history.iter().map(|h| h.instruction.as_str()).collect();
        let lines = crate::history::dockerfile::match_history(df, &entries);
        let line_of = |layer: usize| {
            history
                .iter()
                .zip(&lines)
                .find(|(h, _)| h.layer_index == Some(layer))
                .and_then(|(_, line)| *line)
        };
        for r in &mut rules {
            for c in &mut r.instructions {
                c.dockerfile_line = line_of(c.layer_index);
            }
        }
    }
    let report = CheckReport {
        schema: crate::report::SCHEMA,
        kind: "check",
        image: crate::report::diff::side(&image.report),
        baseline: a.baseline.clone(),
        passed: rules.iter().all(|r| r.passed),
        rules,
        notes: budget.notes.clone(),
        dockerfile: a.dockerfile.clone(),
        dockerfile_from_line: dockerfile
            .as_deref()
            .map(|df| crate::history::dockerfile::final_from_line(df).unwrap_or(1)),
    };
    let ro = render_options(&a.output, a.top);
    use crate::render::check;
    write_report(&a.output, |out| match a.format {
        CheckFormat::Table => check::render_table(&report, &ro, out),
        CheckFormat::Json => crate::render::json::render(&report, out),
        CheckFormat::Junit => check::render_junit(&report, &ro, out),
        CheckFormat::Markdown => check::render_markdown(&report, &ro, out),
        CheckFormat::Html => crate::render::html::render_check(&report, &ro, out),
        CheckFormat::Github => check::render_github(&report, &ro, out),
    })?;
    if a.format == CheckFormat::Github {
        {
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                let mut md = Vec::new();
                check::render_markdown(&report, &ro, &mut md)?;
                md.push(b'\n');
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::io(path.to_string_lossy(), e))?;
                f.write_all(&md)?;
            }
        }
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_from_terminal_then_columns_then_100() {
        let cases: &[(Option<u16>, Option<&str>, u16)] = &[
            (Some(80), None, 80),
            (Some(80), Some("200"), 80),
            (Some(0), Some("132"), 132),
            (None, Some("132"), 132),
            (None, Some(" 90 "), 90),
            (None, Some("wide"), 100),
            (None, Some("0"), 100),
            (None, Some(""), 100),
            (None, None, 100),
            (Some(40), None, 60),
            (None, Some("20"), 60),
        ];
        for &(tty, columns, want) in cases {
            assert_eq!(
                pick_width(tty, columns),
                want,
                "terminal {tty:?}, COLUMNS {columns:?}"
            );
        }
    }

    #[test]
    fn registry_timeout_from_env() {
        let ok: &[(Option<&str>, Option<Duration>)] = &[
            (None, None),
            (Some(""), None),
            (Some("1"), Some(Duration::from_secs(1))),
            (Some(" 120 "), Some(Duration::from_secs(120))),
            (Some("0.5"), Some(Duration::from_millis(500))),
        ];
        for &(v, want) in ok {
            let got = registry_timeout(v.map(std::ffi::OsStr::new)).unwrap();
            assert_eq!(got, want, "MLSIZE_REGISTRY_TIMEOUT={v:?}");
        }
        for v in ["0", "-1", "ten", "inf", "NaN", "100000"] {
            let e = registry_timeout(Some(std::ffi::OsStr::new(v))).unwrap_err();
            assert_eq!(
                format!("{e:#}"),
                format!(
                    "invalid MLSIZE_REGISTRY_TIMEOUT '{v}': expected a number of seconds above 0, e.g. 120"
                ),
            );
        }
    }
}
