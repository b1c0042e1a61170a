//! Recommendations: what to change in which instruction, and what it saves.
//!
//! Each recommendation targets a set of inodes; the estimate removes the union
//! of all targeted inodes, so overlapping advice is never counted twice.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{CudaFamily, ImageTotals, LayerReport};
use crate::category::Rules;
use crate::overlay::Inode;

/// One fix.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// Stable identifier of the kind of fix (`pip-cache`, `deleted-later`, ...).
    pub id: String,
    /// One line saying what is wrong.
    pub title: String,
    /// The layer (0-based) whose instruction to change.
    pub layer_index: Option<usize>,
    /// That layer's instruction.
    pub instruction: Option<String>,
    /// Bytes this fix removes from the image, not counting bytes an earlier
    /// (higher-ranked) fix already removes.
    pub savings_bytes: u64,
    /// What to write instead.
    pub fix: String,
}

/// The image after every recommendation is applied.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Estimate {
    /// Content bytes before (what the layers ship uncompressed).
    pub content_bytes_before: u64,
    /// Content bytes after (nothing wasted remains).
    pub content_bytes: u64,
    /// Visible bytes after.
    pub visible_bytes: u64,
    /// Compressed bytes after, from each layer's own compression ratio.
    pub compressed_bytes: u64,
    /// `content_bytes_before − content_bytes`.
    pub savings_bytes: u64,
    /// Savings as a percentage of `content_bytes_before`, one decimal.
    pub savings_percent: f64,
}

struct Draft {
    id: String,
    title: String,
    layer: Option<usize>,
    fix: String,
    targets: Vec<usize>,
}

fn human(bytes: u64) -> String {
    crate::render::units::format_bytes(bytes, false)
}

fn cache_fix(cat: &str, uv: bool) -> Option<(&'static str, &'static str)> {
    Some(match (cat, uv) {
        ("pip-cache", false) => (
            "pip's download cache left in the layer",
            "add --no-cache-dir to pip install (or set PIP_NO_CACHE_DIR=1), or keep the cache out of the image with RUN --mount=type=cache,target=/root/.cache/pip",
        ),
        ("pip-cache", true) => (
            "uv's cache left in the layer",
            "add --no-cache to uv (or set UV_NO_CACHE=1), or use RUN --mount=type=cache,target=/root/.cache/uv",
        ),
        ("conda-pkgs", _) => (
            "conda's package cache left in the layer",
            "end the same RUN with 'conda clean -afy' (or 'micromamba clean -afy')",
        ),
        ("apt-cache", _) => (
            "apt lists and archives left in the layer",
            "end the same RUN with 'rm -rf /var/lib/apt/lists/*' (and 'apt-get clean'), or use RUN --mount=type=cache,target=/var/cache/apt",
        ),
        _ => return None,
    })
}

fn dev_fix(cat: &str, torch: bool) -> Option<(&'static str, String)> {
    let stage = "build in a -devel stage and COPY --from only the artifacts into a runtime stage";
    Some(match cat {
        "nsight" => (
            "Nsight profilers in the final image",
            format!(
                "profilers are not needed at run time: {stage}, or use a nvidia/cuda -runtime/-base image"
            ),
        ),
        "cupti" if torch => (
            "CUPTI profiling libraries in the final image",
            format!(
                "PyTorch links libcupti.so.12, so the copy under nvidia/cuda_cupti is kept; the rest (extras/CUPTI, libnvperf, samples) is for profiling only: {stage}"
            ),
        ),
        "cupti" => (
            "CUPTI profiling libraries in the final image",
            format!("CUPTI is for profiling only: {stage}"),
        ),
        "headers" => (
            "C/C++/CUDA headers in the final image",
            format!("headers are only needed to compile: {stage}"),
        ),
        "static-libs" => (
            "static libraries in the final image",
            format!("static libraries are only needed to link: {stage}"),
        ),
        "cuda-tools" => (
            "CUDA compilers and tools (nvcc, nvvm) in the final image",
            format!("compilers are only needed to build: {stage}"),
        ),
        _ => return None,
    })
}

/// Builds the ranked recommendations and the what-if estimate.
pub fn recommend(
    inodes: &[Inode],
    layers: &[LayerReport],
    cuda: &[CudaFamily],
    rules: &Rules,
    totals: &ImageTotals,
) -> (Vec<Recommendation>, Estimate) {
    let mut drafts: Vec<Draft> = Vec::new();
    let cat_of = |name: &str| rules.index_of(name);

    // 1. Caches, per layer and category.
    for cat in ["pip-cache", "conda-pkgs", "apt-cache"] {
        let Some(ci) = cat_of(cat) else { continue };
        let mut per_layer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, n) in inodes.iter().enumerate() {
            if n.category == ci {
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
            let Some((title, fix)) = cache_fix(cat, uv) else {
                continue;
            };
            let deleted = targets.iter().all(|&i| !inodes[i].visible);
            let title = if deleted {
                format!("{title} (deleted by a later layer, but still shipped in this one)")
            } else {
                title.to_string()
            };
            drafts.push(Draft {
                id: if uv { "uv-cache".into() } else { cat.into() },
                title,
                layer: Some(layer),
                fix: fix.into(),
                targets,
            });
        }
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
        drafts.push(Draft {
            id: "cuda-duplicates".into(),
            title: format!("{} CUDA libraries shipped twice", cuda.len()),
            layer,
            fix: "PyTorch's wheels bundle the CUDA libraries they need (nvidia-* packages), so a nvidia/cuda -runtime or -devel base duplicates them: use nvidia/cuda:<version>-base-<os> or a slim Python base, or install torch from the CPU/driver-only index if the base provides CUDA".into(),
            targets,
        });
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
        let mut per_layer: BTreeMap<usize, u64> = BTreeMap::new();
        for (i, n) in inodes.iter().enumerate() {
            if !n.visible || n.category != ci {
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
            *per_layer.entry(n.layer as usize).or_default() += n.bytes;
        }
        if targets.is_empty() {
            continue;
        }
        let layer = per_layer
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(l, _)| *l);
        let Some((title, fix)) = dev_fix(cat, torch) else {
            continue;
        };
        drafts.push(Draft {
            id: cat.into(),
            title: title.into(),
            layer,
            fix,
            targets,
        });
    }

    // 5. Python bytecode, only where it matters (10 MiB and 2% of the image).
    if let Some(ci) = cat_of("python-bytecode") {
        let targets: Vec<usize> = (0..inodes.len())
            .filter(|&i| inodes[i].visible && inodes[i].category == ci)
            .collect();
        let bytes: u64 = targets.iter().map(|&i| inodes[i].bytes).sum();
        if bytes >= 10 << 20 && bytes * 50 >= totals.visible_bytes {
            let mut per_layer: BTreeMap<usize, u64> = BTreeMap::new();
            for &i in &targets {
                *per_layer.entry(inodes[i].layer as usize).or_default() += inodes[i].bytes;
            }
            let layer = per_layer
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(l, _)| *l);
            drafts.push(Draft {
                id: "python-bytecode".into(),
                title: "Python bytecode (.pyc) written at build time".into(),
                layer,
                fix: "set ENV PYTHONDONTWRITEBYTECODE=1 before installing, or pip install --no-compile".into(),
                targets,
            });
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
        let instr = |l: usize| {
            layers
                .get(l)
                .map(|r| crate::history::one_line(&r.instruction))
                .unwrap_or_default()
        };
        let (id, title, fix) = if killer == layer {
            (
                "written-twice",
                "files written twice in the same layer".to_string(),
                "the layer's tar holds the same paths more than once; write each file once"
                    .to_string(),
            )
        } else if overwritten {
            (
                "overwritten-later",
                format!(
                    "files rewritten by layer {} (`{}`)",
                    killer + 1,
                    instr(killer)
                ),
                format!(
                    "a later layer writes these paths again, so both copies ship (a chmod/chown/touch copies whole files; a reinstall or regenerated file rewrites them): make the final version in the same RUN as layer {}, or use COPY --chmod/--chown",
                    layer + 1
                ),
            )
        } else {
            (
                "deleted-later",
                format!(
                    "files deleted by layer {} (`{}`)",
                    killer + 1,
                    instr(killer)
                ),
                format!(
                    "deleting in a later layer does not shrink the image: delete them in the same RUN that writes them (layer {}), or build in a separate stage and COPY --from only what you need",
                    layer + 1
                ),
            )
        };
        drafts.push(Draft {
            id: id.into(),
            title,
            layer: Some(layer),
            fix,
            targets,
        });
    }

    // Each inode counts for the first, most specific fix that targets it (a
    // deleted pip cache is a pip-cache fix, not a generic deleted-later one).
    let mut taken = vec![false; inodes.len()];
    let mut removed_per_layer = vec![0u64; layers.len()];
    let mut recs = Vec::new();
    for d in drafts {
        let mut savings = 0;
        for &i in &d.targets {
            if !taken[i] {
                taken[i] = true;
                savings += inodes[i].bytes;
                if let Some(r) = removed_per_layer.get_mut(inodes[i].layer as usize) {
                    *r += inodes[i].bytes;
                }
            }
        }
        if savings == 0 {
            continue;
        }
        let title = format!("{}: {}", human(savings), d.title);
        recs.push(Recommendation {
            id: d.id,
            title,
            instruction: d
                .layer
                .and_then(|l| layers.get(l))
                .map(|l| l.instruction.clone()),
            layer_index: d.layer,
            savings_bytes: savings,
            fix: d.fix,
        });
    }
    recs.sort_by(|a, b| {
        b.savings_bytes
            .cmp(&a.savings_bytes)
            .then_with(|| a.id.cmp(&b.id))
    });

    let removed: u64 = removed_per_layer.iter().sum();
    let removed_visible: u64 = inodes
        .iter()
        .zip(&taken)
        .filter(|(n, t)| **t && n.visible)
        .map(|(n, _)| n.bytes)
        .sum();
    let compressed_after: u64 = layers
        .iter()
        .zip(&removed_per_layer)
        .map(|(l, &r)| {
            if l.tar_bytes == 0 {
                return l.compressed_bytes;
            }
            let saved =
                (u128::from(r) * u128::from(l.compressed_bytes) / u128::from(l.tar_bytes)) as u64;
            l.compressed_bytes.saturating_sub(saved)
        })
        .sum();
    let before = totals.content_bytes;
    let after = before - removed;
    let pct = if before == 0 {
        0.0
    } else {
        ((removed as f64 / before as f64) * 1000.0).round() / 10.0
    };
    let estimate = Estimate {
        content_bytes_before: before,
        content_bytes: after,
        visible_bytes: totals.visible_bytes - removed_visible,
        compressed_bytes: compressed_after,
        savings_bytes: removed,
        savings_percent: pct,
    };
    (recs, estimate)
}
