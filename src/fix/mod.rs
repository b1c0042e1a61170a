//! `mlsize fix`: the findings of an analysis turned into edits of the
//! Dockerfile that built the image, each with the bytes it saves.
//!
//! Input: an [`Analysis`] (its recommendations and the files each removes)
//! and the Dockerfile's text. Output: a [`FixReport`]: the edits (which
//! lines, old and new text, which finding, how many bytes), the findings
//! left alone and why, and the image predicted after the edits, computed by
//! [`advice::estimate`] (what `analyze` says in `estimated`) over exactly the
//! files the edits remove.
//!
//! An edit is only written where the layer that holds the bytes was matched
//! to its Dockerfile line (the same matching `check --dockerfile` uses) and
//! the line has a shape this module can rewrite without changing what the
//! build does otherwise; every other finding goes to `unfixed` with the
//! reason, never to a guess.

pub mod doc;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::history::dockerfile::{self, DockerfileInstruction};
use crate::history::shell::{self, Command};
use crate::report::Analysis;
use crate::report::advice::{self, Estimate, Recommendation};
use crate::report::apt;
use doc::Doc;

/// Finding ids `mlsize fix` knows (those of `analyze`'s recommendations).
pub const FINDINGS: &[&str] = &[
    "pip-cache",
    "uv-cache",
    "conda-pkgs",
    "apt-cache",
    "apt-install-recommends",
    "deleted-later",
    "overwritten-later",
    "written-twice",
    "cuda-duplicates",
    "nsight",
    "cupti",
    "headers",
    "static-libs",
    "cuda-tools",
    "python-bytecode",
];

/// Findings fixed by splitting the final stage into a builder and a runtime.
const BUILD_ONLY: &[&str] = &["nsight", "cupti", "headers", "static-libs", "cuda-tools"];

/// Which findings to fix (`--only`, `--skip`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these, when given.
    pub only: Option<BTreeSet<String>>,
    /// Never these.
    pub skip: BTreeSet<String>,
}

impl Selection {
    /// Whether a finding is chosen.
    pub fn wants(&self, id: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(id)) && !self.skip.contains(id)
    }
}

/// What `mlsize fix` found to do.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(title = "mlsize fix (mlsize/v1)")]
pub struct FixReport {
    /// `mlsize/v1`.
    pub schema: &'static str,
    /// `fix`.
    pub kind: &'static str,
    /// The image the findings come from.
    pub image: crate::report::diff::Side,
    /// The Dockerfile, as given.
    pub dockerfile: String,
    /// The path the patch names (`a/PATH`, `b/PATH`).
    pub patch_path: String,
    /// The edits, by line.
    pub edits: Vec<Edit>,
    /// Findings chosen but not edited, with the reason.
    pub unfixed: Vec<Unfixed>,
    /// The image after the edits: `analyze`'s `estimated` computed over the
    /// files the edits remove (equal to `analyze`'s when every finding is
    /// edited).
    pub estimated: Estimate,
    /// The Dockerfile after the edits.
    pub new_text: String,
    /// The Dockerfile as read.
    #[serde(skip)]
    #[schemars(skip)]
    pub original: String,
    /// The unified diff (what the text format prints).
    pub patch: String,
}

/// One edit: a finding fixed by changing some lines.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Edit {
    /// The finding (`analyze`'s recommendation id).
    pub finding: String,
    /// The finding in words.
    pub title: String,
    /// The layer (0-based) that holds the bytes.
    pub layer_index: Option<usize>,
    /// What the edit does, in words.
    pub action: String,
    /// The lines changed.
    pub changes: Vec<Change>,
    /// Content bytes the edit removes from the image.
    pub savings_bytes: u64,
    /// Compressed bytes it removes (each layer's own ratio).
    pub compressed_bytes: u64,
    /// Files it removes.
    pub files: u64,
    /// Something to know before applying it.
    pub note: Option<String>,
}

/// A change to one instruction.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Change {
    /// First line of the original Dockerfile changed (1-based).
    pub line_start: usize,
    /// Last line (an insertion after the last line has `line_start = line_end + 1`).
    pub line_end: usize,
    /// The text before this edit (after earlier edits of the same lines).
    pub old: String,
    /// The text after it (empty: the instruction is removed).
    pub new: String,
}

/// A finding that gets no edit, or the part of one that its edit leaves
/// (the finding is then in `edits` too: a stage split keeps what is inside
/// site-packages).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Unfixed {
    /// The finding.
    pub finding: String,
    /// The layer that holds the bytes.
    pub layer_index: Option<usize>,
    /// Bytes of the finding that stay.
    pub savings_bytes: u64,
    /// Why there is no edit, and what to do instead.
    pub reason: String,
}

/// Plans the edits. `path` is the Dockerfile as given on the command line.
/// Fails on a Dockerfile with no instructions.
pub fn plan(a: &Analysis, text: &str, path: &str, sel: &Selection) -> Result<FixReport, String> {
    let instrs = dockerfile::parse(text);
    if !instrs.iter().any(|d| kw(d) == "FROM") {
        return Err(format!(
            "{path}: no FROM instruction: is this a Dockerfile? (mlsize fix edits the Dockerfile that built the image)"
        ));
    }
    let mut p = Planner::new(a, text, instrs);
    let recs: Vec<(usize, &Recommendation)> = a
        .report
        .recommendations
        .iter()
        .enumerate()
        .filter(|(_, r)| sel.wants(&r.id))
        .collect();
    // Kinds in the order their edits compose: the base image first, flags
    // inside commands next, commands added and moved, the stage split last.
    let order = |id: &str| match id {
        "cuda-duplicates" => 0,
        "pip-cache" | "uv-cache" | "apt-install-recommends" | "python-bytecode" => 1,
        "conda-pkgs" | "apt-cache" => 2,
        "deleted-later" | "overwritten-later" => 3,
        _ => 4,
    };
    let mut sorted = recs.clone();
    sorted.sort_by_key(|(k, r)| (order(&r.id), *k));
    let mut moved: Vec<(usize, &Recommendation)> = Vec::new();
    let mut build_only: Vec<(usize, &Recommendation)> = Vec::new();
    for (k, r) in sorted {
        let result = match r.id.as_str() {
            "pip-cache" | "uv-cache" => p.cache_flag(k, r),
            "conda-pkgs" => p.conda(k, r),
            "apt-cache" => p.apt_cache(k, r),
            "apt-install-recommends" => p.apt_recommends(k, r),
            "python-bytecode" => p.bytecode(k, r),
            "cuda-duplicates" => p.cuda(k, r),
            "deleted-later" | "overwritten-later" => {
                moved.push((k, r));
                continue;
            }
            id if BUILD_ONLY.contains(&id) => {
                build_only.push((k, r));
                continue;
            }
            _ => Err(r.fix.clone()),
        };
        p.record(r, result);
    }
    p.moves(&moved);
    if !build_only.is_empty() {
        p.stage_split(&build_only);
    }
    Ok(p.finish(path))
}

/// The instruction keyword.
fn kw(d: &DockerfileInstruction) -> &str {
    d.key.split(' ').next().unwrap_or("")
}

/// What an edit does before it is recorded.
struct Applied {
    action: String,
    changes: Vec<Change>,
    files: Vec<u32>,
    note: Option<String>,
}

struct Planner<'a> {
    a: &'a Analysis,
    instrs: Vec<DockerfileInstruction>,
    doc: Doc,
    /// Layer index → index into `instrs`.
    layer_instr: HashMap<usize, usize>,
    /// Instructions of the final stage (and the stages it builds on).
    chain: Vec<usize>,
    /// The Dockerfile uses BuildKit syntax (`# syntax=` or `RUN --mount`).
    buildkit: bool,
    /// The escape character (`# escape=`).
    escape: char,
    edits: Vec<Edit>,
    unfixed: Vec<Unfixed>,
    /// The base image the final stage will be `FROM` after the edits.
    new_base: Option<String>,
    /// Every file the edits so far remove.
    applied_files: Vec<u32>,
    /// The Dockerfile as read.
    text: String,
}

impl<'a> Planner<'a> {
    fn new(a: &'a Analysis, text: &str, instrs: Vec<DockerfileInstruction>) -> Planner<'a> {
        let history = &a.report.history;
        let entries: Vec<&str> = history.iter().map(|h| h.instruction.as_str()).collect();
        let lines = dockerfile::match_history(&instrs, &entries);
        let mut layer_instr = HashMap::new();
        for (h, line) in history.iter().zip(&lines) {
            if let (Some(l), Some(line)) = (h.layer_index, line)
                && let Some(i) = instrs.iter().position(|d| d.line == *line)
            {
                layer_instr.insert(l, i);
            }
        }
        let chain = dockerfile::final_chain(&instrs);
        let mut escape = '\\';
        let mut syntax = false;
        for l in text.lines() {
            let t = l.trim();
            let Some(c) = t.strip_prefix('#') else { break };
            let c = c.trim().to_ascii_lowercase();
            if let Some(v) = c.strip_prefix("escape=") {
                escape = v.trim().chars().next().unwrap_or('\\');
            }
            syntax |= c.starts_with("syntax=");
        }
        let buildkit = syntax
            || instrs
                .iter()
                .any(|d| kw(d) == "RUN" && text_of(text, d).contains("--mount="));
        Planner {
            a,
            doc: Doc::new(text),
            layer_instr,
            chain,
            buildkit,
            escape,
            edits: Vec::new(),
            unfixed: Vec::new(),
            new_base: None,
            applied_files: Vec::new(),
            text: text.to_string(),
            instrs,
        }
    }

    fn record(&mut self, r: &Recommendation, result: Result<Applied, String>) {
        match result {
            Ok(ap) if !ap.files.is_empty() => {
                let est = self.estimate(&ap.files);
                self.applied_files.extend(&ap.files);
                let mut changes = ap.changes;
                changes.sort_by_key(|c| c.line_start);
                self.edits.push(Edit {
                    finding: r.id.clone(),
                    title: r.title.clone(),
                    layer_index: r.layer_index,
                    action: ap.action,
                    changes,
                    savings_bytes: est.savings_bytes,
                    compressed_bytes: est.compressed_bytes_before - est.compressed_bytes,
                    files: ap.files.len() as u64,
                    note: ap.note,
                });
            }
            Ok(_) => self.unfix(
                r,
                "the edit would remove none of the finding's files".into(),
            ),
            Err(reason) => self.unfix(r, reason),
        }
    }

    fn unfix(&mut self, r: &Recommendation, reason: String) {
        self.unfixed.push(Unfixed {
            finding: r.id.clone(),
            layer_index: r.layer_index,
            savings_bytes: r.savings_bytes,
            reason,
        });
    }

    fn estimate(&self, files: &[u32]) -> Estimate {
        let r = &self.a.report;
        advice::estimate(
            &self.a.inodes,
            &r.layers,
            &r.image,
            r.estimated.compressed_bytes_before,
            files.iter().copied(),
        )
    }

    fn targets(&self, k: usize) -> &[u32] {
        self.a.targets.get(k).map_or(&[], Vec::as_slice)
    }

    /// The instruction that wrote a layer, when the layer is the user's and
    /// its line is in the final stage.
    fn instr_of(&self, layer: Option<usize>) -> Result<usize, String> {
        let Some(l) = layer else {
            return Err("the finding names no layer".into());
        };
        let report = self.a.report.layers.get(l);
        if report.is_some_and(|l| l.base_image.is_some()) {
            return Err(format!(
                "layer {} comes from the base image, not from a line of this Dockerfile",
                l + 1
            ));
        }
        match self.layer_instr.get(&l) {
            Some(&i) if self.chain.contains(&i) => Ok(i),
            _ => Err(format!(
                "layer {} ('{}') matches no line of the Dockerfile's final stage: is it the Dockerfile that built the image?",
                l + 1,
                report.map_or("", |r| r.instruction.as_str())
            )),
        }
    }

    /// The `RUN` instruction that wrote a layer, in shell form.
    fn run_of(&self, layer: Option<usize>) -> Result<usize, String> {
        let i = self.instr_of(layer)?;
        let d = &self.instrs[i];
        if kw(d) != "RUN" {
            return Err(format!(
                "line {} is {}, not RUN: nothing to add a command to",
                d.line,
                kw(d)
            ));
        }
        if self.body(i).1.starts_with('[') {
            return Err(format!(
                "line {} is RUN in exec form (JSON): rewrite it in shell form to chain commands",
                d.line
            ));
        }
        Ok(i)
    }

    /// An instruction's current text as one line: keyword, flags, body
    /// (continuations joined).
    fn body(&self, i: usize) -> (String, String, String) {
        let lines = self.doc.get(&self.instrs[i]);
        let mut joined = String::new();
        for l in &lines {
            let t = l.trim_end();
            if t.trim_start().starts_with('#') {
                continue;
            }
            let t = t.strip_suffix(self.escape).unwrap_or(t);
            joined.push_str(t);
            joined.push(' ');
        }
        let joined = joined.trim();
        let (k, rest) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((joined, ""));
        let mut flags = Vec::new();
        let mut rest = rest.trim_start();
        while rest.starts_with("--") {
            let (f, r) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            flags.push(f);
            rest = r.trim_start();
        }
        (k.to_ascii_uppercase(), flags.join(" "), rest.to_string())
    }

    /// The commands of a RUN, or why they cannot be followed.
    fn commands(&self, i: usize) -> Result<Vec<Command>, String> {
        let d = &self.instrs[i];
        if self.doc.get(d).iter().any(|l| l.contains("<<")) {
            return Err(format!("line {} uses a here-document", d.line));
        }
        shell::split(&self.body(i).2).ok_or_else(|| {
            format!(
                "line {} uses shell syntax mlsize does not rewrite (subshells, braces, control flow)",
                d.line
            )
        })
    }

    /// Changes an instruction's lines and records the change.
    fn change(&mut self, i: usize, new: Vec<String>) -> Change {
        let d = self.instrs[i].clone();
        let old = self.doc.get(&d).join("\n");
        self.doc.set(&d, new.clone());
        Change {
            line_start: d.line,
            line_end: d.end_line,
            old,
            new: new.join("\n"),
        }
    }

    /// Appends ` && cmd` to a RUN.
    fn appended(&self, i: usize, cmds: &[String]) -> Result<Vec<String>, String> {
        self.commands(i)?;
        let mut lines = self.doc.get(&self.instrs[i]);
        let Some(last) = lines
            .iter_mut()
            .rev()
            .find(|l| !l.trim_start().starts_with('#'))
        else {
            return Err("empty instruction".into());
        };
        if shell::words(last).iter().any(|w| w.starts_with('#')) {
            return Err(format!(
                "line {} ends with a shell comment",
                self.instrs[i].end_line
            ));
        }
        let mut s = last.trim_end().to_string();
        for c in cmds {
            s.push_str(" && ");
            s.push_str(c);
        }
        *last = s;
        Ok(lines)
    }

    // ---- the kinds of edit ----

    /// pip/uv caches: a flag on every install, or a cache mount.
    fn cache_flag(&mut self, k: usize, r: &Recommendation) -> Result<Applied, String> {
        let i = self.run_of(r.layer_index)?;
        let uv = r.id == "uv-cache";
        let files = self.targets(k).to_vec();
        let marker = if uv { "/.cache/uv" } else { "/.cache/pip" };
        let roots: BTreeSet<&str> = files
            .iter()
            .filter_map(|&f| {
                let p = &*self.a.inodes[f as usize].path;
                p.find(marker).map(|at| &p[..at + marker.len()])
            })
            .collect();
        if self.buildkit && roots.len() == 1 {
            let root = roots.into_iter().next().unwrap_or_default().to_string();
            let mut lines = self.doc.get(&self.instrs[i]);
            let first = &mut lines[0];
            let Some(rest) = first.trim_start().get(3..) else {
                return Err("empty RUN".into());
            };
            let mount = format!("--mount=type=cache,target={root}");
            *first = format!(
                "RUN {mount}{}",
                if rest.starts_with(' ') { "" } else { " " }
            ) + rest;
            let c = self.change(i, lines);
            return Ok(Applied {
                action: format!("keep the cache out of the layer with RUN {mount}"),
                changes: vec![c],
                files,
                note: None,
            });
        }
        let (kind, flag) = if uv {
            (Install::Uv, "--no-cache")
        } else {
            (Install::Pip, "--no-cache-dir")
        };
        let lines = self.with_flag(i, kind, flag)?;
        let c = self.change(i, lines);
        Ok(Applied {
            action: format!("add {flag} to every {} install", kind.name()),
            changes: vec![c],
            files,
            note: None,
        })
    }

    /// A flag inserted after `install` in every install of a kind lacking it.
    fn with_flag(&self, i: usize, kind: Install, flag: &str) -> Result<Vec<String>, String> {
        let cmds = self.commands(i)?;
        let need: Vec<bool> = cmds
            .iter()
            .filter(|c| kind.matches(&c.words()).is_some())
            .map(|c| !c.words().iter().any(|w| w == flag))
            .collect();
        let d = &self.instrs[i];
        if need.is_empty() {
            return Err(format!(
                "line {} runs no {} install to add {flag} to",
                d.line,
                kind.name()
            ));
        }
        if !need.iter().any(|&n| n) {
            return Err(format!(
                "line {} already passes {flag}: the files come from elsewhere",
                d.line
            ));
        }
        let mut lines = self.doc.get(d);
        let mut seen = 0;
        for line in &mut lines {
            let mut at: Vec<usize> = Vec::new();
            let toks: Vec<(usize, &str)> = tokens(line);
            let words: Vec<String> = toks.iter().map(|t| t.1.to_string()).collect();
            for (j, (pos, tok)) in toks.iter().enumerate() {
                if kind.ends_install(&words, j) {
                    if need.get(seen).copied().unwrap_or(false) {
                        at.push(pos + tok.len());
                    }
                    seen += 1;
                }
            }
            for &pos in at.iter().rev() {
                line.insert_str(pos, &format!(" {flag}"));
            }
        }
        if seen != need.len() {
            return Err(format!(
                "line {}: an install spans several lines in a way mlsize does not rewrite",
                d.line
            ));
        }
        Ok(lines)
    }

    fn conda(&mut self, k: usize, r: &Recommendation) -> Result<Applied, String> {
        let i = self.run_of(r.layer_index)?;
        let tool = self
            .commands(i)?
            .iter()
            .filter_map(Command::program)
            .find(|p| matches!(p.as_str(), "conda" | "mamba" | "micromamba"))
            .unwrap_or_else(|| "conda".into());
        let cmd = format!("{tool} clean -afy");
        let lines = self.appended(i, std::slice::from_ref(&cmd))?;
        let c = self.change(i, lines);
        Ok(Applied {
            action: format!("end the RUN with {cmd}"),
            changes: vec![c],
            files: self.targets(k).to_vec(),
            note: None,
        })
    }

    fn apt_cache(&mut self, k: usize, r: &Recommendation) -> Result<Applied, String> {
        let i = self.run_of(r.layer_index)?;
        let cmds = self.commands(i)?;
        let d = self.instrs[i].clone();
        let apt = |c: &Command, sub: &str| {
            let w = c.words();
            matches!(c.program().as_deref(), Some("apt-get" | "apt")) && w.iter().any(|x| x == sub)
        };
        let updates = cmds.iter().any(|c| apt(c, "update"));
        let installs = cmds.iter().any(|c| apt(c, "install"));
        if updates && !installs {
            // A later RUN would install from these lists.
            let later = self
                .chain
                .iter()
                .filter(|&&j| self.instrs[j].line > d.line && kw(&self.instrs[j]) == "RUN")
                .any(|&j| {
                    self.commands(j)
                        .is_ok_and(|c| c.iter().any(|c| apt(c, "install")))
                });
            if later {
                return Err(format!(
                    "line {} runs apt-get update and a later RUN installs from its lists: merge them into one RUN ending with rm -rf /var/lib/apt/lists/*",
                    d.line
                ));
            }
        }
        let files = self.targets(k).to_vec();
        let archives = files.iter().any(|&f| {
            self.a.inodes[f as usize]
                .path
                .starts_with("/var/cache/apt/")
        });
        let lists = files.iter().any(|&f| {
            self.a.inodes[f as usize]
                .path
                .starts_with("/var/lib/apt/lists/")
        });
        let mut add = Vec::new();
        if archives {
            add.push("apt-get clean".to_string());
        }
        if lists {
            add.push("rm -rf /var/lib/apt/lists/*".to_string());
        }
        if add.is_empty() {
            return Err("the files are neither under /var/cache/apt nor /var/lib/apt/lists".into());
        }
        let covered: Vec<u32> = files
            .into_iter()
            .filter(|&f| {
                let p = &*self.a.inodes[f as usize].path;
                p.starts_with("/var/cache/apt/") || p.starts_with("/var/lib/apt/lists/")
            })
            .collect();
        let lines = self.appended(i, &add)?;
        let c = self.change(i, lines);
        Ok(Applied {
            action: format!("end the RUN with {}", add.join(" && ")),
            changes: vec![c],
            files: covered,
            note: None,
        })
    }

    fn apt_recommends(&mut self, k: usize, r: &Recommendation) -> Result<Applied, String> {
        let i = self.run_of(r.layer_index)?;
        let lines = self.with_flag(i, Install::Apt, "--no-install-recommends")?;
        let c = self.change(i, lines);
        // analyze's targets: the packages apt installed only as
        // recommendations, when the layer's dpkg database says which.
        let pkgs = &r.packages;
        let closure = r.layer_index.is_some_and(|l| {
            let instruction = &self.a.report.layers[l].instruction;
            apt::recommended_files(&self.a.inodes, l as u32, instruction).is_some()
        });
        let note = if closure {
            let shown = pkgs.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
            let more = pkgs.len().saturating_sub(8);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "{} packages came as recommendations ({shown}{more}); install the ones the image needs explicitly",
                pkgs.len()
            )
        } else {
            "the layer's dpkg database was not readable: the saving counts only the compilers, headers and static libraries".into()
        };
        let files = self.targets(k).to_vec();
        let note = Some(note);
        Ok(Applied {
            action: "add --no-install-recommends to apt-get install".into(),
            changes: vec![c],
            files,
            note,
        })
    }

    /// Bytecode: `--no-compile` on the pip installs of the layers that wrote
    /// it (other writers, such as Debian's postinst, are left alone).
    fn bytecode(&mut self, k: usize, _r: &Recommendation) -> Result<Applied, String> {
        let mut per_layer: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for &f in self.targets(k) {
            per_layer
                .entry(self.a.inodes[f as usize].layer as usize)
                .or_default()
                .push(f);
        }
        let mut changes = Vec::new();
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        for (layer, fs) in per_layer {
            let fixed = self.run_of(Some(layer)).and_then(|i| {
                let lines = self.with_flag(i, Install::Pip, "--no-compile")?;
                Ok(self.change(i, lines))
            });
            match fixed {
                Ok(c) => {
                    changes.push(c);
                    files.extend(fs);
                }
                Err(e) => skipped.push(e),
            }
        }
        if changes.is_empty() {
            return Err(format!(
                "no pip install wrote the bytecode ({}); set ENV PYTHONDONTWRITEBYTECODE=1 for bytecode written at run time",
                skipped.join("; ")
            ));
        }
        Ok(Applied {
            action: "add --no-compile to pip install".into(),
            changes,
            files,
            note: (!skipped.is_empty())
                .then(|| format!("bytecode from other layers stays: {}", skipped.join("; "))),
        })
    }

    /// The `FROM` of the final stage's chain (the stage built on an image).
    fn root_from(&self) -> Option<usize> {
        self.chain
            .iter()
            .copied()
            .rfind(|&i| kw(&self.instrs[i]) == "FROM" && self.instrs[i].base_stage.is_none())
    }

    /// The base layers' visible files that NVIDIA's `-{to}` variant of the
    /// same nvidia/cuda image does not have, when the image is the `-{from}`
    /// variant: what changing the `FROM` removes. NVIDIA's Dockerfiles:
    /// -base installs cuda-cudart and cuda-compat only; -runtime adds the
    /// shared libraries (and cuDNN's, NCCL's); -devel adds headers, static
    /// libraries, nvcc and NVVM, CUPTI, Nsight Compute, the sanitizer and the
    /// tools. A CUDA file is one under `/usr/local/cuda*`, one of the CUDA
    /// categories, or a cuDNN/NCCL file elsewhere; the driver's compat
    /// libraries are in every variant.
    fn rebase_removes(&self, from: &str, to: &str) -> Vec<u32> {
        let report = &self.a.report;
        let is_base = |l: u32| {
            report
                .layers
                .get(l as usize)
                .is_some_and(|l| l.base_image.is_some())
        };
        let cuda_cats: BTreeSet<u8> = ["cuda-libs", "cupti", "nsight", "cuda-tools"]
            .iter()
            .filter_map(|c| self.rules_index(c))
            .collect();
        let dev_cats: BTreeSet<u8> = ["cupti", "nsight", "cuda-tools", "headers", "static-libs"]
            .iter()
            .filter_map(|c| self.rules_index(c))
            .collect();
        let mut out = Vec::new();
        for (i, n) in self.a.inodes.iter().enumerate() {
            if !n.visible || !is_base(n.layer) || n.named_elsewhere {
                continue;
            }
            let p = n.shown_path();
            let name = p.rsplit('/').next().unwrap_or(p);
            let toolkit = p.starts_with("/usr/local/cuda");
            let cuda = toolkit
                || cuda_cats.contains(&n.category)
                || ["cudnn", "nccl", "libcudnn", "libnccl"]
                    .iter()
                    .any(|s| name.starts_with(s));
            if !cuda || p.contains("/compat/") {
                continue;
            }
            let shared = name.starts_with("lib") && name.contains(".so");
            let runtime_lib = shared
                && !dev_cats.contains(&n.category)
                && ![
                    "/stubs/",
                    "/nvvm/",
                    "/extras/",
                    "/compute-sanitizer/",
                    "/nsight",
                ]
                .iter()
                .any(|d| p.contains(d));
            let gone = match (from, to) {
                (_, "base") => !name.starts_with("libcudart.so"),
                ("devel", "runtime") => !runtime_lib,
                _ => false,
            };
            if gone {
                out.push(i as u32);
            }
        }
        out
    }

    /// CUDA shipped twice: the nvidia/cuda base's `-base` variant, which
    /// ships only the CUDA runtime (libcudart), under wheels that bring the
    /// rest.
    fn cuda(&mut self, _k: usize, _r: &Recommendation) -> Result<Applied, String> {
        let Some(i) = self.root_from() else {
            return Err("the final stage's FROM was not found".into());
        };
        let (image, _) = from_image(&self.body(i).2);
        let Some((variant, base)) = cuda_variant(&image, "base") else {
            return Err(format!(
                "the base image is {image}, not nvidia/cuda -runtime/-devel: the wheels bring CUDA, so a slim Python base (python:3.11-slim) would do"
            ));
        };
        if variant == "base" {
            return Err(format!(
                "the base image {image} is already the -base variant: the other copies come from your own layers"
            ));
        }
        // The families whose base-layer copies the wheels (your layers) also
        // bring, but libcudart, which -base keeps: what the message names.
        let report = &self.a.report;
        let visible: HashSet<&str> = self
            .a
            .inodes
            .iter()
            .filter(|n| n.visible)
            .map(|n| n.shown_path())
            .collect();
        let is_base = |l: usize| report.layers.get(l).is_some_and(|l| l.base_image.is_some());
        let libs: Vec<String> = report
            .cuda_duplicates
            .iter()
            .filter(|fam| {
                !fam.library.starts_with("libcudart.")
                    && fam.copies.iter().any(|c| !is_base(c.layer_index))
                    && fam
                        .copies
                        .iter()
                        .any(|c| is_base(c.layer_index) && visible.contains(c.path.as_str()))
            })
            .map(|fam| fam.library.clone())
            .collect();
        if libs.is_empty() {
            return Err("no copy of the duplicated libraries comes from the base image's layers (only libcudart, which -base keeps)".into());
        }
        // What the change removes: every CUDA file of the base layers that
        // -base does not have, the duplicates and the rest.
        let files = self.rebase_removes(&variant, "base");
        let lines = self.doc.get(&self.instrs[i]);
        let new: Vec<String> = lines.iter().map(|l| l.replacen(&image, &base, 1)).collect();
        let c = self.change(i, new);
        self.new_base = Some(base.clone());
        Ok(Applied {
            action: format!("build FROM {base}: the wheels bring {}", libs.join(", ")),
            changes: vec![c],
            files,
            note: Some(format!(
                "{base} keeps libcudart and the driver's compat libraries; it has no cuBLAS, cuDNN, NVRTC or other CUDA libraries, so anything outside the wheels that needs them breaks"
            )),
        })
    }

    /// deleted-later and overwritten-later: the later RUN's deleting (or
    /// chmod/chown/touch) commands move into the RUN that wrote the files;
    /// a COPY gets --chmod/--chown instead.
    fn moves(&mut self, recs: &[(usize, &Recommendation)]) {
        // Commands removed from each later RUN, and whether every file they
        // touch was written by a layer that now does it itself.
        struct Plan {
            writer: usize,
            cmds: Vec<String>,
            flag: Option<String>,
            files: Vec<u32>,
        }
        type Group<'r> = Vec<(usize, &'r Recommendation, Result<Plan, String>)>;
        let mut by_cause: BTreeMap<usize, Group> = BTreeMap::new();
        let mut cause_cmds: HashMap<usize, Vec<Command>> = HashMap::new();
        for &(k, r) in recs {
            let Some(cause_layer) = r.cause_layer_index else {
                self.unfix(r, r.fix.clone());
                continue;
            };
            let plan = (|| {
                let c = self.run_of(Some(cause_layer))?;
                let cmds = self.commands(c)?;
                cause_cmds.insert(cause_layer, cmds.clone());
                let w = self.instr_of(r.layer_index)?;
                let writer = &self.instrs[w];
                let cause = &self.instrs[c];
                let wkw = kw(writer).to_string();
                let deleting = r.id == "deleted-later";
                let targets = self.targets(k).to_vec();
                let mut chosen: Vec<String> = Vec::new();
                let mut files: BTreeSet<u32> = BTreeSet::new();
                let mut flag = None;
                for cmd in &cmds {
                    let Some(named) = touched(cmd, deleting, cause.workdir.as_deref()) else {
                        continue;
                    };
                    let hit: Vec<u32> = targets
                        .iter()
                        .copied()
                        .filter(|&f| named.names(&self.a.inodes[f as usize].path))
                        .collect();
                    if hit.is_empty() {
                        continue;
                    }
                    if wkw == "RUN" {
                        let text = if writer.workdir == cause.workdir {
                            cmd.text.clone()
                        } else {
                            named.absolute_text()
                        };
                        chosen.push(text);
                        files.extend(hit);
                    } else if matches!(wkw.as_str(), "COPY" | "ADD") && !deleting {
                        // Every file of the COPY layer must be named, with an
                        // octal mode or an owner.
                        let layer = r.layer_index.unwrap_or(usize::MAX) as u32;
                        let all = self
                            .a
                            .inodes
                            .iter()
                            .filter(|n| n.layer == layer)
                            .all(|n| named.names(&n.path));
                        let Some(f) = named.copy_flag() else {
                            return Err(format!(
                                "line {} changes modes symbolically ('{}'): give COPY --chmod=OCTAL on line {} yourself",
                                cause.line, cmd.text, writer.line
                            ));
                        };
                        if !all {
                            return Err(format!(
                                "line {} changes only some of the files line {} copies: COPY those separately with {f}",
                                cause.line, writer.line
                            ));
                        }
                        chosen.push(cmd.text.clone());
                        flag = Some(f);
                        files.extend(hit);
                    } else {
                        return Err(format!(
                            "line {} is {wkw}: delete the files in the instruction that writes them, or keep them out of the build context (.dockerignore)",
                            writer.line
                        ));
                    }
                }
                if chosen.is_empty() {
                    return Err(if deleting {
                        format!(
                            "no rm on line {} names these files: delete them in the instruction that writes them",
                            cause.line
                        )
                    } else {
                        format!(
                            "line {} writes these files again with new content (not chmod, chown or touch): produce the final version in line {}",
                            cause.line, writer.line
                        )
                    });
                }
                Ok(Plan {
                    writer: w,
                    cmds: chosen,
                    flag,
                    files: files.into_iter().collect(),
                })
            })();
            by_cause.entry(cause_layer).or_default().push((k, r, plan));
        }
        for (cause_layer, group) in by_cause {
            // A command leaves the later RUN only when every file it touched
            // there was written by a layer that now runs it itself.
            let moved_cmds: BTreeSet<&str> = group
                .iter()
                .filter_map(|(_, _, p)| p.as_ref().ok())
                .flat_map(|p| p.cmds.iter().map(String::as_str))
                .collect();
            let ok_writers: BTreeSet<u32> = group
                .iter()
                .filter_map(|(_, r, p)| p.as_ref().ok().and(r.layer_index.map(|l| l as u32)))
                .collect();
            let cmds = cause_cmds.get(&cause_layer).cloned().unwrap_or_default();
            let cause_i = self.layer_instr.get(&cause_layer).copied();
            let workdir = cause_i.and_then(|c| self.instrs[c].workdir.clone());
            let removable: Vec<String> = cmds
                .iter()
                .filter(|c| moved_cmds.contains(c.text.as_str()))
                .filter(|c| {
                    let deleting = c.program().as_deref() == Some("rm");
                    let Some(named) = touched(c, deleting, workdir.as_deref()) else {
                        return false;
                    };
                    // Every inode below the later layer that it names was
                    // written by a fixed writer.
                    self.a.inodes.iter().all(|n| {
                        n.layer as usize >= cause_layer
                            || !named.names(&n.path)
                            || ok_writers.contains(&n.layer)
                    })
                })
                .map(|c| c.text.clone())
                .collect();
            let mut removal: Option<Change> = None;
            if let Some(c) = cause_i
                && !removable.is_empty()
            {
                let (k, flags, _) = self.body(c);
                let rest = shell::join_kept(&cmds, |c| !removable.contains(&c.text));
                let new = if rest.is_empty() {
                    Vec::new()
                } else {
                    let flags = if flags.is_empty() {
                        String::new()
                    } else {
                        format!("{flags} ")
                    };
                    vec![format!("{k} {flags}{rest}")]
                };
                removal = Some(self.change(c, new));
            }
            let n = group.len();
            for (idx, (_, r, plan)) in group.into_iter().enumerate() {
                let plan = match plan {
                    Ok(p) => p,
                    Err(e) => {
                        self.unfix(r, e);
                        continue;
                    }
                };
                let w = plan.writer;
                let result = if let Some(f) = &plan.flag {
                    let mut lines = self.doc.get(&self.instrs[w]);
                    let first = &mut lines[0];
                    let t = first.trim_start();
                    let (k, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
                    *first = format!("{k} {f} {}", rest.trim_start());
                    Ok(lines)
                } else {
                    self.appended(w, &plan.cmds)
                };
                let result = result.map(|lines| {
                    let mut changes = vec![self.change(w, lines)];
                    if idx + 1 == n
                        && let Some(rm) = removal.take()
                    {
                        changes.push(rm);
                    }
                    Applied {
                        action: match &plan.flag {
                            Some(f) => format!("COPY {f} instead of changing the files later"),
                            None => format!(
                                "run {} in the RUN that writes the files",
                                plan.cmds.join(" && ")
                            ),
                        },
                        changes,
                        files: plan.files.clone(),
                        note: (plan.flag.as_deref().is_some_and(|f| f.starts_with("--chmod"))
                            && !self.buildkit)
                            .then(|| {
                                "COPY --chmod needs BuildKit (or buildah/podman): the classic docker builder refuses it".to_string()
                            }),
                    }
                });
                self.record(r, result);
            }
        }
    }

    /// Build-only content: the final stage becomes a builder, and a new final
    /// stage takes only what the build installed.
    fn stage_split(&mut self, recs: &[(usize, &Recommendation)]) {
        match self.split_plan(recs) {
            Ok((applied, kept)) => {
                // One edit per finding; the first carries the lines.
                let mut changes = Some(applied.changes);
                let mut first: Option<&str> = None;
                for (&(_, r), SplitShare { files, packaged }) in recs.iter().zip(kept) {
                    if files.is_empty() {
                        self.unfix(r, "the split keeps these files: they are inside what the runtime stage copies (site-packages or the install prefix)".into());
                        continue;
                    }
                    if packaged > 0 {
                        // Part of the finding stays: say how much, and why.
                        self.unfixed.push(Unfixed {
                            finding: r.id.clone(),
                            layer_index: r.layer_index,
                            savings_bytes: packaged,
                            reason: "these files are inside Python packages (site-packages), which the runtime stage copies whole: the split keeps them".into(),
                        });
                    }
                    let note = match first {
                        None => applied.note.clone(),
                        Some(f) => Some(format!("the same stage split as {f}")),
                    };
                    first.get_or_insert(r.id.as_str());
                    let ap = Applied {
                        action: applied.action.clone(),
                        changes: changes.take().unwrap_or_default(),
                        files,
                        note,
                    };
                    self.record(r, Ok(ap));
                }
            }
            Err(reason) => {
                for &(_, r) in recs {
                    self.unfix(r, reason.clone());
                }
            }
        }
    }

    /// The stage split, and the files it removes for each of `recs`.
    fn split_plan(
        &mut self,
        recs: &[(usize, &Recommendation)],
    ) -> Result<(Applied, Vec<SplitShare>), String> {
        let report = &self.a.report;
        let is_base = |l: usize| report.layers.get(l).is_some_and(|l| l.base_image.is_some());
        let stage_from = self
            .chain
            .iter()
            .copied()
            .filter(|&i| kw(&self.instrs[i]) == "FROM")
            .collect::<Vec<_>>();
        if stage_from.len() != 1 {
            return Err(format!(
                "{STAGE_SPLIT} (the final stage builds on another stage: mlsize only splits a stage built on an image)"
            ));
        }
        let from = stage_from[0];
        let stage: Vec<usize> = self.chain.iter().copied().filter(|&i| i > from).collect();
        if let Some(&bad) = stage
            .iter()
            .find(|&&i| matches!(kw(&self.instrs[i]), "ONBUILD" | "FROM"))
        {
            return Err(format!(
                "{STAGE_SPLIT} (line {} is {})",
                self.instrs[bad].line,
                kw(&self.instrs[bad])
            ));
        }
        // Where the build-only files come from.
        let mut all: Vec<(&Recommendation, Vec<u32>)> = Vec::new();
        let mut tool_instrs: BTreeSet<usize> = BTreeSet::new();
        let mut from_base = false;
        let mut in_packages = 0u64;
        let mut packaged: Vec<u64> = Vec::new();
        for &(k, r) in recs {
            let mut mine = Vec::new();
            packaged.push(0);
            for &f in self.targets(k) {
                let n = &self.a.inodes[f as usize];
                let l = n.layer as usize;
                if n.path.contains("/site-packages/") || n.path.contains("/dist-packages/") {
                    in_packages += n.bytes;
                    if let Some(b) = packaged.last_mut() {
                        *b += n.bytes;
                    }
                    continue;
                }
                if is_base(l) {
                    from_base = true;
                    mine.push(f);
                } else if let Some(&i) = self.layer_instr.get(&l) {
                    tool_instrs.insert(i);
                    mine.push(f);
                }
            }
            all.push((r, mine));
        }
        // The image as written: a -base variant chosen for CUDA shipped twice
        // goes to the runtime stage, the builder keeps what it built with.
        let (image, alias) = {
            let text = self.doc.original(&self.instrs[from]);
            let body = text.split_once(char::is_whitespace).map_or("", |(_, b)| b);
            let words: Vec<&str> = body
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            from_image(&words.join(" "))
        };
        // The runtime stage's base.
        let runtime = if from_base {
            match cuda_variant(&image, "runtime") {
                Some((v, rt)) if v == "devel" => self.new_base.clone().unwrap_or(rt),
                _ => {
                    return Err(format!(
                        "the base image {image} ships them: use a smaller variant of it, or build in it and COPY --from the artifacts into a slim runtime stage"
                    ));
                }
            }
        } else {
            self.new_base.clone().unwrap_or_else(|| image.clone())
        };
        // With a -devel base, the runtime stage's base lacks exactly these
        // of the base layers' files (the findings' and the rest: NVVM, the
        // sanitizer, stubs...); the findings' other base files stay.
        let rebase: BTreeSet<u32> = if from_base {
            let to = if self.new_base.is_some() {
                "base"
            } else {
                "runtime"
            };
            self.rebase_removes("devel", to).into_iter().collect()
        } else {
            BTreeSet::new()
        };
        for (_, mine) in &mut all {
            mine.retain(|&f| {
                !is_base(self.a.inodes[f as usize].layer as usize) || rebase.contains(&f)
            });
        }
        // Instructions that install build tools: RUNs whose every command is
        // a package install of build packages.
        let first_tool = match tool_instrs.iter().next() {
            Some(&t) => t,
            None if from_base => from,
            None => {
                return Err(if in_packages > 0 {
                    "the files are inside Python packages (site-packages): a stage split keeps them; nothing to edit".into()
                } else {
                    format!("{STAGE_SPLIT} (the files' layers match no line of the final stage)")
                });
            }
        };
        for &t in &tool_instrs {
            let d = &self.instrs[t];
            if kw(d) != "RUN" || !self.installs_build_tools(t) {
                return Err(format!(
                    "{STAGE_SPLIT} (line {} brings the files but does more than install build tools, so mlsize cannot tell what the runtime stage needs from it)",
                    d.line
                ));
            }
        }
        // Each instruction after the first tool install: build steps stay in
        // the builder and their outputs are copied; everything else is
        // repeated in the runtime stage.
        let mut runtime_lines: Vec<String> = vec![String::new(), format!("FROM {runtime}")];
        let mut copies_at: Option<usize> = None;
        let mut build_layers: BTreeSet<u32> = BTreeSet::new();
        let mut source_layers: BTreeSet<u32> = BTreeSet::new();
        for &i in &stage {
            let d = &self.instrs[i];
            if i < first_tool {
                runtime_lines.extend(self.doc.get(d));
                continue;
            }
            if tool_instrs.contains(&i) {
                continue;
            }
            if let Some(layers) = self.build_source(i, &stage, &tool_instrs) {
                source_layers.extend(layers);
                continue;
            }
            if kw(d) == "RUN" && self.is_build_step(i) {
                if copies_at.is_none() {
                    copies_at = Some(runtime_lines.len());
                }
                for (&l, &j) in &self.layer_instr {
                    if j == i {
                        build_layers.insert(l as u32);
                    }
                }
                continue;
            }
            runtime_lines.extend(self.doc.get(d));
        }
        // What the build steps wrote, by install prefix.
        let cache_cats: BTreeSet<u8> = ["pip-cache", "conda-pkgs", "apt-cache"]
            .iter()
            .filter_map(|c| self.rules_index(c))
            .collect();
        let mut prefixes: BTreeSet<String> = BTreeSet::new();
        for n in self
            .a
            .inodes
            .iter()
            .filter(|n| n.visible && build_layers.contains(&n.layer))
        {
            if n.named_elsewhere {
                // Only its lowest name is kept: the prefix to copy is unknown.
                return Err(format!(
                    "{STAGE_SPLIT} (a build step hard-linked {} to a name in another category, e.g. uv's cache into site-packages: mlsize cannot tell which directory the runtime stage needs)",
                    n.shown_path()
                ));
            }
            if cache_cats.contains(&n.category) {
                continue;
            }
            prefixes.insert(prefix(n.shown_path()));
        }
        // Drop prefixes inside others.
        let list: Vec<String> = prefixes.iter().cloned().collect();
        let prefixes: Vec<String> = list
            .iter()
            .filter(|p| {
                !list
                    .iter()
                    .any(|q| q != *p && p.starts_with(&format!("{q}/")))
            })
            .cloned()
            .collect();
        let builder = alias.clone().unwrap_or_else(|| "builder".into());
        let copies: Vec<String> = prefixes
            .iter()
            .map(|p| format!("COPY --from={builder} {p} {p}"))
            .collect();
        let at = copies_at.unwrap_or(runtime_lines.len());
        let ncopies = copies.len();
        runtime_lines.splice(at..at, copies);
        // Files removed: the build-only targets not under a copied prefix.
        let mut files = Vec::new();
        let mut per_rec = Vec::new();
        for (r, mine) in all {
            let kept: Vec<u32> = mine
                .into_iter()
                .filter(|&f| {
                    let p = self.a.inodes[f as usize].shown_path();
                    !prefixes
                        .iter()
                        .any(|q| p == q || p.starts_with(&format!("{q}/")))
                })
                .collect();
            files.extend(kept.iter().copied());
            per_rec.push((r, kept));
        }
        // The runtime stage has nothing of the tool installs and of the
        // build steps but what it copies: their other files go too.
        let under = |p: &str| {
            prefixes
                .iter()
                .any(|q| p == q || p.starts_with(&format!("{q}/")))
        };
        let gone: BTreeSet<u32> = self
            .layer_instr
            .iter()
            .filter(|(_, i)| tool_instrs.contains(i))
            .map(|(&l, _)| l as u32)
            .chain(build_layers.iter().copied())
            .chain(source_layers.iter().copied())
            .collect();
        let taken: BTreeSet<u32> = files.iter().copied().collect();
        let extra: Vec<u32> = (0..self.a.inodes.len() as u32)
            .filter(|i| !taken.contains(i))
            .filter(|&i| {
                let n = &self.a.inodes[i as usize];
                (gone.contains(&n.layer) && !(n.visible && under(n.shown_path())))
                    || rebase.contains(&i)
            })
            .collect();
        if let Some((_, first)) = per_rec.iter_mut().find(|(_, k)| !k.is_empty()) {
            first.extend(extra.iter().copied());
        }
        files.extend(extra);
        if files.is_empty() {
            return Err(format!(
                "{STAGE_SPLIT} (the build steps install the files into the prefixes the runtime stage copies: {})",
                prefixes.join(", ")
            ));
        }
        // Name the builder stage; it keeps the image it was built FROM.
        let mut changes = Vec::new();
        let rebased = self.new_base.is_some();
        if alias.is_none() || rebased {
            let original = self.doc.original(&self.instrs[from]);
            let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
            if alias.is_none()
                && let Some(l) = lines.iter_mut().rev().find(|l| !l.trim().is_empty())
            {
                *l = format!("{} AS {builder}", l.trim_end());
            }
            let mut c = self.change(from, lines);
            c.old = original;
            changes.push(c);
        }
        if rebased
            && let Some(e) = self
                .edits
                .iter_mut()
                .find(|e| e.finding == "cuda-duplicates")
        {
            e.changes.clear();
            e.note = Some(format!(
                "{} With the stage split, the runtime stage is built FROM {runtime} and the builder keeps {image}.",
                e.note.take().unwrap_or_default()
            ));
        }
        let end = self.doc.original_lines().len();
        self.doc.append(runtime_lines.clone());
        changes.push(Change {
            line_start: end + 1,
            line_end: end,
            old: String::new(),
            new: runtime_lines.join("\n"),
        });
        let ids: Vec<&str> = per_rec
            .iter()
            .filter(|(_, kept)| !kept.is_empty())
            .map(|(r, _)| r.id.as_str())
            .collect();
        let applied = Applied {
            action: format!(
                "build in a builder stage and start the final stage FROM {runtime} with {ncopies} COPY --from={builder} of what the build installed",
            ),
            changes,
            files,
            note: Some(format!(
                "fixes {}; check that the runtime stage has every shared library the copied programs load (ldd)",
                ids.join(", ")
            )),
        };
        let shares = per_rec
            .into_iter()
            .zip(packaged)
            .map(|((_, files), packaged)| SplitShare { files, packaged })
            .collect();
        Ok((applied, shares))
    }

    fn rules_index(&self, cat: &str) -> Option<u8> {
        self.a
            .report
            .categories
            .iter()
            .position(|c| c.name == cat)
            .and_then(|p| u8::try_from(p).ok())
    }

    /// A RUN whose every command installs build tools with the package
    /// manager (or refreshes its lists, or cleans up).
    fn installs_build_tools(&self, i: usize) -> bool {
        let Ok(cmds) = self.commands(i) else {
            return false;
        };
        let mut any = false;
        for c in &cmds {
            let w = c.words();
            let prog = c.program().unwrap_or_default();
            match prog.as_str() {
                "apt-get" | "apt" | "apk" | "yum" | "dnf" | "microdnf" => {
                    let Some(at) = w.iter().position(|x| x == "install" || x == "add") else {
                        continue; // update, clean
                    };
                    let pkgs: Vec<&String> =
                        w[at + 1..].iter().filter(|x| !x.starts_with('-')).collect();
                    if pkgs.is_empty() || !pkgs.iter().all(|p| is_build_package(p)) {
                        return false;
                    }
                    any = true;
                }
                "rm" | "true" => {}
                _ => return false,
            }
        }
        any
    }

    /// A RUN that builds or installs software (what a builder stage is for).
    /// A `COPY`/`ADD` of one file that only build steps use (`COPY tool.c
    /// /src/tool.c` before `RUN gcc ... /src/tool.c`): it stays in the
    /// builder. Its layers, or `None` when the runtime stage needs it or it
    /// cannot tell: a directory or several files, a relative or variable
    /// destination, `--from`, or a later instruction other than a build
    /// step that names the destination.
    fn build_source(&self, i: usize, stage: &[usize], tools: &BTreeSet<usize>) -> Option<Vec<u32>> {
        let d = &self.instrs[i];
        if !matches!(kw(d), "COPY" | "ADD") {
            return None;
        }
        let (_, flags, rest) = self.body(i);
        if flags.contains("--from") || rest.trim_start().starts_with('[') {
            return None;
        }
        let dest = shell::words(&rest).pop()?;
        if !dest.starts_with('/') || dest.ends_with('/') || dest.contains('$') {
            return None;
        }
        let layers: Vec<u32> = self
            .layer_instr
            .iter()
            .filter(|&(_, &j)| j == i)
            .map(|(&l, _)| l as u32)
            .collect();
        // Exactly one file, at the destination.
        let mut files = self.a.inodes.iter().filter(|n| layers.contains(&n.layer));
        if !(files.next().is_some_and(|n| *n.path == *dest) && files.next().is_none()) {
            return None;
        }
        let mut used_by_build = false;
        for &j in stage.iter().filter(|&&j| j > i && !tools.contains(&j)) {
            let text = self.doc.original(&self.instrs[j]);
            if !text.contains(dest.as_str()) {
                continue;
            }
            if kw(&self.instrs[j]) == "RUN" && self.is_build_step(j) {
                used_by_build = true;
            } else {
                return None;
            }
        }
        used_by_build.then_some(layers)
    }

    fn is_build_step(&self, i: usize) -> bool {
        let Ok(cmds) = self.commands(i) else {
            return false;
        };
        cmds.iter().any(|c| {
            let w = c.words();
            let prog = c.program().unwrap_or_default();
            Install::Pip.matches(&w).is_some()
                || Install::Uv.matches(&w).is_some()
                || matches!(
                    prog.as_str(),
                    "make"
                        | "cmake"
                        | "ninja"
                        | "gcc"
                        | "g++"
                        | "cc"
                        | "c++"
                        | "nvcc"
                        | "cargo"
                        | "go"
                        | "meson"
                        | "configure"
                        | "conda"
                        | "mamba"
                        | "micromamba"
                )
                || (prog.starts_with("python") && w.iter().any(|x| x == "setup.py" || x == "build"))
        })
    }

    fn finish(mut self, path: &str) -> FixReport {
        self.edits
            .sort_by_key(|e| e.changes.first().map_or(usize::MAX, |c| c.line_start));
        let estimated = self.estimate(&self.applied_files);
        let new_text = self.doc.text();
        let original = self.text.clone();
        FixReport {
            schema: crate::report::SCHEMA,
            kind: "fix",
            image: crate::report::diff::side(&self.a.report),
            dockerfile: path.to_string(),
            patch_path: patch_path(path),
            edits: self.edits,
            unfixed: self.unfixed,
            estimated,
            new_text,
            original,
            patch: String::new(),
        }
    }
}

/// One finding's share of a stage split.
struct SplitShare {
    /// The files the split removes.
    files: Vec<u32>,
    /// The bytes it keeps because they are inside site-packages.
    packaged: u64,
}

/// What the stage split says when it cannot be written.
const STAGE_SPLIT: &str = "split the Dockerfile by hand: build in a stage 'AS builder' and start the final stage FROM a runtime base with COPY --from=builder of the install prefix";

/// The original text of an instruction.
fn text_of(text: &str, d: &DockerfileInstruction) -> String {
    text.lines()
        .skip(d.line - 1)
        .take(d.end_line + 1 - d.line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `FROM [--platform=..] IMAGE [AS NAME]` → image and name.
fn from_image(body: &str) -> (String, Option<String>) {
    let w: Vec<&str> = body.split_whitespace().collect();
    let image = w.first().copied().unwrap_or("").to_string();
    let alias = match w.as_slice() {
        [_, a, n, ..] if a.eq_ignore_ascii_case("as") => Some(n.to_string()),
        _ => None,
    };
    (image, alias)
}

/// For `nvidia/cuda:VER-[cudnn[N]-]{base,runtime,devel}-OS`: the variant,
/// and the same image in variant `want` (without cuDNN for `base`).
fn cuda_variant(image: &str, want: &str) -> Option<(String, String)> {
    let (repo, tag) = image.rsplit_once(':')?;
    if !(repo == "nvidia/cuda" || repo.ends_with("/nvidia/cuda")) || tag.contains('$') {
        return None;
    }
    let parts: Vec<&str> = tag.split('-').collect();
    let at = parts
        .iter()
        .position(|p| matches!(*p, "base" | "runtime" | "devel"))?;
    if at == 0 || at + 1 >= parts.len() {
        return None;
    }
    let version = parts[0];
    let cudnn: Vec<&str> = parts[1..at].to_vec();
    let os = parts[at + 1..].join("-");
    let mid = if want == "base" || cudnn.is_empty() {
        String::new()
    } else {
        format!("{}-", cudnn.join("-"))
    };
    Some((
        parts[at].to_string(),
        format!("{repo}:{version}-{mid}{want}-{os}"),
    ))
}

/// Packages that only building needs.
fn is_build_package(p: &str) -> bool {
    let p = p.split(['=', ':']).next().unwrap_or(p);
    matches!(
        p,
        "gcc"
            | "g++"
            | "cpp"
            | "make"
            | "cmake"
            | "ninja-build"
            | "build-essential"
            | "binutils"
            | "pkg-config"
            | "pkgconf"
            | "autoconf"
            | "automake"
            | "libtool"
            | "dpkg-dev"
            | "clang"
            | "llvm"
            | "gfortran"
            | "musl-dev"
            | "linux-headers"
            | "git"
            | "patch"
    ) || p.starts_with("gcc-")
        || p.starts_with("g++-")
        || p.starts_with("clang-")
        || p.ends_with("-dev")
        || p.ends_with("-devel")
        || p.ends_with("-headers")
        || (p.starts_with("cuda-") && (p.contains("nvcc") || p.ends_with("-dev")))
}

/// The directory to copy for a file a build step installed: the
/// site-packages directory, else three levels under /usr (`/usr/local/bin`),
/// else two (`/opt/app`).
fn prefix(path: &str) -> String {
    for marker in ["/site-packages/", "/dist-packages/"] {
        if let Some(at) = path.find(marker) {
            return path[..at + marker.len() - 1].to_string();
        }
    }
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let depth = if comps.first() == Some(&"usr") { 3 } else { 2 };
    let n = depth.min(comps.len().saturating_sub(1)).max(1);
    format!("/{}", comps[..n.min(comps.len())].join("/"))
}

/// The path in the patch: as given when relative and inside this
/// directory, else its file name (the patch then applies in its directory).
fn patch_path(path: &str) -> String {
    let p = std::path::Path::new(path);
    if p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
        return p
            .file_name()
            .map_or("Dockerfile".into(), |n| n.to_string_lossy().into_owned());
    }
    let s = path.trim_start_matches("./");
    if s.is_empty() {
        "Dockerfile".into()
    } else {
        s.to_string()
    }
}

/// Words of a line with their byte offsets (whitespace-separated).
fn tokens(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

/// Package-manager installs a flag can be added to.
#[derive(Debug, Clone, Copy)]
enum Install {
    Pip,
    Uv,
    Apt,
}

impl Install {
    fn name(self) -> &'static str {
        match self {
            Install::Pip => "pip",
            Install::Uv => "uv",
            Install::Apt => "apt-get",
        }
    }

    /// Whether a command is such an install: the index of its `install`.
    fn matches(self, words: &[String]) -> Option<usize> {
        (0..words.len()).find(|&j| self.ends_install(words, j))
    }

    /// Whether `words[j]` is the `install` (or `sync`) word of such an install.
    fn ends_install(self, w: &[String], j: usize) -> bool {
        let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
        match self {
            Install::Pip => {
                w[j] == "install"
                    && j >= 1
                    && is_pip(&base(&w[j - 1]))
                    && !(j >= 2 && base(&w[j - 2]) == "uv")
            }
            Install::Uv => {
                (w[j] == "install" && j >= 2 && w[j - 1] == "pip" && base(&w[j - 2]) == "uv")
                    || (w[j] == "sync" && j >= 1 && base(&w[j - 1]) == "uv")
            }
            Install::Apt => {
                w[j] == "install"
                    && (0..j).rev().any(|k| {
                        matches!(base(&w[k]).as_str(), "apt-get" | "apt")
                            && w[k + 1..j].iter().all(|x| x.starts_with('-'))
                    })
            }
        }
    }
}

fn is_pip(w: &str) -> bool {
    w.strip_prefix("pip")
        .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// The paths a command touches: `rm` (when `deleting`), or chmod, chown,
/// chgrp, touch.
struct Touched {
    program: String,
    flags: Vec<String>,
    /// chmod's mode or chown's owner.
    operand: Option<String>,
    paths: Vec<String>,
    recursive: bool,
}

fn touched(cmd: &Command, deleting: bool, workdir: Option<&str>) -> Option<Touched> {
    let program = cmd.program()?;
    let ok = if deleting {
        program == "rm"
    } else {
        matches!(program.as_str(), "chmod" | "chown" | "chgrp" | "touch")
    };
    if !ok {
        return None;
    }
    let args = cmd.args();
    let flags: Vec<String> = args
        .iter()
        .filter(|a| a.starts_with('-'))
        .cloned()
        .collect();
    let mut rest = args.iter().filter(|a| !a.starts_with('-'));
    let operand = (program != "touch" && program != "rm")
        .then(|| rest.next().cloned())
        .flatten();
    let paths: Option<Vec<String>> = rest.map(|a| shell::absolute(a, workdir)).collect();
    let paths = paths?;
    if paths.is_empty() {
        return None;
    }
    let recursive = flags.iter().any(|f| {
        f == "--recursive" || (!f.starts_with("--") && (f.contains('r') || f.contains('R')))
    });
    Some(Touched {
        program,
        flags,
        operand,
        paths,
        recursive,
    })
}

impl Touched {
    fn names(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|p| shell::names(p, path, self.recursive))
    }

    /// The command with absolute paths.
    fn absolute_text(&self) -> String {
        let mut w = vec![self.program.clone()];
        w.extend(self.flags.iter().cloned());
        w.extend(self.operand.iter().cloned());
        w.extend(self.paths.iter().cloned());
        w.join(" ")
    }

    /// COPY's flag doing the same (octal modes and owners only).
    fn copy_flag(&self) -> Option<String> {
        let op = self.operand.as_deref()?;
        match self.program.as_str() {
            "chmod" if op.len() >= 3 && op.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
                Some(format!("--chmod={op}"))
            }
            "chown" if !op.contains('$') => Some(format!("--chown={op}")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_variants() {
        assert_eq!(
            cuda_variant("nvidia/cuda:12.4.1-runtime-ubuntu22.04", "base"),
            Some((
                "runtime".into(),
                "nvidia/cuda:12.4.1-base-ubuntu22.04".into()
            ))
        );
        assert_eq!(
            cuda_variant("nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04", "runtime"),
            Some((
                "devel".into(),
                "nvidia/cuda:12.1.0-cudnn8-runtime-ubuntu22.04".into()
            ))
        );
        assert_eq!(
            cuda_variant(
                "docker.io/nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04",
                "base"
            )
            .map(|v| v.1),
            Some("docker.io/nvidia/cuda:12.1.0-base-ubuntu22.04".into())
        );
        assert_eq!(cuda_variant("python:3.11-slim", "base"), None);
        assert_eq!(
            cuda_variant("nvidia/cuda:$V-runtime-ubuntu22.04", "base"),
            None
        );
    }

    #[test]
    fn install_prefixes() {
        assert_eq!(
            prefix("/usr/local/lib/python3.11/site-packages/torch/x.py"),
            "/usr/local/lib/python3.11/site-packages"
        );
        assert_eq!(prefix("/usr/local/bin/tool"), "/usr/local/bin");
        assert_eq!(prefix("/opt/app/lib/x.so"), "/opt/app");
        assert_eq!(prefix("/app/x"), "/app");
    }

    #[test]
    fn flags_after_installs() {
        let w = |s: &str| shell::words(s);
        assert!(Install::Pip.matches(&w("pip install x")).is_some());
        assert!(
            Install::Pip
                .matches(&w("python3 -m pip install x"))
                .is_some()
        );
        assert!(
            Install::Pip
                .matches(&w("/opt/venv/bin/pip3.11 install x"))
                .is_some()
        );
        assert!(Install::Pip.matches(&w("uv pip install x")).is_none());
        assert!(Install::Uv.matches(&w("uv pip install x")).is_some());
        assert!(Install::Apt.matches(&w("apt-get -y install x")).is_some());
        assert!(Install::Apt.matches(&w("apt-get update")).is_none());
        assert!(is_build_package("libc6-dev"));
        assert!(is_build_package("gcc-12"));
        assert!(!is_build_package("python3"));
        assert_eq!(patch_path("./docker/Dockerfile"), "docker/Dockerfile");
        assert_eq!(patch_path("/abs/Dockerfile.gpu"), "Dockerfile.gpu");
        assert_eq!(patch_path("../up/Dockerfile"), "Dockerfile");
    }
}
