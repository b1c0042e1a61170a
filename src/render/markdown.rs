//! Markdown for an analysis: a summary, the layers and the top fixes, for a
//! pull-request comment or a CI step summary.

use std::io::{self, Write};

use super::RenderOptions;
use super::table::truncate;
use crate::report::Report;

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}

/// Writes the analysis as GitHub-flavoured markdown.
pub fn render(r: &Report, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let im = &r.image;
    let name = im.name.clone().unwrap_or_else(|| im.source.clone());
    writeln!(
        out,
        "### mlsize: `{}` ({}, {} layers)\n",
        esc(&name),
        im.platform,
        im.layer_count
    )?;
    let e = &r.estimated;
    writeln!(
        out,
        "**{} visible, {} compressed, {} wasted**{}\n",
        o.bytes(im.visible_bytes),
        o.bytes(im.compressed_bytes),
        o.bytes(im.wasted_bytes),
        if e.savings_bytes > 0 {
            format!(
                "; after the fixes below: {} -> {} (-{:.0}%)",
                o.bytes(e.content_bytes_before),
                o.bytes(e.content_bytes),
                e.savings_percent
            )
        } else {
            String::new()
        }
    )?;
    if !r.recommendations.is_empty() {
        writeln!(out, "| saves | layer | fix |\n|---:|---:|---|")?;
        for rec in r.recommendations.iter().take(o.top) {
            let title = rec
                .title
                .split_once(": ")
                .map(|x| x.1)
                .unwrap_or(&rec.title);
            writeln!(
                out,
                "| {} | {} | {}: {} |",
                o.bytes(rec.savings_bytes),
                rec.layer_index
                    .map(|l| (l + 1).to_string())
                    .unwrap_or_default(),
                esc(title),
                esc(&rec.fix)
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
            l.index + 1,
            esc(&truncate(&l.instruction, 80)),
            o.bytes(l.compressed_bytes),
            o.bytes(l.content_bytes),
            o.bytes(l.wasted_bytes)
        )?;
    }
    writeln!(out, "\n</details>")
}
