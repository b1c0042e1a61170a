//! `Report × Report → Diff`: what grew between two versions of an image, and why.
//!
//! Layers shared by both images (same diff_id) are reported once and skipped in
//! the deltas. Instructions are aligned by their normalised text (longest
//! common subsequence), so an inserted `RUN` shows as added and the rest still
//! line up. Files are compared by visible path; a removed path whose content
//! reappears at an added path is a move, not an add and a remove.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Analysis, Report};
use crate::history::match_key;
use crate::layer::ContentHash;

/// One side of a diff, as summary.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Side {
    /// Image name.
    pub name: Option<String>,
    /// Input as given.
    pub source: String,
    /// Archive format.
    pub format: String,
    /// Platform.
    pub platform: String,
    /// Layers.
    pub layer_count: usize,
    /// Which of its layers came from the layer cache and which were read,
    /// as `image.cache` of `analyze` (`None` with `--no-cache`).
    pub cache: Option<crate::source::cache::CacheUse>,
}

/// An old/new pair of figures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Delta {
    /// What is measured.
    pub name: String,
    /// Value in OLD.
    pub old: u64,
    /// Value in NEW.
    pub new: u64,
    /// `new − old`.
    pub delta: i128,
}

/// `new − old` in a type that holds every difference of two `u64`s: a
/// subtraction in `i64` turned a 16 EiB growth into a small shrink.
pub fn signed_delta(old: u64, new: u64) -> i128 {
    i128::from(new) - i128::from(old)
}

fn delta(name: &str, old: u64, new: u64) -> Delta {
    Delta {
        name: name.to_string(),
        old,
        new,
        delta: signed_delta(old, new),
    }
}

/// Layers both images have.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Shared {
    /// How many.
    pub layers: usize,
    /// Their compressed bytes (what a registry pull of NEW reuses).
    pub compressed_bytes: u64,
    /// Their uncompressed tar bytes.
    pub tar_bytes: u64,
}

/// One aligned instruction.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InstructionDelta {
    /// `shared` (same layer), `rebuilt` (same instruction, other content),
    /// `changed` (other instruction in the same place), `added`, `removed`.
    pub status: String,
    /// Layer in OLD (0-based).
    pub old_layer_index: Option<usize>,
    /// Layer in NEW (0-based).
    pub new_layer_index: Option<usize>,
    /// Instruction in OLD.
    pub old_instruction: Option<String>,
    /// Instruction in NEW.
    pub new_instruction: Option<String>,
    /// Content bytes of the OLD layer.
    pub old_bytes: u64,
    /// Content bytes of the NEW layer.
    pub new_bytes: u64,
    /// `new_bytes − old_bytes`.
    pub delta: i128,
    /// Compressed bytes of the OLD layer.
    pub old_compressed_bytes: u64,
    /// Compressed bytes of the NEW layer.
    pub new_compressed_bytes: u64,
}

/// A file that changed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FileChange {
    /// Path (the new path for moves).
    pub path: String,
    /// The old path of a moved file.
    pub old_path: Option<String>,
    /// Size in OLD (0 when added).
    pub old_bytes: u64,
    /// Size in NEW (0 when removed).
    pub new_bytes: u64,
    /// `new_bytes − old_bytes`.
    pub delta: i128,
    /// Layer that wrote it: NEW's, or OLD's for removed files.
    pub layer_index: usize,
}

/// Files added, removed, grown, shrunk and moved.
#[derive(Debug, Clone, Serialize, Default, schemars::JsonSchema)]
pub struct FileChanges {
    /// New paths.
    pub added: Vec<FileChange>,
    /// Paths gone.
    pub removed: Vec<FileChange>,
    /// Paths whose file got larger.
    pub grown: Vec<FileChange>,
    /// Paths whose file got smaller.
    pub shrunk: Vec<FileChange>,
    /// Same content at another path.
    pub moved: Vec<FileChange>,
    /// Totals before `--top` cut the lists: added, removed, grown, shrunk, moved.
    pub counts: BTreeMap<String, usize>,
}

/// What changed inside a package whose version did not.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct PackageFiles {
    /// Files of the package visible in NEW only.
    pub added: u64,
    /// Files of the package visible in OLD only (e.g. bytecode or headers
    /// stripped after the install).
    pub removed: u64,
    /// Files visible in both with another size.
    pub resized: u64,
    /// Bytes of the added files.
    pub added_bytes: u64,
    /// Bytes of the removed files.
    pub removed_bytes: u64,
    /// Visible bytes NEW − OLD per category, categories that changed only.
    pub categories: BTreeMap<String, i128>,
}

/// A package that changed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PackageChange {
    /// Package name.
    pub name: String,
    /// `added`, `removed`, `upgraded`, `downgraded`, or `changed`: the same
    /// version with other contents (files removed or added inside the
    /// package after it was installed, e.g. bytecode or headers stripped, or
    /// files rewritten); `files` says which.
    pub change: String,
    /// Version in OLD.
    pub old_version: Option<String>,
    /// Version in NEW.
    pub new_version: Option<String>,
    /// Bytes in OLD.
    pub old_bytes: u64,
    /// Bytes in NEW.
    pub new_bytes: u64,
    /// `new_bytes − old_bytes`.
    pub delta: i128,
    /// For `changed` Python packages: the files that changed inside it.
    pub files: Option<PackageFiles>,
}

/// Package-level changes.
#[derive(Debug, Clone, Serialize, Default, schemars::JsonSchema)]
pub struct Packages {
    /// From `*.dist-info` directories (bytes: the visible files their RECORD lists).
    pub python: Vec<PackageChange>,
    /// From `/var/lib/dpkg/status` (bytes: `Installed-Size`, in KiB × 1024).
    pub debian: Vec<PackageChange>,
}

/// The headline of a diff, as figures and references.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// Visible bytes, NEW − OLD.
    pub visible_delta_bytes: i128,
    /// What a pull downloads (`download_bytes`), NEW − OLD.
    pub compressed_delta_bytes: i128,
    /// Whether a side's `download_bytes` is (partly) a gzip estimate, for
    /// layers stored uncompressed.
    pub compressed_estimated: bool,
    /// The non-shared instruction whose size changed most: an index into
    /// `instructions`.
    pub biggest_change: Option<usize>,
    /// The category whose visible bytes changed most: an index into
    /// `categories`.
    pub largest_category_change: Option<usize>,
}

/// The `--fail-over` check.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Threshold {
    /// `visible_bytes`, or `download_bytes` (compressed, estimated for layers
    /// stored uncompressed) with `--compressed`.
    pub measure: String,
    /// The limit as given (`100MB`, `5%`).
    pub limit: String,
    /// Allowed growth in bytes.
    pub limit_bytes: u64,
    /// Actual growth.
    pub growth_bytes: i128,
    /// Whether the growth is over the limit (exit code 1).
    pub exceeded: bool,
}

/// The whole diff.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Diff {
    /// Always `mlsize/v1`.
    pub schema: &'static str,
    /// Always `diff`.
    pub kind: &'static str,
    /// The old image.
    pub old: Side,
    /// The new image.
    pub new: Side,
    /// The headline figures a reviewer reads first (renderers make a
    /// sentence of them).
    pub summary: Summary,
    /// Layers both have.
    pub shared: Shared,
    /// Image totals.
    pub totals: Vec<Delta>,
    /// Visible bytes per category, in rule order.
    pub categories: Vec<Delta>,
    /// Aligned instructions.
    pub instructions: Vec<InstructionDelta>,
    /// Files.
    pub files: FileChanges,
    /// Packages.
    pub packages: Packages,
    /// `--fail-over`, when given.
    pub threshold: Option<Threshold>,
}

/// The summary of one image.
pub fn side(r: &Report) -> Side {
    Side {
        name: r.image.name.clone(),
        source: r.image.source.clone(),
        format: r.image.format.clone(),
        platform: r.image.platform.clone(),
        layer_count: r.image.layer_count,
        cache: r.image.cache.clone(),
    }
}

/// Compares two analyses. `top` bounds the file lists.
pub fn diff(old: &Analysis, new: &Analysis, top: usize) -> Diff {
    let (o, n) = (&old.report, &new.report);
    let totals = vec![
        delta(
            "compressed_bytes",
            o.image.compressed_bytes,
            n.image.compressed_bytes,
        ),
        delta(
            "download_bytes",
            o.image.download_bytes,
            n.image.download_bytes,
        ),
        delta("tar_bytes", o.image.tar_bytes, n.image.tar_bytes),
        delta(
            "content_bytes",
            o.image.content_bytes,
            n.image.content_bytes,
        ),
        delta(
            "visible_bytes",
            o.image.visible_bytes,
            n.image.visible_bytes,
        ),
        delta("wasted_bytes", o.image.wasted_bytes, n.image.wasted_bytes),
        delta("files", o.image.files, n.image.files),
        delta(
            "duplicate_reclaimable_bytes",
            o.image.duplicate_reclaimable_bytes,
            n.image.duplicate_reclaimable_bytes,
        ),
        delta(
            "cuda_duplicate_reclaimable_bytes",
            o.image.cuda_duplicate_reclaimable_bytes,
            n.image.cuda_duplicate_reclaimable_bytes,
        ),
    ];
    // Categories: NEW's rule order, then any OLD-only names.
    let old_cats: HashMap<&str, u64> = o
        .categories
        .iter()
        .map(|c| (c.name.as_str(), c.visible_bytes))
        .collect();
    let mut categories: Vec<Delta> = n
        .categories
        .iter()
        .map(|c| {
            delta(
                &c.name,
                old_cats.get(c.name.as_str()).copied().unwrap_or(0),
                c.visible_bytes,
            )
        })
        .collect();
    for c in &o.categories {
        if !n.categories.iter().any(|x| x.name == c.name) {
            categories.push(delta(&c.name, c.visible_bytes, 0));
        }
    }

    let instructions = align(o, n);
    let shared_layers: Vec<&InstructionDelta> = instructions
        .iter()
        .filter(|i| i.status == "shared")
        .collect();
    let shared = Shared {
        layers: shared_layers.len(),
        compressed_bytes: shared_layers.iter().map(|i| i.new_compressed_bytes).sum(),
        tar_bytes: shared_layers
            .iter()
            .filter_map(|i| i.new_layer_index)
            .map(|l| n.layers[l].tar_bytes)
            .sum(),
    };
    let files = diff_files(
        old,
        new,
        top,
        o.image.content_hashed && n.image.content_hashed,
    );
    let cat_names =
        |r: &Report| -> Vec<String> { r.categories.iter().map(|c| c.name.clone()).collect() };
    let packages = Packages {
        python: diff_packages(
            &python_packages(old),
            &python_packages(new),
            &cat_names(o),
            &cat_names(n),
        ),
        debian: diff_packages(
            &debian_packages(old),
            &debian_packages(new),
            &cat_names(o),
            &cat_names(n),
        ),
    };
    let summary = summarize(o, n, &instructions, &categories);
    Diff {
        schema: super::SCHEMA,
        kind: "diff",
        old: side(o),
        new: side(n),
        summary,
        shared,
        totals,
        categories,
        instructions,
        files,
        packages,
        threshold: None,
    }
}

fn summarize(o: &Report, n: &Report, instr: &[InstructionDelta], cats: &[Delta]) -> Summary {
    let biggest_change = instr
        .iter()
        .enumerate()
        .filter(|(_, i)| i.status != "shared" && i.delta != 0)
        .max_by_key(|(_, i)| (i.delta.unsigned_abs(), std::cmp::Reverse(i.new_layer_index)))
        .map(|(k, _)| k);
    let largest_category_change = cats
        .iter()
        .enumerate()
        .filter(|(_, c)| c.delta != 0)
        .max_by_key(|(k, c)| (c.delta.unsigned_abs(), std::cmp::Reverse(*k)))
        .map(|(k, _)| k);
    Summary {
        visible_delta_bytes: signed_delta(o.image.visible_bytes, n.image.visible_bytes),
        compressed_delta_bytes: signed_delta(o.image.download_bytes, n.image.download_bytes),
        compressed_estimated: [o, n]
            .iter()
            .any(|r| r.image.download_bytes_basis != super::DownloadBasis::Stored),
        biggest_change,
        largest_category_change,
    }
}

/// Aligns layers by instruction text, then labels every pair.
///
/// The alignment is a shortest edit script (Myers' algorithm with its
/// linear-space refinement, from the `similar` crate): memory grows with the
/// number of layers, not with its square, so an archive that declares tens of
/// thousands of layers cannot make `diff` allocate gigabytes.
fn align(o: &Report, n: &Report) -> Vec<InstructionDelta> {
    use similar::{Algorithm, DiffOp, capture_diff_slices};
    let ok: Vec<String> = o.layers.iter().map(|l| match_key(&l.instruction)).collect();
    let nk: Vec<String> = n.layers.iter().map(|l| match_key(&l.instruction)).collect();
    let mut out = Vec::new();
    let mut pend_old: Vec<usize> = Vec::new();
    let mut pend_new: Vec<usize> = Vec::new();
    // Unmatched layers between two matches pair up in order as `changed`;
    // the rest are `removed` or `added`.
    let flush = |out: &mut Vec<InstructionDelta>, po: &mut Vec<usize>, pn: &mut Vec<usize>| {
        let k = po.len().max(pn.len());
        for x in 0..k {
            let (ol, nl) = (po.get(x).copied(), pn.get(x).copied());
            let status = match (ol, nl) {
                (Some(_), Some(_)) => "changed",
                (Some(_), None) => "removed",
                _ => "added",
            };
            out.push(entry(o, n, ol, nl, status));
        }
        po.clear();
        pn.clear();
    };
    for op in capture_diff_slices(Algorithm::Myers, &ok, &nk) {
        match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                flush(&mut out, &mut pend_old, &mut pend_new);
                for k in 0..len {
                    let (i, j) = (old_index + k, new_index + k);
                    let same =
                        o.layers[i].diff_id.is_some() && o.layers[i].diff_id == n.layers[j].diff_id;
                    out.push(entry(
                        o,
                        n,
                        Some(i),
                        Some(j),
                        if same { "shared" } else { "rebuilt" },
                    ));
                }
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => pend_old.extend(old_index..old_index + old_len),
            DiffOp::Insert {
                new_index, new_len, ..
            } => pend_new.extend(new_index..new_index + new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                pend_old.extend(old_index..old_index + old_len);
                pend_new.extend(new_index..new_index + new_len);
            }
        }
    }
    flush(&mut out, &mut pend_old, &mut pend_new);
    out
}

fn entry(
    o: &Report,
    n: &Report,
    ol: Option<usize>,
    nl: Option<usize>,
    status: &str,
) -> InstructionDelta {
    let ob = ol.map_or(0, |l| o.layers[l].content_bytes);
    let nb = nl.map_or(0, |l| n.layers[l].content_bytes);
    InstructionDelta {
        status: status.to_string(),
        old_layer_index: ol,
        new_layer_index: nl,
        old_instruction: ol.map(|l| o.layers[l].instruction.clone()),
        new_instruction: nl.map(|l| n.layers[l].instruction.clone()),
        old_bytes: ob,
        new_bytes: nb,
        delta: signed_delta(ob, nb),
        old_compressed_bytes: ol.map_or(0, |l| o.layers[l].compressed_bytes),
        new_compressed_bytes: nl.map_or(0, |l| n.layers[l].compressed_bytes),
    }
}

struct VisibleFile {
    bytes: u64,
    hash: ContentHash,
    layer: usize,
}

fn visible_files(a: &Analysis) -> HashMap<&str, VisibleFile> {
    a.inodes
        .iter()
        .filter(|i| i.visible)
        .map(|i| {
            (
                i.shown_path(),
                VisibleFile {
                    bytes: i.bytes,
                    hash: i.hash,
                    layer: i.layer as usize,
                },
            )
        })
        .collect()
}

fn sort_and_cut(v: &mut Vec<FileChange>, top: usize) -> usize {
    v.sort_by(|a, b| {
        b.delta
            .unsigned_abs()
            .cmp(&a.delta.unsigned_abs())
            .then_with(|| a.path.cmp(&b.path))
    });
    let n = v.len();
    v.truncate(top);
    n
}

fn diff_files(old: &Analysis, new: &Analysis, top: usize, hashed: bool) -> FileChanges {
    let of = visible_files(old);
    let nf = visible_files(new);
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut grown = Vec::new();
    let mut shrunk = Vec::new();
    for (p, f) in &nf {
        match of.get(p) {
            None => added.push((*p, f)),
            Some(g) if g.bytes < f.bytes => grown.push(change(p, None, g.bytes, f.bytes, f.layer)),
            Some(g) if g.bytes > f.bytes => shrunk.push(change(p, None, g.bytes, f.bytes, f.layer)),
            Some(_) => {}
        }
    }
    for (p, f) in &of {
        if !nf.contains_key(p) {
            removed.push((*p, f));
        }
    }
    // Moves: a removed path whose exact content (hash and size) was added elsewhere.
    // Paired in path order so the result does not depend on hash-map order.
    added.sort_by(|a, b| a.0.cmp(b.0));
    removed.sort_by(|a, b| a.0.cmp(b.0));
    let mut by_content: HashMap<(u64, ContentHash), Vec<usize>> = HashMap::new();
    for (k, (_, f)) in removed.iter().enumerate().rev() {
        by_content.entry((f.bytes, f.hash)).or_default().push(k);
    }
    let mut moved_from = vec![false; removed.len()];
    let mut moved = Vec::new();
    let mut added_out = Vec::new();
    for (p, f) in &added {
        let m = by_content.get_mut(&(f.bytes, f.hash)).and_then(|v| v.pop());
        match m {
            Some(k) if f.bytes > 0 && hashed => {
                moved_from[k] = true;
                moved.push(change(p, Some(removed[k].0), f.bytes, f.bytes, f.layer));
            }
            _ => added_out.push(change(p, None, 0, f.bytes, f.layer)),
        }
    }
    let mut removed_out: Vec<FileChange> = removed
        .iter()
        .enumerate()
        .filter(|(k, _)| !moved_from[*k])
        .map(|(_, (p, f))| change(p, None, f.bytes, 0, f.layer))
        .collect();
    let mut counts = BTreeMap::new();
    counts.insert("added".to_string(), sort_and_cut(&mut added_out, top));
    counts.insert("removed".to_string(), sort_and_cut(&mut removed_out, top));
    counts.insert("grown".to_string(), sort_and_cut(&mut grown, top));
    counts.insert("shrunk".to_string(), sort_and_cut(&mut shrunk, top));
    moved.sort_by(|a, b| {
        b.new_bytes
            .cmp(&a.new_bytes)
            .then_with(|| a.path.cmp(&b.path))
    });
    counts.insert("moved".to_string(), moved.len());
    moved.truncate(top);
    FileChanges {
        added: added_out,
        removed: removed_out,
        grown,
        shrunk,
        moved,
        counts,
    }
}

fn change(p: &str, old: Option<&str>, ob: u64, nb: u64, layer: usize) -> FileChange {
    FileChange {
        path: p.to_string(),
        old_path: old.map(str::to_string),
        old_bytes: ob,
        new_bytes: nb,
        delta: signed_delta(ob, nb),
        layer_index: layer,
    }
}

/// One installed package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    /// Its version.
    pub version: String,
    /// Its bytes.
    pub bytes: u64,
    /// Its visible files: path → (bytes, category index), when the package
    /// database lists them (Python's RECORD does, dpkg's status does not).
    pub files: Option<BTreeMap<String, (u64, u8)>>,
}

/// name → package
pub type PackageSet = BTreeMap<String, Package>;

/// Python distributions from visible `*.dist-info/RECORD` files. A package's
/// bytes are the visible files its RECORD lists (RECORD's own size column
/// where a listed file is not visible by that path).
pub fn python_packages(a: &Analysis) -> PackageSet {
    let sizes: HashMap<&str, (u64, u8)> = a
        .inodes
        .iter()
        .filter(|i| i.visible)
        .map(|i| (i.shown_path(), (i.bytes, i.category)))
        .collect();
    let mut out = PackageSet::new();
    for i in a.inodes.iter().filter(|i| i.visible) {
        let Some(data) = i.data() else { continue };
        let path = i.shown_path();
        let Some(dist_dir) = path.strip_suffix("/RECORD") else {
            continue;
        };
        let (site, dist) = crate::layer::path::split_parent(dist_dir);
        let Some(stem) = dist.strip_suffix(".dist-info") else {
            continue;
        };
        let Some((name, version)) = stem.split_once('-') else {
            continue;
        };
        let text = String::from_utf8_lossy(data);
        let mut bytes = 0u64;
        let mut files = BTreeMap::new();
        for line in text.lines() {
            let (file, rest) = split_csv_first(line);
            if file.is_empty() {
                continue;
            }
            let joined = format!("{site}/{file}");
            let (p, _) = crate::layer::path::normalize(joined.as_bytes());
            bytes += match sizes.get(p.as_str()) {
                Some(&(b, c)) => {
                    files.insert(p, (b, c));
                    b
                }
                None => rest
                    .rsplit(',')
                    .next()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0),
            };
        }
        let key = name.to_ascii_lowercase().replace(['-', '.'], "_");
        let e = out.entry(key).or_insert_with(|| Package {
            version: version.to_string(),
            bytes: 0,
            files: Some(BTreeMap::new()),
        });
        e.bytes += bytes;
        if let Some(f) = &mut e.files {
            f.extend(files);
        }
    }
    out
}

/// First field of a CSV line (RECORD quotes paths with commas) and the rest.
fn split_csv_first(line: &str) -> (String, &str) {
    if let Some(rest) = line.strip_prefix('"') {
        let mut field = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((k, c)) = chars.next() {
            if c == '"' {
                if let Some((_, '"')) = chars.peek() {
                    field.push('"');
                    chars.next();
                    continue;
                }
                let after = &rest[k + 1..];
                return (field, after.strip_prefix(',').unwrap_or(after));
            }
            field.push(c);
        }
        return (field, "");
    }
    match line.split_once(',') {
        Some((a, b)) => (a.to_string(), b),
        None => (line.to_string(), ""),
    }
}

/// Debian packages from the visible dpkg status database (and distroless's
/// `status.d`), with `Installed-Size` in bytes.
pub fn debian_packages(a: &Analysis) -> PackageSet {
    let mut out = PackageSet::new();
    for i in a.inodes.iter().filter(|i| i.visible) {
        let Some(data) = i.data() else { continue };
        let p = i.shown_path();
        if p != "/var/lib/dpkg/status" && !p.starts_with("/var/lib/dpkg/status.d/") {
            continue;
        }
        let text = String::from_utf8_lossy(data);
        for para in text.split("\n\n") {
            let mut name = None;
            let mut version = String::new();
            let mut size = 0u64;
            let mut installed = true;
            for line in para.lines() {
                if let Some(v) = line.strip_prefix("Package:") {
                    name = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("Version:") {
                    version = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("Installed-Size:") {
                    size = v.trim().parse::<u64>().unwrap_or(0) * 1024;
                } else if let Some(v) = line.strip_prefix("Status:") {
                    installed = v.contains("installed")
                        && !v.contains("not-installed")
                        && !v.contains("config-files");
                }
            }
            if let (Some(n), true) = (name, installed) {
                out.insert(
                    n,
                    Package {
                        version,
                        bytes: size,
                        files: None,
                    },
                );
            }
        }
    }
    out
}

/// Compares dotted versions numerically where they are numbers.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(p), Ok(q)) => p.cmp(&q),
            _ => x.cmp(y),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// The files that changed inside a package: `None` when a side has no file
/// list. Category indexes are named by each side's own rule table.
fn package_files(
    old: &Package,
    new: &Package,
    old_cats: &[String],
    new_cats: &[String],
) -> Option<PackageFiles> {
    let (of, nf) = (old.files.as_ref()?, new.files.as_ref()?);
    let name = |names: &[String], c: u8| {
        names
            .get(usize::from(c))
            .cloned()
            .unwrap_or_else(|| crate::category::OTHER.to_string())
    };
    let mut f = PackageFiles::default();
    let mut cats: BTreeMap<String, i128> = BTreeMap::new();
    for (p, &(nb, nc)) in nf {
        match of.get(p) {
            None => {
                f.added += 1;
                f.added_bytes += nb;
                *cats.entry(name(new_cats, nc)).or_default() += i128::from(nb);
            }
            Some(&(ob, oc)) if ob != nb => {
                f.resized += 1;
                *cats.entry(name(old_cats, oc)).or_default() -= i128::from(ob);
                *cats.entry(name(new_cats, nc)).or_default() += i128::from(nb);
            }
            Some(_) => {}
        }
    }
    for (p, &(ob, oc)) in of {
        if !nf.contains_key(p) {
            f.removed += 1;
            f.removed_bytes += ob;
            *cats.entry(name(old_cats, oc)).or_default() -= i128::from(ob);
        }
    }
    cats.retain(|_, d| *d != 0);
    f.categories = cats;
    Some(f)
}

fn diff_packages(
    old: &PackageSet,
    new: &PackageSet,
    old_cats: &[String],
    new_cats: &[String],
) -> Vec<PackageChange> {
    let mut out = Vec::new();
    for (name, np) in new {
        let (change, op) = match old.get(name) {
            None => ("added", None),
            Some(op) if op.version != np.version => {
                let c = if version_order(&np.version, &op.version).is_ge() {
                    "upgraded"
                } else {
                    "downgraded"
                };
                (c, Some(op))
            }
            Some(op) if op.bytes != np.bytes || op.files != np.files => ("changed", Some(op)),
            Some(_) => continue,
        };
        let ob = op.map_or(0, |p| p.bytes);
        let files = match (change, op) {
            ("changed", Some(op)) => package_files(op, np, old_cats, new_cats),
            _ => None,
        };
        out.push(PackageChange {
            name: name.clone(),
            change: change.into(),
            old_version: op.map(|p| p.version.clone()),
            new_version: Some(np.version.clone()),
            old_bytes: ob,
            new_bytes: np.bytes,
            delta: signed_delta(ob, np.bytes),
            files,
        });
    }
    for (name, op) in old {
        if !new.contains_key(name) {
            out.push(PackageChange {
                name: name.clone(),
                change: "removed".into(),
                old_version: Some(op.version.clone()),
                new_version: None,
                old_bytes: op.bytes,
                new_bytes: 0,
                delta: signed_delta(op.bytes, 0),
                files: None,
            });
        }
    }
    out.sort_by(|a, b| {
        b.delta
            .unsigned_abs()
            .cmp(&a.delta.unsigned_abs())
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_first_field() {
        assert_eq!(
            split_csv_first("torch/a.py,sha256=x,12"),
            ("torch/a.py".into(), "sha256=x,12")
        );
        assert_eq!(
            split_csv_first("\"a,b.py\",sha256=x,3"),
            ("a,b.py".into(), "sha256=x,3")
        );
        assert_eq!(split_csv_first("\"q\"\"x\",,"), ("q\"x".into(), ","));
    }

    // See: issue 12 (a 16 EiB growth computed in i64 read as a shrink).
    #[test]
    fn deltas_never_wrap() {
        assert_eq!(signed_delta(0, u64::MAX), i128::from(u64::MAX));
        assert_eq!(signed_delta(u64::MAX, 0), -i128::from(u64::MAX));
        assert_eq!(signed_delta(4278, u64::MAX), i128::from(u64::MAX) - 4278);
        assert!(signed_delta(4278, u64::MAX) > 0, "growth stays growth");
    }

    #[test]
    fn versions_order() {
        use std::cmp::Ordering::*;
        assert_eq!(version_order("2.5.1", "2.4.0"), Greater);
        assert_eq!(version_order("2.10.0", "2.9.1"), Greater);
        assert_eq!(version_order("1.0", "1.0.1"), Less);
        assert_eq!(version_order("12.4.5.8", "12.4.5.8"), Equal);
    }
}
