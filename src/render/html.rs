//! HTML output: one self-contained page per report (analyze, diff, check).
//!
//! The page holds the report's JSON once (`<script type="application/json">`,
//! exactly what `--format json` prints, with `--tree` for analyze), tables
//! rendered here so that they read without JavaScript, and the page's own
//! script and style (`assets/html/`), with d3-hierarchy's squarified treemap
//! layout (vendored, pinned, ISC licence) inlined. A Content-Security-Policy
//! forbids every load from outside the page: scripts run only when their
//! hash is listed, there is nothing to fetch, and no font or image leaves it.

use std::io::{self, Write};

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::RenderOptions;
use super::text::{image_label, layer_no, recommendation_title, short_instruction};
use crate::report::budget::CheckReport;
use crate::report::schema::{AnalyzeOutput, DiffOutput};

const D3_HIERARCHY: &str = include_str!("../../assets/html/vendor/d3-hierarchy.min.js");
const PAGE_JS: &str = include_str!("../../assets/html/page.js");
const PAGE_CSS: &str = include_str!("../../assets/html/page.css");

/// Which page: the script draws what its kind has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Analyze,
    Diff,
    Check,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Analyze => "analyze",
            Kind::Diff => "diff",
            Kind::Check => "check",
        }
    }
}

/// Text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that can sit inside a `<script>` element: `<` never appears as such
/// (a `</script>` or `<!--` in a path cannot end the element).
fn script_json<T: Serialize>(value: &T) -> io::Result<String> {
    let json = serde_json::to_string(value).map_err(io::Error::other)?;
    Ok(json.replace('<', "\\u003c"))
}

/// `'sha256-…'`, a script's CSP source.
fn csp_hash(script: &str) -> String {
    let digest = Sha256::digest(script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The page around `body`: head, data, scripts.
fn page(
    kind: Kind,
    title: &str,
    body: &str,
    data_json: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let csp = format!(
        "default-src 'none'; script-src {} {}; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(D3_HIERARCHY),
        csp_hash(PAGE_JS)
    );
    write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"mlsize {version}\">\n\
         <title>{title}</title>\n<style>\n{PAGE_CSS}</style>\n</head>\n\
         <body data-kind=\"{kind}\">\n{body}\
         <script type=\"application/json\" id=\"mlsize-data\">{data_json}</script>\n\
         <script>{D3_HIERARCHY}</script>\n<script>{PAGE_JS}</script>\n</body>\n</html>\n",
        title = esc(title),
        kind = kind.name(),
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// Human size, with the exact count on hover.
fn size(o: &RenderOptions, b: u64) -> String {
    format!("<span title=\"{b} bytes\">{}</span>", esc(&o.bytes(b)))
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// A table: header cells, then rows of already escaped cells; `num` marks
/// the right-aligned columns.
fn table(id: &str, header: &[&str], num: &[usize], rows: &[Vec<String>]) -> String {
    let mut s = format!("<table id=\"{id}\">\n<thead><tr>");
    for (i, h) in header.iter().enumerate() {
        let class = if num.contains(&i) {
            " class=\"num\""
        } else {
            ""
        };
        s.push_str(&format!("<th scope=\"col\"{class}>{}</th>", esc(h)));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        s.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if num.contains(&i) {
                " class=\"num\""
            } else {
                ""
            };
            s.push_str(&format!("<td{class}>{c}</td>"));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// The headline figures as a definition list.
fn figures(items: &[(&str, String, String)]) -> String {
    let mut s = String::from("<dl class=\"figures\">\n");
    for (name, value, what) in items {
        s.push_str(&format!(
            "<div><dt>{}</dt><dd><strong>{value}</strong><span>{}</span></dd></div>\n",
            esc(name),
            esc(what)
        ));
    }
    s.push_str("</dl>\n");
    s
}

/// The analyze page: `data` is what `analyze --format json --tree` prints.
pub fn render_analyze(
    data: &AnalyzeOutput<'_>,
    o: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let r = data.report;
    let im = &r.image;
    let name = image_label(im.name.as_deref(), &im.source);
    let mut body = format!(
        "<header>\n<h1>{}</h1>\n<p class=\"meta\">{} · {} · source <code>{}</code> · {} layers · {}</p>\n",
        esc(&name),
        esc(&im.platform),
        esc(&im.format),
        esc(&im.source),
        im.layer_count,
        if im.verified {
            "digests verified"
        } else {
            "unverified"
        }
    );
    let mut items = vec![
        (
            "compressed",
            size(o, im.download_bytes),
            match im.download_bytes_basis {
                crate::report::DownloadBasis::Stored => "what a pull downloads".to_string(),
                _ => "gzip size a push stores (estimated where layers are stored uncompressed)"
                    .to_string(),
            },
        ),
        (
            "content",
            size(o, im.content_bytes),
            format!("{} files written by all layers", im.files),
        ),
        (
            "visible",
            size(o, im.visible_bytes),
            format!("{} files in the final filesystem", im.visible_files),
        ),
        (
            "wasted",
            size(o, im.wasted_bytes),
            format!(
                "{} of content: deleted or overwritten by a later layer",
                percent(im.wasted_bytes, im.content_bytes)
            ),
        ),
        (
            "duplicates",
            size(o, im.duplicate_reclaimable_bytes),
            format!(
                "identical files at other paths ({} groups)",
                r.duplicates.len()
            ),
        ),
    ];
    let e = &r.estimated;
    if e.savings_bytes > 0 {
        items.push((
            "after fixes",
            size(o, e.content_bytes),
            format!(
                "content {} → {}, visible {} → {}, compressed {} → {}",
                o.bytes(im.content_bytes),
                o.bytes(e.content_bytes),
                o.bytes(e.visible_bytes_before),
                o.bytes(e.visible_bytes),
                o.bytes(e.compressed_bytes_before),
                o.bytes(e.compressed_bytes)
            ),
        ));
    }
    body.push_str(&figures(&items));
    body.push_str("</header>\n<main>\n");

    // The treemap (drawn by the script) and its legend (a table that reads without it).
    body.push_str(
        "<section id=\"map\" aria-label=\"Treemap of the final filesystem\">\n<h2>Where the bytes are</h2>\n\
         <noscript><p>The treemap needs JavaScript; the tables below do not.</p></noscript>\n\
         <div class=\"controls\" hidden>\n\
         <label>Colour by <select id=\"colour\"><option value=\"category\">category</option><option value=\"layer\">layer</option></select></label>\n\
         <label><input type=\"checkbox\" id=\"wasted\"> show wasted bytes (deleted or overwritten files)</label>\n\
         <label>Search paths <input type=\"search\" id=\"search\" placeholder=\"e.g. libcudnn\"></label>\n\
         </div>\n<nav id=\"crumbs\" aria-label=\"Directory\"></nav>\n\
         <div id=\"treemap\" role=\"img\" aria-label=\"Treemap: area is bytes, colour is category or layer\"></div>\n\
         <p id=\"hover\" class=\"hover\" aria-live=\"polite\"></p>\n",
    );
    let cat_rows: Vec<Vec<String>> = r
        .categories
        .iter()
        .filter(|c| c.content_bytes > 0)
        .map(|c| {
            vec![
                format!(
                    "<span class=\"swatch\" data-category=\"{0}\"></span>{0}",
                    esc(&c.name)
                ),
                size(o, c.visible_bytes),
                size(o, c.wasted_bytes),
                c.files.to_string(),
            ]
        })
        .collect();
    body.push_str(&table(
        "legend",
        &["category", "visible", "wasted", "files"],
        &[1, 2, 3],
        &cat_rows,
    ));
    body.push_str("</section>\n");

    // Layers, with bars of visible and wasted bytes.
    let widest = r
        .layers
        .iter()
        .map(|l| l.content_bytes)
        .max()
        .unwrap_or(0)
        .max(1);
    let layer_rows: Vec<Vec<String>> = r
        .layers
        .iter()
        .map(|l| {
            let visible = l.content_bytes - l.wasted_bytes;
            let w = |b: u64| format!("{:.2}", b as f64 * 100.0 / widest as f64);
            vec![
                format!(
                    "<button type=\"button\" class=\"layer\" data-layer=\"{}\" aria-label=\"Highlight the files of layer {}\"><span class=\"swatch\" data-layer=\"{}\"></span>{}</button>",
                    l.index,
                    layer_no(l.index),
                    l.index,
                    layer_no(l.index)
                ),
                format!(
                    "<code title=\"{}\">{}</code>",
                    esc(l.created_by.as_deref().unwrap_or("")),
                    esc(&short_instruction(&l.instruction, 100))
                ),
                format!(
                    "<span class=\"bar\" aria-hidden=\"true\"><span class=\"v\" style=\"width:{}%\"></span><span class=\"w\" style=\"width:{}%\"></span></span>",
                    w(visible),
                    w(l.wasted_bytes)
                ),
                size(o, l.content_bytes),
                size(o, l.wasted_bytes),
                l.files.to_string(),
                size(o, l.download_bytes()),
            ]
        })
        .collect();
    body.push_str("<section id=\"layers-section\">\n<h2>Layers</h2>\n<p class=\"note\">Bars: <span class=\"key v\"></span> still visible, <span class=\"key w\"></span> wasted (deleted or overwritten by a later layer). Click a layer to highlight its files in the treemap.</p>\n");
    body.push_str(&table(
        "layers",
        &[
            "#",
            "instruction",
            "visible / wasted",
            "size",
            "wasted",
            "files",
            "compressed",
        ],
        &[3, 4, 5, 6],
        &layer_rows,
    ));
    body.push_str("</section>\n");

    if !r.recommendations.is_empty() {
        let rows: Vec<Vec<String>> = r
            .recommendations
            .iter()
            .map(|rec| {
                vec![
                    esc(&recommendation_title(rec, 60)),
                    size(o, rec.savings_bytes),
                    size(o, rec.compressed_bytes),
                    esc(&rec.fix),
                ]
            })
            .collect();
        body.push_str("<section id=\"recommendations-section\">\n<h2>Recommendations</h2>\n");
        body.push_str(&table(
            "recommendations",
            &["finding", "saves", "compressed", "fix"],
            &[1, 2],
            &rows,
        ));
        body.push_str("</section>\n");
    }
    if !r.cuda_duplicates.is_empty() {
        let rows: Vec<Vec<String>> = r
            .cuda_duplicates
            .iter()
            .map(|f| {
                let copies: Vec<String> = f
                    .copies
                    .iter()
                    .map(|c| format!("<code class=\"path\">{}</code>", esc(&c.path)))
                    .collect();
                vec![
                    esc(&f.library),
                    copies.join("<br>"),
                    size(o, f.reclaimable_bytes),
                ]
            })
            .collect();
        body.push_str(
            "<section id=\"cuda-section\">\n<h2>CUDA libraries shipped more than once</h2>\n",
        );
        body.push_str(&table(
            "cuda",
            &["library", "copies", "reclaimable"],
            &[2],
            &rows,
        ));
        body.push_str("</section>\n");
    }
    if !r.duplicates.is_empty() {
        let rows: Vec<Vec<String>> = r
            .duplicates
            .iter()
            .map(|g| {
                let paths: Vec<String> = g
                    .paths
                    .iter()
                    .map(|p| format!("<code class=\"path\">{}</code>", esc(p)))
                    .collect();
                vec![
                    size(o, g.bytes_each),
                    paths.join("<br>"),
                    size(o, g.reclaimable_bytes),
                ]
            })
            .collect();
        body.push_str("<section id=\"duplicates-section\">\n<h2>Duplicate files</h2>\n");
        body.push_str(&table(
            "duplicates",
            &["each", "paths", "reclaimable"],
            &[0, 2],
            &rows,
        ));
        body.push_str("</section>\n");
    }
    let rows: Vec<Vec<String>> = r
        .top_files
        .iter()
        .map(|f| {
            vec![
                format!("<code class=\"path\">{}</code>", esc(&f.path)),
                size(o, f.bytes),
                esc(&f.category),
                layer_no(f.layer_index).to_string(),
            ]
        })
        .collect();
    body.push_str("<section id=\"largest-section\">\n<h2>Largest files</h2>\n");
    body.push_str(&table(
        "largest",
        &["path", "bytes", "category", "layer"],
        &[1, 3],
        &rows,
    ));
    body.push_str("</section>\n</main>\n");
    page(
        Kind::Analyze,
        &format!("mlsize: {name}"),
        &body,
        &script_json(data)?,
        out,
    )
}

/// The diff page: `data` is what `diff --format json --tree` prints.
pub fn render_diff(
    data: &DiffOutput<'_>,
    o: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let d = data.diff;
    let old = image_label(d.old.name.as_deref(), &d.old.source);
    let new = image_label(d.new.name.as_deref(), &d.new.source);
    let mut body = format!("<header>\n<h1>{} → {}</h1>\n", esc(&old), esc(&new));
    let rows: Vec<Vec<String>> = d
        .totals
        .iter()
        .map(|t| {
            // Counts (`files`) are numbers, not sizes.
            if t.name.ends_with("_bytes") {
                vec![
                    esc(&t.name),
                    size(o, t.old),
                    size(o, t.new),
                    change(o, t.delta),
                ]
            } else {
                vec![
                    esc(&t.name),
                    t.old.to_string(),
                    t.new.to_string(),
                    format!("{:+}", t.delta),
                ]
            }
        })
        .collect();
    body.push_str(&table(
        "totals",
        &["", "old", "new", "change"],
        &[1, 2, 3],
        &rows,
    ));
    body.push_str("</header>\n<main>\n");
    body.push_str(
        "<section id=\"map\" aria-label=\"Treemap of growth\">\n<h2>What changed, by directory</h2>\n\
         <noscript><p>The treemap needs JavaScript; the tables below do not.</p></noscript>\n\
         <div class=\"controls\" hidden><label>Search paths <input type=\"search\" id=\"search\" placeholder=\"e.g. site-packages\"></label></div>\n\
         <nav id=\"crumbs\" aria-label=\"Directory\"></nav>\n\
         <div id=\"treemap\" role=\"img\" aria-label=\"Treemap: area is bytes added or removed; colour: new, grew, shrank, removed\"></div>\n\
         <p id=\"hover\" class=\"hover\" aria-live=\"polite\"></p>\n\
         <p class=\"note legend\"><span class=\"swatch\" data-change=\"new\"></span>new file <span class=\"swatch\" data-change=\"grew\"></span>grew <span class=\"swatch\" data-change=\"shrank\"></span>shrank <span class=\"swatch\" data-change=\"removed\"></span>removed</p>\n</section>\n",
    );
    // Layers side by side, aligned as in the table.
    let rows: Vec<Vec<String>> = d
        .instructions
        .iter()
        .map(|l| {
            let side = |i: Option<usize>, instr: &Option<String>, bytes: u64| match i {
                Some(i) => format!(
                    "{} <code>{}</code> {}",
                    layer_no(i),
                    esc(&short_instruction(instr.as_deref().unwrap_or(""), 80)),
                    size(o, bytes)
                ),
                None => String::new(),
            };
            vec![
                side(l.old_layer_index, &l.old_instruction, l.old_bytes),
                side(l.new_layer_index, &l.new_instruction, l.new_bytes),
                esc(&l.status),
                change(o, l.delta),
            ]
        })
        .collect();
    body.push_str("<section id=\"layers-section\">\n<h2>Layers</h2>\n");
    body.push_str(&table(
        "layers",
        &["old", "new", "status", "change"],
        &[3],
        &rows,
    ));
    body.push_str("</section>\n");
    let rows: Vec<Vec<String>> = d
        .packages
        .python
        .iter()
        .map(|p| ("python", p))
        .chain(d.packages.debian.iter().map(|p| ("debian", p)))
        .map(|(kind, p)| {
            vec![
                esc(&p.name),
                kind.to_string(),
                esc(&p.change),
                esc(p.old_version.as_deref().unwrap_or("")),
                esc(p.new_version.as_deref().unwrap_or("")),
                change(o, p.delta),
            ]
        })
        .collect();
    if !rows.is_empty() {
        body.push_str("<section id=\"packages-section\">\n<h2>Packages</h2>\n");
        body.push_str(&table(
            "packages",
            &["package", "kind", "status", "old", "new", "change"],
            &[5],
            &rows,
        ));
        body.push_str("</section>\n");
    }
    body.push_str("</main>\n");
    page(
        Kind::Diff,
        &format!("mlsize diff: {old} → {new}"),
        &body,
        &script_json(data)?,
        out,
    )
}

/// A signed change, classed for its colour and labelled in words.
fn change(o: &RenderOptions, delta: i128) -> String {
    let (class, word) = match delta.cmp(&0) {
        std::cmp::Ordering::Greater => ("grew", "grew"),
        std::cmp::Ordering::Less => ("shrank", "shrank"),
        std::cmp::Ordering::Equal => ("same", "unchanged"),
    };
    format!(
        "<span class=\"{class}\" title=\"{word}: {delta} bytes\">{}</span>",
        esc(&o.delta(delta))
    )
}

/// The check page: `c` is what `check --format json` prints.
pub fn render_check(c: &CheckReport, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let name = image_label(c.image.name.as_deref(), &c.image.source);
    let mut body = format!(
        "<header>\n<h1>{}</h1>\n<p class=\"verdict {}\">{}</p>\n</header>\n<main>\n",
        esc(&name),
        if c.passed { "pass" } else { "fail" },
        if c.passed {
            "PASS: every budget rule holds"
        } else {
            "FAIL: a budget rule is exceeded"
        }
    );
    let rows: Vec<Vec<String>> = c
        .rules
        .iter()
        .map(|r| {
            let (actual, limit) = super::check::values(r, o);
            let mut why = String::new();
            if !r.passed {
                let mut items = String::new();
                for f in &r.findings {
                    items.push_str(&format!(
                        "<li>{} {}</li>",
                        size(o, f.bytes),
                        esc(&recommendation_title(&f.recommendation, 70))
                    ));
                }
                for i in &r.instructions {
                    items.push_str(&format!(
                        "<li>layer {} <code>{}</code> {}</li>",
                        layer_no(i.layer_index),
                        esc(&short_instruction(&i.instruction, 80)),
                        size(o, i.bytes)
                    ));
                }
                if !items.is_empty() {
                    why = format!("<ul>{items}</ul>");
                }
                if let Some(fix) = &r.fix {
                    why.push_str(&format!("<p class=\"fix\">Fix: {}</p>", esc(fix)));
                }
            }
            vec![
                format!(
                    "<span class=\"{}\">{}</span>",
                    if r.passed { "pass" } else { "fail" },
                    if r.passed { "PASS" } else { "FAIL" }
                ),
                format!("<code>{}</code>", esc(&r.rule)),
                esc(&actual),
                esc(&limit),
                why,
            ]
        })
        .collect();
    body.push_str("<section id=\"rules-section\">\n<h2>Rules</h2>\n");
    body.push_str(&table(
        "rules",
        &[
            "result",
            "rule",
            "measured",
            "limit",
            "responsible instructions and fixes",
        ],
        &[2, 3],
        &rows,
    ));
    body.push_str("</section>\n</main>\n");
    page(
        Kind::Check,
        &format!("mlsize check: {name}"),
        &body,
        &script_json(c)?,
        out,
    )
}
