//! Property test: the overlay merge agrees with a naive reference model on
//! random layer sequences: the same inodes, visibility, per-layer waste and
//! content and visible totals as the model computes.

use std::collections::{BTreeMap, BTreeSet};

use mlsize::layer::{EntryKind, LayerEntry};
use mlsize::overlay::Overlay;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    File(String, u64),
    Dir(String),
    Symlink(String),
    Link(String, String),
    Whiteout(String),
    Opaque(String),
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|v| format!("/{}", v.join("/")))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (path(), 1u64..1000).prop_map(|(p, b)| Op::File(p, b)),
        2 => path().prop_map(Op::Dir),
        1 => path().prop_map(Op::Symlink),
        1 => (path(), path()).prop_map(|(p, t)| Op::Link(p, t)),
        2 => path().prop_map(Op::Whiteout),
        1 => path().prop_map(Op::Opaque),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Dir,
    File(usize),
    Other,
}

/// The reference: a flat map of path → node, with subtrees found by prefix.
#[derive(Default)]
struct Model {
    fs: BTreeMap<String, Node>,
    inodes: Vec<(u64, usize)>, // (bytes, layer)
}

impl Model {
    fn remove_tree(&mut self, p: &str) {
        let prefix = format!("{p}/");
        self.fs.retain(|k, _| k != p && !k.starts_with(&prefix));
    }
    fn remove_children(&mut self, p: &str) {
        let prefix = format!("{p}/");
        self.fs.retain(|k, _| !k.starts_with(&prefix));
    }
    fn parents(&mut self, p: &str) {
        let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        let mut cur = String::new();
        for part in &parts[..parts.len() - 1] {
            cur.push('/');
            cur.push_str(part);
            if self.fs.get(&cur) != Some(&Node::Dir) {
                self.remove_tree(&cur.clone());
                self.fs.insert(cur.clone(), Node::Dir);
            }
        }
    }
    fn put(&mut self, p: &str, n: Node) {
        self.parents(p);
        if n == Node::Dir && self.fs.get(p) == Some(&Node::Dir) {
            return;
        }
        self.remove_tree(p);
        self.fs.insert(p.to_string(), n);
    }
    fn apply(&mut self, layer: usize, ops: &[Op]) {
        for o in ops {
            match o {
                Op::Whiteout(p) => self.remove_tree(p),
                Op::Opaque(p) if self.fs.get(p) == Some(&Node::Dir) => self.remove_children(p),
                _ => {}
            }
        }
        for o in ops {
            match o {
                Op::File(p, b) => {
                    self.inodes.push((*b, layer));
                    let id = self.inodes.len() - 1;
                    self.put(p, Node::File(id));
                }
                Op::Dir(p) => self.put(p, Node::Dir),
                Op::Symlink(p) => self.put(p, Node::Other),
                Op::Link(p, t) => match self.fs.get(t).cloned() {
                    Some(Node::File(id)) => self.put(p, Node::File(id)),
                    Some(_) => self.put(p, Node::Other),
                    None => {}
                },
                Op::Whiteout(_) | Op::Opaque(_) => {}
            }
        }
    }
}

/// The test's categories: a path's first component (`/a` 0, `/b` 1, `/c` 2).
fn classify(p: &str) -> u8 {
    p.as_bytes().get(1).map_or(0, |c| c.saturating_sub(b'a'))
}

fn entries(ops: &[Op]) -> Vec<LayerEntry> {
    let e = |p: &str, kind: EntryKind, bytes: u64| LayerEntry {
        path: p.into(),
        kind,
        bytes,
        hash: [0; 16],
        category: classify(p),
        data: None,
    };
    ops.iter()
        .map(|o| match o {
            Op::File(p, b) => e(p, EntryKind::File, *b),
            Op::Dir(p) => e(p, EntryKind::Dir, 0),
            Op::Symlink(p) => e(p, EntryKind::Symlink, 0),
            Op::Link(p, t) => e(p, EntryKind::HardLink(t.as_str().into()), 0),
            Op::Whiteout(p) => e(p, EntryKind::Whiteout, 0),
            Op::Opaque(p) => e(p, EntryKind::Opaque, 0),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn overlay_matches_the_reference_model(layers in prop::collection::vec(prop::collection::vec(op(), 0..10), 1..5)) {
        let mut model = Model::default();
        let mut overlay = Overlay::new();
        for (i, ops) in layers.iter().enumerate() {
            model.apply(i, ops);
            overlay.apply_layer(i as u32, entries(ops));
        }
        let merged = overlay.finish(classify);
        prop_assert_eq!(merged.inodes.len(), model.inodes.len());
        let visible: BTreeSet<usize> = model
            .fs
            .values()
            .filter_map(|n| if let Node::File(id) = n { Some(*id) } else { None })
            .collect();
        let mut content = 0;
        let (mut vis, mut wasted) = (0, vec![0u64; layers.len()]);
        for (id, inode) in merged.inodes.iter().enumerate() {
            prop_assert_eq!(inode.visible, visible.contains(&id), "inode {} ({})", id, inode.path);
            content += inode.bytes;
            if inode.visible { vis += inode.bytes } else { wasted[inode.layer as usize] += inode.bytes }
        }
        let mut model_wasted = vec![0u64; layers.len()];
        for (id, (b, l)) in model.inodes.iter().enumerate() {
            if !visible.contains(&id) { model_wasted[*l] += b }
        }
        prop_assert_eq!(&wasted, &model_wasted);
        // Totals against the model's own (summing the same inodes split in
        // two buckets would prove nothing).
        let model_content: u64 = model.inodes.iter().map(|(b, _)| *b).sum();
        let model_visible: u64 = model
            .inodes
            .iter()
            .enumerate()
            .filter(|(id, _)| visible.contains(id))
            .map(|(_, (b, _))| *b)
            .sum();
        prop_assert_eq!(content, model_content);
        prop_assert_eq!(vis, model_visible);
        // Visible names: every file path in the model names a visible inode;
        // the shown path is the lowest of its names.
        for (id, inode) in merged.inodes.iter().enumerate().filter(|(_, i)| i.visible) {
            let lowest = model.fs.iter().find(|(_, n)| **n == Node::File(id)).map(|(p, _)| p.clone());
            prop_assert_eq!(Some(inode.shown_path().to_string()), lowest);
            // Named elsewhere: a visible name in another category than the
            // path it was written at.
            let elsewhere = model
                .fs
                .iter()
                .any(|(p, n)| *n == Node::File(id) && classify(p) != classify(&inode.path));
            prop_assert_eq!(inode.named_elsewhere, elsewhere, "inode {} ({})", id, inode.path);
        }
    }
}
