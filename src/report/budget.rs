//! Budgets: `mlsize.toml` (or flags) + a [`Report`](super::Report) (and a baseline) →
//! one [`RuleResult`] per rule, PASS or FAIL, with the instructions, files and
//! fix responsible for each failure.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::Analysis;
use super::advice::{self, Recommendation};
use super::diff::Diff;
use crate::category::Rules;
use crate::error::{Error, Result};
use crate::size::parse_size;

/// Every key a budget file may hold, in evaluation order.
pub const KEYS: &[&str] = &[
    "max_compressed_bytes",
    "max_visible_bytes",
    "max_wasted_bytes",
    "max_wasted_percent",
    "max_duplicate_bytes",
    "max_cuda_duplicate_bytes",
    "max_layer_bytes",
    "max_layers",
    "max_growth_bytes",
    "max_growth_percent",
    "categories",
    "category_growth",
];

/// A size or percentage limit, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// The limit: bytes, a percentage, or a count.
    pub value: f64,
    /// As written (`3GB`, `5%`, `12`).
    pub text: String,
    /// `mlsize.toml:4`, `--max-size`.
    pub origin: String,
}

/// A parsed budget.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// Image-wide rules by key.
    pub rules: BTreeMap<String, Limit>,
    /// Per-category limits on content bytes.
    pub categories: BTreeMap<String, Limit>,
    /// Per-category limits on visible-byte growth against the baseline.
    pub category_growth: BTreeMap<String, Limit>,
    /// Notes to print with the results (e.g. from a dive config).
    pub notes: Vec<String>,
}

fn line_of(text: &str, key: &str) -> usize {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let t = t.trim_start_matches('"');
        if let Some(rest) = t.strip_prefix(key) {
            let rest = rest.trim_start_matches('"').trim_start();
            if rest.starts_with('=') || rest.starts_with(']') || key.starts_with('[') {
                return i + 1;
            }
        }
        if t.starts_with('[') && t.trim_start_matches('[').trim_start().starts_with(key) {
            return i + 1;
        }
    }
    0
}

fn value_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Parses a size given as an integer or a string (`"3GB"`).
fn size_limit(v: &toml::Value, key: &str, origin: &str) -> Result<Limit> {
    let text = value_text(v).ok_or_else(|| {
        Error::Usage(format!(
            "{origin}: '{key}' must be a size such as 3GB, 2.5GiB, 500MB or an integer of bytes"
        ))
    })?;
    let bytes = match v {
        toml::Value::Integer(i) if *i >= 0 => *i as u64,
        toml::Value::String(s) => {
            parse_size(s).map_err(|e| Error::Usage(format!("{origin}: '{key}': {e}")))?
        }
        _ => {
            return Err(Error::Usage(format!(
                "{origin}: '{key}' = {text} is not a size: expected an integer of bytes or a string such as \"3GB\" (decimal: kB MB GB TB) or \"2.5GiB\" (binary: KiB MiB GiB TiB)"
            )));
        }
    };
    Ok(Limit {
        value: bytes as f64,
        text,
        origin: origin.to_string(),
    })
}

fn percent_limit(v: &toml::Value, key: &str, origin: &str) -> Result<Limit> {
    let text = value_text(v).unwrap_or_default();
    let p = match v {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        toml::Value::String(s) => s.trim().trim_end_matches('%').trim().parse::<f64>().map_err(|_| {
            Error::Usage(format!("{origin}: '{key}' = \"{s}\" is not a percentage: expected a number such as 10 or \"10%\""))
        })?,
        _ => return Err(Error::Usage(format!("{origin}: '{key}' must be a percentage such as 10 or \"10%\""))),
    };
    if !(p.is_finite() && p >= 0.0) {
        return Err(Error::Usage(format!(
            "{origin}: '{key}' must be a percentage of at least 0"
        )));
    }
    Ok(Limit {
        value: p,
        text,
        origin: origin.to_string(),
    })
}

fn count_limit(v: &toml::Value, key: &str, origin: &str) -> Result<Limit> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(Limit {
            value: *i as f64,
            text: i.to_string(),
            origin: origin.to_string(),
        }),
        _ => Err(Error::Usage(format!(
            "{origin}: '{key}' must be a whole number"
        ))),
    }
}

impl Budget {
    /// Parses a budget file. Unknown keys and category names are errors that
    /// name the key, its line and what is known; every problem of the file is
    /// reported at once, not only the first.
    pub fn parse(text: &str, file: &str, rules: &Rules) -> Result<Budget> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            Error::Usage(format!("'{file}': invalid TOML: {}", e.to_string().trim()))
        })?;
        let mut b = Budget::default();
        // (line, message), reported in the file's order.
        let mut problems: Vec<(usize, String)> = Vec::new();
        for (key, v) in &table {
            let line = line_of(text, key);
            let origin = format!("{file}:{line}");
            match key.as_str() {
                "categories" | "category_growth" => {
                    let Some(t) = v.as_table() else {
                        problems.push((
                            line,
                            format!(
                                "{origin}: '{key}' must be a table such as [{key}] with pip-cache = 0"
                            ),
                        ));
                        continue;
                    };
                    for (name, lv) in t {
                        let line = line_of(text, name);
                        let origin = format!("{file}:{line}");
                        if let Err(e) = b.set_category(key, name, lv, &origin, rules) {
                            problems.push((line, e));
                        }
                    }
                }
                _ => {
                    if let Err(e) = b.set(key, v, &origin) {
                        problems.push((line, e));
                    }
                }
            }
        }
        problems.sort();
        let mut problems: Vec<String> = problems.into_iter().map(|p| p.1).collect();
        match problems.len() {
            0 => Ok(b),
            1 => Err(Error::Usage(problems.remove(0))),
            n => Err(Error::Usage(format!(
                "'{file}' has {n} problems: {}",
                problems.join("; ")
            ))),
        }
    }

    /// Sets one image-wide rule from a value; `origin` says where it was
    /// written (`mlsize.toml:3`, or a flag such as `--max-size`).
    pub fn set(&mut self, key: &str, v: &toml::Value, origin: &str) -> Result<(), String> {
        let limit = match key {
            "max_wasted_percent" | "max_growth_percent" => percent_limit(v, key, origin),
            "max_layers" => count_limit(v, key, origin),
            "categories" | "category_growth" => {
                return Err(format!(
                    "{origin}: '{key}' must be a table such as [{key}] with pip-cache = 0"
                ));
            }
            k if KEYS.contains(&k) => size_limit(v, key, origin),
            _ => {
                return Err(format!(
                    "{origin}: unknown key '{key}'; known keys: {}",
                    KEYS.join(", ")
                ));
            }
        };
        let limit = limit.map_err(|e| e.to_string())?;
        self.rules.insert(key.to_string(), limit);
        Ok(())
    }

    /// Sets a limit of the `categories` or `category_growth` table.
    pub fn set_category(
        &mut self,
        table: &str,
        name: &str,
        v: &toml::Value,
        origin: &str,
        rules: &Rules,
    ) -> Result<(), String> {
        if rules.index_of(name).is_none() {
            let cats: Vec<&str> = rules.names().collect();
            return Err(format!(
                "{origin}: unknown category '{name}' in [{table}]; known categories: {}",
                cats.join(", ")
            ));
        }
        let l = size_limit(v, &format!("{table}.{name}"), origin).map_err(|e| e.to_string())?;
        if table == "categories" {
            self.categories.insert(name.to_string(), l);
        } else {
            self.category_growth.insert(name.to_string(), l);
        }
        Ok(())
    }

    /// Maps a dive `.dive-ci` file's rules to mlsize rules.
    pub fn from_dive_ci(text: &str, file: &str) -> Result<Budget> {
        let mut b = Budget::default();
        let mut in_rules = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim_end();
            if line.trim().is_empty() {
                continue;
            }
            if !raw.starts_with(' ') && !raw.starts_with('\t') {
                in_rules = line.trim() == "rules:";
                continue;
            }
            if !in_rules {
                continue;
            }
            let Some((k, v)) = line.trim().split_once(':') else {
                continue;
            };
            let v = v.trim().trim_matches('"').trim_matches('\'');
            if v.eq_ignore_ascii_case("disabled") || v.is_empty() {
                continue;
            }
            let origin = format!("{file}:{}", i + 1);
            let bad = || Error::Usage(format!("{origin}: invalid value '{v}' for dive rule '{k}'"));
            match k.trim() {
                "lowestEfficiency" => {
                    let e: f64 = v.parse().map_err(|_| bad())?;
                    let p = ((1.0 - e) * 100.0).max(0.0);
                    b.tighten("max_wasted_percent", p, format!("{:.2}", p), &origin);
                    b.notes.push(format!(
                        "{origin}: dive lowestEfficiency {v} -> max_wasted_percent {p:.2}"
                    ));
                }
                "highestWastedBytes" => {
                    let bytes = parse_size(v).map_err(|_| bad())?;
                    b.tighten("max_wasted_bytes", bytes as f64, v.to_string(), &origin);
                    b.notes.push(format!(
                        "{origin}: dive highestWastedBytes {v} -> max_wasted_bytes"
                    ));
                }
                "highestUserWastedPercent" => {
                    let f: f64 = v.parse().map_err(|_| bad())?;
                    let p = f * 100.0;
                    b.tighten("max_wasted_percent", p, format!("{p:.2}"), &origin);
                    b.notes.push(format!(
                        "{origin}: dive highestUserWastedPercent {v} -> max_wasted_percent {p:.2} (of all content, not only the layers above the base)"
                    ));
                }
                other => {
                    return Err(Error::Usage(format!(
                        "{origin}: unknown dive rule '{other}'; known: lowestEfficiency, highestWastedBytes, highestUserWastedPercent"
                    )));
                }
            }
        }
        b.notes.push(
            "wasted bytes differ from dive's: mlsize counts every file under a deleted directory and only the lower copy of an overwritten file; dive counts deleted directories as 0 and both copies of an overwritten file".into(),
        );
        Ok(b)
    }

    fn tighten(&mut self, key: &str, value: f64, text: String, origin: &str) {
        let keep = self.rules.get(key).is_some_and(|l| l.value <= value);
        if !keep {
            self.rules.insert(
                key.to_string(),
                Limit {
                    value,
                    text,
                    origin: origin.to_string(),
                },
            );
        }
    }

    /// Adds or replaces rules from another budget (flags override the file).
    pub fn merge(&mut self, other: Budget) {
        self.rules.extend(other.rules);
        self.categories.extend(other.categories);
        self.category_growth.extend(other.category_growth);
        self.notes.extend(other.notes);
    }

    /// Whether the budget has any rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.categories.is_empty() && self.category_growth.is_empty()
    }

    /// Whether a rule needs a baseline image.
    pub fn needs_baseline(&self) -> bool {
        self.rules.contains_key("max_growth_bytes")
            || self.rules.contains_key("max_growth_percent")
            || !self.category_growth.is_empty()
    }
}

/// A layer responsible for a failure.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Culprit {
    /// Layer (0-based).
    pub layer_index: usize,
    /// Its instruction.
    pub instruction: String,
    /// Bytes it contributes to the rule.
    pub bytes: u64,
    /// Line of the instruction in `--dockerfile`, when it was found there.
    pub dockerfile_line: Option<usize>,
}

/// A file responsible for a failure.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CulpritFile {
    /// Path.
    pub path: String,
    /// Size.
    pub bytes: u64,
    /// Layer that wrote it.
    pub layer_index: usize,
}

/// A finding (recommendation) that contributes to a failed rule's measure.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Finding {
    /// Bytes of the rule's measure that the finding's fix removes (for
    /// `max_compressed_bytes`, estimated compressed bytes).
    pub bytes: u64,
    /// The recommendation, as `analyze` reports it.
    pub recommendation: Recommendation,
}

/// One evaluated rule.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RuleResult {
    /// Rule name: a budget key, or `categories.pip-cache`.
    pub rule: String,
    /// Whether it passed.
    pub passed: bool,
    /// `bytes`, `percent` or `count`.
    pub unit: &'static str,
    /// Measured value.
    pub actual: f64,
    /// The limit.
    pub limit: f64,
    /// The limit as written.
    pub limit_text: String,
    /// Where the limit was set: `mlsize.toml:4`, or the flag (`--max-size`).
    pub origin: String,
    /// Whether `actual` is an estimate (`max_compressed_bytes` on layers
    /// stored uncompressed).
    pub estimated: bool,
    /// For failures: the bytes the findings are measured against (the wasted
    /// bytes of a percentage rule, or `actual` itself for byte rules).
    pub measured_bytes: Option<u64>,
    /// For failures: the layers responsible, largest first.
    pub instructions: Vec<Culprit>,
    /// For failures: the largest files responsible.
    pub top_files: Vec<CulpritFile>,
    /// For failures: the findings whose fixes reduce the measure, largest
    /// first, each with its share of it.
    pub findings: Vec<Finding>,
    /// For failures: the sum of `findings[].bytes`.
    pub explained_bytes: u64,
    /// For failures: what to change, when the rule has an answer (the largest
    /// finding's fix, or the rule's own advice).
    pub fix: Option<String>,
}

impl RuleResult {
    fn new(rule: String, unit: &'static str, actual: f64, limit: &Limit) -> RuleResult {
        RuleResult {
            rule,
            passed: actual <= limit.value,
            unit,
            actual,
            limit: limit.value,
            limit_text: limit.text.clone(),
            origin: limit.origin.clone(),
            estimated: false,
            measured_bytes: None,
            instructions: Vec::new(),
            top_files: Vec::new(),
            findings: Vec::new(),
            explained_bytes: 0,
            fix: None,
        }
    }

    /// Explains a failure by what the measure is made of: `weight(inode)` is
    /// the inode's part of the measure; layers, files and findings are ranked
    /// by it.
    fn explain(&mut self, a: &Analysis, measured: u64, weight: &dyn Fn(usize) -> u64) {
        let r = &a.report;
        let mut per_layer = vec![0u64; r.layers.len()];
        let mut files: Vec<(u64, usize)> = Vec::new();
        for (i, n) in a.inodes.iter().enumerate() {
            let w = weight(i);
            if w == 0 {
                continue;
            }
            if let Some(l) = per_layer.get_mut(n.layer as usize) {
                *l += w;
            }
            files.push((w, i));
        }
        self.measured_bytes = Some(measured);
        self.instructions = culprits(a, per_layer.into_iter().enumerate().collect());
        files.sort_by(|x, y| {
            y.0.cmp(&x.0)
                .then_with(|| a.inodes[x.1].shown_path().cmp(a.inodes[y.1].shown_path()))
        });
        self.top_files = files
            .iter()
            .take(5)
            .map(|&(w, i)| CulpritFile {
                path: a.inodes[i].shown_path().to_string(),
                bytes: w,
                layer_index: a.inodes[i].layer as usize,
            })
            .collect();
        let mut findings: Vec<Finding> = r
            .recommendations
            .iter()
            .zip(&a.targets)
            .map(|(rec, t)| Finding {
                bytes: t.iter().map(|&i| weight(i as usize)).sum(),
                recommendation: rec.clone(),
            })
            .filter(|f| f.bytes > 0)
            .collect();
        findings.sort_by(|x, y| {
            y.bytes
                .cmp(&x.bytes)
                .then_with(|| x.recommendation.id.cmp(&y.recommendation.id))
        });
        self.explained_bytes = findings.iter().map(|f| f.bytes).sum();
        self.fix = findings.first().map(|f| f.recommendation.fix.clone());
        self.findings = findings;
    }

    /// Explains a failure by per-layer figures only (no file is responsible,
    /// e.g. compressed bytes of layers the fixes do not touch).
    fn explain_layers(&mut self, a: &Analysis, measured: u64, per_layer: Vec<(usize, u64)>) {
        self.measured_bytes = Some(measured);
        self.instructions = culprits(a, per_layer);
    }
}

fn culprits(a: &Analysis, per_layer: Vec<(usize, u64)>) -> Vec<Culprit> {
    let mut v: Vec<Culprit> = per_layer
        .into_iter()
        .filter(|(_, b)| *b > 0)
        .map(|(l, bytes)| Culprit {
            layer_index: l,
            instruction: a.report.layers[l].instruction.clone(),
            bytes,
            dockerfile_line: None,
        })
        .collect();
    v.sort_by(|x, y| {
        y.bytes
            .cmp(&x.bytes)
            .then(x.layer_index.cmp(&y.layer_index))
    });
    v
}

/// Paths of the copies that keeping one file of each duplicate group removes
/// (every path but the first in byte order).
fn duplicate_copies(a: &Analysis, cuda_only: bool) -> HashSet<&str> {
    let r = &a.report;
    if cuda_only {
        r.cuda_duplicates
            .iter()
            .flat_map(|f| f.copies.iter().skip(1))
            .map(|c| c.path.as_str())
            .collect()
    } else {
        r.duplicates
            .iter()
            .flat_map(|g| g.paths.iter().skip(1))
            .map(String::as_str)
            .collect()
    }
}

/// Evaluates a budget against an analysis (and, for growth rules, a diff
/// against the baseline).
pub fn check(
    a: &Analysis,
    rules: &Rules,
    budget: &Budget,
    baseline: Option<&Diff>,
) -> Vec<RuleResult> {
    let r = &a.report;
    let im = &r.image;
    let inode = |i: usize| &a.inodes[i];
    let mut out = Vec::new();
    for key in KEYS {
        let Some(limit) = budget.rules.get(*key) else {
            continue;
        };
        let (actual, unit): (f64, &'static str) = match *key {
            // What a pull downloads: the real blob sizes, or the gzip
            // estimate of layers stored uncompressed (`estimated` says so).
            "max_compressed_bytes" => (im.download_bytes as f64, "bytes"),
            "max_visible_bytes" => (im.visible_bytes as f64, "bytes"),
            "max_wasted_bytes" => (im.wasted_bytes as f64, "bytes"),
            "max_wasted_percent" => (
                if im.content_bytes == 0 {
                    0.0
                } else {
                    im.wasted_bytes as f64 * 100.0 / im.content_bytes as f64
                },
                "percent",
            ),
            "max_duplicate_bytes" => (im.duplicate_reclaimable_bytes as f64, "bytes"),
            "max_cuda_duplicate_bytes" => (im.cuda_duplicate_reclaimable_bytes as f64, "bytes"),
            "max_layer_bytes" => (
                r.layers.iter().map(|l| l.content_bytes).max().unwrap_or(0) as f64,
                "bytes",
            ),
            "max_layers" => (im.layer_count as f64, "count"),
            "max_growth_bytes" | "max_growth_percent" => {
                let Some(d) = baseline else { continue };
                let t = d.totals.iter().find(|t| t.name == "visible_bytes");
                let (old, delta) = t.map_or((0, 0), |t| (t.old, t.delta));
                if *key == "max_growth_bytes" {
                    (delta as f64, "bytes")
                } else if old == 0 {
                    (0.0, "percent")
                } else {
                    (delta as f64 * 100.0 / old as f64, "percent")
                }
            }
            _ => continue,
        };
        let mut res = RuleResult::new(key.to_string(), unit, actual, limit);
        res.estimated = *key == "max_compressed_bytes"
            && im.download_bytes_basis != super::DownloadBasis::Stored;
        if res.passed {
            out.push(res);
            continue;
        }
        match *key {
            "max_compressed_bytes" => {
                // Files the fixes remove save their layer's compressed share;
                // the layers themselves are ranked by their compressed bytes.
                res.explain(a, im.download_bytes, &|i| {
                    let n = inode(i);
                    r.layers
                        .get(n.layer as usize)
                        .map_or(0, |l| advice::compressed_share(n.bytes, l))
                });
                res.top_files.clear();
                res.explain_layers(
                    a,
                    im.download_bytes,
                    r.layers
                        .iter()
                        .map(|l| (l.index, l.download_bytes()))
                        .collect(),
                );
            }
            "max_visible_bytes" => {
                res.explain(a, im.visible_bytes, &|i| {
                    let n = inode(i);
                    if n.visible { n.bytes } else { 0 }
                });
            }
            "max_wasted_bytes" | "max_wasted_percent" => {
                res.explain(a, im.wasted_bytes, &|i| {
                    let n = inode(i);
                    if n.visible { 0 } else { n.bytes }
                });
            }
            "max_duplicate_bytes" | "max_cuda_duplicate_bytes" => {
                let cuda_only = *key == "max_cuda_duplicate_bytes";
                let copies = duplicate_copies(a, cuda_only);
                let measured = if cuda_only {
                    im.cuda_duplicate_reclaimable_bytes
                } else {
                    im.duplicate_reclaimable_bytes
                };
                res.explain(a, measured, &|i| {
                    let n = inode(i);
                    if n.visible && copies.contains(n.shown_path()) {
                        n.bytes
                    } else {
                        0
                    }
                });
                if res.fix.is_none() {
                    res.fix = Some(
                        "keep one copy of each file: install or copy it once, or hard-link the copies"
                            .into(),
                    );
                }
            }
            "max_layer_bytes" => {
                let largest = r
                    .layers
                    .iter()
                    .max_by(|x, y| {
                        x.content_bytes
                            .cmp(&y.content_bytes)
                            .then(y.index.cmp(&x.index))
                    })
                    .map_or(0, |l| l.index);
                res.explain(a, actual as u64, &|i| {
                    let n = inode(i);
                    if n.layer as usize == largest {
                        n.bytes
                    } else {
                        0
                    }
                });
                let over: Vec<(usize, u64)> = r
                    .layers
                    .iter()
                    .filter(|l| l.content_bytes as f64 > limit.value)
                    .map(|l| (l.index, l.content_bytes))
                    .collect();
                res.instructions = culprits(a, over);
            }
            "max_layers" => {
                res.fix = Some(
                    "join consecutive RUN instructions with && (each RUN, COPY and ADD makes a layer), or build in stages and COPY --from the result into a final stage with few layers"
                        .into(),
                );
            }
            "max_growth_bytes" | "max_growth_percent" => {
                if let Some(d) = baseline {
                    res.measured_bytes = Some(
                        u64::try_from(
                            d.totals
                                .iter()
                                .find(|t| t.name == "visible_bytes")
                                .map_or(0, |t| t.delta),
                        )
                        .unwrap_or(0),
                    );
                    res.instructions = d
                        .instructions
                        .iter()
                        .filter(|i| i.delta > 0)
                        .filter_map(|i| {
                            i.new_layer_index
                                .map(|l| (l, u64::try_from(i.delta).unwrap_or(u64::MAX)))
                        })
                        .map(|(l, b)| Culprit {
                            layer_index: l,
                            instruction: r.layers[l].instruction.clone(),
                            bytes: b,
                            dockerfile_line: None,
                        })
                        .collect();
                    res.instructions.sort_by(|x, y| {
                        y.bytes
                            .cmp(&x.bytes)
                            .then(x.layer_index.cmp(&y.layer_index))
                    });
                    res.top_files = d
                        .files
                        .added
                        .iter()
                        .chain(&d.files.grown)
                        .take(5)
                        .map(|f| CulpritFile {
                            path: f.path.clone(),
                            bytes: u64::try_from(f.delta.unsigned_abs()).unwrap_or(u64::MAX),
                            layer_index: f.layer_index,
                        })
                        .collect();
                }
            }
            _ => {}
        }
        out.push(res);
    }
    for (name, limit) in &budget.categories {
        let Some(ci) = rules.index_of(name) else {
            continue;
        };
        let actual = r
            .categories
            .iter()
            .find(|c| c.name == *name)
            .map_or(0, |c| c.content_bytes);
        let mut res = RuleResult::new(format!("categories.{name}"), "bytes", actual as f64, limit);
        if !res.passed {
            res.explain(a, actual, &|i| {
                let n = inode(i);
                if n.category == ci { n.bytes } else { 0 }
            });
        }
        out.push(res);
    }
    if let Some(d) = baseline {
        for (name, limit) in &budget.category_growth {
            let delta = d
                .categories
                .iter()
                .find(|c| c.name == *name)
                .map_or(0, |c| c.delta);
            let mut res = RuleResult::new(
                format!("category_growth.{name}"),
                "bytes",
                delta as f64,
                limit,
            );
            if !res.passed
                && let Some(ci) = rules.index_of(name)
            {
                let visible = r
                    .categories
                    .iter()
                    .find(|c| c.name == *name)
                    .map_or(0, |c| c.visible_bytes);
                res.explain(a, visible, &|i| {
                    let n = inode(i);
                    if n.visible && n.category == ci {
                        n.bytes
                    } else {
                        0
                    }
                });
            }
            out.push(res);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Budget> {
        Budget::parse(text, "mlsize.toml", &Rules::builtin())
    }

    #[test]
    fn parses_every_key() {
        let b = parse(
            r#"
max_compressed_bytes = "1.5GB"
max_visible_bytes = "3GB"
max_wasted_bytes = 0
max_wasted_percent = 5
max_duplicate_bytes = "100MiB"
max_cuda_duplicate_bytes = "0"
max_layer_bytes = 2000000000
max_layers = 12
max_growth_bytes = "200MB"
max_growth_percent = "10%"

[categories]
pip-cache = 0
cupti = 0
headers = "50MB"

[category_growth]
cuda-libs = "100MB"
"#,
        )
        .unwrap();
        let v = |k: &str| b.rules[k].value;
        assert_eq!(v("max_compressed_bytes"), 1.5e9);
        assert_eq!(v("max_visible_bytes"), 3e9);
        assert_eq!(v("max_wasted_bytes"), 0.0);
        assert_eq!(v("max_wasted_percent"), 5.0);
        assert_eq!(v("max_duplicate_bytes"), (100u64 << 20) as f64);
        assert_eq!(v("max_cuda_duplicate_bytes"), 0.0);
        assert_eq!(v("max_layer_bytes"), 2e9);
        assert_eq!(v("max_layers"), 12.0);
        assert_eq!(v("max_growth_bytes"), 2e8);
        assert_eq!(v("max_growth_percent"), 10.0);
        assert_eq!(b.categories["headers"].value, 5e7);
        assert_eq!(b.categories["pip-cache"].origin, "mlsize.toml:14");
        assert_eq!(b.category_growth["cuda-libs"].value, 1e8);
        assert!(b.needs_baseline());
        assert_eq!(b.rules["max_visible_bytes"].origin, "mlsize.toml:3");
    }

    #[test]
    fn errors_name_key_line_and_known_names() {
        let cases = [
            (
                "max_visible = 1\n",
                "mlsize.toml:1: unknown key 'max_visible'; known keys: max_compressed_bytes",
            ),
            (
                "max_layers = 3\n\n[categories]\npip_cache = 0\n",
                "mlsize.toml:4: unknown category 'pip_cache' in [categories]; known categories: pip-cache",
            ),
            ("max_visible_bytes = \"12XB\"\n", "invalid size '12XB'"),
            (
                "max_visible_bytes = \"12XB\"\n",
                "expected a number followed by B, kB, MB",
            ),
            (
                "max_visible_bytes = -1\n",
                "mlsize.toml:1: 'max_visible_bytes' = -1 is not a size",
            ),
            (
                "max_layers = \"x\"\n",
                "'max_layers' must be a whole number",
            ),
            ("max_wasted_percent = \"lots\"\n", "is not a percentage"),
            ("categories = 3\n", "must be a table"),
            ("max_layers = \n", "invalid TOML"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: got {e}");
        }
    }

    #[test]
    fn dive_ci_rules_map_to_ours() {
        let b = Budget::from_dive_ci(
            "rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n",
            ".dive-ci",
        )
        .unwrap();
        assert!((b.rules["max_wasted_percent"].value - 5.0).abs() < 1e-9);
        assert_eq!(b.rules["max_wasted_bytes"].value, 2e7);
        assert!(b.notes.iter().any(|n| n.contains("differ from dive")));
        let b = Budget::from_dive_ci(
            "rules:\n  lowestEfficiency: 0.9\n  highestUserWastedPercent: 0.05\n",
            ".dive-ci",
        )
        .unwrap();
        assert!(
            (b.rules["max_wasted_percent"].value - 5.0).abs() < 1e-9,
            "the stricter one wins"
        );
        assert!(Budget::from_dive_ci("rules:\n  bogus: 1\n", ".dive-ci").is_err());
    }
}

/// The result of `mlsize check`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// Always `mlsize/v1`.
    pub schema: &'static str,
    /// Always `check`.
    pub kind: &'static str,
    /// The image checked.
    pub image: super::diff::Side,
    /// The baseline, when given.
    pub baseline: Option<String>,
    /// Which of the baseline's layers came from the layer cache and which
    /// were read (`None` without a baseline or with `--no-cache`).
    pub baseline_cache: Option<crate::source::cache::CacheUse>,
    /// Whether every rule passed.
    pub passed: bool,
    /// One result per rule.
    pub rules: Vec<RuleResult>,
    /// Notes (e.g. how dive rules were mapped).
    pub notes: Vec<String>,
    /// The Dockerfile the lines refer to.
    pub dockerfile: Option<String>,
    /// Line of the final stage's `FROM` in `dockerfile` (1 without one): where
    /// a failure that no instruction of the Dockerfile explains is reported.
    pub dockerfile_from_line: Option<usize>,
}
