//! Where the bytes are, by directory: the tree behind the HTML report's
//! treemap (and `analyze --format json --tree`).
//!
//! Every regular file of every layer is placed at its path: visible files at
//! the name they have in the final filesystem, wasted ones (deleted or
//! overwritten by a later layer) at the path they were written at, as nodes
//! of their own, so one path can hold a visible file and the wasted copies
//! it replaced. A directory carries the totals of its subtree.
//!
//! A tree of a million files would be a page nobody can open, so the tree
//! keeps at most about [`NODE_BUDGET`] nodes: the largest ones. Whatever is
//! smaller than the smallest node kept is gathered, per directory, into one
//! node of "N small files" (one for visible files, one for wasted ones), so
//! every byte is still in the tree and every directory still adds up.

use std::collections::HashMap;

use serde::Serialize;

use crate::category::Rules;
use crate::overlay::Inode;

/// About how many nodes a tree keeps (see the module documentation). Two
/// aggregated nodes may come in addition per directory kept.
pub const NODE_BUDGET: usize = 12_000;

/// A directory, a file, or the small files of a directory.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct TreeNode {
    /// The path component; empty for the root and for aggregated nodes.
    pub name: String,
    /// Visible bytes: of the file, or of everything below the directory.
    pub visible_bytes: u64,
    /// Wasted bytes: of the file, or of everything below the directory.
    pub wasted_bytes: u64,
    /// Regular files it stands for.
    pub files: u64,
    /// A file, or the small files of a directory (`aggregated`): its
    /// category; for aggregated files the one with the most bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// A file, or aggregated files: the 0-based index in `layers[]` of the
    /// layer that wrote it (for aggregated files, the one with the most bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_index: Option<usize>,
    /// The node gathers the files of its directory too small to draw.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub aggregated: bool,
    /// A directory's entries, largest first; `None` for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<TreeNode>>,
}

/// One file as placed in the tree; `fate` tells which total it counts in
/// (visible or wasted; for growth: new, grew, shrank, removed).
struct Leaf {
    name: Box<str>,
    bytes: u64,
    fate: u8,
    category: u8,
    layer: u32,
}

const FATES: usize = 4;

#[derive(Default)]
struct Dir {
    name: Box<str>,
    dirs: HashMap<Box<str>, usize>,
    leaves: Vec<Leaf>,
    totals: [u64; FATES],
    files: u64,
}

impl Dir {
    fn bytes(&self) -> u64 {
        self.totals.iter().sum()
    }
}

/// Directories (the root first), built from files at their paths.
fn directories<'a>(files: impl Iterator<Item = (&'a str, u64, u8, u8, u32)>) -> Vec<Dir> {
    let mut dirs: Vec<Dir> = vec![Dir::default()];
    for (path, bytes, fate, category, layer) in files {
        let mut at = 0;
        let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
        let mut name = "";
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                name = part;
                break;
            }
            at = match dirs[at].dirs.get(part) {
                Some(&d) => d,
                None => {
                    dirs.push(Dir {
                        name: part.into(),
                        ..Dir::default()
                    });
                    let d = dirs.len() - 1;
                    dirs[at].dirs.insert(part.into(), d);
                    d
                }
            };
        }
        dirs[at].leaves.push(Leaf {
            name: name.into(),
            bytes,
            fate,
            category,
            layer,
        });
    }
    // Totals bottom up: a directory is always created after its parent.
    for d in (0..dirs.len()).rev() {
        let mut totals = [0u64; FATES];
        let mut files = 0;
        for l in &dirs[d].leaves {
            totals[usize::from(l.fate)] += l.bytes;
            files += 1;
        }
        for &c in dirs[d].dirs.values() {
            for (t, x) in totals.iter_mut().zip(dirs[c].totals) {
                *t += x;
            }
            files += dirs[c].files;
        }
        (dirs[d].totals, dirs[d].files) = (totals, files);
    }
    dirs
}

/// The smallest size a node must have to be kept: that of the budget-th
/// largest node (ties at it all go to the small files, so the budget holds).
fn min_bytes(dirs: &[Dir], budget: usize) -> u64 {
    let mut sizes: Vec<u64> = dirs
        .iter()
        .skip(1)
        .map(Dir::bytes)
        .chain(dirs.iter().flat_map(|d| d.leaves.iter().map(|l| l.bytes)))
        .collect();
    if sizes.len() <= budget {
        return 1;
    }
    let (_, nth, _) = sizes.select_nth_unstable_by(budget, |a, b| b.cmp(a));
    nth.saturating_add(1).max(1)
}

/// How a kind of tree makes its nodes.
trait Nodes {
    type Node;
    fn file(&self, l: &Leaf) -> Self::Node;
    fn small(&self, fate: u8, s: &Small) -> Self::Node;
    fn dir(&self, d: &Dir, children: Vec<Self::Node>) -> Self::Node;
    /// Largest first, then a stable order.
    fn order(a: &Self::Node, b: &Self::Node) -> std::cmp::Ordering;
}

fn emit<N: Nodes>(n: &N, dirs: &[Dir], d: usize, min: u64) -> N::Node {
    let dir = &dirs[d];
    let mut children = Vec::new();
    let mut small: [Small; FATES] = Default::default();
    for &c in dir.dirs.values() {
        if dirs[c].bytes() >= min {
            children.push(emit(n, dirs, c, min));
        } else {
            gather_dir(dirs, c, &mut small);
        }
    }
    for l in &dir.leaves {
        if l.bytes >= min {
            children.push(n.file(l));
        } else {
            small[usize::from(l.fate)].add(l);
        }
    }
    for (fate, s) in small.iter().enumerate() {
        if s.files > 0 {
            children.push(n.small(fate as u8, s));
        }
    }
    children.sort_by(N::order);
    n.dir(dir, children)
}

/// The analysis tree: visible and wasted files.
struct Fates<'r>(&'r Rules);

impl Nodes for Fates<'_> {
    type Node = TreeNode;
    fn file(&self, l: &Leaf) -> TreeNode {
        TreeNode {
            name: l.name.to_string(),
            visible_bytes: if l.fate == 1 { 0 } else { l.bytes },
            wasted_bytes: if l.fate == 1 { l.bytes } else { 0 },
            files: 1,
            category: Some(self.0.name(l.category).to_string()),
            layer_index: Some(l.layer as usize),
            aggregated: false,
            children: None,
        }
    }
    fn small(&self, fate: u8, s: &Small) -> TreeNode {
        let (category, layer) = s.dominant();
        TreeNode {
            name: String::new(),
            visible_bytes: if fate == 1 { 0 } else { s.bytes },
            wasted_bytes: if fate == 1 { s.bytes } else { 0 },
            files: s.files,
            category: Some(self.0.name(category).to_string()),
            layer_index: Some(layer as usize),
            aggregated: true,
            children: None,
        }
    }
    fn dir(&self, d: &Dir, children: Vec<TreeNode>) -> TreeNode {
        TreeNode {
            name: d.name.to_string(),
            visible_bytes: d.totals[0],
            wasted_bytes: d.totals[1],
            files: d.files,
            category: None,
            layer_index: None,
            aggregated: false,
            children: Some(children),
        }
    }
    fn order(a: &TreeNode, b: &TreeNode) -> std::cmp::Ordering {
        (b.visible_bytes + b.wasted_bytes)
            .cmp(&(a.visible_bytes + a.wasted_bytes))
            .then_with(|| a.aggregated.cmp(&b.aggregated))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.visible_bytes.cmp(&b.visible_bytes))
            .then_with(|| a.layer_index.cmp(&b.layer_index))
    }
}

/// Builds the tree of an analysis' inodes, keeping about `budget` nodes.
pub fn build(inodes: &[Inode], rules: &Rules, budget: usize) -> TreeNode {
    let dirs = directories(inodes.iter().map(|i| {
        let path = if i.visible { i.shown_path() } else { &*i.path };
        (path, i.bytes, u8::from(!i.visible), i.category, i.layer)
    }));
    emit(&Fates(rules), &dirs, 0, min_bytes(&dirs, budget))
}

/// How a path changed between two images.
const CHANGES: [&str; 4] = ["new", "grew", "shrank", "removed"];

/// A node of the growth tree (`diff --format json --tree`): bytes added and
/// removed between two images' final filesystems, by directory.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct GrowthNode {
    /// The path component; empty for the root and for aggregated nodes.
    pub name: String,
    /// Bytes added: new files, and the growth of files that grew.
    pub added_bytes: u64,
    /// Bytes removed: removed files, and what files that shrank lost.
    pub removed_bytes: u64,
    /// Files that changed.
    pub files: u64,
    /// A file, or aggregated files: `new`, `grew`, `shrank` or `removed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<&'static str>,
    /// The node gathers the changed files of its directory too small to draw.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub aggregated: bool,
    /// A directory's entries, largest change first; `None` for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<GrowthNode>>,
}

struct Changes;

impl Nodes for Changes {
    type Node = GrowthNode;
    fn file(&self, l: &Leaf) -> GrowthNode {
        let added = l.fate < 2;
        GrowthNode {
            name: l.name.to_string(),
            added_bytes: if added { l.bytes } else { 0 },
            removed_bytes: if added { 0 } else { l.bytes },
            files: 1,
            change: Some(CHANGES[usize::from(l.fate)]),
            aggregated: false,
            children: None,
        }
    }
    fn small(&self, fate: u8, s: &Small) -> GrowthNode {
        let added = fate < 2;
        GrowthNode {
            name: String::new(),
            added_bytes: if added { s.bytes } else { 0 },
            removed_bytes: if added { 0 } else { s.bytes },
            files: s.files,
            change: Some(CHANGES[usize::from(fate)]),
            aggregated: true,
            children: None,
        }
    }
    fn dir(&self, d: &Dir, children: Vec<GrowthNode>) -> GrowthNode {
        GrowthNode {
            name: d.name.to_string(),
            added_bytes: d.totals[0] + d.totals[1],
            removed_bytes: d.totals[2] + d.totals[3],
            files: d.files,
            change: None,
            aggregated: false,
            children: Some(children),
        }
    }
    fn order(a: &GrowthNode, b: &GrowthNode) -> std::cmp::Ordering {
        (b.added_bytes + b.removed_bytes)
            .cmp(&(a.added_bytes + a.removed_bytes))
            .then_with(|| a.aggregated.cmp(&b.aggregated))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.change.cmp(&b.change))
    }
}

/// The growth tree between two analyses' final filesystems (visible files
/// by path), keeping about `budget` nodes. Unchanged files are left out.
pub fn growth(old: &[Inode], new: &[Inode], budget: usize) -> GrowthNode {
    let visible = |inodes: &'_ [Inode]| -> HashMap<String, u64> {
        inodes
            .iter()
            .filter(|i| i.visible)
            .map(|i| (i.shown_path().to_string(), i.bytes))
            .collect()
    };
    let (old, new) = (visible(old), visible(new));
    let mut changed: Vec<(String, u64, u8)> = Vec::new();
    for (path, &n) in &new {
        match old.get(path) {
            None => changed.push((path.clone(), n, 0)),
            Some(&o) if n > o => changed.push((path.clone(), n - o, 1)),
            Some(&o) if n < o => changed.push((path.clone(), o - n, 2)),
            Some(_) => {}
        }
    }
    for (path, &o) in &old {
        if !new.contains_key(path) {
            changed.push((path.clone(), o, 3));
        }
    }
    let dirs = directories(changed.iter().map(|(p, b, f)| (p.as_str(), *b, *f, 0, 0)));
    emit(&Changes, &dirs, 0, min_bytes(&dirs, budget))
}

/// Small files gathered into one node.
#[derive(Default)]
struct Small {
    bytes: u64,
    files: u64,
    by_category: HashMap<u8, u64>,
    by_layer: HashMap<u32, u64>,
}

impl Small {
    fn add(&mut self, l: &Leaf) {
        self.bytes += l.bytes;
        self.files += 1;
        *self.by_category.entry(l.category).or_default() += l.bytes;
        *self.by_layer.entry(l.layer).or_default() += l.bytes;
    }

    /// The category and the layer with the most bytes (the lowest on a tie).
    fn dominant(&self) -> (u8, u32) {
        fn top<K: Copy + Ord + Default>(m: &HashMap<K, u64>) -> K {
            m.iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(&k, _)| k)
                .unwrap_or_default()
        }
        (top(&self.by_category), top(&self.by_layer))
    }
}

/// Every file below a directory too small to draw, gathered.
fn gather_dir(dirs: &[Dir], d: usize, small: &mut [Small; FATES]) {
    let mut stack = vec![d];
    while let Some(d) = stack.pop() {
        for l in &dirs[d].leaves {
            small[usize::from(l.fate)].add(l);
        }
        stack.extend(dirs[d].dirs.values().copied());
    }
}
