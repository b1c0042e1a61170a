//! Diff output: table for terminals, markdown for pull-request comments.

use std::io::{self, Write};

use comfy_table::Cell;

use super::table::{fit_path, new_table, right, room_for, text_width};
use super::text::{cache_line, image_label, layer_no, more, short_instruction};
use super::{RenderOptions, style};
use crate::report::diff::{Diff, FileChange, PackageChange};

fn side_name(s: &crate::report::diff::Side) -> String {
    image_label(s.name.as_deref(), &s.source)
}

/// How much of each image came from the layer cache (no line for an image
/// read cold).
fn cache_lines(d: &Diff, o: &RenderOptions) -> Vec<String> {
    [("old", &d.old), ("new", &d.new)]
        .into_iter()
        .filter_map(|(which, s)| cache_line(s.cache.as_ref(), Some(which), o))
        .collect()
}

fn instr_text(i: &crate::report::diff::InstructionDelta) -> String {
    match (&i.old_instruction, &i.new_instruction) {
        (Some(o), Some(n)) if i.status == "changed" => {
            format!(
                "{} -> {}",
                short_instruction(o, 45),
                short_instruction(n, 45)
            )
        }
        (_, Some(n)) => short_instruction(n, 80),
        (Some(o), None) => short_instruction(o, 80),
        _ => String::new(),
    }
}

fn pct(delta: i128, base: u64) -> String {
    if base == 0 {
        return String::new();
    }
    format!(" ({:+.1}%)", delta as f64 * 100.0 / base as f64)
}

/// The headline: what changed, by how much, and where most of it came from.
fn verdict(d: &Diff, o: &RenderOptions) -> String {
    let s = &d.summary;
    let old_visible = d
        .totals
        .iter()
        .find(|t| t.name == "visible_bytes")
        .map_or(0, |t| t.old);
    let mut v = if s.visible_delta_bytes == 0 && s.compressed_delta_bytes == 0 {
        "no size change".to_string()
    } else {
        format!(
            "{}{} visible, {} compressed{}",
            o.delta(s.visible_delta_bytes),
            pct(s.visible_delta_bytes, old_visible),
            o.delta(s.compressed_delta_bytes),
            if s.compressed_estimated {
                " (estimated)"
            } else {
                ""
            }
        )
    };
    if let Some(i) = s.biggest_change.and_then(|k| d.instructions.get(k)) {
        let text = i
            .new_instruction
            .as_deref()
            .or(i.old_instruction.as_deref())
            .unwrap_or("");
        // The same shortening as the Instructions table, so the headline
        // never cuts what the table shows.
        v.push_str(&format!(
            "; biggest change: {} in `{}` ({})",
            o.delta(i.delta),
            short_instruction(text, 80),
            i.status
        ));
    }
    if let Some(c) = s.largest_category_change.and_then(|k| d.categories.get(k)) {
        v.push_str(&format!(
            "; largest category change: {} {}",
            c.name,
            o.delta(c.delta)
        ));
    }
    v
}

/// What changed inside a package of the same version, for people:
/// `412 files removed (-46.4 MiB, mostly python-bytecode)`.
fn package_detail(p: &PackageChange, o: &RenderOptions) -> String {
    let Some(f) = &p.files else {
        return if p.change == "changed" {
            "same version, other installed size".into()
        } else {
            String::new()
        };
    };
    let mut parts = Vec::new();
    if f.removed > 0 {
        parts.push(format!(
            "{} files removed ({})",
            f.removed,
            o.delta(-i128::from(f.removed_bytes))
        ));
    }
    if f.added > 0 {
        parts.push(format!(
            "{} files added ({})",
            f.added,
            o.delta(i128::from(f.added_bytes))
        ));
    }
    if f.resized > 0 {
        parts.push(format!("{} files resized", f.resized));
    }
    let mut s = parts.join(", ");
    if let Some((cat, d)) = f.categories.iter().max_by_key(|(_, d)| d.unsigned_abs()) {
        s.push_str(&format!("; mostly {cat} {}", o.delta(*d)));
    }
    s
}

/// All file changes, largest first.
fn file_rows(f: &crate::report::diff::FileChanges) -> Vec<(&'static str, &FileChange)> {
    let mut rows: Vec<(&'static str, &FileChange)> = Vec::new();
    for (k, v) in [
        ("added", &f.added),
        ("removed", &f.removed),
        ("grown", &f.grown),
        ("shrunk", &f.shrunk),
        ("moved", &f.moved),
    ] {
        rows.extend(v.iter().map(|c| (k, c)));
    }
    rows.sort_by(|a, b| {
        b.1.delta
            .unsigned_abs()
            .cmp(&a.1.delta.unsigned_abs())
            .then_with(|| a.1.path.cmp(&b.1.path))
    });
    rows
}

/// Python and Debian package changes, largest change first across both.
fn package_rows(d: &Diff) -> Vec<(&'static str, &PackageChange)> {
    let p = &d.packages;
    let mut rows: Vec<(&'static str, &PackageChange)> = p
        .python
        .iter()
        .map(|x| ("python", x))
        .chain(p.debian.iter().map(|x| ("debian", x)))
        .collect();
    rows.sort_by(|a, b| {
        b.1.delta
            .unsigned_abs()
            .cmp(&a.1.delta.unsigned_abs())
            .then_with(|| a.0.cmp(b.0))
            .then_with(|| a.1.name.cmp(&b.1.name))
    });
    rows
}

fn layer_cell(i: Option<usize>) -> String {
    i.map(|l| layer_no(l).to_string())
        .unwrap_or_else(|| "-".into())
}

/// Writes the diff as tables.
pub fn render_table(d: &Diff, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{} -> {}", side_name(&d.old), side_name(&d.new))?;
    for line in cache_lines(d, o) {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "{}", verdict(d, o))?;
    writeln!(
        out,
        "{} shared layer{} ({} compressed, reused by a registry pull)",
        d.shared.layers,
        if d.shared.layers == 1 { "" } else { "s" },
        o.bytes(d.shared.compressed_bytes)
    )?;
    if let Some(t) = &d.threshold {
        writeln!(
            out,
            "{}: {} growth {} against a limit of {} ({})",
            if t.exceeded { "FAIL" } else { "PASS" },
            t.measure,
            o.delta(t.growth_bytes),
            o.bytes(t.limit_bytes),
            t.limit
        )?;
    }
    let mut t = new_table(&["", "old", "new", "change"], o.width);
    for x in &d.totals {
        let fmt = |v: u64| {
            if x.name == "files" {
                v.to_string()
            } else {
                o.bytes(v)
            }
        };
        let dl = if x.name == "files" {
            format!("{:+}", x.delta)
        } else {
            o.delta(x.delta)
        };
        t.add_row(vec![
            Cell::new(x.name.trim_end_matches("_bytes")),
            Cell::new(fmt(x.old)),
            Cell::new(fmt(x.new)),
            style::cell(dl, style::change(x.delta), o),
        ]);
    }
    right(&mut t, &[1, 2, 3]);
    writeln!(out, "{t}")?;

    writeln!(out, "\nInstructions")?;
    let mut t = new_table(
        &[
            "old",
            "new",
            "status",
            "instruction",
            "old size",
            "new size",
            "change",
        ],
        o.width,
    );
    for i in &d.instructions {
        t.add_row(vec![
            Cell::new(layer_cell(i.old_layer_index)),
            Cell::new(layer_cell(i.new_layer_index)),
            Cell::new(&i.status),
            Cell::new(instr_text(i)),
            Cell::new(o.bytes(i.old_bytes)),
            Cell::new(o.bytes(i.new_bytes)),
            if i.status == "shared" {
                Cell::new("")
            } else {
                style::cell(o.delta(i.delta), style::change(i.delta), o)
            },
        ]);
    }
    right(&mut t, &[0, 1, 4, 5, 6]);
    writeln!(out, "{t}")?;

    let cats: Vec<_> = d.categories.iter().filter(|c| c.delta != 0).collect();
    if !cats.is_empty() {
        writeln!(out, "\nCategories (visible bytes)")?;
        let mut t = new_table(&["category", "old", "new", "change"], o.width);
        for c in cats {
            t.add_row(vec![
                style::category(&c.name, o),
                Cell::new(o.bytes(c.old)),
                Cell::new(o.bytes(c.new)),
                style::cell(o.delta(c.delta), style::change(c.delta), o),
            ]);
        }
        right(&mut t, &[1, 2, 3]);
        writeln!(out, "{t}")?;
    }

    let pk = package_rows(d);
    if !pk.is_empty() {
        writeln!(out, "\nPackages")?;
        let details: Vec<String> = pk
            .iter()
            .take(o.top)
            .map(|(_, p)| package_detail(p, o))
            .collect();
        let detailed = details.iter().any(|d| !d.is_empty());
        let mut header = vec!["kind", "package", "change", "old", "new", "bytes"];
        if detailed {
            header.push("what changed");
        }
        let mut t = new_table(&header, o.width);
        for ((kind, p), detail) in pk.iter().zip(details) {
            let mut row = vec![
                Cell::new(kind),
                Cell::new(&p.name),
                Cell::new(&p.change),
                Cell::new(p.old_version.clone().unwrap_or_default()),
                Cell::new(p.new_version.clone().unwrap_or_default()),
                style::cell(o.delta(p.delta), style::change(p.delta), o),
            ];
            if detailed {
                row.push(Cell::new(detail));
            }
            t.add_row(row);
        }
        right(&mut t, &[5]);
        writeln!(out, "{t}")?;
        if pk.len() > o.top {
            writeln!(out, "{}", more(pk.len() - o.top, pk.len()))?;
        }
    }

    let f = &d.files;
    let rows = file_rows(f);
    if !rows.is_empty() {
        let counts: Vec<String> = f
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        writeln!(out, "\nFiles ({})", counts.join(", "))?;
        let header = ["change", "bytes", "layer", "path"];
        let mut t = new_table(&header, o.width);
        let shown: Vec<_> = rows.iter().take(o.top).collect();
        let cells: Vec<Vec<String>> = shown
            .iter()
            .map(|(k, c)| {
                let bytes = if *k == "moved" {
                    o.bytes(c.new_bytes)
                } else {
                    o.delta(c.delta)
                };
                vec![k.to_string(), bytes, layer_no(c.layer_index).to_string()]
            })
            .collect();
        // Paths are shortened in the middle rather than wrapped (see fit_path).
        let room = room_for(o.width, &header, &cells, 3);
        for (mut row, (_, c)) in cells.into_iter().zip(&shown) {
            let path = match &c.old_path {
                Some(op) if text_width(op) + 4 + text_width(&c.path) <= room => {
                    format!("{op} -> {}", c.path)
                }
                Some(op) => format!(
                    "{} ->\n{}",
                    fit_path(op, room.saturating_sub(3)),
                    fit_path(&c.path, room)
                ),
                None => fit_path(&c.path, room),
            };
            row.push(path);
            t.add_row(row);
        }
        right(&mut t, &[1, 2]);
        writeln!(out, "{t}")?;
        let total: usize = f.counts.values().sum();
        if total > o.top.min(rows.len()) {
            writeln!(out, "{}", more(total - o.top.min(rows.len()), total))?;
        }
    }
    Ok(())
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}

/// Writes the diff as GitHub-flavoured markdown for a PR comment.
pub fn render_markdown(d: &Diff, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let mark = match &d.threshold {
        Some(t) if t.exceeded => ":x: ",
        Some(_) => ":white_check_mark: ",
        None => "",
    };
    writeln!(
        out,
        "### {mark}mlsize: `{}` → `{}`\n",
        md_escape(&side_name(&d.old)),
        md_escape(&side_name(&d.new))
    )?;
    for line in cache_lines(d, o) {
        writeln!(out, "{}\n", md_escape(&line))?;
    }
    writeln!(out, "**{}**\n", md_escape(&verdict(d, o)))?;
    if let Some(t) = &d.threshold {
        writeln!(
            out,
            "{} growth {} against a limit of {} ({}).\n",
            t.measure,
            o.delta(t.growth_bytes),
            o.bytes(t.limit_bytes),
            md_escape(&t.limit)
        )?;
    }
    writeln!(out, "| | old | new | change |\n|---|---:|---:|---:|")?;
    for x in d
        .totals
        .iter()
        .filter(|x| ["download_bytes", "visible_bytes", "wasted_bytes"].contains(&x.name.as_str()))
    {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            x.name.trim_end_matches("_bytes"),
            o.bytes(x.old),
            o.bytes(x.new),
            o.delta(x.delta)
        )?;
    }
    let mut movers: Vec<_> = d
        .instructions
        .iter()
        .filter(|i| i.status != "shared" && i.delta != 0)
        .collect();
    movers.sort_by_key(|i| std::cmp::Reverse(i.delta.unsigned_abs()));
    if !movers.is_empty() {
        writeln!(out, "\n| instruction | status | change |\n|---|---|---:|")?;
        for i in movers.iter().take(5) {
            writeln!(
                out,
                "| `{}` | {} | {} |",
                md_escape(&instr_text(i)),
                i.status,
                o.delta(i.delta)
            )?;
        }
    }
    writeln!(
        out,
        "\n{} shared layer{} ({} compressed) reused by a registry pull.",
        d.shared.layers,
        if d.shared.layers == 1 { "" } else { "s" },
        o.bytes(d.shared.compressed_bytes)
    )?;
    writeln!(
        out,
        "\n<details><summary>Details: categories, packages, files</summary>\n"
    )?;
    let cats: Vec<_> = d.categories.iter().filter(|c| c.delta != 0).collect();
    if !cats.is_empty() {
        writeln!(
            out,
            "| category | old | new | change |\n|---|---:|---:|---:|"
        )?;
        for c in cats {
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                c.name,
                o.bytes(c.old),
                o.bytes(c.new),
                o.delta(c.delta)
            )?;
        }
        writeln!(out)?;
    }
    let pk = package_rows(d);
    if !pk.is_empty() {
        writeln!(
            out,
            "| package | change | old | new | bytes | what changed |\n|---|---|---|---|---:|---|"
        )?;
        for (kind, p) in pk.iter().take(o.top) {
            writeln!(
                out,
                "| {} ({kind}) | {} | {} | {} | {} | {} |",
                md_escape(&p.name),
                p.change,
                md_escape(p.old_version.as_deref().unwrap_or("")),
                md_escape(p.new_version.as_deref().unwrap_or("")),
                o.delta(p.delta),
                md_escape(&package_detail(p, o))
            )?;
        }
        if pk.len() > o.top {
            writeln!(out, "\n{}", more(pk.len() - o.top, pk.len()))?;
        }
        writeln!(out)?;
    }
    let f = &d.files;
    let rows = file_rows(f);
    if !rows.is_empty() {
        writeln!(out, "| file | change | bytes |\n|---|---|---:|")?;
        for (k, c) in rows.iter().take(o.top) {
            let path = match &c.old_path {
                Some(op) => format!("{op} → {}", c.path),
                None => c.path.clone(),
            };
            writeln!(
                out,
                "| `{}` | {k} | {} |",
                md_escape(&path),
                o.delta(c.delta)
            )?;
        }
        let total: usize = f.counts.values().sum();
        if total > o.top.min(rows.len()) {
            writeln!(out, "\n{}", more(total - o.top.min(rows.len()), total))?;
        }
        writeln!(out)?;
    }
    writeln!(out, "</details>")
}
