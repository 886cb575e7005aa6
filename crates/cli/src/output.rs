//! How the observe commands print: the output format flag, colors (only on a
//! terminal, never with `NO_COLOR`), the status glyphs, cell formats and a
//! tabwriter-style table (padding 3, numbers right-aligned, names left).
//!
//! Everything here is pure (text in, text out) and table-tested; the commands
//! only decide what goes in the cells.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};

/// `-o/--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// Aligned columns, with more of them.
    Wide,
    /// JSON.
    Json,
}

/// Writes `text` to standard output and flushes it. Unlike `print!`, a
/// reader that went away (`weft tap … | head`) is an error the caller can
/// return, not a panic; `main` ends quietly on it ([`is_broken_pipe`]).
pub fn out(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// [`out`] with a newline.
pub fn out_line(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Whether an error (or its cause) is standard output's reader having gone
/// away: the command's output is not wanted any more, which is no failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Spaces between columns (Linkerd's tabwriter padding).
pub const PADDING: usize = 3;

/// The check passed.
pub const GLYPH_OK: &str = "√";
/// The check passed with a warning.
pub const GLYPH_WARNING: &str = "‼";
/// The check failed.
pub const GLYPH_ERROR: &str = "×";

/// Whether output is colored: stdout is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>).
pub fn color_wanted() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    decide_color(std::io::stdout().is_terminal(), no_color)
}

/// The color decision (pure): a terminal without `NO_COLOR`.
pub fn decide_color(is_terminal: bool, no_color: bool) -> bool {
    is_terminal && !no_color
}

/// A color for a piece of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// Success.
    Green,
    /// Warning.
    Yellow,
    /// Failure.
    Red,
    /// Emphasis (headers).
    Bold,
}

/// Wraps `text` in the ANSI escapes for `color` when `enabled`.
pub fn paint(text: &str, color: Color, enabled: bool) -> String {
    if !enabled {
        return text.to_string();
    }
    let code = match color {
        Color::Green => "1;32",
        Color::Yellow => "33",
        Color::Red => "31",
        Color::Bold => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// `98.33%`, or `-` without data.
pub fn success_cell(rate: Option<f64>) -> String {
    match rate {
        Some(rate) => format!("{:.2}%", rate * 100.0),
        None => "-".into(),
    }
}

/// `2.0rps`, or `-` without data.
pub fn rps_cell(rps: Option<f64>) -> String {
    match rps {
        Some(rps) => format!("{rps:.1}rps"),
        None => "-".into(),
    }
}

/// `3ms` (rounded), or `-` without data.
pub fn latency_cell(milliseconds: Option<f64>) -> String {
    match milliseconds {
        Some(value) => format!("{}ms", value.round() as i64),
        None => "-".into(),
    }
}

/// `1/1`.
pub fn meshed_cell(meshed: u64, running: u64) -> String {
    format!("{meshed}/{running}")
}

/// `1234.5B/s`, or `-` without data.
pub fn bytes_rate_cell(bytes_per_second: Option<f64>) -> String {
    match bytes_per_second {
        Some(value) => format!("{value:.1}B/s"),
        None => "-".into(),
    }
}

/// A count, or `-` without data.
pub fn count_cell(count: Option<u64>) -> String {
    count.map_or_else(|| "-".into(), |count| count.to_string())
}

/// A duration in microseconds as `top` shows it: `850µs`, `12ms`, `1.5s`.
pub fn micros_cell(micros: u64) -> String {
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{}ms", micros / 1_000)
    } else {
        format!("{:.1}s", micros as f64 / 1_000_000.0)
    }
}

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Names.
    Left,
    /// Numbers.
    Right,
}

/// A table: a header row and rows of cells, printed with [`Table::render`].
#[derive(Debug, Clone, Default)]
pub struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            columns: columns
                .iter()
                .map(|(name, align)| (name.to_string(), *align))
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra cells dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.columns.len(), String::new());
        self.rows.push(cells);
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The text: every column as wide as its widest cell, columns separated
    /// by [`PADDING`] spaces, no trailing spaces, one line per row.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|index| {
                let header = self.columns[index].0.chars().count();
                self.rows
                    .iter()
                    .map(|row| row[index].chars().count())
                    .fold(header, usize::max)
            })
            .collect();
        let mut text = String::new();
        let header: Vec<String> = self.columns.iter().map(|(name, _)| name.clone()).collect();
        for cells in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (index, cell) in cells.iter().enumerate() {
                let pad = widths[index] - cell.chars().count();
                if index > 0 {
                    line.push_str(&" ".repeat(PADDING));
                }
                match self.columns[index].1 {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                }
            }
            let _ = writeln!(text, "{}", line.trim_end());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        for (got, expected) in [
            (success_cell(Some(0.98333)), "98.33%"),
            (success_cell(Some(1.0)), "100.00%"),
            (success_cell(None), "-"),
            (rps_cell(Some(2.0)), "2.0rps"),
            (rps_cell(Some(7.06)), "7.1rps"),
            (rps_cell(None), "-"),
            (latency_cell(Some(3.0)), "3ms"),
            (latency_cell(Some(2.6)), "3ms"),
            (latency_cell(None), "-"),
            (meshed_cell(1, 1), "1/1"),
            (bytes_rate_cell(Some(1234.5)), "1234.5B/s"),
            (count_cell(Some(4)), "4"),
            (count_cell(None), "-"),
            (micros_cell(850), "850µs"),
            (micros_cell(12_345), "12ms"),
            (micros_cell(1_500_000), "1.5s"),
        ] {
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn colors_only_on_a_terminal_without_no_color() {
        for (terminal, no_color, expected) in [
            (true, false, true),
            (true, true, false),
            (false, false, false),
            (false, true, false),
        ] {
            assert_eq!(decide_color(terminal, no_color), expected);
        }
        assert_eq!(paint("√", Color::Green, false), "√");
        assert_eq!(paint("√", Color::Green, true), "\x1b[1;32m√\x1b[0m");
    }

    #[test]
    fn table_pads_by_three_and_right_aligns_numbers() {
        let mut table = Table::new(&[
            ("NAME", Align::Left),
            ("MESHED", Align::Right),
            ("SUCCESS", Align::Right),
        ]);
        table.row(vec!["authors".into(), "1/1".into(), "100.00%".into()]);
        table.row(vec!["traffic".into(), "1/1".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "NAME      MESHED   SUCCESS\n\
             authors      1/1   100.00%\n\
             traffic      1/1         -\n"
        );
    }

    #[test]
    fn left_columns_do_not_leave_trailing_spaces() {
        let mut table = Table::new(&[("SRC", Align::Left), ("SECURED", Align::Left)]);
        table.row(vec!["web".into(), "√".into()]);
        table.row(vec!["a-long-name".into(), "".into()]);
        assert_eq!(
            table.render(),
            "SRC           SECURED\nweb           √\na-long-name\n"
        );
        assert!(Table::new(&[("A", Align::Left)]).is_empty());
    }
}
