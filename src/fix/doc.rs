//! A Dockerfile being edited: the original lines, what replaces each
//! instruction, what is inserted before it, and the unified diff between the
//! original and the result.

use crate::history::dockerfile::DockerfileInstruction;

/// The text of a Dockerfile and the edits made to it so far.
pub struct Doc {
    /// The original lines.
    orig: Vec<String>,
    /// Per original line: what it has become (an instruction's new text sits
    /// at its first line; its other lines are then empty).
    lines: Vec<Vec<String>>,
    /// Per original line: lines inserted before it.
    before: Vec<Vec<String>>,
    /// Lines added at the end.
    tail: Vec<String>,
    /// Whether the original text ends with a newline.
    final_newline: bool,
    /// The line ending: `\r\n` when the original has one, else `\n`.
    eol: &'static str,
}

impl Doc {
    /// A document of `text`, unedited.
    pub fn new(text: &str) -> Doc {
        let orig: Vec<String> = text.lines().map(str::to_string).collect();
        Doc {
            lines: orig.iter().map(|l| vec![l.clone()]).collect(),
            before: vec![Vec::new(); orig.len()],
            tail: Vec::new(),
            final_newline: text.is_empty() || text.ends_with('\n'),
            eol: if text.contains("\r\n") { "\r\n" } else { "\n" },
            orig,
        }
    }

    /// The original lines `d.line..=d.end_line`, joined with newlines.
    pub fn original(&self, d: &DockerfileInstruction) -> String {
        self.orig[d.line - 1..d.end_line].join("\n")
    }

    /// An instruction's current lines.
    pub fn get(&self, d: &DockerfileInstruction) -> Vec<String> {
        self.lines[d.line - 1..d.end_line].concat()
    }

    /// Replaces an instruction's lines (none deletes it).
    pub fn set(&mut self, d: &DockerfileInstruction, new: Vec<String>) {
        self.lines[d.line - 1] = new;
        for l in &mut self.lines[d.line..d.end_line] {
            l.clear();
        }
    }

    /// Inserts a line before an instruction.
    pub fn insert_before(&mut self, d: &DockerfileInstruction, line: String) {
        self.before[d.line - 1].push(line);
    }

    /// Adds lines at the end.
    pub fn append(&mut self, lines: impl IntoIterator<Item = String>) {
        self.tail.extend(lines);
    }

    /// The edited text.
    pub fn text(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        for (b, l) in self.before.iter().zip(&self.lines) {
            out.extend(b.iter().map(String::as_str));
            out.extend(l.iter().map(String::as_str));
        }
        out.extend(self.tail.iter().map(String::as_str));
        let mut s = out.join(self.eol);
        if self.final_newline || !self.tail.is_empty() {
            s.push_str(self.eol);
        }
        s
    }

    /// The original text's lines.
    pub fn original_lines(&self) -> &[String] {
        &self.orig
    }
}

/// One hunk of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// First old line (1-based; the line before, for an insertion at 0 lines).
    pub old_start: usize,
    /// Old lines in the hunk.
    pub old_len: usize,
    /// First new line.
    pub new_start: usize,
    /// New lines in the hunk.
    pub new_len: usize,
    /// The lines, each with its prefix (' ', '-', '+').
    pub lines: Vec<String>,
    /// The old lines the hunk changes (1-based, inclusive), for telling which
    /// edits it carries.
    pub changed: (usize, usize),
}

/// Most lines compared (a Dockerfile is much shorter; past this the diff
/// replaces the whole file in one hunk).
const MAX_DIFF_LINES: usize = 20_000;

/// The hunks turning `old` into `new`, with `context` lines around changes.
pub fn diff(old: &[String], new: &[String], context: usize) -> Vec<Hunk> {
    let ops = if old.len() + new.len() > MAX_DIFF_LINES {
        let mut v: Vec<Op> = old.iter().map(|_| Op::Del).collect();
        v.extend(new.iter().map(|_| Op::Add));
        v
    } else {
        lcs_ops(old, new)
    };
    // Positions of each op in old and new.
    let mut pos = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0usize, 0usize);
    for op in &ops {
        pos.push((i, j));
        match op {
            Op::Same => {
                i += 1;
                j += 1;
            }
            Op::Del => i += 1,
            Op::Add => j += 1,
        }
    }
    // Group changed ops with their context.
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k] != Op::Same).collect();
    let mut hunks = Vec::new();
    let mut k = 0;
    while k < changed.len() {
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * context + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let from = first.saturating_sub(context);
        let to = (last + context + 1).min(ops.len());
        let mut lines = Vec::new();
        let (mut ol, mut nl) = (0, 0);
        let (mut lo, mut hi) = (usize::MAX, 0);
        for (q, op) in ops.iter().enumerate().take(to).skip(from) {
            let (oi, nj) = pos[q];
            match op {
                Op::Same => {
                    lines.push(format!(" {}", old[oi]));
                    ol += 1;
                    nl += 1;
                }
                Op::Del => {
                    lines.push(format!("-{}", old[oi]));
                    ol += 1;
                    lo = lo.min(oi + 1);
                    hi = hi.max(oi + 1);
                }
                Op::Add => {
                    lines.push(format!("+{}", new[nj]));
                    nl += 1;
                    // An insertion sits between old lines oi and oi + 1.
                    lo = lo.min(oi.max(1));
                    hi = hi.max(oi.max(1));
                }
            }
        }
        let (o0, n0) = pos[from];
        hunks.push(Hunk {
            old_start: if ol == 0 { o0 } else { o0 + 1 },
            old_len: ol,
            new_start: if nl == 0 { n0 } else { n0 + 1 },
            new_len: nl,
            lines,
            changed: (lo, hi),
        });
    }
    hunks
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Add,
}

/// A shortest edit script by longest common subsequence.
fn lcs_ops(a: &[String], b: &[String]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    let mut t = vec![0u32; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i * w + j] = if a[i] == b[j] {
                t[(i + 1) * w + j + 1] + 1
            } else {
                t[(i + 1) * w + j].max(t[i * w + j + 1])
            };
        }
    }
    let mut ops = Vec::with_capacity(n + m);
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same);
            i += 1;
            j += 1;
        } else if j < m && (i == n || t[i * w + j + 1] > t[(i + 1) * w + j]) {
            ops.push(Op::Add);
            j += 1;
        } else {
            // On a tie the old line goes first: `-old` reads before `+new`.
            ops.push(Op::Del);
            i += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::dockerfile::parse;

    fn v(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn edits_and_text() {
        let text = "FROM a\nRUN x \\\n  && y\nCMD z\n";
        let d = parse(text);
        let mut doc = Doc::new(text);
        assert_eq!(doc.get(&d[1]), ["RUN x \\", "  && y"]);
        doc.set(&d[1], vec!["RUN x && y && w".into()]);
        doc.insert_before(&d[2], "ENV A=1".into());
        assert_eq!(doc.text(), "FROM a\nRUN x && y && w\nENV A=1\nCMD z\n");
        doc.set(&d[1], Vec::new());
        assert_eq!(doc.text(), "FROM a\nENV A=1\nCMD z\n");
    }

    #[test]
    fn unified_hunks() {
        let old = v("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12");
        let mut new = old.clone();
        new[1] = "two".into();
        new.remove(10);
        let h = diff(&old, &new, 3);
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0].old_start, h[0].old_len, h[0].new_start, h[0].new_len),
            (1, 5, 1, 5)
        );
        assert_eq!(h[0].lines, [" 1", "-2", "+two", " 3", " 4", " 5"]);
        assert_eq!(h[0].changed, (2, 2));
        assert_eq!(
            (h[1].old_start, h[1].old_len, h[1].new_start, h[1].new_len),
            (8, 5, 8, 4)
        );
        assert_eq!(h[1].changed, (11, 11));
        // Close changes share a hunk.
        assert_eq!(diff(&old, &new, 5).len(), 1);
        // Pure insertion after line 12.
        let mut more = old.clone();
        more.push("13".into());
        let h = diff(&old, &more, 3);
        assert_eq!(
            (h[0].old_start, h[0].old_len, h[0].new_start, h[0].new_len),
            (10, 3, 10, 4)
        );
        assert_eq!(h[0].changed, (12, 12));
    }
}
