//! A Dockerfile's instructions with their line numbers, to point annotations
//! at the line that created a layer.
//!
//! Input: the Dockerfile text and the image history (the instruction of every
//! `config.history` entry, as [`super::instruction`] derives it). Output: for
//! every history entry, the line that wrote it.
//!
//! What builders record for a layer decides how it can be matched:
//! - BuildKit and kaniko keep the instruction as written (`COPY model.bin
//!   /app/` minus `--from`/`--link`, `RUN --mount=...` minus the mount): the
//!   normalised text matches.
//! - The classic Docker builder and buildah replace COPY/ADD sources with a
//!   content hash and keep the destination as written, unresolved:
//!   `COPY file:<sha256> in weights.bin`, `COPY dir:<sha256> in /app/data`,
//!   `COPY multi:<sha256> in ./hdr/` (several sources or a glob). Docker 20.10
//!   expands variables in it (`in /home/u/` for `$HOME/`), buildah 1.28 does
//!   not; the classic builder writes `WORKDIR` resolved (`WORKDIR /app/sub`),
//!   buildah as written (`WORKDIR sub`).
//!
//! [`match_history`] lines the history up with the instructions of the final
//! stage (and the stages it is built `FROM`), in order, like a diff: a history
//! entry matches a line when the text is the same, or, for COPY/ADD, when the
//! keyword, the kind of source (one, or several) and the destination agree
//! (as written, resolved against the WORKDIR, the destination directory plus
//! the source's basename, or with `$VAR` standing for anything). Of all
//! order-preserving pairings it keeps one with the most matches (then the most
//! exact ones), preferring later lines on ties: the n-th `COPY x .` layer
//! gets the n-th `COPY ... .` line, and the base image's history, which comes
//! first, is left over once the Dockerfile's entries have taken their lines.
//! The sources themselves are never in these records, so only BuildKit's and
//! kaniko's full text can tell `COPY a .` from `COPY b .`; the order does it
//! here. buildah without `--layers` commits a stage as one layer, recorded on
//! its last instruction: that layer gets that line.

use super::one_line;

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileInstruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// 1-based line where it ends (its last continuation or heredoc line).
    pub end_line: usize,
    /// The instruction as it would appear in history (see module docs).
    pub key: String,
    /// Build stage, counted by `FROM` from 0; `None` before the first `FROM`.
    pub stage: Option<usize>,
    /// For `FROM` of an earlier stage (`FROM build`, `FROM 0`): that stage.
    pub base_stage: Option<usize>,
    /// The WORKDIR in effect when the instruction runs, when the Dockerfile
    /// decides it (a stage built on an image starts with the image's, unknown).
    pub workdir: Option<String>,
}

fn strip_flags(keyword: &str, rest: &str) -> String {
    let drop: &[&str] = match keyword {
        "RUN" => &["--mount=", "--network=", "--security="],
        "COPY" | "ADD" => &["--from=", "--link"],
        _ => &[],
    };
    rest.split_whitespace()
        .filter(|w| !drop.iter().any(|d| w.starts_with(d)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the build of each stage stands while parsing.
#[derive(Default)]
struct Stages {
    /// Per stage: its name (`AS build`) and its WORKDIR so far.
    stages: Vec<(Option<String>, Option<String>)>,
}

impl Stages {
    /// Starts a stage from `FROM [--platform=..] IMAGE [AS NAME]`; returns the
    /// earlier stage it builds on.
    fn start(&mut self, args: &str) -> Option<usize> {
        let words: Vec<&str> = args
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let image = words.first().copied().unwrap_or("").to_ascii_lowercase();
        let name = match words.as_slice() {
            [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        let base = self
            .stages
            .iter()
            .position(|(n, _)| n.as_deref() == Some(image.as_str()))
            .or_else(|| {
                image
                    .parse::<usize>()
                    .ok()
                    .filter(|&i| i < self.stages.len())
            });
        let workdir = match base {
            Some(b) => self.stages.get(b).and_then(|(_, w)| w.clone()),
            None if image == "scratch" => Some("/".to_string()),
            None => None,
        };
        self.stages.push((name, workdir));
        base
    }

    fn workdir(&self) -> Option<String> {
        self.stages.last().and_then(|(_, w)| w.clone())
    }

    fn set_workdir(&mut self, dir: &str) {
        if let Some((_, w)) = self.stages.last_mut() {
            *w = if dir.contains('$') {
                None
            } else {
                resolve(dir, w.as_deref())
            };
        }
    }
}

/// Parses a Dockerfile (line continuations, comments, heredoc bodies, the
/// `# escape=` directive).
pub fn parse(text: &str) -> Vec<DockerfileInstruction> {
    let mut escape = '\\';
    let mut out = Vec::new();
    let mut stages = Stages::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut directives = true;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with('#') {
            if directives
                && let Some(v) = line.trim_start_matches('#').trim().strip_prefix("escape=")
            {
                escape = v.trim().chars().next().unwrap_or('\\');
            }
            i += 1;
            continue;
        }
        directives = false;
        if line.is_empty() {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut text = String::new();
        let mut heredocs: Vec<String> = Vec::new();
        loop {
            let l = lines[i].trim_end();
            let cont = l.ends_with(escape);
            let body = if cont {
                &l[..l.len() - escape.len_utf8()]
            } else {
                l
            };
            if !body.trim_start().starts_with('#') || text.is_empty() {
                text.push_str(body);
                text.push(' ');
            }
            for w in body.split_whitespace() {
                if let Some(t) = w.strip_prefix("<<") {
                    let t = t
                        .trim_start_matches('-')
                        .trim_matches(|c| c == '"' || c == '\'');
                    if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        heredocs.push(t.to_string());
                    }
                }
            }
            i += 1;
            if !cont || i >= lines.len() {
                break;
            }
        }
        // Heredoc bodies belong to the instruction; skip to their terminators.
        for term in heredocs {
            while i < lines.len() {
                let l = lines[i].trim();
                text.push_str(l);
                text.push(' ');
                i += 1;
                if l == term {
                    break;
                }
            }
        }
        let text = text.trim();
        let (kw, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let kw = kw.to_ascii_uppercase();
        let key = one_line(&format!("{kw} {}", strip_flags(&kw, rest)));
        let base_stage = if kw == "FROM" {
            stages.start(rest)
        } else {
            None
        };
        let workdir = stages.workdir();
        if kw == "WORKDIR" {
            stages.set_workdir(rest.trim());
        }
        out.push(DockerfileInstruction {
            line: start,
            end_line: i,
            key,
            stage: stages.stages.len().checked_sub(1),
            base_stage,
            workdir,
        });
    }
    out
}

/// The line of the Dockerfile instruction whose text matches a layer's
/// instruction (the last one, since the final stage comes last). Text only:
/// [`match_history`] also matches the classic builder's and buildah's COPY.
pub fn find_line(instructions: &[DockerfileInstruction], instruction: &str) -> Option<usize> {
    let want = history_key(instruction);
    instructions
        .iter()
        .rev()
        .find(|d| d.key == want)
        .map(|d| d.line)
}

/// The line of the final stage's `FROM`: where findings about base-image
/// layers, or about no layer in particular, point.
pub fn final_from_line(instructions: &[DockerfileInstruction]) -> Option<usize> {
    instructions
        .iter()
        .rev()
        .find(|d| keyword(&d.key) == "FROM")
        .map(|d| d.line)
}

fn keyword(key: &str) -> &str {
    key.split(' ').next().unwrap_or(key)
}

fn history_key(instruction: &str) -> String {
    let (kw, rest) = instruction
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((instruction, ""));
    one_line(&format!("{kw} {}", strip_flags(kw, rest)))
}

/// `path` made absolute against `workdir` and normalised (no `.`, `..`,
/// doubled or trailing `/`); `None` when it is relative and `workdir` unknown.
fn resolve(path: &str, workdir: Option<&str>) -> Option<String> {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", workdir?)
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Whether `text` is `pattern` with each `$VAR` / `${VAR...}` standing for
/// any (possibly empty) text.
fn matches_with_vars(pattern: &str, text: &str) -> bool {
    let mut pieces: Vec<&str> = Vec::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('$') {
        pieces.push(&rest[..i]);
        let var = &rest[i + 1..];
        let len = if var.starts_with('{') {
            var.find('}').map_or(var.len(), |e| e + 1)
        } else {
            var.bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count()
        };
        rest = &var[len..];
    }
    pieces.push(rest);
    let (Some(first), Some(last)) = (pieces.first(), pieces.last()) else {
        return false;
    };
    if pieces.len() == 1 {
        return text == *first;
    }
    let Some(mut t) = text.strip_prefix(first) else {
        return false;
    };
    if t.len() < last.len() || !t.ends_with(last) {
        return false;
    }
    t = &t[..t.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match t.find(piece) {
            Some(i) => t = &t[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// COPY/ADD arguments: sources and destination, flags left out.
fn copy_args(rest: &str) -> Option<(Vec<String>, String)> {
    let mut r = rest.trim_start();
    while r.starts_with("--") {
        let w = r.split_whitespace().next().unwrap_or("");
        r = r[w.len()..].trim_start();
    }
    let mut args: Vec<String> = if r.starts_with('[') {
        serde_json::from_str(r).ok()?
    } else {
        r.split_whitespace().map(str::to_string).collect()
    };
    if args.len() < 2 || args.iter().any(|a| a.starts_with("<<")) {
        return None;
    }
    let dest = args.pop()?;
    Some((args, dest))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// `file:<hash>` or `dir:<hash>`: one source.
    One,
    /// `multi:<hash>`: several.
    Several,
}

/// A history entry, prepared for matching.
struct Entry {
    key: String,
    kw: String,
    /// For a classic/buildah COPY or ADD: the kind of source and the
    /// destination as written.
    copy: Option<(Sources, String)>,
    /// For COPY/ADD the destination, for WORKDIR the new WORKDIR, resolved.
    target: Option<String>,
    /// For ARG: the name.
    arg: Option<String>,
}

/// A Dockerfile instruction of the final stage's chain, prepared for matching.
struct Candidate<'a> {
    d: &'a DockerfileInstruction,
    kw: &'a str,
    copy: Option<(Vec<String>, String)>,
    target: Option<String>,
    arg: Option<String>,
}

fn arg_name(kw: &str, rest: &str) -> Option<String> {
    (kw == "ARG").then(|| {
        let w = rest.split_whitespace().next().unwrap_or("");
        w.split('=').next().unwrap_or(w).to_string()
    })
}

/// `COPY --chown=1:1 file:<hash> in /x` → (One, "/x").
fn hash_record(rest: &str) -> Option<(Sources, String)> {
    let mut r = rest;
    loop {
        let w = r.split(' ').next().unwrap_or("");
        if w.is_empty() && r.is_empty() {
            return None;
        }
        r = r[w.len()..].strip_prefix(' ').unwrap_or(&r[w.len()..]);
        if super::is_hash_source(w) {
            let dest = r.strip_prefix("in ")?.trim();
            let kind = if w.starts_with("multi:") {
                Sources::Several
            } else {
                Sources::One
            };
            return Some((kind, dest.to_string()));
        }
        if !w.starts_with("--") && !w.is_empty() {
            return None;
        }
    }
}

fn entries(history: &[&str]) -> Vec<Entry> {
    let mut workdir = "/".to_string();
    history
        .iter()
        .map(|instruction| {
            let key = history_key(instruction);
            let (kw, rest) = key.split_once(' ').unwrap_or((&key, ""));
            let kw = kw.to_string();
            let mut e = Entry {
                copy: None,
                target: None,
                arg: arg_name(&kw, rest),
                key: key.clone(),
                kw,
            };
            match e.kw.as_str() {
                "WORKDIR" if !rest.contains('$') => {
                    if let Some(w) = resolve(rest, Some(&workdir)) {
                        workdir = w;
                    }
                    e.target = Some(workdir.clone());
                }
                "COPY" | "ADD" => {
                    e.copy = hash_record(rest);
                    let dest = match &e.copy {
                        Some((_, dest)) => Some(dest.clone()),
                        None => copy_args(rest).map(|(_, d)| d),
                    };
                    e.target = dest.and_then(|d| resolve(&d, Some(&workdir)));
                }
                _ => {}
            }
            e
        })
        .collect()
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// How well a history entry fits a Dockerfile line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    No,
    /// Same destination after resolving, by basename, or through `$VAR`.
    Loose,
    /// Same text, or same destination as written.
    Exact,
}

fn fit(e: &Entry, c: &Candidate) -> Fit {
    if e.key == c.d.key {
        return Fit::Exact;
    }
    if e.kw != c.kw {
        return Fit::No;
    }
    match c.kw {
        "WORKDIR" => {
            if e.target.is_some() && e.target == c.target {
                Fit::Loose
            } else {
                Fit::No
            }
        }
        "ARG" => {
            if e.arg.is_some() && e.arg == c.arg {
                Fit::Loose
            } else {
                Fit::No
            }
        }
        "COPY" | "ADD" => {
            let (Some((kind, dest)), Some((sources, want))) = (&e.copy, &c.copy) else {
                return Fit::No;
            };
            let glob = sources.iter().any(|s| is_glob(s));
            let kind_fits = match kind {
                Sources::Several => sources.len() > 1 || glob,
                Sources::One => sources.len() == 1,
            };
            if !kind_fits {
                return Fit::No;
            }
            if dest == want {
                return Fit::Exact;
            }
            if e.target.is_some() && e.target == c.target {
                return Fit::Loose;
            }
            // `COPY model.bin /app/` recorded as `in /app/model.bin`.
            if let ([src], Some(dir), Some(got)) = (sources.as_slice(), &c.target, &e.target)
                && !glob
                && (want.ends_with('/') || want == ".")
            {
                let base = src.trim_end_matches('/').rsplit('/').next().unwrap_or(src);
                if resolve(base, Some(dir)).as_ref() == Some(got) {
                    return Fit::Loose;
                }
            }
            if want.contains('$') && matches_with_vars(want, dest) {
                return Fit::Loose;
            }
            Fit::No
        }
        _ => Fit::No,
    }
}

/// The instructions that can have written the image's history: those of the
/// final stage, after those of the stages it is built on.
fn chain(instructions: &[DockerfileInstruction]) -> Vec<Candidate<'_>> {
    final_chain(instructions)
        .into_iter()
        .map(|i| &instructions[i])
        .filter(|d| keyword(&d.key) != "FROM")
        .map(|d| {
            let (kw, rest) = d.key.split_once(' ').unwrap_or((&d.key, ""));
            let copy = matches!(kw, "COPY" | "ADD")
                .then(|| copy_args(rest))
                .flatten();
            let target = match kw {
                "WORKDIR" => resolve(rest, d.workdir.as_deref()).filter(|_| !rest.contains('$')),
                _ => copy
                    .as_ref()
                    .and_then(|(_, dest)| resolve(dest, d.workdir.as_deref())),
            };
            Candidate {
                d,
                kw,
                copy,
                target,
                arg: arg_name(kw, rest),
            }
        })
        .collect()
}

/// Indexes of the instructions of the final stage and of the stages it is
/// built `FROM`, in order (their `FROM`s included): what the image's history
/// can hold.
pub fn final_chain(instructions: &[DockerfileInstruction]) -> Vec<usize> {
    let mut stages = Vec::new();
    let mut stage = instructions.iter().filter_map(|d| d.stage).max();
    while let Some(s) = stage {
        if stages.contains(&s) {
            break;
        }
        stages.push(s);
        stage = instructions
            .iter()
            .find(|d| d.stage == Some(s) && keyword(&d.key) == "FROM")
            .and_then(|d| d.base_stage);
    }
    (0..instructions.len())
        .filter(|&i| instructions[i].stage.is_some_and(|s| stages.contains(&s)))
        .collect()
}

/// Most cells of the alignment table; longer histories are cut from the front
/// (base-image history, which matches nothing anyway).
const MAX_CELLS: usize = 1 << 20;

/// For every history entry (its instruction, see [`super::instruction`]), the
/// line of the Dockerfile instruction that wrote it (see the module docs).
pub fn match_history(
    instructions: &[DockerfileInstruction],
    history: &[&str],
) -> Vec<Option<usize>> {
    let mut lines = vec![None; history.len()];
    let all = chain(instructions);
    let cands = &all[all.len().saturating_sub(MAX_CELLS)..];
    let m = cands.len();
    let skip = history.len().saturating_sub(MAX_CELLS / m.max(1));
    let entries = entries(history);
    let hs = &entries[skip..];
    let n = hs.len();
    if n == 0 || m == 0 {
        return lines;
    }
    // Score: matches first, exact matches second.
    let weight = (n.min(m) + 1) as u64;
    let score = |i: usize, j: usize| match fit(&hs[i], &cands[j]) {
        Fit::No => 0,
        Fit::Loose => weight,
        Fit::Exact => weight + 1,
    };
    // best[i][j]: best score pairing the first i entries with the first j lines.
    let w = m + 1;
    let mut best = vec![0u64; (n + 1) * w];
    for i in 1..=n {
        for j in 1..=m {
            let s = score(i - 1, j - 1);
            let pair = if s > 0 {
                best[(i - 1) * w + j - 1] + s
            } else {
                0
            };
            best[i * w + j] = pair.max(best[(i - 1) * w + j]).max(best[i * w + j - 1]);
        }
    }
    // Walk back from the end, pairing as late as the best score allows.
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let here = best[i * w + j];
        let s = score(i - 1, j - 1);
        if s > 0 && here == best[(i - 1) * w + j - 1] + s {
            lines[skip + i - 1] = Some(cands[j - 1].d.line);
            i -= 1;
            j -= 1;
        } else if here == best[i * w + j - 1] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS build
RUN apt-get update && \
    apt-get install -y python3-pip
FROM python:3.11-slim
# a comment
COPY --from=build /out /app
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install torch
RUN <<EOF
set -e
echo hi
EOF
COPY   app.py   /app/
RUN pip install torch
"#;

    #[test]
    fn lines_of_instructions() {
        let d = parse(DOCKERFILE);
        let lines: Vec<(usize, &str)> = d.iter().map(|x| (x.line, x.key.as_str())).collect();
        assert_eq!(
            lines[0],
            (2, "FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS build")
        );
        assert_eq!(
            lines[1],
            (3, "RUN apt-get update && apt-get install -y python3-pip")
        );
        assert_eq!(lines[3], (7, "COPY /out /app"));
        assert_eq!(lines[4], (8, "RUN pip install torch"));
        assert_eq!(lines[5].0, 10);
        assert_eq!(lines[6], (14, "COPY app.py /app/"));
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn finds_layers_in_the_dockerfile() {
        let d = parse(DOCKERFILE);
        assert_eq!(
            find_line(
                &d,
                "RUN apt-get update &&     apt-get install -y python3-pip"
            ),
            Some(3)
        );
        assert_eq!(find_line(&d, "COPY /out /app"), Some(7));
        assert_eq!(
            find_line(&d, "RUN pip install torch"),
            Some(15),
            "the last match wins"
        );
        assert_eq!(find_line(&d, "RUN make"), None);
    }

    /// The history of `testdata/builders/Dockerfile` as a real builder wrote
    /// it (`testdata/builders/make.sh`), as instructions.
    fn real_history(file: &str) -> Vec<String> {
        let path = format!("{}/testdata/builders/{file}", env!("CARGO_MANIFEST_DIR"));
        let h: Vec<crate::history::HistoryEntry> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        h.iter()
            .map(|e| super::super::instruction(&e.created_by))
            .collect()
    }

    fn real_dockerfile() -> Vec<DockerfileInstruction> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/builders/Dockerfile");
        parse(&std::fs::read_to_string(path).unwrap())
    }

    // See: #11 (item 9)
    #[test]
    fn issue_11_real_builder_history_matches_every_line() {
        let d = real_dockerfile();
        // Lines 6..=25 of the final stage, one history entry each; the first
        // entry is the imported base image.
        let want: Vec<Option<usize>> = std::iter::once(None).chain((6..=25).map(Some)).collect();
        for file in [
            "classic.history.json",
            "buildah-layers.history.json",
            "buildah.history.json",
        ] {
            let h = real_history(file);
            let h: Vec<&str> = h.iter().map(String::as_str).collect();
            let got = match_history(&d, &h);
            let pairs: Vec<(Option<usize>, &str)> =
                got.iter().copied().zip(h.iter().copied()).collect();
            let want_pairs: Vec<(Option<usize>, &str)> =
                want.iter().copied().zip(h.iter().copied()).collect();
            assert_eq!(pairs, want_pairs, "{file}: each entry gets its own line");
        }
    }

    fn lines(dockerfile: &str, history: &[&str]) -> Vec<Option<usize>> {
        match_history(&parse(dockerfile), history)
    }

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn copy_records_match_by_destination() {
        let f = |d: &str| format!("COPY file:{H} in {d}");
        let cases: &[(&str, &str, Option<usize>)] = &[
            // (Dockerfile after `FROM x` and `WORKDIR /app`, record, line)
            (
                "COPY model.bin /app/model.bin",
                &f("/app/model.bin"),
                Some(3),
            ),
            ("COPY model.bin m.bin", &f("m.bin"), Some(3)),
            ("COPY model.bin m.bin", &f("/app/m.bin"), Some(3)),
            ("COPY model.bin /app/m.bin", &f("m.bin"), Some(3)),
            ("COPY model.bin ./", &f("/app/model.bin"), Some(3)),
            ("COPY dir/model.bin /opt/", &f("/opt/model.bin"), Some(3)),
            ("COPY model.bin /opt/", &f("/opt/other.bin"), None),
            ("COPY model.bin /app/other.bin", &f("/app/model.bin"), None),
            ("COPY a b /app/", &f("/app/"), None),
            (
                "COPY a b /app/",
                &format!("COPY multi:{H} in /app/"),
                Some(3),
            ),
            (
                "COPY *.txt /app/",
                &format!("COPY multi:{H} in /app/"),
                Some(3),
            ),
            ("COPY *.txt /app/", &f("/app/"), Some(3)),
            ("COPY a /app/", &format!("COPY multi:{H} in /app/"), None),
            (
                "COPY src /app/src",
                &format!("COPY dir:{H} in /app/src"),
                Some(3),
            ),
            ("ADD x.tar /", &format!("ADD file:{H} in /"), Some(3)),
            ("ADD x.tar /", &format!("COPY file:{H} in /"), None),
            (
                "COPY --chown=1:1 a /etc/a",
                &format!("COPY --chown=1:1 file:{H} in /etc/a"),
                Some(3),
            ),
            ("COPY --from=build /out /app/out", &f("/app/out"), Some(3)),
            ("COPY a $HOME/", &f("/home/u/"), Some(3)),
            ("COPY a ${HOME}/x/", &f("/root/x/"), Some(3)),
            ("COPY a ${HOME}/x/", &f("/root/y/"), None),
            ("COPY [\"a b\", \"/x y/\"]", &f("/x y/"), Some(3)),
            ("COPY a.txt /app/", "COPY a.txt /app/", Some(3)),
        ];
        for (line, record, want) in cases {
            let df = format!("FROM x\nWORKDIR /app\n{line}\n");
            let got = lines(&df, &["WORKDIR /app", record]);
            assert_eq!(got[1], *want, "{line:?} ← {record:?}");
        }
    }

    #[test]
    fn same_destination_lines_match_in_order() {
        let df = "FROM x\nWORKDIR /app\nCOPY a .\nCOPY b .\nRUN make\nCOPY c .\n";
        let r = format!("COPY file:{H} in .");
        assert_eq!(
            lines(df, &["WORKDIR /app", &r, &r, "RUN make", &r]),
            [Some(2), Some(3), Some(4), Some(5), Some(6)],
            "the n-th record gets the n-th line"
        );
        assert_eq!(
            lines(df, &["WORKDIR /app", "RUN make", &r]),
            [Some(2), Some(5), Some(6)],
            "after RUN make only line 6 fits"
        );
        assert_eq!(
            lines(df, &[&r]),
            [Some(6)],
            "a lone record takes the last line"
        );
    }

    #[test]
    fn workdir_is_tracked_per_stage_and_in_history() {
        // Classic writes WORKDIR resolved, buildah as written; COPY . resolves
        // against it. Line 3 and line 6 both say `COPY a .`, only the WORKDIR
        // tells them apart.
        let df = "FROM x\nWORKDIR /app\nCOPY a .\nFROM x AS two\nWORKDIR /srv\nCOPY a .\nWORKDIR sub\nCOPY b /srv/sub/b\n";
        let r = |d: &str| format!("COPY file:{H} in {d}");
        for wd in ["WORKDIR /srv/sub", "WORKDIR sub"] {
            assert_eq!(
                lines(df, &["WORKDIR /srv", &r("."), wd, &r("b")]),
                [Some(5), Some(6), Some(7), Some(8)],
                "{wd}"
            );
        }
        // Only the final stage wrote the image: line 3 is never a candidate.
        assert_eq!(lines(df, &["WORKDIR /app", &r(".")]), [None, Some(6)]);
    }

    #[test]
    fn final_stage_includes_the_stages_it_is_built_from() {
        let df = "FROM x AS deps\nRUN pip install torch\nFROM deps AS app\nWORKDIR /app\nCOPY a ./\nFROM scratch AS other\nRUN true\nFROM app\nCMD [\"sh\"]\n";
        let r = format!("COPY file:{H} in ./");
        assert_eq!(
            lines(
                df,
                &[
                    "ADD file:x in /",
                    "RUN pip install torch",
                    "WORKDIR /app",
                    &r,
                    "CMD [\"sh\"]"
                ]
            ),
            [None, Some(2), Some(4), Some(5), Some(9)]
        );
        assert_eq!(final_from_line(&parse(df)), Some(8));
        assert_eq!(final_from_line(&parse("RUN x\n")), None);
    }

    #[test]
    fn base_image_history_matches_nothing() {
        // The base image's own COPY to /app comes before the Dockerfile's.
        let df = "FROM base\nCOPY a /app/\nRUN make\n";
        let r = format!("COPY file:{H} in /app/");
        assert_eq!(
            lines(df, &[&r, "CMD [\"sh\"]", &r, "RUN make"]),
            [None, None, Some(2), Some(3)]
        );
    }

    #[test]
    fn arg_matches_by_name() {
        // Buildah leaves the default out of its record.
        let df = "ARG A=0\nFROM x\nARG V=1\nRUN make\n";
        assert_eq!(lines(df, &["ARG V", "RUN make"]), [Some(3), Some(4)]);
        assert_eq!(lines(df, &["ARG V=1", "RUN make"]), [Some(3), Some(4)]);
        assert_eq!(
            lines(df, &["ARG A", "RUN make"]),
            [None, Some(4)],
            "the global ARG records nothing"
        );
    }

    #[test]
    fn huge_inputs_stay_bounded() {
        let df: String = std::iter::once("FROM x\n".to_string())
            .chain((0..3000).map(|i| format!("RUN echo {i}\n")))
            .collect();
        let h: Vec<String> = (0..3000).map(|i| format!("RUN echo {i}")).collect();
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        let start = std::time::Instant::now();
        let got = match_history(&parse(&df), &h);
        assert!(start.elapsed().as_secs() < 5, "bounded work");
        assert_eq!(
            got.last(),
            Some(&Some(3001)),
            "the end of the history is matched"
        );
        assert_eq!(got[0], None, "entries beyond the table are left out");
    }
}
