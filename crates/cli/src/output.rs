//! Helpers for what the binary prints: progress bars on a terminal, and
//! output files that are written whole or not at all.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A spinner with a message on a terminal; hidden otherwise (so logs and
/// pipes stay clean).
pub fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("static template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Ends a command whose output pipe was closed (`tidewatch ... | head`):
/// success, nothing more printed; any other write error is reported.
pub fn quiet_on_closed_pipe(e: std::io::Error) -> anyhow::Result<std::process::ExitCode> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        Err(anyhow::Error::new(e).context("writing the output"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_thousands() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
