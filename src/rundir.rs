//! A run's folder: `<out>/<dataset>/<method>/lr<lr>/seed<k>/`.
//!
//! `config.json` is written first and `summary.json` last; every file goes to a
//! temporary name and is renamed when complete. So `summary.json` present means the
//! run is complete (or recorded as diverged); a folder without it is unfinished
//! (interrupted, crashed) and is redone by a sweep.

use crate::metrics::LayerSummary;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.json";
pub const CURVE: &str = "curve.csv";
pub const ACTIVATION_PROB: &str = "activation_prob.csv";
pub const UNIT_STATS: &str = "unit_stats.csv";
pub const SUMMARY: &str = "summary.json";

/// The run folder of one (dataset, method, lr, seed) under `out`.
pub fn run_path(out: &Path, dataset: &str, method: &str, lr: f64, seed: u64) -> PathBuf {
    out.join(dataset).join(method).join(format!("lr{lr}")).join(format!("seed{seed}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Complete,
    /// The loss became NaN or infinite: a result (of a learning-rate sweep, say), not a crash.
    Diverged,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub outcome: Outcome,
    /// The iteration whose loss was not finite.
    pub diverged_at: Option<usize>,
    pub iterations: usize,
    /// Test accuracy at the last iteration (null for a diverged run).
    pub final_accuracy: Option<f64>,
    pub best_accuracy: Option<f64>,
    pub best_iteration: Option<usize>,
    pub final_train_loss: Option<f64>,
    pub wall_time_s: f64,
    /// Per hidden layer, on the test set at the end (empty for a diverged run).
    pub layers: Vec<LayerSummary>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Missing,
    Unfinished,
    Done(Outcome),
}

/// Whether a run folder holds a finished run (a readable `summary.json`).
pub fn state(dir: &Path) -> RunState {
    if !dir.exists() {
        return RunState::Missing;
    }
    match read_summary(dir) {
        Ok(s) => RunState::Done(s.outcome),
        Err(_) => RunState::Unfinished,
    }
}

pub fn read_summary(dir: &Path) -> anyhow::Result<Summary> {
    let path = dir.join(SUMMARY);
    let text = std::fs::read_to_string(&path)?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Clears a run folder's outputs for a fresh start, `summary.json` first so that it
/// never looks complete while holding a mix of old and new files. Other files (a
/// sweep's claim) stay.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for name in [SUMMARY, CONFIG, CURVE, ACTIVATION_PROB, UNIT_STATS] {
        for path in [dir.join(name), dir.join(format!(".{name}.tmp"))] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(dir, name, text.as_bytes())?;
    Ok(())
}

/// Writes rows as CSV with a header row (from the row type's field names).
pub fn write_csv<T: Serialize>(dir: &Path, name: &str, rows: &[T], header_if_empty: &[&str]) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        writer.write_record(header_if_empty)?;
    }
    for row in rows {
        writer.serialize(row)?;
    }
    write_atomic(dir, name, &writer.into_inner()?)?;
    Ok(())
}
