//! Words shared by every renderer: layer numbers, image names, instructions
//! shortened for a table cell, and the sentence of a recommendation.
//!
//! Layers are numbered from 1 wherever a person reads a number (`layer 3`,
//! the `#` column); JSON carries `layer_index`, the 0-based position in
//! `layers[]`, and never a layer number inside a string.

use crate::history::one_line;
use crate::report::advice::Recommendation;
use crate::source::cache::CacheUse;

/// The number a person reads for a 0-based layer index.
pub fn layer_no(index: usize) -> usize {
    index + 1
}

/// How an image is named in headers: a registry or engine reference as read
/// (`docker://docker.io/library/python:3.11`, `docker-daemon:app:dev`, which
/// says where a bare name was found); for a file, its `repo:tag` when the
/// input names it so, else the input with the tag an OCI index gives it (its
/// `org.opencontainers.image.ref.name`).
pub fn image_label(name: Option<&str>, source: &str) -> String {
    if ["docker://", "docker-daemon:", "podman:"]
        .iter()
        .any(|t| source.starts_with(t))
    {
        return source.to_string();
    }
    match name {
        Some(n) if n.contains('/') || n.contains(':') => n.to_string(),
        Some(n) => format!("{source} (tag {n})"),
        None => source.to_string(),
    }
}

/// `file:`/`dir:`/`multi:` content hashes of the classic builder, cut to 12
/// hex characters: they only tell builds apart.
fn short_hashes(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            for p in ["file:", "dir:", "multi:"] {
                if let Some(h) = w.strip_prefix(p)
                    && h.len() > 12
                    && h.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return format!("{p}{}", &h[..12]);
                }
            }
            w.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn take_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn last_chars(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    if count <= n {
        return s;
    }
    match s.char_indices().nth(count - n) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

/// Cuts the middle out of `s` so it fits `max` characters, keeping `keep_tail`
/// characters of its end whole when it can.
fn cut_middle(s: &str, max: usize, keep_tail: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let max = max.max(3);
    let tail = keep_tail.min(max - 2);
    let head = max - 1 - tail;
    format!("{}…{}", take_chars(s, head), last_chars(s, tail))
}

/// An instruction shortened to `max` characters for a table cell: whitespace
/// folded, builder content hashes cut to 12 characters, and, when it is still
/// too long, the middle cut out. The destination of a `COPY`/`ADD` is kept
/// whole (it says where the bytes went); a `RUN` keeps its start and its end.
///
/// ```
/// use mlsize::render::text::short_instruction;
/// let copy = "COPY file:ec66641a81e42c7a418237a1fb2de3574b5a0f3ce20db92a4de7abbc7cd11a2b in /tmp/requirements.txt";
/// assert_eq!(short_instruction(copy, 60), "COPY file:ec66641a81e4 in /tmp/requirements.txt");
/// ```
pub fn short_instruction(instr: &str, max: usize) -> String {
    let s = short_hashes(&one_line(instr));
    if s.chars().count() <= max {
        return s;
    }
    let kw = s.split(' ').next().unwrap_or("");
    if matches!(kw, "COPY" | "ADD") {
        // Classic builder: `COPY file:<hash> in /dest`; BuildKit and kaniko:
        // `COPY src... /dest`.
        let dest_start = s
            .rfind(" in ")
            .map(|i| i + 1)
            .or_else(|| s.rfind(' ').map(|i| i + 1));
        if let Some(i) = dest_start {
            let dest_len = s[i..].chars().count() + 1;
            if dest_len + 8 <= max {
                return cut_middle(&s, max, dest_len);
            }
        }
    }
    cut_middle(&s, max, max / 3)
}

/// The first line of a recommendation for people: its title with the counts,
/// packages and the later layer that the data holds.
pub fn recommendation_title(r: &Recommendation, max_instruction: usize) -> String {
    let mut t = match r.count {
        Some(n) if r.id == "cuda-duplicates" => format!("{n} {}", r.title),
        _ => r.title.clone(),
    };
    if !r.packages.is_empty() {
        let shown: Vec<&str> = r.packages.iter().take(6).map(String::as_str).collect();
        t.push_str(&format!(" ({}", shown.join(", ")));
        if r.packages.len() > shown.len() {
            t.push_str(&format!(" and {} more", r.packages.len() - shown.len()));
        }
        t.push(')');
    }
    if let (Some(l), Some(i)) = (r.cause_layer_index, &r.cause_instruction) {
        t.push_str(&format!(
            ": layer {} `{}`",
            layer_no(l),
            short_instruction(i, max_instruction)
        ));
    }
    t
}

/// Where a recommendation applies, for people: `in layer 4 \`RUN pip install
/// torch\``, or the base image's layer.
pub fn recommendation_place(r: &Recommendation, max_instruction: usize) -> Option<String> {
    let l = r.layer_index?;
    let instr = r.instruction.as_deref().unwrap_or("").trim();
    Some(if r.base_image {
        if instr.is_empty() {
            format!(
                "layer {} of the base image (no instruction recorded)",
                layer_no(l)
            )
        } else {
            format!(
                "layer {} of the base image `{}`",
                layer_no(l),
                short_instruction(instr, max_instruction)
            )
        }
    } else if instr.is_empty() {
        format!("layer {} (no instruction recorded)", layer_no(l))
    } else {
        format!(
            "layer {} `{}`",
            layer_no(l),
            short_instruction(instr, max_instruction)
        )
    })
}

/// `part` as a percentage of `whole`, for people (`43%`, `0.4%`).
pub fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p >= 10.0 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A figure before and after the fixes: `213.6 MiB -> 96.7 MiB (-55%)`.
pub fn before_after(o: &super::RenderOptions, before: u64, after: u64, arrow: &str) -> String {
    format!(
        "{} {arrow} {} (-{})",
        o.bytes(before),
        o.bytes(after),
        share(before - after.min(before), before)
    )
}

/// The line that says how much of an image came from the layer cache:
/// `cache: 5 of 6 layers (1.2 GiB) from the layer cache (5 not re-read), 1
/// read (12.0 MiB); --no-cache reads them again`. `which` names the image
/// when a report has several (`cache: old: ...`). `None` when no layer came
/// from the cache (a cold run, `--no-cache`), so a cold report has no such
/// line. The one wording of `image.cache` for every command and format.
pub fn cache_line(
    c: Option<&CacheUse>,
    which: Option<&str>,
    o: &super::RenderOptions,
) -> Option<String> {
    let c = c.filter(|c| c.layers_from_cache > 0)?;
    let mut how = Vec::new();
    if !c.not_reread.is_empty() {
        how.push(format!("{} not re-read", c.not_reread.len()));
    }
    if !c.rehashed.is_empty() {
        how.push(format!("{} re-hashed to verify", c.rehashed.len()));
    }
    let read = if c.layers_read > 0 {
        format!(", {} read ({})", c.layers_read, o.bytes(c.bytes_read))
    } else {
        String::new()
    };
    Some(format!(
        "cache: {}{} of {} layers ({}) from the layer cache ({}){read}; --no-cache reads them again",
        which.map(|w| format!("{w}: ")).unwrap_or_default(),
        c.layers_from_cache,
        c.layers_from_cache + c.layers_read,
        o.bytes(c.bytes_from_cache),
        how.join(", ")
    ))
}

/// How a cut list ends: `(4 more: --top 14 shows them all, or --format json)`.
pub fn more(hidden: usize, total: usize) -> String {
    format!("({hidden} more: --top {total} shows them all, or --format json)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_instructions() {
        let h = "ec66641a81e42c7a418237a1fb2de3574b5a0f3ce20db92a4de7abbc7cd11a2b";
        let cases: Vec<(String, usize, &str)> = vec![
            (
                format!("COPY file:{h} in /tmp/requirements.txt"),
                60,
                "COPY file:ec66641a81e4 in /tmp/requirements.txt",
            ),
            // See: issue 11 item 11: the destination survives the cut.
            (
                format!("COPY multi:{h} in /opt/app/models/checkpoints/"),
                40,
                "COPY mu… in /opt/app/models/checkpoints/",
            ),
            (
                "COPY requirements.txt constraints.txt setup.cfg /tmp/build/".into(),
                40,
                "COPY requirements.txt const… /tmp/build/",
            ),
            (
                "RUN apt-get update && apt-get install -y python3-pip && rm -rf /var/lib/apt/lists/*".into(),
                40,
                "RUN apt-get update && apt-…b/apt/lists/*",
            ),
            ("RUN make".into(), 40, "RUN make"),
            ("ADD file:0a1b2c in /".into(), 40, "ADD file:0a1b2c in /"),
        ];
        for (instr, max, want) in cases {
            let got = short_instruction(&instr, max);
            assert_eq!(got, want, "{instr}");
            assert!(got.chars().count() <= max, "{got} fits {max}");
        }
    }

    #[test]
    fn names_images() {
        assert_eq!(image_label(Some("app:1"), "a.tar"), "app:1");
        assert_eq!(image_label(Some("latest"), "a.tar"), "a.tar (tag latest)");
        assert_eq!(image_label(None, "a.tar"), "a.tar");
        assert_eq!(
            image_label(Some("app:dev"), "docker-daemon:app:dev"),
            "docker-daemon:app:dev"
        );
    }

    #[test]
    fn says_what_came_from_the_cache() {
        let o = crate::render::RenderOptions {
            si: false,
            exact: true,
            top: 10,
            width: 100,
            color: false,
        };
        let used = |from: usize, read: usize, rehashed: usize| CacheUse {
            layers_from_cache: from,
            bytes_from_cache: 1000 * from as u64,
            layers_read: read,
            bytes_read: 10 * read as u64,
            not_reread: (0..from - rehashed).collect(),
            rehashed: (from - rehashed..from).collect(),
        };
        let cases: &[(Option<CacheUse>, Option<&str>, Option<&str>)] = &[
            (None, None, None),
            (Some(CacheUse::default()), None, None),
            (Some(used(0, 3, 0)), Some("old"), None),
            (
                Some(used(3, 0, 0)),
                None,
                Some(
                    "cache: 3 of 3 layers (3000) from the layer cache (3 not re-read); --no-cache reads them again",
                ),
            ),
            (
                Some(used(2, 1, 1)),
                Some("new"),
                Some(
                    "cache: new: 2 of 3 layers (2000) from the layer cache (1 not re-read, 1 re-hashed to verify), 1 read (10); --no-cache reads them again",
                ),
            ),
        ];
        for (c, which, want) in cases {
            assert_eq!(
                cache_line(c.as_ref(), *which, &o).as_deref(),
                *want,
                "{c:?} {which:?}"
            );
        }
    }

    #[test]
    fn shares() {
        assert_eq!(share(43, 100), "43%");
        assert_eq!(share(4, 1000), "0.4%");
        assert_eq!(share(0, 10), "0%");
        assert_eq!(share(1, 0), "0%");
    }
}
