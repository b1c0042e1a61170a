//! JSON Schemas (draft 2020-12) of every JSON output, generated from the
//! Rust types that are serialised, so they cannot drift: `analyze` (with
//! `tree` under `--tree`), `diff` (with `growth` under `--tree`) and
//! `check`. They are committed under `schema/` (`mlsize --generate
//! schema-analyze` and so on print them; a test keeps the files up to date)
//! and every JSON the test suite produces is validated against them.
//!
//! The compatibility promise of `mlsize/v1`: fields are added, never renamed,
//! removed or retyped; a change that would break it is a new schema name.

use schemars::JsonSchema;
use serde::Serialize;

use super::Report;
use super::budget::CheckReport;
use super::diff::Diff;
use super::tree::{GrowthNode, TreeNode};

/// What `analyze --format json [--tree]` prints (and the HTML page embeds).
#[derive(Serialize, JsonSchema)]
#[schemars(title = "mlsize analyze (mlsize/v1)")]
pub struct AnalyzeOutput<'a> {
    /// The report.
    #[serde(flatten)]
    pub report: &'a Report,
    /// Where the bytes are, by directory (only with `--tree`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<&'a TreeNode>,
}

/// What `diff --format json [--tree]` prints (and the HTML page embeds).
#[derive(Serialize, JsonSchema)]
#[schemars(title = "mlsize diff (mlsize/v1)")]
pub struct DiffOutput<'a> {
    /// The comparison.
    #[serde(flatten)]
    pub diff: &'a Diff,
    /// What changed, by directory (only with `--tree`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<&'a GrowthNode>,
}

/// What `check --format json` prints: the report as it is.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "mlsize check (mlsize/v1)")]
pub struct CheckOutput<'a> {
    /// The verdict and the rules.
    #[serde(flatten)]
    pub check: &'a CheckReport,
}

/// The schema of one output, as committed in `schema/<kind>.schema.json`.
pub fn schema(kind: Kind) -> serde_json::Value {
    // What is printed: fields skipped when empty are optional.
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut s = match kind {
        Kind::Analyze => generator.into_root_schema_for::<AnalyzeOutput<'_>>(),
        Kind::Diff => generator.into_root_schema_for::<DiffOutput<'_>>(),
        Kind::Check => generator.into_root_schema_for::<CheckOutput<'_>>(),
        Kind::Fix => generator.into_root_schema_for::<crate::fix::FixReport>(),
    }
    .to_value();
    if let Some(o) = s.as_object_mut() {
        o.insert(
            "$id".into(),
            format!("https://mlsize.dev/schema/v1/{}.schema.json", kind.name()).into(),
        );
    }
    s
}

/// Which output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `mlsize analyze`.
    Analyze,
    /// `mlsize diff`.
    Diff,
    /// `mlsize check`.
    Check,
    /// `mlsize fix`.
    Fix,
}

impl Kind {
    /// `analyze`, `diff`, `check`, `fix`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Analyze => "analyze",
            Kind::Diff => "diff",
            Kind::Check => "check",
            Kind::Fix => "fix",
        }
    }
}
