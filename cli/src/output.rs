//! Text tables and JSON. Colour only when standard output is a terminal and `NO_COLOR` is unset.

use std::io::IsTerminal;

/// Tokens out of whatever is printed (the library's redaction).
pub use protime_webhooks::redact::{redact, redact_json};

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

/// Whether progress is shown: standard error is a terminal and the output is not JSON.
pub fn show_progress(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A progress bar of `len` steps (a spinner without one) on standard error, drawn only when
/// [`show_progress`]; hidden otherwise, so callers tick it unconditionally.
pub fn progress(json: bool, len: Option<u64>, message: &str) -> indicatif::ProgressBar {
    if !show_progress(json) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => indicatif::ProgressBar::new(len).with_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// A duration for people: `42s`, `17m`, `3h05m`, `2d04h` (rounded down).
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_at_a_glance() {
        let d = super::duration;
        assert_eq!([d(-3), d(0), d(59), d(60), d(3599)], ["0s", "0s", "59s", "1m", "59m"]);
        assert_eq!([d(3600), d(3600 + 5 * 60 + 59), d(86400 + 4 * 3600 + 1)], ["1h00m", "1h05m", "1d04h"]);
    }
}
