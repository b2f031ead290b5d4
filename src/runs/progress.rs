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

/// Progress of a long loop: a bar with rate and ETA on a terminal, else a log
/// line every `log_percent` percent.
pub struct Progress {
    bar: ProgressBar,
    label: String,
    total: u64,
    log_step: u64,
    next_log: u64,
    started: std::time::Instant,
    /// The position when it started (work done before, as a resumed sweep's): the
    /// rate counts only what is done since.
    first: u64,
}

impl Progress {
    pub fn new(label: &str, total: u64, log_percent: u64) -> Progress {
        let bar = if on_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar
        } else {
            ProgressBar::hidden()
        };
        let log_step = (total * log_percent / 100).max(1);
        Progress {
            bar,
            label: label.to_string(),
            total,
            log_step,
            next_log: log_step,
            started: std::time::Instant::now(),
            first: 0,
        }
    }

    /// Starts at `position` (work done before this process began), left out of the rate and ETA.
    pub fn resuming_from(mut self, position: u64) -> Progress {
        self.first = position;
        self.bar.set_position(position);
        self.bar.reset_eta();
        self
    }

    /// Moves to `position` (absolute) with a short status message.
    pub fn update(&mut self, position: u64, message: impl FnOnce() -> String) {
        self.bar.set_position(position);
        if !self.bar.is_hidden() {
            self.bar.set_message(message());
        } else if position >= self.next_log || position == self.total {
            while self.next_log <= position {
                self.next_log += self.log_step;
            }
            let elapsed = self.started.elapsed().as_secs_f64();
            let rate = position.saturating_sub(self.first) as f64 / elapsed.max(1e-9);
            let left = (self.total - position.min(self.total)) as f64;
            let eta = if rate > 0.0 { format_duration(left / rate) } else { "unknown".to_string() };
            log::info!(
                "{} {position}/{} ({:.0} %), {}/s, ETA {eta}, {}",
                self.label,
                self.total,
                100.0 * position as f64 / self.total.max(1) as f64,
                rate_text(rate),
                message()
            );
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A rate per second, with enough digits for a sweep's runs (0.0083/s is two minutes a run).
fn rate_text(rate: f64) -> String {
    if rate >= 1.0 {
        format!("{rate:.1}")
    } else {
        format!("{rate:.2}")
    }
}

pub fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
