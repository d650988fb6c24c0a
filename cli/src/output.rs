//! Text tables and JSON. Colour only when standard output is a terminal and `NO_COLOR` is unset.

use std::io::IsTerminal;

/// Whether to colour: a terminal, and no `NO_COLOR` (https://no-color.org).
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in red when colouring.
pub fn alarm(text: &str) -> String {
    if colour() {
        format!("\x1b[31m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Prints rows as aligned columns under a header (plain text widths: colour is added after).
/// Every row has one cell per header column.
pub fn table(header: &[&str], rows: &[Vec<String>], unhealthy: &[bool]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        padded.join("  ").trim_end().to_owned()
    };
    println!("{}", line(header.iter().map(|h| h.to_string()).collect()));
    for (row, bad) in rows.iter().zip(unhealthy) {
        let text = line(row.clone());
        println!("{}", if *bad { alarm(&text) } else { text });
    }
}

pub fn json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}
