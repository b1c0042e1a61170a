//! Markdown for an analysis: a summary, the layers and the top fixes, for a
//! pull-request comment or a CI step summary.

use std::io::{self, Write};

use super::RenderOptions;
use super::text::{
    before_after, cache_line, image_label, layer_no, more, recommendation_place,
    recommendation_title, short_instruction,
};
use crate::report::Report;

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}

/// Writes the analysis as GitHub-flavoured markdown.
pub fn render(r: &Report, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let im = &r.image;
    writeln!(
        out,
        "### mlsize: `{}` ({}, {} layers)\n",
        esc(&image_label(im.name.as_deref(), &im.source)),
        im.platform,
        im.layer_count
    )?;
    if let Some(line) = cache_line(im.cache.as_ref(), None, o) {
        writeln!(out, "{}\n", esc(&line))?;
    }
    writeln!(
        out,
        "**{} visible, {} compressed, {} wasted**\n",
        o.bytes(im.visible_bytes),
        o.bytes(im.compressed_bytes),
        o.bytes(im.wasted_bytes),
    )?;
    let e = &r.estimated;
    if e.savings_bytes > 0 {
        let pair = |before: u64, after: u64| before_after(o, before, after, "→");
        writeln!(
            out,
            "After the fixes below: content (all layers) {}, visible {}, compressed {}.\n",
            pair(e.content_bytes_before, e.content_bytes),
            pair(e.visible_bytes_before, e.visible_bytes),
            pair(e.compressed_bytes_before, e.compressed_bytes)
        )?;
    }
    if !r.recommendations.is_empty() {
        writeln!(out, "| saves | layer | fix |\n|---:|---:|---|")?;
        for rec in r.recommendations.iter().take(o.top) {
            let place = recommendation_place(rec, 80)
                .map(|p| format!(" (in {p})"))
                .unwrap_or_default();
            writeln!(
                out,
                "| {} | {} | {}{}: {} |",
                o.bytes(rec.savings_bytes),
                rec.layer_index
                    .map(|l| layer_no(l).to_string())
                    .unwrap_or_default(),
                esc(&recommendation_title(rec, 80)),
                esc(&place),
                esc(&rec.fix)
            )?;
        }
        if r.recommendations.len() > o.top {
            writeln!(
                out,
                "\n{}",
                more(r.recommendations.len() - o.top, r.recommendations.len())
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "<details><summary>Layers</summary>\n")?;
    writeln!(
        out,
        "| # | instruction | compressed | size | wasted |\n|---:|---|---:|---:|---:|"
    )?;
    for l in &r.layers {
        writeln!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            layer_no(l.index),
            esc(&short_instruction(&l.instruction, 80)),
            o.bytes(l.compressed_bytes),
            o.bytes(l.content_bytes),
            o.bytes(l.wasted_bytes)
        )?;
    }
    writeln!(out, "\n</details>")
}
