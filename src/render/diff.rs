//! Diff output: table for terminals, markdown for pull-request comments.

use std::io::{self, Write};

use comfy_table::Cell;

use super::RenderOptions;
use super::table::{fit_path, new_table, right, room_for, text_width, truncate};
use crate::report::diff::{Diff, FileChange};

fn side_name(s: &crate::report::diff::Side) -> String {
    match &s.name {
        Some(n) if n.contains('/') || n.contains(':') => n.clone(),
        _ => s.source.clone(),
    }
}

fn instr_text(i: &crate::report::diff::InstructionDelta) -> String {
    match (&i.old_instruction, &i.new_instruction) {
        (Some(o), Some(n)) if i.status == "changed" => {
            format!("{} -> {}", truncate(o, 45), truncate(n, 45))
        }
        (_, Some(n)) => truncate(n, 80),
        (Some(o), None) => truncate(o, 80),
        _ => String::new(),
    }
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

/// Python then Debian package changes.
fn package_rows(d: &Diff) -> Vec<(&'static str, &crate::report::diff::PackageChange)> {
    let p = &d.packages;
    p.python
        .iter()
        .map(|x| ("python", x))
        .chain(p.debian.iter().map(|x| ("debian", x)))
        .collect()
}

fn layer_no(i: Option<usize>) -> String {
    i.map(|l| (l + 1).to_string()).unwrap_or_else(|| "-".into())
}

/// Writes the diff as tables.
pub fn render_table(d: &Diff, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{} -> {}", side_name(&d.old), side_name(&d.new))?;
    writeln!(out, "{}", d.verdict)?;
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
            o.delta(i128::from(t.growth_bytes)),
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
            o.delta(i128::from(x.delta))
        };
        t.add_row(vec![
            Cell::new(x.name.trim_end_matches("_bytes")),
            Cell::new(fmt(x.old)),
            Cell::new(fmt(x.new)),
            Cell::new(dl),
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
            Cell::new(layer_no(i.old_layer_index)),
            Cell::new(layer_no(i.new_layer_index)),
            Cell::new(&i.status),
            Cell::new(instr_text(i)),
            Cell::new(o.bytes(i.old_bytes)),
            Cell::new(o.bytes(i.new_bytes)),
            Cell::new(if i.status == "shared" {
                String::new()
            } else {
                o.delta(i128::from(i.delta))
            }),
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
                Cell::new(&c.name),
                Cell::new(o.bytes(c.old)),
                Cell::new(o.bytes(c.new)),
                Cell::new(o.delta(i128::from(c.delta))),
            ]);
        }
        right(&mut t, &[1, 2, 3]);
        writeln!(out, "{t}")?;
    }

    let pk = package_rows(d);
    if !pk.is_empty() {
        writeln!(out, "\nPackages")?;
        let mut t = new_table(
            &["kind", "package", "change", "old", "new", "bytes"],
            o.width,
        );
        for (kind, p) in pk.iter().take(o.top.max(1) * 2) {
            t.add_row(vec![
                Cell::new(kind),
                Cell::new(&p.name),
                Cell::new(&p.change),
                Cell::new(p.old_version.clone().unwrap_or_default()),
                Cell::new(p.new_version.clone().unwrap_or_default()),
                Cell::new(o.delta(i128::from(p.delta))),
            ]);
        }
        right(&mut t, &[5]);
        writeln!(out, "{t}")?;
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
                    o.delta(i128::from(c.delta))
                };
                vec![k.to_string(), bytes, (c.layer_index + 1).to_string()]
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
    writeln!(out, "**{}**\n", md_escape(&d.verdict))?;
    if let Some(t) = &d.threshold {
        writeln!(
            out,
            "{} growth {} against a limit of {} ({}).\n",
            t.measure,
            o.delta(i128::from(t.growth_bytes)),
            o.bytes(t.limit_bytes),
            md_escape(&t.limit)
        )?;
    }
    writeln!(out, "| | old | new | change |\n|---|---:|---:|---:|")?;
    for x in d.totals.iter().filter(|x| {
        ["compressed_bytes", "visible_bytes", "wasted_bytes"].contains(&x.name.as_str())
    }) {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            x.name.trim_end_matches("_bytes"),
            o.bytes(x.old),
            o.bytes(x.new),
            o.delta(i128::from(x.delta))
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
                o.delta(i128::from(i.delta))
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
                o.delta(i128::from(c.delta))
            )?;
        }
        writeln!(out)?;
    }
    let pk = package_rows(d);
    if !pk.is_empty() {
        writeln!(
            out,
            "| package | change | old | new | bytes |\n|---|---|---|---|---:|"
        )?;
        for (kind, p) in pk.iter().take(20) {
            writeln!(
                out,
                "| {} ({kind}) | {} | {} | {} | {} |",
                md_escape(&p.name),
                p.change,
                md_escape(p.old_version.as_deref().unwrap_or("")),
                md_escape(p.new_version.as_deref().unwrap_or("")),
                o.delta(i128::from(p.delta))
            )?;
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
                o.delta(i128::from(c.delta))
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "</details>")
}
