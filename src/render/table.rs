//! Table output for people: summary, layers, categories, recommendations,
//! CUDA duplicates and the largest files.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};

use super::RenderOptions;
use super::text::{
    image_label, layer_no, more, recommendation_place, recommendation_title, share,
    short_instruction,
};
use crate::history::one_line;
use crate::report::Report;

/// A table with the project's look; no colours, so output is the same in a pipe.
pub fn new_table(header: &[&str], width: u16) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_width(width);
    t.set_header(header.iter().map(Cell::new));
    t
}

/// Right-aligns the given columns.
pub fn right(t: &mut Table, cols: &[usize]) {
    for &c in cols {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Shortens text to `max` characters with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    let s = one_line(s);
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Writes the analysis report as tables.
pub fn render(r: &Report, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let im = &r.image;
    let name = image_label(im.name.as_deref(), &im.source);
    let verified = if im.verified {
        "digests verified"
    } else {
        "unverified"
    };
    writeln!(
        out,
        "{name}  {}  {}  {} layers  ({verified})",
        im.platform, im.format, im.layer_count
    )?;
    let mut s = new_table(&["", "bytes", ""], o.width);
    s.add_row(vec![
        Cell::new("compressed"),
        Cell::new(o.bytes(im.compressed_bytes)),
        Cell::new("layer blobs as stored (what a pull downloads)"),
    ]);
    s.add_row(vec![
        Cell::new("uncompressed"),
        Cell::new(o.bytes(im.tar_bytes)),
        Cell::new("layer tar streams"),
    ]);
    s.add_row(vec![
        Cell::new("content"),
        Cell::new(o.bytes(im.content_bytes)),
        Cell::new(format!("{} files written by all layers", im.files)),
    ]);
    s.add_row(vec![
        Cell::new("visible"),
        Cell::new(o.bytes(im.visible_bytes)),
        Cell::new("in the final filesystem"),
    ]);
    s.add_row(vec![
        Cell::new("wasted"),
        Cell::new(o.bytes(im.wasted_bytes)),
        Cell::new(format!(
            "{} of content: deleted or overwritten by a later layer",
            percent(im.wasted_bytes, im.content_bytes)
        )),
    ]);
    if im.duplicate_reclaimable_bytes > 0 {
        s.add_row(vec![
            Cell::new("duplicates"),
            Cell::new(o.bytes(im.duplicate_reclaimable_bytes)),
            Cell::new(format!(
                "identical files at other paths ({} groups)",
                r.duplicates.len()
            )),
        ]);
    }
    if let Some(b) = im.base_bytes {
        s.add_row(vec![
            Cell::new("base"),
            Cell::new(o.bytes(b)),
            Cell::new("layers shared with --base"),
        ]);
    }
    let e = &r.estimated;
    if e.savings_bytes > 0 {
        // Every figure says which quantity it is: the arrow is content (all
        // layers, what `docker images` counts), then visible and compressed.
        let pair = |before: u64, after: u64| {
            format!(
                "{} -> {} (-{})",
                o.bytes(before),
                o.bytes(after),
                share(before - after.min(before), before)
            )
        };
        s.add_row(vec![
            Cell::new("after fixes"),
            Cell::new(o.bytes(e.content_bytes)),
            Cell::new(format!(
                "content (all layers) {}\nvisible {}\ncompressed {}",
                pair(e.content_bytes_before, e.content_bytes),
                pair(e.visible_bytes_before, e.visible_bytes),
                pair(e.compressed_bytes_before, e.compressed_bytes)
            )),
        ]);
    }
    right(&mut s, &[1]);
    writeln!(out, "{s}")?;

    writeln!(out, "\nLayers")?;
    let mut t = new_table(
        &[
            "#",
            "instruction",
            "compressed",
            "size",
            "wasted",
            "files",
            "biggest bloat",
        ],
        o.width,
    );
    let has_base = r.layers.iter().any(|l| l.base);
    for l in &r.layers {
        let mut label = if l.instruction.trim().is_empty() {
            "(no instruction recorded)".to_string()
        } else {
            short_instruction(&l.instruction, 60)
        };
        if (has_base && l.base) || l.base_image.is_some() {
            label = format!("[base] {label}");
        }
        let bloat = l
            .top_category
            .as_ref()
            .map(|c| format!("{c} {}", o.bytes(l.categories.get(c).copied().unwrap_or(0))))
            .unwrap_or_default();
        t.add_row(vec![
            Cell::new(layer_no(l.index)),
            Cell::new(label),
            Cell::new(o.bytes(l.compressed_bytes)),
            Cell::new(o.bytes(l.content_bytes)),
            Cell::new(o.bytes(l.wasted_bytes)),
            Cell::new(l.files),
            Cell::new(bloat),
        ]);
    }
    right(&mut t, &[0, 2, 3, 4, 5]);
    writeln!(out, "{t}")?;

    if !r.recommendations.is_empty() {
        writeln!(out, "\nRecommendations")?;
        let mut t = new_table(&["saves", "layer", "what and how"], o.width);
        for rec in r.recommendations.iter().take(o.top) {
            let layer = rec
                .layer_index
                .map(|l| layer_no(l).to_string())
                .unwrap_or_default();
            let place = recommendation_place(rec, 70)
                .map(|p| format!("\n  in {p}"))
                .unwrap_or_default();
            t.add_row(vec![
                Cell::new(o.bytes(rec.savings_bytes)),
                Cell::new(layer),
                Cell::new(format!(
                    "{}{place}\n  fix: {}",
                    recommendation_title(rec, 50),
                    rec.fix
                )),
            ]);
        }
        right(&mut t, &[0, 1]);
        writeln!(out, "{t}")?;
        if r.recommendations.len() > o.top {
            writeln!(
                out,
                "{}",
                more(r.recommendations.len() - o.top, r.recommendations.len())
            )?;
        }
    }

    if !r.cuda_duplicates.is_empty() {
        writeln!(out, "\nCUDA libraries in more than one place")?;
        let mut t = new_table(
            &["library", "reclaimable", "copies (layer, size, path)"],
            o.width,
        );
        for f in r.cuda_duplicates.iter().take(o.top) {
            let copies = f
                .copies
                .iter()
                .map(|c| {
                    format!(
                        "L{} {}{}  {}",
                        layer_no(c.layer_index),
                        o.bytes(c.bytes),
                        if c.identical { " identical" } else { "" },
                        c.path
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            t.add_row(vec![
                Cell::new(&f.library),
                Cell::new(o.bytes(f.reclaimable_bytes)),
                Cell::new(copies),
            ]);
        }
        right(&mut t, &[1]);
        writeln!(out, "{t}")?;
        if r.cuda_duplicates.len() > o.top {
            writeln!(
                out,
                "{}",
                more(r.cuda_duplicates.len() - o.top, r.cuda_duplicates.len())
            )?;
        }
    }

    let cats: Vec<_> = r
        .categories
        .iter()
        .filter(|c| c.content_bytes > 0)
        .collect();
    if !cats.is_empty() {
        writeln!(out, "\nCategories")?;
        let mut t = new_table(&["category", "visible", "wasted", "files"], o.width);
        for c in cats {
            t.add_row(vec![
                Cell::new(&c.name),
                Cell::new(o.bytes(c.visible_bytes)),
                Cell::new(o.bytes(c.wasted_bytes)),
                Cell::new(c.files),
            ]);
        }
        right(&mut t, &[1, 2, 3]);
        writeln!(out, "{t}")?;
    }

    if !r.top_files.is_empty() {
        let shown = r.top_files.len().min(o.top) as u64;
        if im.visible_files > shown {
            writeln!(
                out,
                "\nLargest files ({shown} of {} visible; --top N for more)",
                im.visible_files
            )?;
        } else {
            writeln!(out, "\nLargest files")?;
        }
        let mut t = new_table(&["size", "layer", "category", "path"], o.width);
        for f in r.top_files.iter().take(o.top) {
            t.add_row(vec![
                Cell::new(o.bytes(f.bytes)),
                Cell::new(layer_no(f.layer_index)),
                Cell::new(&f.category),
                Cell::new(&f.path),
            ]);
        }
        right(&mut t, &[0, 1]);
        writeln!(out, "{t}")?;
    }
    Ok(())
}
