//! `mlsize fix` output: a summary in `#` lines (which `git apply` and
//! `patch` skip), then a unified diff whose hunk headers name the findings
//! each hunk fixes and what it saves.

use std::io::{self, Write};

use super::RenderOptions;
use crate::fix::FixReport;
use crate::fix::doc::{self, Hunk};

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// The unified diff of a plan (empty when nothing changes).
pub fn patch(r: &FixReport, ro: &RenderOptions) -> String {
    // Lines with their endings, as git compares them: a CRLF file keeps its
    // \r, and a last line without a newline differs from one with it.
    let lines = |t: &str| -> Vec<String> { t.split_inclusive('\n').map(str::to_string).collect() };
    let old = lines(&r.original);
    let new = lines(&r.new_text);
    let hunks = doc::diff(&old, &new, CONTEXT);
    if hunks.is_empty() {
        return String::new();
    }
    let p = &r.patch_path;
    let mut s = format!("diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n");
    for h in &hunks {
        s.push_str(&format!(
            "@@ -{} +{} @@{}\n",
            range(h.old_start, h.old_len),
            range(h.new_start, h.new_len),
            annotation(r, h, ro)
        ));
        for l in &h.lines {
            s.push_str(l);
            if !l.ends_with('\n') {
                s.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    s
}

/// `start,len` as a unified diff writes it (`start` alone for one line).
fn range(start: usize, len: usize) -> String {
    if len == 1 {
        start.to_string()
    } else {
        format!("{start},{len}")
    }
}

/// ` finding -SIZE (-SIZE compressed); ...` for the edits a hunk carries.
fn annotation(r: &FixReport, h: &Hunk, ro: &RenderOptions) -> String {
    let (lo, hi) = h.changed;
    let parts: Vec<String> = r
        .edits
        .iter()
        .filter(|e| {
            e.changes.iter().any(|c| {
                let from = c.line_start.saturating_sub(1);
                let to = c.line_end.max(c.line_start);
                from <= hi && lo <= to
            })
        })
        .map(|e| {
            format!(
                "{} -{} (-{} compressed)",
                e.finding,
                ro.bytes(e.savings_bytes),
                ro.bytes(e.compressed_bytes)
            )
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" {}", parts.join("; "))
    }
}

/// The text format: summary, then the patch.
pub fn render_text(r: &FixReport, ro: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let e = &r.estimated;
    let name = r.image.name.as_deref().unwrap_or(&r.image.source);
    if r.edits.is_empty() {
        writeln!(
            out,
            "# mlsize fix: nothing to edit in {} for {name}",
            r.dockerfile
        )?;
    } else {
        writeln!(
            out,
            "# mlsize fix: {} edit{} to {} for {name}",
            r.edits.len(),
            if r.edits.len() == 1 { "" } else { "s" },
            r.dockerfile
        )?;
        writeln!(
            out,
            "# predicted after the patch: {} -> {} uncompressed (-{}%), {} -> {} compressed",
            ro.bytes(e.content_bytes_before),
            ro.bytes(e.content_bytes),
            e.savings_percent,
            ro.bytes(e.compressed_bytes_before),
            ro.bytes(e.compressed_bytes),
        )?;
        for ed in &r.edits {
            let lines: Vec<String> = ed
                .changes
                .iter()
                .map(|c| {
                    if c.line_end < c.line_start {
                        "end".to_string()
                    } else if c.line_end == c.line_start {
                        c.line_start.to_string()
                    } else {
                        format!("{}-{}", c.line_start, c.line_end)
                    }
                })
                .collect();
            let place = match lines.len() {
                0 => "with the stage split".to_string(),
                1 if !lines[0].contains('-') => format!("line {}", lines[0]),
                _ => format!("lines {}", lines.join(", ")),
            };
            writeln!(
                out,
                "#   {place}: {} -{} (-{} compressed): {}",
                ed.finding,
                ro.bytes(ed.savings_bytes),
                ro.bytes(ed.compressed_bytes),
                ed.action
            )?;
            if let Some(n) = &ed.note {
                writeln!(out, "#     note: {n}")?;
            }
        }
    }
    if !r.unfixed.is_empty() {
        writeln!(out, "# not edited:")?;
        for u in &r.unfixed {
            writeln!(
                out,
                "#   {} ({}): {}",
                u.finding,
                ro.bytes(u.savings_bytes),
                u.reason
            )?;
        }
    }
    if !r.patch.is_empty() {
        let dir = match std::path::Path::new(&r.dockerfile).parent() {
            Some(d) if r.patch_path != r.dockerfile.trim_start_matches("./") => {
                d.display().to_string()
            }
            _ => "this directory".into(),
        };
        writeln!(
            out,
            "# apply in {dir}: git apply FILE, or patch -p1 < FILE (the lines above are skipped)"
        )?;
        out.write_all(r.patch.as_bytes())?;
    }
    Ok(())
}
