//! Colour in the tables, where it carries meaning: wasted bytes, FAIL and
//! PASS, growth and shrinkage, categories. Only when [`RenderOptions::color`]
//! says so (see [`use_color`]); every coloured word is also there in plain
//! text, so nothing is lost without colour.

use comfy_table::{Attribute, Cell, Color};

use super::RenderOptions;

/// What a coloured value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Wasted bytes, a failed rule, growth.
    Bad,
    /// A passed rule, shrinkage, savings.
    Good,
    /// Worth a look (an estimate, a warning).
    Warn,
}

impl Tone {
    fn color(self) -> Color {
        match self {
            Tone::Bad => Color::Red,
            Tone::Good => Color::Green,
            Tone::Warn => Color::Yellow,
        }
    }

    fn ansi(self) -> &'static str {
        match self {
            Tone::Bad => "\x1b[1;31m",
            Tone::Good => "\x1b[32m",
            Tone::Warn => "\x1b[33m",
        }
    }
}

/// A table cell, coloured when colour is on.
pub fn cell(text: impl ToString, tone: Option<Tone>, o: &RenderOptions) -> Cell {
    let c = Cell::new(text);
    match tone {
        Some(t) if o.color => {
            let c = c.fg(t.color());
            if t == Tone::Bad {
                c.add_attribute(Attribute::Bold)
            } else {
                c
            }
        }
        _ => c,
    }
}

/// Text for a line outside a table, coloured when colour is on.
pub fn text(s: &str, tone: Tone, o: &RenderOptions) -> String {
    if o.color {
        format!("{}{s}\x1b[0m", tone.ansi())
    } else {
        s.to_string()
    }
}

/// The tone of a signed change of size: growth is bad, shrinkage good.
pub fn change(delta: i128) -> Option<Tone> {
    match delta.cmp(&0) {
        std::cmp::Ordering::Greater => Some(Tone::Bad),
        std::cmp::Ordering::Less => Some(Tone::Good),
        std::cmp::Ordering::Equal => None,
    }
}

/// Wasted bytes: bad when there are any.
pub fn wasted(bytes: u64) -> Option<Tone> {
    (bytes > 0).then_some(Tone::Bad)
}

/// A category name in its colour (the HTML report's palette, in the 256
/// colours every terminal has).
pub fn category(name: &str, o: &RenderOptions) -> Cell {
    let c = Cell::new(name);
    if !o.color {
        return c;
    }
    let code = match name {
        "pip-cache" => 209,
        "conda-pkgs" => 215,
        "apt-cache" => 221,
        "model-cache" => 175,
        "nsight" => 135,
        "cupti" => 177,
        "headers" => 114,
        "static-libs" => 72,
        "cuda-libs" => 66,
        "cuda-tools" => 67,
        "python-bytecode" => 227,
        "docs" => 250,
        _ => return c,
    };
    c.fg(Color::AnsiValue(code))
}

/// Whether to colour: `--color always|never` decide; with `auto`, NO_COLOR
/// (set and not empty) turns colour off, CLICOLOR_FORCE (set, not `0`) on
/// even in a pipe, CLICOLOR=0 off; otherwise colour when standard output is
/// a terminal that is not `dumb` (<https://no-color.org>, <https://bixense.com/clicolors/>).
pub fn use_color(
    choice: crate::cli::ColorChoice,
    env: impl Fn(&str) -> Option<String>,
    stdout_is_terminal: bool,
) -> bool {
    use crate::cli::ColorChoice;
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            if set("NO_COLOR").is_some() {
                false
            } else if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
                true
            } else if set("CLICOLOR").is_some_and(|v| v == "0") {
                false
            } else {
                stdout_is_terminal && set("TERM").is_none_or(|t| t != "dumb")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ColorChoice;

    #[test]
    fn the_choice_follows_flags_then_environment_then_the_terminal() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(use_color(
            ColorChoice::Always,
            env(&[("NO_COLOR", "1")]),
            false
        ));
        assert!(!use_color(
            ColorChoice::Never,
            env(&[("CLICOLOR_FORCE", "1")]),
            true
        ));
        assert!(use_color(ColorChoice::Auto, env(&[]), true));
        assert!(!use_color(ColorChoice::Auto, env(&[]), false));
        assert!(!use_color(
            ColorChoice::Auto,
            env(&[("NO_COLOR", "1")]),
            true
        ));
        // An empty NO_COLOR is not set (no-color.org).
        assert!(use_color(ColorChoice::Auto, env(&[("NO_COLOR", "")]), true));
        assert!(use_color(
            ColorChoice::Auto,
            env(&[("CLICOLOR_FORCE", "1")]),
            false
        ));
        assert!(!use_color(
            ColorChoice::Auto,
            env(&[("CLICOLOR_FORCE", "0")]),
            false
        ));
        assert!(!use_color(
            ColorChoice::Auto,
            env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]),
            true
        ));
        assert!(!use_color(
            ColorChoice::Auto,
            env(&[("CLICOLOR", "0")]),
            true
        ));
        assert!(!use_color(
            ColorChoice::Auto,
            env(&[("TERM", "dumb")]),
            true
        ));
    }
}
