//! Stage 3, merge: the layers' [`LayerEntry`] lists, applied in order → [`Merged`].
//!
//! Follows the OCI image-spec (layer.md, "Whiteouts" and "Opaque Whiteout") and
//! `shared/ACCOUNTING.md`: a layer's whiteouts act on the lower layers only,
//! whatever their position in the tar; any non-directory entry replaces the
//! node at its path with its whole subtree; a directory over a directory merges;
//! symlinks are never followed. Every regular-file entry becomes one [`Inode`];
//! hard links give an inode more names; an inode's bytes are wasted when none
//! of its names survives to the final tree.

use std::collections::HashMap;

use crate::layer::{ContentHash, EntryKind, LayerEntry, path};

/// One regular-file entry as written by a layer. Kept small (64 bytes):
/// there is one per file, for the whole analysis.
#[derive(Debug, Clone)]
pub struct Inode {
    /// The path the entry was written at.
    pub path: Box<str>,
    /// Apparent size.
    pub bytes: u64,
    /// Content hash.
    pub hash: ContentHash,
    /// What few inodes have: another visible name, package-database content.
    extra: Option<Box<InodeExtra>>,
    /// Layer that wrote it (0-based).
    pub layer: u32,
    /// Number of visible names.
    pub names: u32,
    /// The last layer that removed or replaced one of its names, or [`NO_LAYER`].
    removed_by: u32,
    /// Category index, decided by `path`.
    pub category: u8,
    /// Whether any name of it is in the final tree.
    pub visible: bool,
    /// Whether one of its visible names is in another category than
    /// `category` (a hard link out of a cache into site-packages, as uv
    /// installs by default): removing its category's files does not free it.
    pub named_elsewhere: bool,
}

#[derive(Debug, Clone, Default)]
struct InodeExtra {
    /// The lowest visible name in byte order, when it differs from `path`.
    visible_name: Option<Box<str>>,
    /// Content of a package-database file (see [`crate::layer::is_package_db`]).
    data: Option<Box<[u8]>>,
}

/// [`Inode`]'s `removed_by` when no layer removed it.
const NO_LAYER: u32 = u32::MAX;

impl Inode {
    /// The name to show for a visible inode: its lowest visible path.
    pub fn shown_path(&self) -> &str {
        self.extra
            .as_ref()
            .and_then(|x| x.visible_name.as_deref())
            .unwrap_or(&self.path)
    }

    /// Content of package-database files (see [`crate::layer::is_package_db`]).
    pub fn data(&self) -> Option<&[u8]> {
        self.extra.as_ref().and_then(|x| x.data.as_deref())
    }

    /// The last layer that removed or replaced one of its names.
    pub fn removed_by(&self) -> Option<u32> {
        (self.removed_by != NO_LAYER).then_some(self.removed_by)
    }

    fn set_visible_name(&mut self, name: Option<Box<str>>) {
        match (&mut self.extra, name) {
            (Some(x), name) => x.visible_name = name,
            (None, None) => {}
            (None, Some(name)) => {
                self.extra = Some(Box::new(InodeExtra {
                    visible_name: Some(name),
                    data: None,
                }))
            }
        }
    }
}

#[derive(Debug)]
enum Node {
    /// Boxed so that the far more numerous file nodes stay 16 bytes instead
    /// of 56: memory grows with the number of files.
    #[allow(clippy::box_collection)]
    Dir(Box<HashMap<Box<str>, u32>>),
    File(u32),
    Other,
}

/// The merged filesystem with every inode ever written.
#[derive(Debug)]
pub struct Merged {
    /// All regular-file entries of all layers, in layer then tar order.
    pub inodes: Vec<Inode>,
    /// Non-fatal oddities found while merging.
    pub warnings: Vec<String>,
}

/// Applies layers one at a time, on one thread, in manifest order.
#[derive(Debug)]
pub struct Overlay {
    layer: u32,
    nodes: Vec<Node>,
    inodes: Vec<Inode>,
    warnings: Vec<String>,
}

const ROOT: u32 = 0;

impl Default for Overlay {
    fn default() -> Self {
        Self::new()
    }
}

impl Overlay {
    /// An empty filesystem: just `/`.
    pub fn new() -> Overlay {
        Overlay {
            layer: 0,
            nodes: vec![Node::Dir(Box::default())],
            inodes: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Applies one layer's entries (consumed, to reuse their paths).
    pub fn apply_layer(&mut self, layer: u32, entries: Vec<LayerEntry>) {
        self.layer = layer;
        // image-spec: whiteouts apply to lower layers only, so they go first.
        for e in entries.iter() {
            match e.kind {
                EntryKind::Whiteout if !self.remove(&e.path) => {
                    self.warn(format!(
                        "layer {}: whiteout of '{}', which no lower layer has",
                        layer + 1,
                        e.path
                    ));
                }
                EntryKind::Opaque => self.clear_dir(&e.path),
                _ => {}
            }
        }
        for e in entries {
            match e.kind {
                EntryKind::Whiteout | EntryKind::Opaque => {}
                EntryKind::Dir => self.put(&e.path, NewNode::Dir),
                EntryKind::File => {
                    let id = self.inodes.len() as u32;
                    self.put(&e.path, NewNode::File(id));
                    self.inodes.push(Inode {
                        path: e.path,
                        bytes: e.bytes,
                        hash: e.hash,
                        extra: e.data.map(|data| {
                            Box::new(InodeExtra {
                                visible_name: None,
                                data: Some(data),
                            })
                        }),
                        layer,
                        names: 0,
                        removed_by: NO_LAYER,
                        category: e.category,
                        visible: false,
                        named_elsewhere: false,
                    });
                }
                EntryKind::HardLink(ref target) => match self.lookup(target) {
                    Some(n) => match self.nodes[n as usize] {
                        Node::File(inode) => self.put(&e.path, NewNode::File(inode)),
                        _ => self.put(&e.path, NewNode::Other),
                    },
                    None => {
                        self.warn(format!(
                            "layer {}: hard link '{}' to '{}', which does not exist; not counted",
                            layer + 1,
                            e.path,
                            target
                        ));
                    }
                },
                EntryKind::Symlink | EntryKind::Other => self.put(&e.path, NewNode::Other),
            }
        }
    }

    fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    /// Finds a node by path without creating anything.
    fn lookup(&self, p: &str) -> Option<u32> {
        let mut cur = ROOT;
        for comp in p.split('/').filter(|c| !c.is_empty()) {
            match &self.nodes[cur as usize] {
                Node::Dir(children) => cur = *children.get(comp)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// Removes the node at `p` with its subtree. Returns whether it existed.
    fn remove(&mut self, p: &str) -> bool {
        let (parent, name) = path::split_parent(p);
        if name.is_empty() {
            return false;
        }
        match self.lookup(parent) {
            Some(dir) => {
                let removed = match &mut self.nodes[dir as usize] {
                    Node::Dir(children) => children.remove(name),
                    _ => None,
                };
                match removed {
                    Some(n) => {
                        self.mark_removed(n);
                        true
                    }
                    None => false,
                }
            }
            None => false,
        }
    }

    /// Hides the lower children of a directory (opaque whiteout).
    fn clear_dir(&mut self, p: &str) {
        if let Some(n) = self.lookup(p)
            && let Node::Dir(children) = &mut self.nodes[n as usize]
        {
            let old: Vec<u32> = children.drain().map(|(_, c)| c).collect();
            for c in old {
                self.mark_removed(c);
            }
        }
    }

    /// Records that the current layer removed the names in a subtree.
    fn mark_removed(&mut self, n: u32) {
        let layer = self.layer;
        let mut stack = vec![n];
        while let Some(n) = stack.pop() {
            match &self.nodes[n as usize] {
                Node::File(i) => self.inodes[*i as usize].removed_by = layer,
                Node::Dir(children) => stack.extend(children.values().copied()),
                Node::Other => {}
            }
        }
    }

    /// Makes every parent of `p` a directory, replacing non-directories, and
    /// returns the parent's node.
    fn parent_dir(&mut self, p: &str) -> u32 {
        let (parent, _) = path::split_parent(p);
        let mut cur = ROOT;
        for comp in parent.split('/').filter(|c| !c.is_empty()) {
            let next = match &self.nodes[cur as usize] {
                Node::Dir(children) => children.get(comp).copied(),
                _ => None,
            };
            cur = match next {
                Some(n) if matches!(self.nodes[n as usize], Node::Dir(_)) => n,
                _ => {
                    // Missing, or a file/symlink in the way: an implicit directory replaces it.
                    if let Some(old) = next {
                        self.mark_removed(old);
                    }
                    let n = self.nodes.len() as u32;
                    self.nodes.push(Node::Dir(Box::default()));
                    if let Node::Dir(children) = &mut self.nodes[cur as usize] {
                        children.insert(comp.into(), n);
                    }
                    n
                }
            };
        }
        cur
    }

    fn put(&mut self, p: &str, new: NewNode) {
        let (_, name) = path::split_parent(p);
        if name.is_empty() {
            // The root itself: a directory entry merges; anything else is ignored.
            if !matches!(new, NewNode::Dir) {
                self.warn("an entry replaces '/' with a non-directory; ignored".to_string());
            }
            return;
        }
        let parent = self.parent_dir(p);
        let existing = match &self.nodes[parent as usize] {
            Node::Dir(children) => children.get(name).copied(),
            _ => None,
        };
        if let (NewNode::Dir, Some(n)) = (&new, existing)
            && matches!(self.nodes[n as usize], Node::Dir(_))
        {
            return; // directory over directory: merge
        }
        let node = match new {
            NewNode::Dir => Node::Dir(Box::default()),
            NewNode::File(i) => Node::File(i),
            NewNode::Other => Node::Other,
        };
        if let Some(old) = existing {
            self.mark_removed(old);
        }
        let n = match existing {
            // Reuse the slot of a replaced leaf; a replaced directory's subtree is dropped.
            Some(n) if !matches!(self.nodes[n as usize], Node::Dir(_)) => {
                self.nodes[n as usize] = node;
                n
            }
            _ => {
                let n = self.nodes.len() as u32;
                self.nodes.push(node);
                n
            }
        };
        if let Node::Dir(children) = &mut self.nodes[parent as usize] {
            children.insert(name.into(), n);
        }
    }

    /// Walks the final tree, marks visible inodes and returns the result.
    /// `classify` gives a path's category (as the layer scan gave each
    /// inode's), asked only for the names hard links added.
    pub fn finish(mut self, classify: impl Fn(&str) -> u8) -> Merged {
        let mut stack: Vec<(u32, String)> = vec![(ROOT, String::new())];
        while let Some((n, prefix)) = stack.pop() {
            let node = std::mem::replace(&mut self.nodes[n as usize], Node::Other);
            match node {
                Node::Dir(children) => {
                    for (name, child) in *children {
                        let mut p = String::with_capacity(prefix.len() + 1 + name.len());
                        p.push_str(&prefix);
                        p.push('/');
                        p.push_str(&name);
                        match self.nodes[child as usize] {
                            Node::File(i) => self.mark(i, p, &classify),
                            Node::Dir(_) => stack.push((child, p)),
                            Node::Other => {}
                        }
                    }
                }
                Node::File(i) => self.mark(i, prefix, &classify),
                Node::Other => {}
            }
        }
        Merged {
            inodes: self.inodes,
            warnings: self.warnings,
        }
    }

    fn mark(&mut self, i: u32, name: String, classify: &impl Fn(&str) -> u8) {
        let inode = &mut self.inodes[i as usize];
        inode.names += 1;
        if *name != *inode.path && !inode.named_elsewhere {
            inode.named_elsewhere = classify(&name) != inode.category;
        }
        if !inode.visible {
            inode.visible = true;
            if *name != *inode.path {
                inode.set_visible_name(Some(name.into_boxed_str()));
            }
        } else if name.as_str() < inode.shown_path() {
            let other = (*name != *inode.path).then(|| name.into_boxed_str());
            inode.set_visible_name(other);
        }
    }
}

enum NewNode {
    Dir,
    File(u32),
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str, bytes: u64) -> LayerEntry {
        LayerEntry {
            path: p.into(),
            kind: EntryKind::File,
            bytes,
            hash: [bytes as u8; 16],
            category: 0,
            data: None,
        }
    }
    fn kind(p: &str, kind: EntryKind) -> LayerEntry {
        LayerEntry {
            path: p.into(),
            kind,
            bytes: 0,
            hash: [0; 16],
            category: 0,
            data: None,
        }
    }
    fn dir(p: &str) -> LayerEntry {
        kind(p, EntryKind::Dir)
    }
    fn wh(p: &str) -> LayerEntry {
        kind(p, EntryKind::Whiteout)
    }
    fn opq(p: &str) -> LayerEntry {
        kind(p, EntryKind::Opaque)
    }
    fn link(p: &str, t: &str) -> LayerEntry {
        kind(p, EntryKind::HardLink(t.into()))
    }
    fn sym(p: &str) -> LayerEntry {
        kind(p, EntryKind::Symlink)
    }

    /// Applies layers and returns (visible paths sorted, wasted bytes per layer).
    fn run(layers: Vec<Vec<LayerEntry>>) -> (Vec<String>, Vec<u64>, u64) {
        let n = layers.len();
        let mut o = Overlay::new();
        for (i, l) in layers.into_iter().enumerate() {
            o.apply_layer(i as u32, l);
        }
        let m = o.finish(|_| 0);
        let mut wasted = vec![0; n];
        let mut visible = 0;
        let mut paths = Vec::new();
        for i in &m.inodes {
            if i.visible {
                visible += i.bytes;
                paths.push(i.shown_path().to_string());
            } else {
                wasted[i.layer as usize] += i.bytes;
            }
        }
        paths.sort();
        (paths, wasted, visible)
    }

    #[test]
    fn whiteout_deletes_lower_file() {
        let (p, w, v) = run(vec![
            vec![file("/etc/hosts", 10), file("/etc/passwd", 5)],
            vec![wh("/etc/hosts")],
        ]);
        assert_eq!(p, ["/etc/passwd"]);
        assert_eq!(w, [10, 0]);
        assert_eq!(v, 5);
    }

    #[test]
    fn whiteout_of_directory_deletes_its_subtree() {
        let (p, w, _) = run(vec![
            vec![
                dir("/root/.cache/pip"),
                file("/root/.cache/pip/a.whl", 100),
                file("/root/.cache/pip/http/b", 50),
                file("/root/keep", 1),
            ],
            vec![wh("/root/.cache")],
        ]);
        assert_eq!(p, ["/root/keep"], "deleted directory charges all its files");
        assert_eq!(w, [150, 0]);
    }

    #[test]
    fn own_whiteout_never_hides_own_entries() {
        // The whiteout comes after the new file in tar order; it still only acts below.
        let (p, w, _) = run(vec![vec![file("/a", 3)], vec![file("/a", 4), wh("/a")]]);
        assert_eq!(p, ["/a"]);
        assert_eq!(w, [3, 0]);
    }

    #[test]
    fn opaque_hides_lower_children_only() {
        let (p, w, _) = run(vec![
            vec![file("/d/old", 7), file("/e", 1)],
            vec![file("/d/new", 2), opq("/d")],
        ]);
        assert_eq!(p, ["/d/new", "/e"]);
        assert_eq!(w, [7, 0]);
    }

    #[test]
    fn opaque_in_first_layer_is_harmless() {
        let (p, w, _) = run(vec![vec![opq("/d"), file("/d/x", 1)]]);
        assert_eq!(p, ["/d/x"]);
        assert_eq!(w, [0]);
    }

    #[test]
    fn overwrite_wastes_only_the_lower_copy() {
        let (p, w, v) = run(vec![vec![file("/lib.so", 752)], vec![file("/lib.so", 752)]]);
        assert_eq!(p, ["/lib.so"]);
        assert_eq!(w, [752, 0], "dive would count 1504 here");
        assert_eq!(v, 752);
    }

    #[test]
    fn same_path_twice_in_one_layer() {
        let (p, w, _) = run(vec![vec![file("/a", 3), file("/a", 5)]]);
        assert_eq!(p, ["/a"]);
        assert_eq!(w, [3]);
    }

    #[test]
    fn file_replaced_by_directory_and_back() {
        let (p, w, _) = run(vec![
            vec![file("/x", 10)],
            vec![dir("/x"), file("/x/inner", 4)],
            vec![file("/x", 1)],
        ]);
        assert_eq!(p, ["/x"]);
        assert_eq!(w, [10, 4, 0]);
    }

    #[test]
    fn implicit_parent_replaces_a_file() {
        let (p, w, _) = run(vec![vec![file("/a/b", 9)], vec![file("/a/b/c", 1)]]);
        assert_eq!(p, ["/a/b/c"]);
        assert_eq!(w, [9, 0]);
    }

    #[test]
    fn symlink_over_directory_drops_subtree() {
        let (p, w, _) = run(vec![vec![file("/opt/x/y", 6)], vec![sym("/opt/x")]]);
        assert!(p.is_empty());
        assert_eq!(w, [6, 0]);
    }

    #[test]
    fn whiteouts_do_not_follow_symlinks() {
        let (p, w, _) = run(vec![
            vec![file("/real/f", 2), sym("/link")],
            vec![wh("/link/f")],
        ]);
        assert_eq!(p, ["/real/f"]);
        assert_eq!(w, [0, 0]);
    }

    #[test]
    fn hard_link_keeps_bytes_visible() {
        let (p, w, v) = run(vec![
            vec![
                file("/usr/bin/python3.11", 100),
                link("/usr/bin/python3", "/usr/bin/python3.11"),
            ],
            vec![wh("/usr/bin/python3.11")],
        ]);
        assert_eq!(p, ["/usr/bin/python3"]);
        assert_eq!(w, [0, 0]);
        assert_eq!(v, 100, "counted once");
    }

    #[test]
    fn hard_link_counted_once_and_wasted_when_all_names_go() {
        let (p, w, v) = run(vec![
            vec![file("/a", 8), link("/b", "/a")],
            vec![wh("/a"), wh("/b")],
        ]);
        assert!(p.is_empty());
        assert_eq!(w, [8, 0]);
        assert_eq!(v, 0);
    }

    #[test]
    fn hard_link_into_another_category_is_named_elsewhere() {
        // uv's default install: the cache's file and site-packages' name
        // are one inode; the cache path comes first in the tar.
        let classify = |p: &str| u8::from(p.starts_with("/usr/"));
        let cached = |p: &str, bytes| LayerEntry {
            category: classify(p),
            ..file(p, bytes)
        };
        let mut o = Overlay::new();
        o.apply_layer(
            0,
            vec![
                cached("/root/.cache/uv/a/data.bin", 8),
                link("/usr/lib/site/data.bin", "/root/.cache/uv/a/data.bin"),
                cached("/root/.cache/uv/a/meta", 2),
                link("/root/.cache/uv/b/meta", "/root/.cache/uv/a/meta"),
                cached("/root/.cache/uv/gone", 3),
                link("/usr/lib/site/gone", "/root/.cache/uv/gone"),
            ],
        );
        o.apply_layer(1, vec![wh("/usr/lib/site/gone")]);
        let m = o.finish(classify);
        let by_path = |p: &str| m.inodes.iter().find(|n| &*n.path == p).unwrap();
        let data = by_path("/root/.cache/uv/a/data.bin");
        assert!(data.named_elsewhere && data.names == 2 && data.category == 0);
        let meta = by_path("/root/.cache/uv/a/meta");
        assert!(!meta.named_elsewhere, "both names in the cache");
        let gone = by_path("/root/.cache/uv/gone");
        assert!(!gone.named_elsewhere, "the other name was removed");
    }

    #[test]
    fn hard_link_to_missing_target_warns() {
        let mut o = Overlay::new();
        o.apply_layer(0, vec![link("/b", "/nope")]);
        let m = o.finish(|_| 0);
        assert!(m.inodes.is_empty());
        assert_eq!(m.warnings.len(), 1);
    }

    #[test]
    fn whiteout_of_missing_path_warns() {
        let mut o = Overlay::new();
        o.apply_layer(0, vec![file("/a", 1)]);
        o.apply_layer(1, vec![wh("/nope")]);
        let m = o.finish(|_| 0);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    }
}
