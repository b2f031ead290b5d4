//! Progress display: an indicatif bar on a terminal, plain log lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// Whether standard error is a terminal (bars) or not (log lines).
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A byte-count bar for a download.
pub fn bytes_bar(length: Option<u64>, path: &Path) -> ProgressBar {
    // Off a terminal the bar is hidden but still counts; callers log its position.
    let bar = match length {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    if !on_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}
