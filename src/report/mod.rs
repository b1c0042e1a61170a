//! Stage 6, report: [`LoadedImage`] + [`Merged`] → [`Report`], pure data that
//! every renderer (table, JSON, markdown) reads.

pub mod advice;
pub mod apt;
pub mod budget;
pub mod diff;
pub mod schema;
pub mod tree;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::category::Rules;
use crate::history::{self, attribute};
use crate::overlay::{Inode, Merged, Overlay};
use crate::source::LoadedImage;

/// JSON schema name, bumped only when a field changes name or meaning.
pub const SCHEMA: &str = "mlsize/v1";

/// Options that change what the report holds.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Number of largest files to list.
    pub top: usize,
    /// Smallest file size considered for duplicate groups.
    pub dup_min_bytes: u64,
    /// diff_ids of a base image, to label base layers.
    pub base_diff_ids: Option<Vec<String>>,
    /// Host name of the input.
    pub source: String,
    /// Whether file contents were hashed (`--no-content-hash` clears it).
    pub content_hashed: bool,
}

/// The whole analysis of one image.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Image-wide totals.
    pub image: ImageTotals,
    /// One entry per layer, in order.
    pub layers: Vec<LayerReport>,
    /// The config's history, with the layer each entry created.
    pub history: Vec<HistoryReport>,
    /// Largest visible files.
    pub top_files: Vec<TopFile>,
    /// Per category, in rule order.
    pub categories: Vec<CategoryReport>,
    /// Groups of identical visible files at different paths.
    pub duplicates: Vec<DuplicateGroup>,
    /// CUDA libraries present in two or more directories.
    pub cuda_duplicates: Vec<CudaFamily>,
    /// Ranked fixes with their savings.
    pub recommendations: Vec<advice::Recommendation>,
    /// The image after every recommendation.
    pub estimated: advice::Estimate,
    /// Non-fatal oddities.
    pub warnings: Vec<String>,
}

/// Image-wide figures.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ImageTotals {
    /// Repository and tag, when the archive names the image.
    pub name: Option<String>,
    /// Image ID: the sha256 of the config as read.
    pub id: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Archive format.
    pub format: String,
    /// The input, as given.
    pub source: String,
    /// Whether blob digests and diff_ids were verified (`--no-verify` clears it).
    pub verified: bool,
    /// Whether file contents were hashed; without it there are no duplicate groups.
    pub content_hashed: bool,
    /// Number of layers.
    pub layer_count: usize,
    /// Sum of the layer blobs as stored. For a layer stored uncompressed
    /// (docker-save) that is its tar size, not what a registry would hold:
    /// see [`download_bytes`](Self::download_bytes).
    pub compressed_bytes: u64,
    /// Sum of the uncompressed layer tar streams.
    pub tar_bytes: u64,
    /// Sum of [`LayerReport::estimated_gzip_bytes`] over the layers stored
    /// uncompressed; `None` when every layer is stored compressed.
    pub estimated_gzip_bytes: Option<u64>,
    /// What a pull downloads once the image is in a registry: the blob as
    /// stored for a compressed layer, the gzip estimate for a layer stored
    /// uncompressed (a push gzips it). [`download_bytes_basis`](Self::download_bytes_basis)
    /// tells which of the two it is made of.
    pub download_bytes: u64,
    /// Whether [`download_bytes`](Self::download_bytes) is measured, estimated or both.
    pub download_bytes_basis: DownloadBasis,
    /// Sum of regular-file sizes written by all layers.
    pub content_bytes: u64,
    /// Regular files in the final filesystem (hard-linked content once).
    pub visible_bytes: u64,
    /// Content not in the final filesystem.
    pub wasted_bytes: u64,
    /// Regular-file entries written.
    pub files: u64,
    /// Regular files in the final filesystem (hard-linked content once).
    pub visible_files: u64,
    /// Bytes freed by keeping one copy of each duplicate group.
    pub duplicate_reclaimable_bytes: u64,
    /// Bytes freed by keeping one copy of each CUDA library family.
    pub cuda_duplicate_reclaimable_bytes: u64,
    /// Bytes of layers shared with `--base`.
    pub base_bytes: Option<u64>,
    /// Which layers came from the layer cache and which were read (`None`
    /// with `--no-cache`). A layer from the cache has the figures of the
    /// content its digest names, as verified when the entry was written.
    pub cache: Option<crate::source::cache::CacheUse>,
}

/// What [`ImageTotals::download_bytes`] is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DownloadBasis {
    /// Every layer is stored compressed: the figure is the blobs' real size
    /// (it equals `compressed_bytes`). Also an image without layers.
    Stored,
    /// Every layer is stored uncompressed: the figure is the sum of the gzip
    /// estimates.
    Estimated,
    /// Some layers stored compressed (their real size), others uncompressed
    /// (their estimate).
    Mixed,
}

impl LayerReport {
    /// What a pull downloads for this layer: the blob as stored when it is
    /// compressed, else the gzip estimate (the tar size when there is none).
    pub fn download_bytes(&self) -> u64 {
        self.estimated_gzip_bytes.unwrap_or(self.compressed_bytes)
    }
}

/// One layer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LayerReport {
    /// 0-based.
    pub index: usize,
    /// Blob digest (declared, or computed when the format has none).
    pub digest: Option<String>,
    /// The config's diff_id.
    pub diff_id: Option<String>,
    /// `none`, `gzip` or `zstd`.
    pub compression: String,
    /// The builder's record, verbatim.
    pub created_by: Option<String>,
    /// The instruction a person wrote, or `(no history)`.
    pub instruction: String,
    /// Blob bytes as stored (for `compression: none`, the tar size).
    pub compressed_bytes: u64,
    /// Uncompressed tar stream bytes.
    pub tar_bytes: u64,
    /// Only for a layer stored uncompressed (`compression: none`): the
    /// estimated size of its blob once gzipped as `docker push` does it
    /// (level 6; small blobs compressed whole, large ones sampled, see
    /// [`crate::layer::estimate`]). `None` (JSON `null`) for compressed layers,
    /// whose `compressed_bytes` is the real figure.
    pub estimated_gzip_bytes: Option<u64>,
    /// Regular-file bytes the layer writes.
    pub content_bytes: u64,
    /// Part of `content_bytes` not in the final filesystem.
    pub wasted_bytes: u64,
    /// Regular-file entries.
    pub files: u64,
    /// Whether the layer belongs to the `--base` image.
    pub base: bool,
    /// Why the layer is taken to come from the base image, when it is:
    /// `--base` (shared with the image given to `--base`), `no-history` (no
    /// or an empty history record, as `docker import` leaves), or `rootfs`
    /// (`ADD file:… in /`, how base images add their root filesystem).
    /// Advice on such layers is about the base image, never "edit this RUN".
    pub base_image: Option<String>,
    /// Content bytes per category (categories with bytes only).
    pub categories: BTreeMap<String, u64>,
    /// The largest category other than `other`, when there is one.
    pub top_category: Option<String>,
}

/// One history entry.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HistoryReport {
    /// The builder's record, verbatim.
    pub created_by: String,
    /// The instruction a person wrote.
    pub instruction: String,
    /// True when it created no layer.
    pub empty_layer: bool,
    /// The layer it created.
    pub layer_index: Option<usize>,
}

/// A large visible file.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TopFile {
    /// Lowest visible path of the content.
    pub path: String,
    /// Size.
    pub bytes: u64,
    /// Layer that wrote it.
    pub layer_index: usize,
    /// Its category.
    pub category: String,
}

/// Figures for one category.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CategoryReport {
    /// Category name.
    pub name: String,
    /// Bytes written by all layers.
    pub content_bytes: u64,
    /// Bytes in the final filesystem.
    pub visible_bytes: u64,
    /// Bytes not in the final filesystem.
    pub wasted_bytes: u64,
    /// Regular-file entries written.
    pub files: u64,
}

/// Identical visible files at different paths.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DuplicateGroup {
    /// Size of each copy.
    pub bytes_each: u64,
    /// One path per copy, sorted.
    pub paths: Vec<String>,
    /// `bytes_each × (copies − 1)`.
    pub reclaimable_bytes: u64,
}

/// One CUDA library family present in several directories.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CudaFamily {
    /// Family key, e.g. `libcublasLt.so.12`.
    pub library: String,
    /// The copies, largest first.
    pub copies: Vec<CudaCopy>,
    /// Sum of all copies minus the largest.
    pub reclaimable_bytes: u64,
}

/// One copy of a CUDA library.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CudaCopy {
    /// Path of the copy.
    pub path: String,
    /// Size.
    pub bytes: u64,
    /// Layer that wrote it.
    pub layer_index: usize,
    /// Whether another copy of the family has the same content.
    pub identical: bool,
}

/// The family key of a library file name: cut after the first number that
/// follows `.so` (`libcublasLt.so.12.8.4.1` → `libcublasLt.so.12`).
pub fn cuda_family(name: &str) -> Option<String> {
    if !name.starts_with("lib") {
        return None;
    }
    let i = name.find(".so")?;
    let after = &name[i + 3..];
    if after.is_empty() {
        return Some(name.to_string());
    }
    let rest = after.strip_prefix('.')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Some(name[..i + 3].to_string());
    }
    Some(name[..i + 4 + digits].to_string())
}

/// Everything the analysis derives from an image: the report and the merged
/// inodes (kept for `diff`).
#[derive(Debug)]
pub struct Analysis {
    /// The report.
    pub report: Report,
    /// Every regular-file entry with its fate.
    pub inodes: Vec<Inode>,
    /// The files each of `report.recommendations` removes (indexes into
    /// `inodes`), to explain budgets by the findings that make them fail.
    pub targets: advice::Targets,
}

/// Builds the report of a loaded image.
pub fn analyze(image: LoadedImage, rules: &Rules, opts: &ReportOptions) -> Analysis {
    let LoadedImage {
        meta,
        scans,
        verified,
        cache,
    } = image;
    let n = scans.len();
    let attribution = attribute(&meta.config.history, n);
    let mut warnings: Vec<String> = meta.warnings.clone();
    if let Some(w) = &attribution.warning {
        warnings.push(w.clone());
    }
    let mut layers: Vec<LayerReport> = Vec::with_capacity(n);
    let mut overlay = Overlay::new();
    for (i, mut scan) in scans.into_iter().enumerate() {
        for w in scan.warnings.drain(..) {
            warnings.push(format!("layer {}/{n}: {w}", i + 1));
        }
        let desc = &meta.layers[i];
        let created_by =
            attribution.layer_history[i].map(|h| meta.config.history[h].created_by.clone());
        let instruction = match &created_by {
            Some(c) => history::instruction(c),
            None => "(no history)".to_string(),
        };
        let base = opts
            .base_diff_ids
            .as_ref()
            .is_some_and(|b| is_base_layer(b, &meta.config.rootfs.diff_ids, i));
        let base_image = if base {
            Some("--base")
        } else if instruction.trim().is_empty() || created_by.is_none() {
            Some("no-history")
        } else if is_rootfs(&instruction) || (i == 0 && is_first_rootfs(&instruction)) {
            Some("rootfs")
        } else {
            None
        };
        layers.push(LayerReport {
            index: i,
            digest: desc.digest.clone().or(scan.blob_digest.clone()),
            diff_id: desc.diff_id.clone(),
            compression: scan.compression.name().to_string(),
            created_by,
            instruction,
            compressed_bytes: scan.compressed_bytes,
            tar_bytes: scan.tar_bytes,
            estimated_gzip_bytes: scan.estimated_gzip_bytes,
            content_bytes: 0,
            wasted_bytes: 0,
            files: 0,
            base,
            base_image: base_image.map(str::to_string),
            categories: BTreeMap::new(),
            top_category: None,
        });
        overlay.apply_layer(i as u32, std::mem::take(&mut scan.entries));
    }
    let Merged {
        inodes,
        warnings: merge_warnings,
    } = overlay.finish(|p| rules.classify(p));
    warnings.extend(merge_warnings);

    let ncat = rules.rules().len();
    let mut cats: Vec<CategoryReport> = rules
        .names()
        .map(|name| CategoryReport {
            name: name.to_string(),
            content_bytes: 0,
            visible_bytes: 0,
            wasted_bytes: 0,
            files: 0,
        })
        .collect();
    let mut layer_cats = vec![vec![0u64; ncat]; n];
    let mut visible_bytes = 0;
    for inode in &inodes {
        let l = inode.layer as usize;
        let c = usize::from(inode.category).min(ncat - 1);
        layers[l].content_bytes += inode.bytes;
        layers[l].files += 1;
        layer_cats[l][c] += inode.bytes;
        cats[c].content_bytes += inode.bytes;
        cats[c].files += 1;
        if inode.visible {
            visible_bytes += inode.bytes;
            cats[c].visible_bytes += inode.bytes;
        } else {
            layers[l].wasted_bytes += inode.bytes;
            cats[c].wasted_bytes += inode.bytes;
        }
    }
    for (l, per) in layers.iter_mut().zip(&layer_cats) {
        for (c, &bytes) in per.iter().enumerate() {
            if bytes > 0 {
                l.categories.insert(rules.name(c as u8).to_string(), bytes);
            }
        }
        l.top_category = per[..ncat - 1]
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b > 0)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
            .map(|(c, _)| rules.name(c as u8).to_string());
    }

    let history = meta
        .config
        .history
        .iter()
        .enumerate()
        .map(|(h, e)| HistoryReport {
            created_by: e.created_by.clone(),
            instruction: history::instruction(&e.created_by),
            empty_layer: e.empty_layer,
            layer_index: attribution.history_layer[h],
        })
        .collect();

    let mut visible: Vec<&Inode> = inodes.iter().filter(|i| i.visible).collect();
    visible.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.shown_path().cmp(b.shown_path()))
    });
    let top_files = visible
        .iter()
        .take(opts.top)
        .map(|i| TopFile {
            path: i.shown_path().to_string(),
            bytes: i.bytes,
            layer_index: i.layer as usize,
            category: rules.name(i.category).to_string(),
        })
        .collect();

    let duplicates = if opts.content_hashed {
        find_duplicates(&visible, opts.dup_min_bytes)
    } else {
        Vec::new()
    };
    let mut cuda_duplicates = find_cuda_duplicates(&visible, rules);
    if !opts.content_hashed {
        for c in cuda_duplicates.iter_mut().flat_map(|f| f.copies.iter_mut()) {
            c.identical = false;
        }
    }

    let content_bytes: u64 = layers.iter().map(|l| l.content_bytes).sum();
    let wasted_bytes: u64 = layers.iter().map(|l| l.wasted_bytes).sum();
    let base_bytes = opts
        .base_diff_ids
        .as_ref()
        .map(|_| layers.iter().filter(|l| l.base).map(|l| l.tar_bytes).sum());
    let estimated: Vec<u64> = layers
        .iter()
        .filter_map(|l| l.estimated_gzip_bytes)
        .collect();
    let download_bytes_basis = match estimated.len() {
        0 => DownloadBasis::Stored,
        k if k == layers.len() => DownloadBasis::Estimated,
        _ => DownloadBasis::Mixed,
    };
    let totals = ImageTotals {
        name: meta.name.clone(),
        id: meta.image_id.clone(),
        platform: meta.platform.clone(),
        format: meta.format.clone(),
        source: opts.source.clone(),
        verified,
        content_hashed: opts.content_hashed,
        layer_count: n,
        compressed_bytes: layers.iter().map(|l| l.compressed_bytes).sum(),
        tar_bytes: layers.iter().map(|l| l.tar_bytes).sum(),
        estimated_gzip_bytes: (!estimated.is_empty()).then(|| estimated.iter().sum()),
        download_bytes: layers.iter().map(LayerReport::download_bytes).sum(),
        download_bytes_basis,
        content_bytes,
        visible_bytes,
        wasted_bytes,
        files: layers.iter().map(|l| l.files).sum(),
        visible_files: visible.len() as u64,
        duplicate_reclaimable_bytes: duplicates.iter().map(|d| d.reclaimable_bytes).sum(),
        cuda_duplicate_reclaimable_bytes: cuda_duplicates.iter().map(|d| d.reclaimable_bytes).sum(),
        base_bytes,
        cache,
    };
    let (recommendations, targets, estimated) = advice::recommend(
        &inodes,
        &layers,
        &cuda_duplicates,
        rules,
        &totals,
        totals.download_bytes,
    );
    let report = Report {
        schema: SCHEMA,
        image: totals,
        layers,
        history,
        top_files,
        categories: cats,
        duplicates,
        cuda_duplicates,
        recommendations,
        estimated,
        warnings,
    };
    Analysis {
        report,
        inodes,
        targets,
    }
}

/// Whether the first layer's record is how a base image's root filesystem is
/// written when it is not `ADD file:… in /`: BuildKit's `ADD rootfs.tar /`
/// (`FROM scratch`), or a build script's comment such as Debian's
/// `# debian.sh --arch 'amd64' out/ 'bookworm' '@1700000000'`.
fn is_first_rootfs(instruction: &str) -> bool {
    let words: Vec<&str> = instruction.split_whitespace().collect();
    instruction.trim_start().starts_with('#') || matches!(words.as_slice(), ["ADD", _, "/"])
}

/// Whether an instruction adds a root filesystem: `ADD file:<hash> in /`, as
/// the classic builder and BuildKit record a base image's `ADD rootfs.tar /`.
fn is_rootfs(instruction: &str) -> bool {
    let words: Vec<&str> = instruction.split_whitespace().collect();
    matches!(words.as_slice(), ["ADD", src, "in", "/"] if src.starts_with("file:"))
}

/// A layer is a base layer when the image's diff_ids up to it are a prefix of the base's.
fn is_base_layer(base: &[String], mine: &[String], i: usize) -> bool {
    i < base.len() && i < mine.len() && base[..=i] == mine[..=i]
}

fn find_duplicates(visible: &[&Inode], min_bytes: u64) -> Vec<DuplicateGroup> {
    let mut groups: HashMap<(u64, [u8; 16]), Vec<&Inode>> = HashMap::new();
    for i in visible.iter().filter(|i| i.bytes >= min_bytes.max(1)) {
        groups.entry((i.bytes, i.hash)).or_default().push(i);
    }
    let mut out: Vec<DuplicateGroup> = groups
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|((bytes, _), v)| {
            let mut paths: Vec<String> = v.iter().map(|i| i.shown_path().to_string()).collect();
            paths.sort();
            DuplicateGroup {
                bytes_each: bytes,
                reclaimable_bytes: bytes * (paths.len() as u64 - 1),
                paths,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.reclaimable_bytes
            .cmp(&a.reclaimable_bytes)
            .then_with(|| a.paths.cmp(&b.paths))
    });
    out
}

fn find_cuda_duplicates(visible: &[&Inode], rules: &Rules) -> Vec<CudaFamily> {
    let lib_cats: Vec<u8> = ["cuda-libs", "cupti"]
        .iter()
        .filter_map(|c| rules.index_of(c))
        .collect();
    let mut fams: BTreeMap<String, Vec<&Inode>> = BTreeMap::new();
    for i in visible {
        if !lib_cats.contains(&i.category) {
            continue;
        }
        let p = i.shown_path();
        let name = p.rsplit('/').next().unwrap_or(p);
        if !name.contains(".so") {
            continue;
        }
        if let Some(f) = cuda_family(name) {
            fams.entry(f).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    for (library, mut copies) in fams {
        let dirs: std::collections::BTreeSet<&str> = copies
            .iter()
            .map(|i| crate::layer::path::split_parent(i.shown_path()).0)
            .collect();
        if dirs.len() < 2 {
            continue;
        }
        copies.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| a.shown_path().cmp(b.shown_path()))
        });
        let total: u64 = copies.iter().map(|c| c.bytes).sum();
        let reclaimable = total - copies[0].bytes;
        let list = copies
            .iter()
            .map(|c| CudaCopy {
                path: c.shown_path().to_string(),
                bytes: c.bytes,
                layer_index: c.layer as usize,
                identical: copies
                    .iter()
                    .any(|o| !std::ptr::eq(*o, *c) && o.hash == c.hash && o.bytes == c.bytes),
            })
            .collect();
        out.push(CudaFamily {
            library,
            copies: list,
            reclaimable_bytes: reclaimable,
        });
    }
    out.sort_by(|a, b| {
        b.reclaimable_bytes
            .cmp(&a.reclaimable_bytes)
            .then_with(|| a.library.cmp(&b.library))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 11 item 3 (advice to edit the RUN of `ADD file:… in /`).
    #[test]
    fn rootfs_layers_are_the_base_image() {
        let cases = [
            ("ADD file:0a1b2c3d4e in /", true),
            (
                "ADD file:ec66641a81e42c7a418237a1fb2de3574b5a0f3ce20db92a4de7abbc7cd11a2b in / ",
                true,
            ),
            ("ADD file:0a1b2c in /app", false),
            ("COPY file:0a1b2c in /", false),
            ("ADD rootfs.tar /", false),
            ("RUN make", false),
        ];
        for (instr, want) in cases {
            assert_eq!(is_rootfs(instr), want, "{instr}");
        }
        let first = [
            ("ADD rootfs.tar /", true),
            (
                "# debian.sh --arch 'amd64' out/ 'bookworm' '@1700000000'",
                true,
            ),
            ("ADD app.tar /app", false),
            ("RUN make", false),
        ];
        for (instr, want) in first {
            assert_eq!(is_first_rootfs(instr), want, "{instr}");
        }
    }

    #[test]
    fn cuda_family_keys() {
        let cases = [
            ("libcublasLt.so.12.8.4.1", Some("libcublasLt.so.12")),
            ("libcublasLt.so.12", Some("libcublasLt.so.12")),
            ("libcudnn.so.9", Some("libcudnn.so.9")),
            ("libnvrtc-builtins.so.12.4", Some("libnvrtc-builtins.so.12")),
            ("libcudart.so", Some("libcudart.so")),
            ("libcupti.so.2024.1.0", Some("libcupti.so.2024")),
            ("cublas.h", None),
            ("libfoo.sox", None),
        ];
        for (name, want) in cases {
            assert_eq!(cuda_family(name).as_deref(), want, "{name}");
        }
    }
}
