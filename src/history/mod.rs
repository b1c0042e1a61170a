//! Stage 5, attribute: `config.history` ↔ layers, and `created_by` → the
//! instruction a person wrote.
//!
//! Builders record instructions differently: the classic Docker builder writes
//! `/bin/sh -c #(nop)  ENV A=b` and `|2 A=1 B=2 /bin/sh -c make`, BuildKit
//! `RUN /bin/sh -c make # buildkit`, kaniko the instruction as written.
//! [`instruction`] maps all of them to `ENV A=b`, `RUN make`.

pub mod dockerfile;
pub mod shell;

/// One `config.history` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct HistoryEntry {
    /// The builder's record of the instruction.
    #[serde(default)]
    pub created_by: String,
    /// True when the instruction created no layer.
    #[serde(default)]
    pub empty_layer: bool,
    /// Free text some builders add.
    #[serde(default)]
    pub comment: String,
}

/// What the history says about each layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// For every layer, the index of the history entry that created it.
    pub layer_history: Vec<Option<usize>>,
    /// For every history entry, the layer it created.
    pub history_layer: Vec<Option<usize>>,
    /// A warning when history and layers disagree.
    pub warning: Option<String>,
}

/// Maps history entries to layers: entries with `empty_layer` own no layer, the
/// rest own layers in order. When the counts disagree, the first entries and
/// layers are matched and the rest are left unattributed.
pub fn attribute(history: &[HistoryEntry], layers: usize) -> Attribution {
    let mut layer_history = vec![None; layers];
    let mut history_layer = vec![None; history.len()];
    let mut next = 0;
    for (h, entry) in history.iter().enumerate() {
        if entry.empty_layer {
            continue;
        }
        if next < layers {
            layer_history[next] = Some(h);
            history_layer[h] = Some(next);
        }
        next += 1;
    }
    let warning = (next != layers && !history.is_empty()).then(|| {
        format!(
            "the image history describes {next} layers but the image has {layers}; layers without history are labelled '(no history)'"
        )
    });
    let warning = warning.or_else(|| {
        (history.is_empty() && layers > 0)
            .then(|| "the image config has no history; layers are labelled '(no history)'".into())
    });
    Attribution {
        layer_history,
        history_layer,
        warning,
    }
}

const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn starts_with_instruction(s: &str) -> bool {
    let word = s.split_whitespace().next().unwrap_or("");
    INSTRUCTIONS.contains(&word)
}

/// If `s` starts with a shell invocation (`/bin/sh -c`, `/bin/bash -o pipefail -c`,
/// `cmd /S /C`), returns the command after it.
fn strip_shell(s: &str) -> Option<&str> {
    let mut rest = s.trim_start();
    let first = rest.split(' ').next()?;
    let base = first.rsplit('/').next().unwrap_or(first);
    if base.eq_ignore_ascii_case("cmd") || base.eq_ignore_ascii_case("cmd.exe") {
        let after = rest[first.len()..].trim_start();
        // cmd /S /C command
        let mut r = after;
        loop {
            let tok = r.split(' ').next().unwrap_or("");
            if tok.eq_ignore_ascii_case("/c") {
                return Some(r[tok.len()..].trim_start());
            }
            if tok.starts_with('/') && tok.len() == 2 {
                r = r[tok.len()..].trim_start();
                continue;
            }
            return None;
        }
    }
    if !matches!(base, "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh") {
        return None;
    }
    rest = &rest[first.len()..];
    // Options until a token that ends the option list with `c` (-c, -ec, -euxc).
    loop {
        let trimmed = rest.trim_start();
        let tok = trimmed.split(' ').next().unwrap_or("");
        if tok.is_empty() {
            return None;
        }
        let after = &trimmed[tok.len()..];
        if tok.starts_with('-')
            && tok.len() > 1
            && tok[1..].bytes().all(|b| b.is_ascii_alphabetic())
        {
            if tok.ends_with('c') {
                return Some(after.strip_prefix(' ').unwrap_or(after));
            }
            // `-o pipefail` takes an argument.
            if tok == "-o" || tok.ends_with('o') {
                let t2 = after.trim_start();
                let arg = t2.split(' ').next().unwrap_or("");
                rest = &t2[arg.len()..];
            } else {
                rest = after;
            }
            continue;
        }
        if tok.starts_with('+') {
            rest = after;
            continue;
        }
        return None;
    }
}

/// Removes the `|N A=1 B=2 ` build-argument prefix of a classic RUN record
/// (old buildah writes `A=1 B=2 ` without the count).
fn strip_build_args(s: &str) -> &str {
    let Some(rest) = s.strip_prefix('|') else {
        // Leading KEY=VALUE words followed by a shell.
        let mut r = s;
        let mut stripped = false;
        loop {
            let w = r.split(' ').next().unwrap_or("");
            let is_assign = w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            if !is_assign {
                break;
            }
            r = r[w.len()..].trim_start();
            stripped = true;
        }
        if stripped && strip_shell(r).is_some() {
            return r;
        }
        return s;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return s;
    }
    let count: usize = rest[..digits].parse().unwrap_or(0);
    let mut r = &rest[digits..];
    // Values may contain spaces, so prefer finding the shell that follows.
    let mut i = 0;
    while i < r.len() {
        if r.is_char_boundary(i)
            && (i == 0 || r.as_bytes()[i - 1] == b' ')
            && strip_shell(&r[i..]).is_some()
        {
            return &r[i..];
        }
        i += 1;
    }
    // No shell found (exec form): skip `count` KEY=VALUE words. The count is
    // untrusted (fuzzing found `|5555555555 ...`): stop when the words run out.
    for _ in 0..count {
        r = r.trim_start();
        if r.is_empty() {
            break;
        }
        let w = r.split(' ').next().unwrap_or("");
        r = &r[w.len()..];
    }
    r.trim_start()
}

/// Turns a `created_by` record into the Dockerfile instruction a person wrote.
///
/// ```
/// use mlsize::history::instruction;
/// assert_eq!(instruction("/bin/sh -c #(nop)  ENV A=b"), "ENV A=b");
/// assert_eq!(instruction("/bin/sh -c pip install x"), "RUN pip install x");
/// assert_eq!(instruction("RUN |2 A=1 B=2 /bin/sh -c make # buildkit"), "RUN make");
/// ```
pub fn instruction(created_by: &str) -> String {
    let mut s = created_by.trim();
    if let Some(x) = s.strip_suffix("# buildkit") {
        s = x.trim_end();
    }
    let mut was_run = false;
    if let Some(x) = s.strip_prefix("RUN ") {
        let x = x.trim_start();
        // BuildKit flags (`--mount=...`, `--network=...`) stay; the shell goes.
        let flags_len = x
            .split(' ')
            .take_while(|w| w.starts_with("--"))
            .map(|w| w.len() + 1)
            .sum::<usize>()
            .min(x.len());
        let (flags, x) = x.split_at(flags_len);
        let x2 = strip_build_args(x);
        if let Some(cmd) = strip_shell(x2) {
            return format!("RUN {flags}{}", cmd.trim());
        }
        if !flags.is_empty() {
            return s.to_string();
        }
        if x2.len() != x.len() {
            return format!("RUN {}", x2.trim());
        }
        was_run = true;
    }
    if was_run || starts_with_instruction(s) {
        return s.to_string();
    }
    let s2 = strip_build_args(s);
    if let Some(cmd) = strip_shell(s2) {
        let cmd = cmd.trim();
        if let Some(nop) = cmd.strip_prefix("#(nop)") {
            return unglue_copy_flags(strip_buildah_suffixes(nop.trim()));
        }
        return format!("RUN {cmd}");
    }
    if let Some(nop) = s.strip_prefix("#(nop)") {
        return nop.trim().to_string();
    }
    s2.to_string()
}

/// The classic builder writes a COPY/ADD flag and the source hash without a
/// space between them (`COPY --chown=1:1file:<hash> in /x`, Docker 20.10);
/// puts the space back.
fn unglue_copy_flags(s: &str) -> String {
    let Some(rest) = s.strip_prefix("COPY ").or_else(|| s.strip_prefix("ADD ")) else {
        return s.to_string();
    };
    let kw = &s[..s.len() - rest.len()];
    let mut out = String::from(kw);
    for (n, w) in rest.split(' ').enumerate() {
        if n > 0 {
            out.push(' ');
        }
        let glued = w.starts_with("--").then(|| {
            ["file:", "dir:", "multi:"]
                .iter()
                .filter_map(|p| w.find(p))
                .find(|&i| is_hash_source(&w[i..]))
        });
        match glued.flatten() {
            Some(i) if i > 0 => {
                out.push_str(&w[..i]);
                out.push(' ');
                out.push_str(&w[i..]);
            }
            _ => out.push_str(w),
        }
    }
    out
}

/// `file:<hex>`, `dir:<hex>` or `multi:<hex>`: how the classic builder and
/// buildah record the sources of a COPY or ADD.
pub(crate) fn is_hash_source(w: &str) -> bool {
    ["file:", "dir:", "multi:"].iter().any(|p| {
        w.strip_prefix(p)
            .is_some_and(|h| h.len() >= 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// Removes buildah's `|inheritLabels=false`-style metadata from the end of a
/// non-RUN record (in a RUN, `|` is a pipe and is left alone).
fn strip_buildah_suffixes(mut s: &str) -> &str {
    while let Some(i) = s.rfind('|') {
        let tail = &s[i + 1..];
        let ok = tail.split_once('=').is_some_and(|(k, v)| {
            !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
                && !v.contains(' ')
        });
        if !ok {
            break;
        }
        s = s[..i].trim_end();
    }
    s
}

/// A one-line form of an instruction for tables: whitespace runs become one space.
pub fn one_line(instr: &str) -> String {
    instr.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The instruction normalised for matching across images (whitespace folded,
/// content hashes in `COPY file:<hash>` dropped since they change every build).
pub fn match_key(instr: &str) -> String {
    one_line(instr)
        .split(' ')
        .map(|w| {
            if is_hash_source(w)
                && let Some((kind, _)) = w.split_once(':')
            {
                return format!("{kind}:");
            }
            w.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_from_real_builders() {
        let cases = [
            ("/bin/sh -c #(nop)  ENV A=b", "ENV A=b"),
            (
                "/bin/sh -c #(nop) COPY file:6e1cbd1b9c0a1f3bd7a4e7c7e0b4d8f5a2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7 in /app ",
                "COPY file:6e1cbd1b9c0a1f3bd7a4e7c7e0b4d8f5a2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7 in /app",
            ),
            ("/bin/sh -c #(nop)  CMD [\"bash\"]", "CMD [\"bash\"]"),
            ("/bin/sh -c pip install x", "RUN pip install x"),
            ("|2 A=1 B=2 /bin/sh -c make", "RUN make"),
            ("|1 MSG=hello world /bin/sh -c echo $MSG", "RUN echo $MSG"),
            (
                "RUN /bin/sh -c pip install x # buildkit",
                "RUN pip install x",
            ),
            (
                "RUN |2 A=1 B=2 /bin/sh -c pip install x # buildkit",
                "RUN pip install x",
            ),
            ("COPY . /app # buildkit", "COPY . /app"),
            (
                "COPY --from=builder /out /app # buildkit",
                "COPY --from=builder /out /app",
            ),
            (
                "ENV PATH=/usr/local/bin:/usr/bin",
                "ENV PATH=/usr/local/bin:/usr/bin",
            ),
            ("WORKDIR /app", "WORKDIR /app"),
            ("CMD [\"python\" \"app.py\"]", "CMD [\"python\" \"app.py\"]"),
            ("RUN pip install torch", "RUN pip install torch"),
            (
                "/bin/bash -o pipefail -c apt-get update",
                "RUN apt-get update",
            ),
            (
                "RUN /bin/bash -eux -o pipefail -c make # buildkit",
                "RUN make",
            ),
            ("cmd /S /C dir", "RUN dir"),
            ("", ""),
            ("  ", ""),
            (
                "# debian.sh --arch 'amd64' out/ 'bookworm' '@1700000000'",
                "# debian.sh --arch 'amd64' out/ 'bookworm' '@1700000000'",
            ),
            ("bazel build ...", "bazel build ..."),
        ];
        for (raw, want) in cases {
            assert_eq!(instruction(raw), want, "instruction({raw:?})");
        }
    }

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        }
        out
    }

    /// Real `created_by` strings from Docker classic, BuildKit, kaniko, buildah
    /// and others, collected in `testdata/created_by.tsv` with their sources.
    #[test]
    fn instructions_from_collected_real_strings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/created_by.tsv");
        let text = std::fs::read_to_string(path).unwrap();
        let mut n = 0;
        for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (builder, raw, want) = (cols[0], unescape(cols[1]), unescape(cols[2]));
            assert_eq!(instruction(&raw), want, "[{builder}] instruction({raw:?})");
            n += 1;
        }
        assert!(n >= 90, "the table has {n} rows");
    }

    /// Found by `cargo fuzz run created_by`: a huge `|N` count looped N times.
    #[test]
    fn fuzz_timeout_huge_build_arg_count() {
        let raw = include_bytes!("../../tests/fuzz/created_by-timeout-huge-arg-count");
        let start = std::time::Instant::now();
        let got = instruction(&String::from_utf8_lossy(raw));
        assert_eq!(got, "", "the words are all taken as build arguments");
        assert!(start.elapsed().as_secs() < 1, "returns at once");
        assert_eq!(instruction("|99999999999999 A=1"), "");
    }

    #[test]
    fn attributes_layers_skipping_empty_entries() {
        let h = |c: &str, e: bool| HistoryEntry {
            created_by: c.into(),
            empty_layer: e,
            comment: String::new(),
        };
        let hist = vec![h("ADD x /", false), h("CMD a", true), h("RUN b", false)];
        let a = attribute(&hist, 2);
        assert_eq!(a.layer_history, vec![Some(0), Some(2)]);
        assert_eq!(a.history_layer, vec![Some(0), None, Some(1)]);
        assert!(a.warning.is_none());
        let a = attribute(&hist, 3);
        assert_eq!(a.layer_history, vec![Some(0), Some(2), None]);
        assert!(a.warning.is_some(), "count mismatch warns");
    }

    #[test]
    fn match_keys_drop_content_hashes() {
        assert_eq!(
            match_key(
                "COPY file:6e1cbd1b9c0a1f3bd7a4e7c7e0b4d8f5a2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7 in  /app"
            ),
            "COPY file: in /app"
        );
    }
}
