//! The operator listings' plain-text tables, and the cell forms they share.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};

/// A time as the listings print it: RFC 3339, milliseconds, `Z`.
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One line of text: control characters (a buyer's or partner's words may hold any) as spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Each column's width: its widest cell, header included.
pub fn widths<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> [usize; N] {
    std::array::from_fn(|column| {
        rows.iter()
            .map(|row| row[column].chars().count())
            .chain([header[column].chars().count()])
            .max()
            .unwrap_or(0)
    })
}

/// One row, every column but the last padded to its width and followed by two spaces.
pub fn write_row<const N: usize>(out: &mut String, cells: [&str; N], widths: &[usize; N]) {
    for (i, cell) in cells.iter().enumerate() {
        if i + 1 == N {
            let _ = writeln!(out, "{cell}");
        } else {
            let width = widths[i];
            let _ = write!(out, "{cell:<width$}  ");
        }
    }
}

/// Rows under a header.
pub fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let widths = widths(header, rows);
    let mut out = String::new();
    write_row(&mut out, header, &widths);
    for row in rows {
        write_row(&mut out, row.each_ref().map(String::as_str), &widths);
    }
    out
}
