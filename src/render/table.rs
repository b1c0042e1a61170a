//! Table output for people: summary, layers, categories, recommendations,
//! CUDA duplicates and the largest files.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::text::{
    before_after, cache_line, image_label, layer_no, more, recommendation_place,
    recommendation_title, short_instruction,
};
use super::{RenderOptions, style};
use crate::history::one_line;
use crate::report::{DownloadBasis, Report};

/// A table with the project's look. Cells are coloured only when colour is
/// on ([`super::style`]), and then in a pipe too (`--color always`).
pub fn new_table(header: &[&str], width: u16) -> Table {
    let mut t = Table::new();
    t.enforce_styling();
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

/// Terminal columns the widest line of `s` takes (as comfy-table counts them).
pub fn text_width(s: &str) -> usize {
    s.lines().map(UnicodeWidthStr::width).max().unwrap_or(0)
}

fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// The longest start of `s` that takes at most `max` columns.
fn take_start(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += char_width(c);
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// The longest end of `s` that takes at most `max` columns.
fn take_end(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices().rev() {
        used += char_width(c);
        if used > max {
            return &s[i + c.len_utf8()..];
        }
    }
    s
}

/// Fits a path into `max` terminal columns by cutting out its middle: the
/// leading and trailing directories that fit are kept around `…`, and the
/// file name always is, unless it alone is too long (then both ends of it
/// are kept). A path is one word that must stay copyable, so a table never
/// gets to wrap it; the full path is in `--format json`.
pub fn fit_path(path: &str, max: usize) -> String {
    if text_width(path) <= max {
        return path.to_string();
    }
    if max < 3 {
        return "…".chars().take(max).collect();
    }
    // `dir` keeps the path's leading `/`, `name` starts with its last `/`.
    let (dir, name) = match path.rfind('/') {
        Some(i) if i > 0 => path.split_at(i),
        _ => ("", path),
    };
    let ellipsis = "/…";
    let Some(budget) = max.checked_sub(text_width(name) + text_width(ellipsis)) else {
        // Not even the file name fits: keep both of its ends.
        let head = take_start(path, (max - 1).div_ceil(2));
        let tail = take_end(path, (max - 1) / 2);
        return format!("{head}…{tail}");
    };
    // Directories, each with its leading `/` (but the first of a relative path).
    let mut cuts: Vec<usize> = dir.match_indices('/').map(|(i, _)| i).collect();
    if cuts.first() != Some(&0) {
        cuts.insert(0, 0);
    }
    cuts.push(dir.len());
    let dirs: Vec<&str> = cuts.windows(2).map(|w| &dir[w[0]..w[1]]).collect();
    let (mut first, mut last, mut used) = (0, dirs.len(), 0);
    while first < last && used + text_width(dirs[first]) <= budget {
        used += text_width(dirs[first]);
        first += 1;
    }
    while last > first && used + text_width(dirs[last - 1]) <= budget {
        used += text_width(dirs[last - 1]);
        last -= 1;
    }
    if first == 0 && last == dirs.len() {
        // Not one whole directory fits: keep the start of the first ones.
        let head = take_start(dir, budget + 1);
        return format!("{head}…{name}");
    }
    format!(
        "{}{ellipsis}{}{name}",
        dirs[..first].concat(),
        dirs[last..].concat()
    )
}

/// Columns left for the text of column `col` in a [`new_table`] of `width`
/// columns with this `header`, once every other column shows the widest of
/// its cells in `rows` unwrapped: a cell that fits there is never wrapped.
pub fn room_for(width: u16, header: &[&str], rows: &[Vec<String>], col: usize) -> usize {
    let columns = header.len();
    // UTF8_FULL_CONDENSED: a border left, right and between columns, and a
    // space of padding on each side of every cell.
    let frame = columns + 1 + 2 * columns;
    let others: usize = (0..columns)
        .filter(|&c| c != col)
        .map(|c| {
            let cells = rows.iter().filter_map(|r| r.get(c)).map(|s| text_width(s));
            cells
                .chain(header.get(c).map(|h| text_width(h)))
                .max()
                .unwrap_or(0)
                .max(1)
        })
        .sum();
    let least = header.get(col).map_or(0, |h| text_width(h)).max(16);
    usize::from(width).saturating_sub(frame + others).max(least)
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
    if let Some(line) = cache_line(im.cache.as_ref(), None, o) {
        writeln!(out, "{line}")?;
    }
    let mut s = new_table(&["", "bytes", ""], o.width);
    // Never present uncompressed bytes as a download size: layers stored as
    // plain tar (docker save) get the gzip size a push would store, estimated.
    let estimated = r
        .layers
        .iter()
        .filter(|l| l.estimated_gzip_bytes.is_some())
        .count();
    let what = match im.download_bytes_basis {
        DownloadBasis::Stored => "layer blobs as stored (what a pull downloads)".to_string(),
        DownloadBasis::Estimated => {
            "estimate of what a push stores (gzip -6, as docker push): the layers are not stored compressed".to_string()
        }
        DownloadBasis::Mixed => format!(
            "what a pull downloads; {estimated} of {} layers are not stored compressed and their gzip size is estimated",
            im.layer_count
        ),
    };
    s.add_row(vec![
        Cell::new("compressed"),
        Cell::new(o.bytes(im.download_bytes)),
        Cell::new(what),
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
        style::cell(o.bytes(im.wasted_bytes), style::wasted(im.wasted_bytes), o),
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
        let pair = |before: u64, after: u64| before_after(o, before, after, "->");
        s.add_row(vec![
            Cell::new("after fixes"),
            style::cell(o.bytes(e.content_bytes), Some(style::Tone::Good), o),
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
            short_instruction(&l.instruction, 80)
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
            Cell::new(match l.estimated_gzip_bytes {
                Some(e) => format!("~{}", o.bytes(e)),
                None => o.bytes(l.compressed_bytes),
            }),
            Cell::new(o.bytes(l.content_bytes)),
            style::cell(o.bytes(l.wasted_bytes), style::wasted(l.wasted_bytes), o),
            Cell::new(l.files),
            Cell::new(bloat),
        ]);
    }
    right(&mut t, &[0, 2, 3, 4, 5]);
    writeln!(out, "{t}")?;
    if r.layers.iter().any(|l| l.estimated_gzip_bytes.is_some()) {
        writeln!(
            out,
            "~ not stored compressed: the gzip size a push would store, estimated"
        )?;
    }

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
                style::cell(o.bytes(rec.savings_bytes), Some(style::Tone::Good), o),
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
        let header = ["library", "reclaimable", "copies (layer, size, path)"];
        let mut t = new_table(&header, o.width);
        let shown: Vec<_> = r.cuda_duplicates.iter().take(o.top).collect();
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|f| vec![f.library.clone(), o.bytes(f.reclaimable_bytes)])
            .collect();
        let room = room_for(o.width, &header, &rows, 2);
        for (mut row, f) in rows.into_iter().zip(&shown) {
            let copies = f
                .copies
                .iter()
                .map(|c| {
                    let what = format!(
                        "L{} {}{}",
                        layer_no(c.layer_index),
                        o.bytes(c.bytes),
                        if c.identical { " identical" } else { "" },
                    );
                    // The path on the same line when it fits whole, else on its own.
                    if text_width(&what) + 2 + text_width(&c.path) <= room {
                        format!("{what}  {}", c.path)
                    } else {
                        format!("{what}\n{}", fit_path(&c.path, room))
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            row.push(copies);
            t.add_row(row);
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
                style::category(&c.name, o),
                Cell::new(o.bytes(c.visible_bytes)),
                style::cell(o.bytes(c.wasted_bytes), style::wasted(c.wasted_bytes), o),
                Cell::new(c.files),
            ]);
        }
        right(&mut t, &[1, 2, 3]);
        writeln!(out, "{t}")?;
    }

    if !r.top_files.is_empty() {
        let count = r.top_files.len().min(o.top) as u64;
        if im.visible_files > count {
            writeln!(
                out,
                "\nLargest files ({count} of {} visible; --top N for more)",
                im.visible_files
            )?;
        } else {
            writeln!(out, "\nLargest files")?;
        }
        let header = ["size", "layer", "category", "path"];
        let mut t = new_table(&header, o.width);
        let shown: Vec<_> = r.top_files.iter().take(o.top).collect();
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|f| {
                vec![
                    o.bytes(f.bytes),
                    layer_no(f.layer_index).to_string(),
                    f.category.clone(),
                ]
            })
            .collect();
        let room = room_for(o.width, &header, &rows, 3);
        for (mut row, f) in rows.into_iter().zip(&shown) {
            row.push(fit_path(&f.path, room));
            t.add_row(row);
        }
        right(&mut t, &[0, 1]);
        writeln!(out, "{t}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUBLAS: &str =
        "/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.12";

    #[test]
    fn fit_path_cuts_the_middle() {
        let cases: &[(&str, usize, &str)] = &[
            ("/usr/bin/python3", 40, "/usr/bin/python3"),
            ("/usr/bin/python3", 16, "/usr/bin/python3"),
            (CUBLAS, 76, CUBLAS),
            (
                CUBLAS,
                66,
                "/usr/local/lib/python3.11/site-packages/nvidia/…/libcublasLt.so.12",
            ),
            (CUBLAS, 40, "/usr/local/lib/…/lib/libcublasLt.so.12"),
            (CUBLAS, 24, "/usr/…/libcublasLt.so.12"),
            (CUBLAS, 20, "/…/libcublasLt.so.12"),
            // The file name alone is too long: both of its ends.
            (CUBLAS, 19, "/usr/loca…sLt.so.12"),
            (
                "/a/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.so",
                20,
                "/a/xxxxxxx…xxxxxx.so",
            ),
            // No whole directory fits: the start of the first one.
            (
                "/very-long-directory-name-here/file.txt",
                25,
                "/very-long-dire…/file.txt",
            ),
            (
                "/very-long-directory-name-here/and/file.txt",
                30,
                "/…/and/file.txt",
            ),
            ("a/bbbbbbbbbb/c.txt", 12, "a/…/c.txt"),
            ("no-slash-at-all-in-this-name", 12, "no-sla…-name"),
            // Wide characters take two columns.
            ("/数据集/模型/权重.bin", 14, "/数…/权重.bin"),
            ("/abc/def", 2, "…"),
            ("/abc/def", 0, ""),
        ];
        for &(path, max, want) in cases {
            let got = fit_path(path, max);
            assert_eq!(got, want, "fit_path({path:?}, {max})");
            assert!(
                text_width(&got) <= max,
                "fit_path({path:?}, {max}) = {got:?} takes at most {max} columns"
            );
        }
    }

    /// Renders a table whose last column holds `path`; returns its lines.
    fn render_with_path(width: u16, path: &str) -> Vec<String> {
        let header = ["size", "layer", "category", "path"];
        let rows = vec![vec![
            "293.0 KiB".to_string(),
            "4".to_string(),
            "cuda-libs".to_string(),
        ]];
        let mut t = new_table(&header, width);
        for mut r in rows {
            r.push(path.to_string());
            t.add_row(r);
        }
        t.to_string().lines().map(str::to_string).collect()
    }

    #[test]
    fn room_for_is_exactly_what_a_column_gets_unwrapped() {
        let header = ["size", "layer", "category", "path"];
        let rows = vec![vec![
            "293.0 KiB".to_string(),
            "4".to_string(),
            "cuda-libs".to_string(),
        ]];
        for (width, want) in [(80u16, 44usize), (100, 64), (120, 84)] {
            let room = room_for(width, &header, &rows, 3);
            assert_eq!(room, want, "room for the path at {width} columns");
            // A path that takes the room stays on one line within the width...
            let lines = render_with_path(width, &"p".repeat(room));
            assert_eq!(lines.len(), 5, "one row, no wrapping: {lines:#?}");
            assert!(
                lines
                    .iter()
                    .all(|l| l.chars().count() == usize::from(width)),
                "the table is {width} columns wide: {lines:#?}"
            );
            // ... and one column more would be wrapped.
            let lines = render_with_path(width, &"p".repeat(room + 1));
            assert_eq!(lines.len(), 6, "one column too many wraps: {lines:#?}");
        }
        // Never less than a usable path column.
        assert_eq!(room_for(20, &header, &rows, 3), 16);
    }
}
