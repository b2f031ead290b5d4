//! A run's folder: `<out>/<dataset>/<method>/lr<lr>/seed<k>/`, and the one
//! definition of when it is complete.
//!
//! `config.json` is written first and `summary.json` last; every file goes to a
//! temporary name and is renamed when complete. A run is complete when every file is
//! present and reads back as its row type ([`state`]); anything else (interrupted,
//! crashed, truncated, hand-edited) is unfinished, redone by `sweep` and left out,
//! with the reason, by `report` and `plot`.

use crate::metrics::LayerSummary;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.json";
pub const CURVE: &str = "curve.csv";
pub const ACTIVATION_PROB: &str = "activation_prob.csv";
pub const UNIT_STATS: &str = "unit_stats.csv";
pub const SUMMARY: &str = "summary.json";
/// Every file a complete run folder holds, in the order they are written.
pub const FILES: [&str; 5] = [CONFIG, CURVE, ACTIVATION_PROB, UNIT_STATS, SUMMARY];

/// The run folder of one (dataset, method, lr, seed) under `out`.
pub fn run_path(out: &Path, dataset: &str, method: &str, lr: f64, seed: u64) -> PathBuf {
    out.join(dataset).join(method).join(format!("lr{lr}")).join(format!("seed{seed}"))
}

/// A row of `curve.csv`: the mean training loss since the previous evaluation and the test accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    pub iteration: usize,
    pub train_loss: f64,
    pub test_accuracy: f64,
}
pub const CURVE_COLUMNS: [&str; 3] = ["iteration", "train_loss", "test_accuracy"];

/// A row of `activation_prob.csv`: one unit's activation probability over a training batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationRow {
    pub iteration: usize,
    pub layer: String,
    pub unit: usize,
    pub activation_prob: f64,
}
pub const ACTIVATION_COLUMNS: [&str; 4] = ["iteration", "layer", "unit", "activation_prob"];

/// A row of `unit_stats.csv`: one unit's measures on the test set at the end (an
/// empty `mean_active_value` for a unit never active, an empty `alpha` for methods
/// without α). The measures' own type is the row.
pub use crate::metrics::UnitStats as UnitRow;
pub const UNIT_COLUMNS: [&str; 6] = ["layer", "unit", "activation_prob", "entropy", "mean_active_value", "alpha"];

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
    /// The size in bytes of every other file of the run as written, so that a file cut
    /// short or altered afterwards makes the run unfinished (absent: not checked).
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Missing,
    /// Why the folder is not a complete run.
    Unfinished(String),
    Done(Outcome),
}

/// Whether a run folder holds a finished run: every file present and readable.
pub fn state(dir: &Path) -> RunState {
    if !dir.exists() {
        return RunState::Missing;
    }
    match check_complete(dir) {
        Ok(summary) => RunState::Done(summary.outcome),
        Err(e) => RunState::Unfinished(format!("{e:#}")),
    }
}

/// Reads every file of a run folder; the summary if all read back, else what is wrong.
pub fn check_complete(dir: &Path) -> Result<Summary> {
    // summary.json is written last: without it the run is simply not finished.
    if !dir.join(SUMMARY).is_file() {
        bail!("no {SUMMARY} (not finished)");
    }
    let summary = read_summary(dir)?;
    for (name, bytes) in &summary.files {
        let path = dir.join(name);
        let found = std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?.len();
        if found != *bytes {
            bail!("{}: {found} bytes, {bytes} when written (cut short or changed)", path.display());
        }
    }
    read_config(dir)?;
    read_csv::<CurveRow>(&dir.join(CURVE))?;
    read_csv::<UnitRow>(&dir.join(UNIT_STATS))?;
    // The heat-map rows are megabytes for a full run, and a sweep checks every run it
    // skips: where their size is recorded, that check stands for reading them.
    if !summary.files.contains_key(ACTIVATION_PROB) {
        read_csv::<ActivationRow>(&dir.join(ACTIVATION_PROB))?;
    }
    Ok(summary)
}

pub fn read_summary(dir: &Path) -> Result<Summary> {
    read_json(&dir.join(SUMMARY))
}

/// `config.json` as a JSON object (its typed readers take the fields they need).
pub fn read_config(dir: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    read_json(&dir.join(CONFIG))
}

/// The settings recorded in a run folder's `config.json` that differ from `expected`
/// (see `train::recorded_identity`), each as "key: recorded X, now Y".
pub fn differences(dir: &Path, expected: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<String>> {
    let recorded = read_config(dir)?;
    Ok(expected
        .iter()
        .filter(|(key, value)| recorded.get(*key) != Some(value))
        .map(|(key, value)| {
            let was = recorded.get(key).map_or("absent".to_string(), |v| v.to_string());
            format!("{key}: recorded {was}, now {value}")
        })
        .collect())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Reads a CSV file with a header row into rows; errors name the file.
pub fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    reader.deserialize().collect::<Result<Vec<T>, _>>().with_context(|| format!("{}: malformed", path.display()))
}

/// Clears a run folder's outputs for a fresh start, `summary.json` first so that it
/// never looks complete while holding a mix of old and new files. Other files (a
/// sweep's claim) stay.
pub fn prepare(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for name in [SUMMARY, CONFIG, CURVE, ACTIVATION_PROB, UNIT_STATS] {
        for path in [dir.join(name), dir.join(format!(".{name}.tmp"))] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename; an error names
/// the file (a full disk says which file it could not write). No temporary file is
/// left behind on failure. Returns the size written.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<u64> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let written = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    Ok(bytes.len() as u64)
}

pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<u64> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(dir, name, text.as_bytes())
}

/// Writes rows as CSV with a header row (`columns`, which the row type's fields match).
pub fn write_csv<T: Serialize>(dir: &Path, name: &str, rows: &[T], columns: &[&str]) -> Result<u64> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    writer.write_record(columns)?;
    for row in rows {
        writer.serialize(row)?;
    }
    write_atomic(dir, name, &writer.into_inner()?)
}
