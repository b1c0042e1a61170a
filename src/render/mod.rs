//! Stage 7, render: `&Report` → text on any `io::Write` (table, JSON).
//! Nothing else in mlsize writes to standard output.

pub mod check;
pub mod diff;
pub mod fix;
pub mod html;
pub mod json;
pub mod markdown;
pub mod style;
pub mod table;
pub mod text;
pub mod units;

/// How reports are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    /// Decimal units (kB, MB, GB) instead of binary ones.
    pub si: bool,
    /// Exact integers instead of human sizes.
    pub exact: bool,
    /// Rows in "top" lists.
    pub top: usize,
    /// Table width in columns; long cells wrap to fit, except paths, whose
    /// middle is cut out instead ([`table::fit_path`]).
    pub width: u16,
    /// Colour where it carries meaning ([`style`]).
    pub color: bool,
}

impl RenderOptions {
    /// Formats a size according to the options.
    pub fn bytes(&self, b: u64) -> String {
        if self.exact {
            b.to_string()
        } else {
            units::format_bytes(b, self.si)
        }
    }

    /// Formats a signed delta according to the options.
    pub fn delta(&self, d: i128) -> String {
        if self.exact {
            if d > 0 {
                format!("+{d}")
            } else {
                d.to_string()
            }
        } else {
            units::format_delta(d, self.si)
        }
    }
}
