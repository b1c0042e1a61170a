//! Recommendations: what to change in which instruction, and what it saves.
//!
//! Each recommendation targets a set of inodes; an inode counts for the first,
//! most specific recommendation that targets it, and the estimate removes the
//! union of all targeted inodes, so overlapping advice is never counted twice.
//!
//! A recommendation holds figures and identifiers only (bytes, layer indexes,
//! package names) and prose without numbers: the renderers put the numbers,
//! units and layer numbers into words.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::{CudaFamily, ImageTotals, LayerReport};
use crate::category::Rules;
use crate::overlay::Inode;

/// One fix.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Recommendation {
    /// Stable identifier of the kind of fix (`pip-cache`, `deleted-later`, ...).
    pub id: String,
    /// What is wrong, in words (no figures: they are the fields below).
    pub title: String,
    /// The layer (0-based) whose instruction wrote the bytes.
    pub layer_index: Option<usize>,
    /// That layer's instruction.
    pub instruction: Option<String>,
    /// Whether that layer comes from the base image (see
    /// [`LayerReport::base_image`]): the fix is then about the base image,
    /// not about an instruction of yours.
    pub base_image: bool,
    /// For `deleted-later` and `overwritten-later`: the later layer (0-based)
    /// that deletes or rewrites the files.
    pub cause_layer_index: Option<usize>,
    /// That later layer's instruction.
    pub cause_instruction: Option<String>,
    /// Bytes this fix removes from the image (content bytes), not counting
    /// bytes a more specific fix already removes.
    pub savings_bytes: u64,
    /// The part of `savings_bytes` that is visible in the final filesystem.
    pub visible_bytes: u64,
    /// The part of `savings_bytes` that is wasted (deleted or overwritten later).
    pub wasted_bytes: u64,
    /// Estimated compressed bytes saved: each file's bytes times its layer's
    /// compression ratio (see [`compressed_ratio`]).
    pub compressed_bytes: u64,
    /// Number of files the fix removes.
    pub files: u64,
    /// How many things the title counts, when it counts any (the CUDA
    /// libraries shipped twice).
    pub count: Option<usize>,
    /// Packages named by the finding, sorted: for `apt-install-recommends`
    /// those apt installed only as recommendations (from the layer's dpkg
    /// status), compilers and `-dev` packages first, or, when the layer has
    /// none, those that brought compilers, headers or static libraries.
    pub packages: Vec<String>,
    /// What to write instead.
    pub fix: String,
}

/// The image after every recommendation is applied.
#[derive(Debug, Clone, Serialize, Default, schemars::JsonSchema)]
pub struct Estimate {
    /// Content bytes before (what all layers ship uncompressed).
    pub content_bytes_before: u64,
    /// Content bytes after (no targeted file remains).
    pub content_bytes: u64,
    /// Visible bytes before.
    pub visible_bytes_before: u64,
    /// Visible bytes after.
    pub visible_bytes: u64,
    /// Compressed bytes before: the image's `download_bytes` (the blobs as
    /// stored, with the gzip estimate for layers stored uncompressed).
    pub compressed_bytes_before: u64,
    /// Compressed bytes after, from each layer's own compression ratio.
    pub compressed_bytes: u64,
    /// `content_bytes_before − content_bytes`.
    pub savings_bytes: u64,
    /// Savings as a percentage of `content_bytes_before`, one decimal.
    pub savings_percent: f64,
}

/// The files each recommendation removes, in the order of the report's
/// recommendations (indexes into [`super::Analysis::inodes`]).
pub type Targets = Vec<Vec<u32>>;

struct Draft {
    id: &'static str,
    title: &'static str,
    layer: Option<usize>,
    cause: Option<usize>,
    count: Option<usize>,
    packages: Vec<String>,
    fix: String,
    targets: Vec<usize>,
}

impl Draft {
    fn new(id: &'static str, title: &'static str, layer: Option<usize>, fix: String) -> Draft {
        Draft {
            id,
            title,
            layer,
            cause: None,
            count: None,
            packages: Vec::new(),
            fix,
            targets: Vec::new(),
        }
    }
}

const STAGE: &str =
    "build in a -devel stage and COPY --from only the artifacts into a runtime stage";

const BASE_CACHE_FIX: &str = "the base image ships them, and deleting them in a later layer does not shrink the image: pick a base image built without them (e.g. a -slim variant), or copy only what you need into a fresh stage (COPY --from)";

const BASE_DEV_FIX: &str = "the base image ships them: use a smaller variant of it (for nvidia/cuda: -runtime or -base instead of -devel), or use it as a build stage and COPY --from only the artifacts into a slim runtime stage";

fn cache_advice(id: &str, base: bool) -> Option<(&'static str, String)> {
    if base {
        let title = match id {
            "pip-cache" => "pip's download cache shipped by the base image",
            "uv-cache" => "uv's cache shipped by the base image",
            "conda-pkgs" => "conda's package cache shipped by the base image",
            "apt-cache" => "apt lists and archives shipped by the base image",
            _ => return None,
        };
        return Some((title, BASE_CACHE_FIX.into()));
    }
    let (title, fix) = match id {
        "pip-cache" => (
            "pip's download cache left in the layer",
            "add --no-cache-dir to pip install (or set PIP_NO_CACHE_DIR=1), or keep the cache out of the image with RUN --mount=type=cache,target=/root/.cache/pip",
        ),
        "uv-cache" => (
            "uv's cache left in the layer",
            "add --no-cache to uv (or set UV_NO_CACHE=1), or use RUN --mount=type=cache,target=/root/.cache/uv",
        ),
        "conda-pkgs" => (
            "conda's package cache left in the layer",
            "end the same RUN with 'conda clean -afy' (or 'micromamba clean -afy')",
        ),
        "apt-cache" => (
            "apt lists and archives left in the layer",
            "end the same RUN with 'rm -rf /var/lib/apt/lists/*' (and 'apt-get clean'), or use RUN --mount=type=cache,target=/var/cache/apt",
        ),
        _ => return None,
    };
    Some((title, fix.into()))
}

fn dev_advice(cat: &str, torch: bool, base: bool) -> Option<(&'static str, String)> {
    let (title, why) = match cat {
        "nsight" => (
            "Nsight profilers in the final image",
            "profilers are not needed at run time",
        ),
        "cupti" if torch => (
            "CUPTI profiling libraries in the final image",
            "PyTorch links libcupti.so.12, so the copy under nvidia/cuda_cupti is kept; the rest (extras/CUPTI, libnvperf, samples) is for profiling only",
        ),
        "cupti" => (
            "CUPTI profiling libraries in the final image",
            "CUPTI is for profiling only",
        ),
        "headers" => (
            "C/C++/CUDA headers in the final image",
            "headers are only needed to compile",
        ),
        "static-libs" => (
            "static libraries in the final image",
            "static libraries are only needed to link",
        ),
        "cuda-tools" => (
            "CUDA compilers and tools (nvcc, nvvm) in the final image",
            "compilers are only needed to build",
        ),
        _ => return None,
    };
    let fix = if base {
        format!("{why}; {BASE_DEV_FIX}")
    } else if cat == "nsight" {
        format!("{why}: {STAGE}, or use a nvidia/cuda -runtime/-base image")
    } else {
        format!("{why}: {STAGE}")
    };
    Some((title, fix))
}

/// The compression ratio of a layer as `(compressed, uncompressed)`: what a
/// pull downloads for it (the blob as stored, or the gzip estimate of a layer
/// stored uncompressed) against its tar stream. Every compressed figure that
/// mlsize estimates for part of a layer scales by this ratio.
pub fn compressed_ratio(l: &LayerReport) -> (u64, u64) {
    (l.download_bytes(), l.tar_bytes)
}

/// `bytes` scaled by a layer's compression ratio.
pub fn compressed_share(bytes: u64, l: &LayerReport) -> u64 {
    let (c, t) = compressed_ratio(l);
    if t == 0 {
        return 0;
    }
    (u128::from(bytes) * u128::from(c) / u128::from(t)) as u64
}

/// Whether an instruction installs Debian packages with recommends on.
///
/// `apt-get install` and `apt install` install recommended packages unless
/// told not to (`--no-install-recommends`, `-o APT::Install-Recommends=false`).
pub fn installs_recommends(instruction: &str) -> bool {
    if !instruction.starts_with("RUN ") {
        return false;
    }
    let words: Vec<&str> = instruction.split_whitespace().collect();
    let installs = words.windows(2).any(|w| {
        matches!(
            w[0],
            "apt-get" | "apt" | "/usr/bin/apt-get" | "/usr/bin/apt"
        ) && w[1] == "install"
    }) || words.windows(3).any(|w| {
        // `apt-get -y install`, `apt-get -qq install`
        matches!(w[0], "apt-get" | "apt") && w[1].starts_with('-') && w[2] == "install"
    });
    if !installs {
        return false;
    }
    let lower = instruction.to_ascii_lowercase();
    !(lower.contains("--no-install-recommends")
        || lower.contains("install-recommends=false")
        || lower.contains("install-recommends=0")
        || lower.contains("install-recommends \"false\"")
        || lower.contains("install-recommends=\"false\""))
}

/// Files that compilers and static libraries bring (what a `-dev` or
/// `build-essential` dependency installs), by path.
fn is_build_tooling(path: &str, category: &str) -> bool {
    if matches!(category, "headers" | "static-libs") {
        return true;
    }
    if path.starts_with("/usr/lib/gcc/") || path.starts_with("/usr/libexec/gcc/") {
        return true;
    }
    let Some(name) = path.strip_prefix("/usr/bin/") else {
        return false;
    };
    // `x86_64-linux-gnu-gcc-12` → `x86_64-linux-gnu-gcc` → `gcc`
    let unversioned = match name.rsplit_once('-') {
        Some((head, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            head
        }
        _ => name,
    };
    let tool = unversioned.rsplit('-').next().unwrap_or(unversioned);
    matches!(
        tool,
        "gcc" | "g++" | "c++" | "cc" | "cpp" | "as" | "ld" | "ld.bfd" | "ld.gold" | "lto-dump"
    ) || name.starts_with("x86_64-linux-gnu-")
        || name.starts_with("aarch64-linux-gnu-")
}

/// Debian packages whose file list (`/var/lib/dpkg/info/NAME.list`) a layer
/// writes and that bring build tooling.
fn build_packages(inodes: &[Inode], layer: u32) -> Vec<String> {
    let mut out = BTreeSet::new();
    for n in inodes.iter().filter(|n| n.layer == layer) {
        let Some(file) = n.path.strip_prefix("/var/lib/dpkg/info/") else {
            continue;
        };
        let Some(pkg) = file.strip_suffix(".list") else {
            continue;
        };
        let pkg = pkg.split(':').next().unwrap_or(pkg);
        if is_build_package(pkg) {
            out.insert(pkg.to_string());
        }
    }
    out.into_iter().collect()
}

/// A Debian package that builds things: compilers, binutils, `-dev`.
fn is_build_package(pkg: &str) -> bool {
    [
        "gcc",
        "g++",
        "cpp",
        "binutils",
        "build-essential",
        "dpkg-dev",
    ]
    .iter()
    .any(|p| pkg == *p || pkg.starts_with(&format!("{p}-")))
        || pkg.ends_with("-dev")
}

/// The layer holding most of `targets`' bytes (the lowest on a tie).
fn main_layer(inodes: &[Inode], targets: &[usize]) -> Option<usize> {
    let mut per_layer: BTreeMap<usize, u64> = BTreeMap::new();
    for &i in targets {
        *per_layer.entry(inodes[i].layer as usize).or_default() += inodes[i].bytes;
    }
    per_layer
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(l, _)| *l)
}

/// Builds the ranked recommendations, the files each one removes, and the
/// what-if estimate.
pub fn recommend(
    inodes: &[Inode],
    layers: &[LayerReport],
    cuda: &[CudaFamily],
    rules: &Rules,
    totals: &ImageTotals,
    compressed_before: u64,
) -> (Vec<Recommendation>, Targets, Estimate) {
    let mut drafts: Vec<Draft> = Vec::new();
    let cat_of = |name: &str| rules.index_of(name);
    let is_base = |l: Option<usize>| {
        l.and_then(|l| layers.get(l))
            .is_some_and(|l| l.base_image.is_some())
    };

    // 1. Caches, per layer and category.
    for cat in ["pip-cache", "conda-pkgs", "apt-cache"] {
        let Some(ci) = cat_of(cat) else { continue };
        let mut per_layer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, n) in inodes.iter().enumerate() {
            // A cache file hard-linked into site-packages (uv's default) is
            // not freed by removing the cache.
            if n.category == ci && !n.named_elsewhere {
                per_layer.entry(n.layer as usize).or_default().push(i);
            }
        }
        for (layer, targets) in per_layer {
            let uv = cat == "pip-cache"
                && targets
                    .iter()
                    .filter(|&&i| inodes[i].path.contains("/.cache/uv/"))
                    .count()
                    * 2
                    > targets.len();
            let id = if uv { "uv-cache" } else { cat };
            let base = is_base(Some(layer));
            let Some((mut title, fix)) = cache_advice(id, base) else {
                continue;
            };
            if !base && targets.iter().all(|&i| !inodes[i].visible) {
                title = match id {
                    "pip-cache" => {
                        "pip's download cache left in the layer (deleted by a later layer, but still shipped in this one)"
                    }
                    "uv-cache" => {
                        "uv's cache left in the layer (deleted by a later layer, but still shipped in this one)"
                    }
                    "conda-pkgs" => {
                        "conda's package cache left in the layer (deleted by a later layer, but still shipped in this one)"
                    }
                    _ => {
                        "apt lists and archives left in the layer (deleted by a later layer, but still shipped in this one)"
                    }
                };
            }
            let mut d = Draft::new(id, title, Some(layer), fix);
            d.targets = targets;
            drafts.push(d);
        }
    }

    // 2. apt-get install with recommends that brought compilers and static
    // libraries: said before the generic headers/static-libs advice, which
    // would otherwise claim the same files.
    let names: Vec<&str> = rules.names().collect();
    for l in layers.iter().filter(|l| l.base_image.is_none()) {
        if !installs_recommends(&l.instruction) {
            continue;
        }
        let targets: Vec<usize> = (0..inodes.len())
            .filter(|&i| {
                let n = &inodes[i];
                n.visible
                    && !n.named_elsewhere
                    && n.layer as usize == l.index
                    && is_build_tooling(
                        n.shown_path(),
                        names.get(usize::from(n.category)).copied().unwrap_or(""),
                    )
            })
            .collect();
        let compilers = targets.iter().any(|&i| {
            let p = inodes[i].shown_path();
            p.starts_with("/usr/lib/gcc/")
                || p.starts_with("/usr/libexec/gcc/")
                || p.starts_with("/usr/bin/")
                || p.ends_with(".a")
        });
        if targets.is_empty() || !compilers {
            continue;
        }
        let mut d = Draft::new(
            "apt-install-recommends",
            "apt-get install without --no-install-recommends brought compilers, headers and static libraries",
            Some(l.index),
            "add --no-install-recommends to apt-get install (recommended packages pull in compilers, headers and static libraries); if you need them to build something, build in a separate stage and COPY --from the result".into(),
        );
        // What the flag really removes: every package apt installed only as
        // a recommendation, when the layer's dpkg status says which (in the
        // real build of tests/fix.rs, counting the compilers alone predicted
        // an image 18.5% too large); else the compilers, headers and static
        // libraries.
        match super::apt::recommended_files(inodes, l.index as u32, &l.instruction) {
            Some((files, mut packages)) if !files.is_empty() => {
                // The build tools first: they are what the title names.
                packages.sort_by_key(|p| (!is_build_package(p), p.clone()));
                d.packages = packages;
                d.targets = files
                    .into_iter()
                    .map(|f| f as usize)
                    .filter(|&i| !inodes[i].named_elsewhere)
                    .collect();
            }
            _ => {
                d.packages = build_packages(inodes, l.index as u32);
                d.targets = targets;
            }
        }
        drafts.push(d);
    }

    // 3. CUDA libraries shipped twice: every copy but the kept (largest) one.
    if !cuda.is_empty() {
        let by_path: HashMap<&str, usize> = inodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.visible)
            .map(|(i, n)| (n.shown_path(), i))
            .collect();
        let mut targets = Vec::new();
        // The fix is to change the base image, so name the layer that brings
        // the toolkit copies (`/usr/local/cuda*`) when there is one.
        let mut per_layer: BTreeMap<usize, u64> = BTreeMap::new();
        let mut toolkit_layers: BTreeMap<usize, u64> = BTreeMap::new();
        for fam in cuda {
            for (k, c) in fam.copies.iter().enumerate() {
                if c.path.starts_with("/usr/local/cuda") {
                    *toolkit_layers.entry(c.layer_index).or_default() += c.bytes;
                }
                if k == 0 {
                    continue;
                }
                if let Some(&i) = by_path.get(c.path.as_str()) {
                    targets.push(i);
                    *per_layer.entry(c.layer_index).or_default() += c.bytes;
                }
            }
        }
        if !toolkit_layers.is_empty() {
            per_layer = toolkit_layers;
        }
        let layer = per_layer
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(l, _)| *l);
        let mut d = Draft::new(
            "cuda-duplicates",
            "CUDA libraries shipped twice",
            layer,
            "PyTorch's wheels bundle the CUDA libraries they need (nvidia-* packages), so a nvidia/cuda -runtime or -devel base duplicates them: use nvidia/cuda:<version>-base-<os> or a slim Python base, or install torch from the CPU/driver-only index if the base provides CUDA".into(),
        );
        d.count = Some(cuda.len());
        d.targets = targets;
        drafts.push(d);
    }

    // 4. Build-time artifacts visible in the final image.
    let torch = inodes.iter().any(|n| {
        n.visible
            && (n.shown_path().contains("/site-packages/torch/")
                || n.shown_path().contains("/dist-packages/torch/"))
    });
    for cat in ["nsight", "cupti", "headers", "static-libs", "cuda-tools"] {
        let Some(ci) = cat_of(cat) else { continue };
        let mut targets = Vec::new();
        for (i, n) in inodes.iter().enumerate() {
            if !n.visible || n.named_elsewhere || n.category != ci {
                continue;
            }
            let p = n.shown_path();
            let name = p.rsplit('/').next().unwrap_or(p);
            if cat == "cupti"
                && torch
                && p.contains("/nvidia/cuda_cupti/")
                && name.starts_with("libcupti.so")
            {
                continue;
            }
            targets.push(i);
        }
        if targets.is_empty() {
            continue;
        }
        let layer = main_layer(inodes, &targets);
        let Some((title, fix)) = dev_advice(cat, torch, is_base(layer)) else {
            continue;
        };
        let mut d = Draft::new(
            match cat {
                "nsight" => "nsight",
                "cupti" => "cupti",
                "headers" => "headers",
                "static-libs" => "static-libs",
                _ => "cuda-tools",
            },
            title,
            layer,
            fix,
        );
        d.targets = targets;
        drafts.push(d);
    }

    // 5. Python bytecode, only where it matters (10 MiB and 2% of the image).
    if let Some(ci) = cat_of("python-bytecode") {
        let targets: Vec<usize> = (0..inodes.len())
            .filter(|&i| {
                let n = &inodes[i];
                n.visible && !n.named_elsewhere && n.category == ci
            })
            .collect();
        let bytes: u64 = targets.iter().map(|&i| inodes[i].bytes).sum();
        if bytes >= 10 << 20 && bytes * 50 >= totals.visible_bytes {
            let layer = main_layer(inodes, &targets);
            let fix = if is_base(layer) {
                "the base image ships them: pick a base image built with PYTHONDONTWRITEBYTECODE=1, or remove __pycache__ directories in a build stage and COPY --from the result"
            } else {
                "set ENV PYTHONDONTWRITEBYTECODE=1 before installing, or pip install --no-compile"
            };
            let mut d = Draft::new(
                "python-bytecode",
                "Python bytecode (.pyc) written at build time",
                layer,
                fix.into(),
            );
            d.targets = targets;
            drafts.push(d);
        }
    }

    // 6. Last, whatever else is wasted: bytes deleted or overwritten by a later layer (or twice in one layer).
    let visible_paths: HashMap<&str, u32> = {
        let wasted_paths: std::collections::HashSet<&str> = inodes
            .iter()
            .filter(|n| !n.visible)
            .map(|n| &*n.path)
            .collect();
        inodes
            .iter()
            .filter(|n| n.visible && wasted_paths.contains(n.shown_path()))
            .map(|n| (n.shown_path(), n.layer))
            .collect()
    };
    let mut by_pair: BTreeMap<(usize, usize, bool), Vec<usize>> = BTreeMap::new();
    for (i, n) in inodes.iter().enumerate() {
        if n.visible {
            continue;
        }
        let killer = n.removed_by().unwrap_or(n.layer) as usize;
        let overwritten = visible_paths.get(&*n.path) == Some(&(killer as u32));
        by_pair
            .entry((n.layer as usize, killer, overwritten))
            .or_default()
            .push(i);
    }
    for ((layer, killer, overwritten), targets) in by_pair {
        let base = is_base(Some(layer));
        let (id, title, fix) = match (killer == layer, overwritten, base) {
            (true, _, false) => (
                "written-twice",
                "files written twice in the same layer",
                "the layer's tar holds the same paths more than once; write each file once",
            ),
            (true, _, true) => (
                "written-twice",
                "files written twice in the same base-image layer",
                "the base image's layer holds the same paths more than once: nothing in your Dockerfile causes it; another build of the base image avoids it",
            ),
            (false, true, false) => (
                "overwritten-later",
                "files rewritten by a later layer",
                "a later layer writes these paths again, so both copies ship (a chmod/chown/touch copies whole files; a reinstall or regenerated file rewrites them): produce the final version in the RUN that writes them, or use COPY --chmod/--chown",
            ),
            (false, true, true) => (
                "overwritten-later",
                "files of the base image rewritten by a later layer",
                "rewriting files of the base image (a chmod/chown/touch, or reinstalling what the base already has) copies them whole into a new layer: leave them as they are, or do it in a build stage and COPY --from the result",
            ),
            (false, false, false) => (
                "deleted-later",
                "files deleted by a later layer",
                "deleting in a later layer does not shrink the image: delete them in the same RUN that writes them, or build in a separate stage and COPY --from only what you need",
            ),
            (false, false, true) => (
                "deleted-later",
                "files of the base image deleted by a later layer",
                "deleting files of the base image in a later layer does not shrink the image (they still ship in the base layer): pick a base image without them, or copy only what you need into a fresh stage (COPY --from)",
            ),
        };
        let mut d = Draft::new(id, title, Some(layer), fix.into());
        d.cause = (killer != layer).then_some(killer);
        d.targets = targets;
        drafts.push(d);
    }

    // Each inode counts for the first, most specific fix that targets it (a
    // deleted pip cache is a pip-cache fix, not a generic deleted-later one).
    let mut taken = vec![false; inodes.len()];
    let mut recs: Vec<(Recommendation, Vec<u32>)> = Vec::new();
    for d in drafts {
        let mut mine = Vec::new();
        let (mut savings, mut visible) = (0u64, 0u64);
        let mut per_layer: BTreeMap<usize, u64> = BTreeMap::new();
        for &i in &d.targets {
            if taken[i] {
                continue;
            }
            taken[i] = true;
            let n = &inodes[i];
            savings += n.bytes;
            if n.visible {
                visible += n.bytes;
            }
            *per_layer.entry(n.layer as usize).or_default() += n.bytes;
            mine.push(i as u32);
        }
        if savings == 0 {
            continue;
        }
        let compressed = per_layer
            .iter()
            .filter_map(|(&l, &b)| layers.get(l).map(|l| compressed_share(b, l)))
            .sum();
        let layer_report = d.layer.and_then(|l| layers.get(l));
        let cause = d.cause.and_then(|l| layers.get(l));
        recs.push((
            Recommendation {
                id: d.id.into(),
                title: d.title.into(),
                layer_index: d.layer,
                instruction: layer_report.map(|l| l.instruction.clone()),
                base_image: layer_report.is_some_and(|l| l.base_image.is_some()),
                cause_layer_index: cause.map(|l| l.index),
                cause_instruction: cause.map(|l| l.instruction.clone()),
                savings_bytes: savings,
                visible_bytes: visible,
                wasted_bytes: savings - visible,
                compressed_bytes: compressed,
                files: mine.len() as u64,
                count: d.count,
                packages: d.packages,
                fix: d.fix,
            },
            mine,
        ));
    }
    recs.sort_by(|a, b| {
        b.0.savings_bytes
            .cmp(&a.0.savings_bytes)
            .then_with(|| a.0.id.cmp(&b.0.id))
            .then_with(|| a.0.layer_index.cmp(&b.0.layer_index))
    });
    let (recs, targets): (Vec<Recommendation>, Targets) = recs.into_iter().unzip();

    let estimate = estimate(
        inodes,
        layers,
        totals,
        compressed_before,
        targets.iter().flatten().copied(),
    );
    (recs, targets, estimate)
}

/// The image without the files `removed` (indexes into `inodes`; a file
/// named twice counts once): what [`recommend`] says for all of its fixes,
/// and `mlsize fix` for the fixes it writes. Compressed bytes scale each
/// layer's removed bytes by that layer's own ratio.
pub fn estimate(
    inodes: &[Inode],
    layers: &[LayerReport],
    totals: &ImageTotals,
    compressed_before: u64,
    removed: impl IntoIterator<Item = u32>,
) -> Estimate {
    let mut taken = vec![false; inodes.len()];
    let mut removed_per_layer = vec![0u64; layers.len()];
    let mut removed_visible = 0u64;
    for i in removed {
        let Some(t) = taken.get_mut(i as usize) else {
            continue;
        };
        if std::mem::replace(t, true) {
            continue;
        }
        let n = &inodes[i as usize];
        if let Some(r) = removed_per_layer.get_mut(n.layer as usize) {
            *r += n.bytes;
        }
        if n.visible {
            removed_visible += n.bytes;
        }
    }
    let removed: u64 = removed_per_layer.iter().sum();
    let removed_compressed: u64 = layers
        .iter()
        .zip(&removed_per_layer)
        .map(|(l, &r)| compressed_share(r, l))
        .sum();
    let before = totals.content_bytes;
    let pct = if before == 0 {
        0.0
    } else {
        ((removed as f64 / before as f64) * 1000.0).round() / 10.0
    };
    Estimate {
        content_bytes_before: before,
        content_bytes: before - removed,
        visible_bytes_before: totals.visible_bytes,
        visible_bytes: totals.visible_bytes - removed_visible,
        compressed_bytes_before: compressed_before,
        compressed_bytes: compressed_before.saturating_sub(removed_compressed),
        savings_bytes: removed,
        savings_percent: pct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_installs_with_recommends() {
        let cases = [
            ("RUN apt-get update && apt-get install -y python3-pip", true),
            ("RUN apt-get -y install python3-pip", true),
            ("RUN apt install -y gcc", true),
            (
                "RUN apt-get update && apt-get install -y --no-install-recommends python3-pip",
                false,
            ),
            (
                "RUN apt-get install -o APT::Install-Recommends=false -y gcc",
                false,
            ),
            ("RUN pip install torch", false),
            ("RUN apt-get update", false),
            ("COPY apt-get install /x", false),
        ];
        for (instr, want) in cases {
            assert_eq!(installs_recommends(instr), want, "{instr}");
        }
    }

    #[test]
    fn build_tooling_paths() {
        let cases = [
            ("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "other", true),
            (
                "/usr/libexec/gcc/x86_64-linux-gnu/12/cc1plus",
                "other",
                true,
            ),
            ("/usr/bin/x86_64-linux-gnu-gcc-12", "other", true),
            ("/usr/bin/gcc-12", "other", true),
            ("/usr/bin/g++-12", "other", true),
            ("/usr/bin/cpp-12", "other", true),
            ("/usr/include/stdio.h", "headers", true),
            ("/usr/lib/x86_64-linux-gnu/libc.a", "static-libs", true),
            ("/usr/bin/python3", "other", false),
            ("/usr/bin/pip3", "other", false),
            (
                "/usr/lib/python3/dist-packages/pip/__init__.py",
                "other",
                false,
            ),
        ];
        for (p, cat, want) in cases {
            assert_eq!(is_build_tooling(p, cat), want, "{p}");
        }
    }
}
