//! `mlsize check` output: table, JUnit XML, GitHub workflow commands, markdown.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::RenderOptions;
use super::text::{
    cache_line, image_label, layer_no, recommendation_place, recommendation_title, share,
    short_instruction,
};
use crate::report::budget::{CheckReport, RuleResult};

/// `actual` and `limit` of a rule in its unit.
pub fn values(r: &RuleResult, o: &RenderOptions) -> (String, String) {
    match r.unit {
        "percent" => (format!("{:.2}%", r.actual), format!("{:.2}%", r.limit)),
        "count" => (
            format!("{}", r.actual as u64),
            format!("{}", r.limit as u64),
        ),
        _ => {
            let mut a = if r.actual < 0.0 {
                o.delta(r.actual as i128)
            } else {
                o.bytes(r.actual as u64)
            };
            // A compressed size of layers stored uncompressed is the gzip
            // size a push would store, estimated.
            if r.estimated {
                a = format!("~{a} (estimated gzip size: layers not stored compressed)");
            }
            let mut l = o.bytes(r.limit as u64);
            // Show the limit as written too when it used a unit (3GB is 2.8 GiB).
            if r.limit_text.parse::<u64>().is_err() && !o.exact {
                l = format!("{l} ({})", r.limit_text);
            }
            (a, l)
        }
    }
}

fn what(r: &RuleResult) -> String {
    let rule = r.rule.as_str();
    match rule {
        "max_compressed_bytes" => "compressed size".into(),
        "max_visible_bytes" => "visible size".into(),
        "max_wasted_bytes" | "max_wasted_percent" => "wasted bytes".into(),
        "max_duplicate_bytes" => "duplicate files".into(),
        "max_cuda_duplicate_bytes" => "CUDA libraries shipped twice".into(),
        "max_layer_bytes" => "largest layer".into(),
        "max_layers" => "layer count".into(),
        "max_growth_bytes" | "max_growth_percent" => "growth against the baseline".into(),
        _ => match rule.split_once('.') {
            Some(("categories", c)) => format!("{c} bytes"),
            Some(("category_growth", c)) => format!("{c} growth"),
            _ => rule.into(),
        },
    }
}

/// The findings that explain a failed rule, largest first: `(bytes, share of
/// the measure, title, place, fix)`, plus a sentence when they explain less
/// than half of it.
struct Explanation {
    findings: Vec<(String, String, Option<String>, String)>,
    hidden: usize,
    shortfall: Option<String>,
}

const SHOWN_FINDINGS: usize = 3;

fn explanation(r: &RuleResult, o: &RenderOptions, dockerfile: Option<&str>) -> Explanation {
    let measured = r.measured_bytes.unwrap_or(0);
    let findings = r
        .findings
        .iter()
        .take(SHOWN_FINDINGS)
        .map(|f| {
            let rec = &f.recommendation;
            let line = r
                .instructions
                .iter()
                .find(|c| Some(c.layer_index) == rec.layer_index)
                .and_then(|c| c.dockerfile_line);
            (
                format!("{} ({})", o.bytes(f.bytes), share(f.bytes, measured)),
                recommendation_title(rec, 70),
                recommendation_place(rec, 70).map(|p| format!("{p}{}", at_line(dockerfile, line))),
                rec.fix.clone(),
            )
        })
        .collect();
    let what = match r.rule.as_str() {
        "max_compressed_bytes" => "compressed bytes",
        "max_visible_bytes" => "visible bytes",
        "max_wasted_bytes" | "max_wasted_percent" => "wasted bytes",
        "max_layer_bytes" => "bytes of the largest layer",
        "max_duplicate_bytes" | "max_cuda_duplicate_bytes" => "duplicate bytes",
        _ => "bytes",
    };
    // Rules that have no byte measure (layer count, growth) explain nothing here.
    let shortfall = (r.measured_bytes.is_some()
        && measured > 0
        && r.explained_bytes.saturating_mul(2) < measured)
        .then(|| {
            if r.findings.is_empty() {
                format!(
                    "no recommendation covers these {what}: they are files the image keeps (see the layers and files below)"
                )
            } else {
                format!(
                    "no recommendation covers most of it: the fixes explain {} of {} {what} ({}); the rest is in the layers and files below",
                    o.bytes(r.explained_bytes),
                    o.bytes(measured),
                    share(r.explained_bytes, measured)
                )
            }
        });
    Explanation {
        findings,
        hidden: r.findings.len().saturating_sub(SHOWN_FINDINGS),
        shortfall,
    }
}

/// The rule's limit and where it was set: `max_wasted_bytes = 10MiB at
/// mlsize.toml:3`, or `--max-size 3GB`.
fn limit_origin(r: &RuleResult) -> String {
    if r.origin.starts_with("--max-category ") {
        format!("{}={}", r.origin, r.limit_text)
    } else if r.origin.starts_with("--") {
        format!("{} {}", r.origin, r.limit_text)
    } else {
        format!("{} = {} at {}", r.rule, r.limit_text, r.origin)
    }
}

/// One sentence for a failed rule.
pub fn message(r: &RuleResult, o: &RenderOptions, dockerfile: Option<&str>) -> String {
    let (a, l) = values(r, o);
    let mut m = format!(
        "{} is {a}, over the limit of {l} ({})",
        what(r),
        limit_origin(r)
    );
    let ex = explanation(r, o, dockerfile);
    for (bytes, title, place, fix) in &ex.findings {
        let place = place
            .as_deref()
            .map(|p| format!(" in {p}"))
            .unwrap_or_default();
        let _ = write!(m, "; {bytes}: {title}{place}; fix: {fix}");
    }
    if ex.hidden > 0 {
        let _ = write!(m, "; {} more findings in --format json", ex.hidden);
    }
    if let Some(s) = &ex.shortfall {
        let _ = write!(m, "; {s}");
    }
    // The layers the findings above did not already name.
    let named: Vec<Option<usize>> = r
        .findings
        .iter()
        .take(SHOWN_FINDINGS)
        .map(|f| f.recommendation.layer_index)
        .collect();
    for c in r
        .instructions
        .iter()
        .filter(|c| !named.contains(&Some(c.layer_index)))
        .take(3)
    {
        let at = at_line(dockerfile, c.dockerfile_line);
        let _ = write!(
            m,
            "; layer {} `{}`{at}: {}",
            layer_no(c.layer_index),
            short_instruction(&c.instruction, 70),
            o.bytes(c.bytes)
        );
    }
    if let Some(f) = r.top_files.first() {
        let _ = write!(m, "; largest file {} ({})", f.path, o.bytes(f.bytes));
    }
    if r.findings.is_empty()
        && let Some(fix) = &r.fix
    {
        let _ = write!(m, "; fix: {fix}");
    }
    m
}

/// How much of the image and of the baseline came from the layer cache (no
/// line for an image read cold).
fn cache_lines(c: &CheckReport, o: &RenderOptions) -> Vec<String> {
    [
        cache_line(c.image.cache.as_ref(), None, o),
        cache_line(c.baseline_cache.as_ref(), Some("baseline"), o),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Failed-rule count and the image's display name.
fn summary(c: &CheckReport) -> (usize, String) {
    let failed = c.rules.iter().filter(|r| !r.passed).count();
    (
        failed,
        image_label(c.image.name.as_deref(), &c.image.source),
    )
}

/// ` (Dockerfile:12)` when the instruction was found in the Dockerfile.
fn at_line(dockerfile: Option<&str>, line: Option<usize>) -> String {
    match (dockerfile, line) {
        (Some(f), Some(l)) => format!(" ({f}:{l})"),
        _ => String::new(),
    }
}

/// PASS or FAIL, coloured when colour is on.
fn verdict(passed: bool, o: &RenderOptions) -> String {
    if passed {
        super::style::text("PASS", super::style::Tone::Good, o)
    } else {
        super::style::text("FAIL", super::style::Tone::Bad, o)
    }
}

/// One line per rule, details under each failure.
pub fn render_table(c: &CheckReport, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let (failed, name) = summary(c);
    writeln!(
        out,
        "mlsize check {name}: {} ({} of {} rules failed)",
        verdict(c.passed, o),
        failed,
        c.rules.len()
    )?;
    for line in cache_lines(c, o) {
        writeln!(out, "{line}")?;
    }
    let width = c.rules.iter().map(|r| r.rule.len()).max().unwrap_or(10);
    for r in &c.rules {
        let (a, l) = values(r, o);
        let op = if r.passed { "<=" } else { ">" };
        writeln!(
            out,
            "{}  {:width$}  {a} {op} {l}  ({})",
            verdict(r.passed, o),
            r.rule,
            r.origin
        )?;
        if r.passed {
            continue;
        }
        let ex = explanation(r, o, c.dockerfile.as_deref());
        if !ex.findings.is_empty() {
            writeln!(out, "      explained by:")?;
        }
        for (bytes, title, place, fix) in &ex.findings {
            writeln!(out, "        {bytes}  {title}")?;
            if let Some(p) = place {
                writeln!(out, "          in {p}")?;
            }
            writeln!(out, "          fix: {fix}")?;
        }
        if ex.hidden > 0 {
            writeln!(
                out,
                "        ({} more findings in --format json)",
                ex.hidden
            )?;
        }
        if let Some(s) = &ex.shortfall {
            writeln!(out, "      {s}")?;
        }
        for x in r.instructions.iter().take(3) {
            let at = at_line(c.dockerfile.as_deref(), x.dockerfile_line);
            writeln!(
                out,
                "      layer {} `{}`{at}: {}",
                layer_no(x.layer_index),
                short_instruction(&x.instruction, 70),
                o.bytes(x.bytes)
            )?;
        }
        if r.instructions.len() > 3 {
            writeln!(
                out,
                "      ({} more layers in --format json)",
                r.instructions.len() - 3
            )?;
        }
        for f in r.top_files.iter().take(3) {
            writeln!(
                out,
                "      file {} ({}, layer {})",
                f.path,
                o.bytes(f.bytes),
                layer_no(f.layer_index)
            )?;
        }
        if r.findings.is_empty()
            && let Some(fix) = &r.fix
        {
            writeln!(out, "      fix: {fix}")?;
        }
    }
    for n in &c.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one testcase per rule.
pub fn render_junit(c: &CheckReport, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let (failed, name) = summary(c);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="mlsize" tests="{}" failures="{failed}" errors="0">"#,
        c.rules.len()
    )?;
    writeln!(
        out,
        r#"  <testsuite name="mlsize check {}" tests="{}" failures="{failed}" errors="0" skipped="0">"#,
        xml(&name),
        c.rules.len()
    )?;
    for r in &c.rules {
        let (a, l) = values(r, o);
        write!(
            out,
            r#"    <testcase classname="mlsize.budget" name="{}""#,
            xml(&r.rule)
        )?;
        if r.passed {
            writeln!(
                out,
                r#"><system-out>{}</system-out></testcase>"#,
                xml(&format!("{a} <= {l} ({})", r.origin))
            )?;
        } else {
            writeln!(out, ">")?;
            writeln!(
                out,
                r#"      <failure message="{}" type="budget">{}</failure>"#,
                xml(&format!("{} {a} > {l}", r.rule)),
                xml(&message(r, o, c.dockerfile.as_deref()))
            )?;
            writeln!(out, "    </testcase>")?;
        }
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands: an `::error` per failed rule, on the
/// Dockerfile line of the responsible instruction when it is known.
pub fn render_github(c: &CheckReport, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    for r in &c.rules {
        let (a, l) = values(r, o);
        if r.passed {
            writeln!(out, "PASS {} {a} <= {l}", r.rule)?;
            continue;
        }
        // With a Dockerfile every failure is annotated in it: at the line of
        // the largest culprit found there, else (base-image layers, failures
        // without culprits) at the final stage's FROM.
        let location = match &c.dockerfile {
            Some(f) => {
                let line = r
                    .instructions
                    .iter()
                    .find_map(|x| x.dockerfile_line)
                    .or(c.dockerfile_from_line)
                    .unwrap_or(1);
                format!("file={},line={line},", gh_prop(f))
            }
            None => String::new(),
        };
        writeln!(
            out,
            "::error {location}title={}::{}",
            gh_prop(&format!("mlsize: {} over budget", r.rule)),
            gh_data(&message(r, o, c.dockerfile.as_deref()))
        )?;
    }
    for n in &c.notes {
        writeln!(out, "::notice title=mlsize::{}", gh_data(n))?;
    }
    Ok(())
}

/// Markdown: a table of rules, then the details of each failure.
pub fn render_markdown(c: &CheckReport, o: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let (failed, name) = summary(c);
    let esc = |s: &str| s.replace('|', "\\|").replace('`', "'");
    writeln!(
        out,
        "### {} mlsize check `{}`: {} of {} rules failed\n",
        if c.passed {
            ":white_check_mark:"
        } else {
            ":x:"
        },
        esc(&name),
        failed,
        c.rules.len()
    )?;
    for line in cache_lines(c, o) {
        writeln!(out, "{}\n", esc(&line))?;
    }
    writeln!(out, "| | rule | actual | limit |\n|---|---|---:|---:|")?;
    for r in &c.rules {
        let (a, l) = values(r, o);
        writeln!(
            out,
            "| {} | {} | {a} | {l} |",
            if r.passed { "PASS" } else { "**FAIL**" },
            esc(&r.rule)
        )?;
    }
    for r in c.rules.iter().filter(|r| !r.passed) {
        writeln!(
            out,
            "\n**{}**: {}",
            esc(&r.rule),
            esc(&message(r, o, c.dockerfile.as_deref()))
        )?;
    }
    Ok(())
}
