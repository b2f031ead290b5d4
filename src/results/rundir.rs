//! The run-folder format: `<out>/[<model>/]<dataset>/<method>/lr<lr>/seed<k>/`, one type per
//! file used both to write and to read it, and the one definition of when a run is
//! complete. `docs/run-folder.md` describes every file and column for programs in
//! other languages; [`FORMAT_VERSION`] is recorded in `config.json`.
//!
//! `config.json` is written first and `summary.json` last; every file goes to a
//! temporary name and is renamed when complete. A run is complete when its
//! [`REQUIRED`] files are present, every file it has reads back as its type, and every
//! size `summary.json` records matches ([`state`]); anything else (interrupted,
//! crashed, truncated, hand-edited) is unfinished, redone by `sweep` and left out,
//! with the reason, by `report` and `plot`. The [`OPTIONAL`] files (the measures and
//! the weights) may be absent: another writer's *partial* run records its curve only.

pub use crate::engine::data::DataFile;
use crate::engine::data::Limit;
use crate::engine::measures::LayerSummary;
use crate::engine::settings::TrainSettings;
use anyhow::{anyhow, bail, Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The version of this format; `config.json`'s `format_version`. Raised when a
/// file or column changes meaning; readers refuse folders of a newer version. Format 2
/// added partial runs (the optional files), `model` and an optional `train_loss`; every
/// format-1 folder is a format-2 folder of LeNet5.
pub const FORMAT_VERSION: u32 = 2;

pub const CONFIG: &str = "config.json";
pub const CURVE: &str = "curve.csv";
pub const ACTIVATION_PROB: &str = "activation_prob.csv";
pub const UNIT_STATS: &str = "unit_stats.csv";
/// The final parameters and buffers, named as the PyTorch reference's `state_dict`.
pub const MODEL: &str = "model.safetensors";
pub const SUMMARY: &str = "summary.json";
/// Who made the run: the code, machine, command and job of each stretch of its training.
pub const PROVENANCE: &str = "provenance.json";
/// A run's mid-run checkpoint ([`super::checkpoint`]): in an unfinished folder only,
/// removed when the run completes (unless kept); never part of a complete run.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// Where `report` writes under a results folder, and `plot` beneath it: the one folder
/// of a results folder that holds no runs.
pub const REPORT_DIR: &str = "report";
/// A worker's claim on a run it trains (`crate::runs::claim`): a folder holding one is
/// a run in progress.
pub const CLAIM: &str = ".claim";
/// Every file a run folder may hold, in the order they are written.
pub const FILES: [&str; 7] = [CONFIG, CURVE, ACTIVATION_PROB, UNIT_STATS, MODEL, PROVENANCE, SUMMARY];
/// The files every complete run holds: what it is, its curve and its outcome.
pub const REQUIRED: [&str; 3] = [CONFIG, CURVE, SUMMARY];
/// The files a complete run may lack (homeonorm writes them all): a run without them
/// has not recorded the measures, the weights or its provenance ("not recorded" in reports).
pub const OPTIONAL: [&str; 4] = [ACTIVATION_PROB, UNIT_STATS, MODEL, PROVENANCE];

/// The run folder of one (dataset, method, lr, seed) of LeNet5, its rule settings the
/// preset's, under `out`.
pub fn run_path(out: &Path, dataset: &str, method: &str, lr: f64, seed: u64) -> PathBuf {
    out.join(dataset).join(method).join(format!("lr{lr}")).join(format!("seed{seed}"))
}

/// The run folder of one seed of `settings` under `out`:
/// `<out>/[<model>/]<dataset>/<method>/lr<lr>/[<rules>/]seed<k>`. The network's level is
/// left out for LeNet5, and the rules' level (`target_rate0.2-threshold_rate0.1`: the
/// method's rule settings that differ from the preset, `TrainSettings::rule_changes`)
/// where there are none, so every folder written before there was a choice is where it
/// was. A run of changed rule settings written before the rules' level existed (at
/// `lr<lr>/seed<k>`, its `config.json` naming those settings) is found where it is.
/// The longest folder name most filesystems take (ext4, XFS, APFS: 255 bytes).
pub const MAX_NAME: usize = 255;

/// Why a run of `settings` has no folder a filesystem takes, if it has none: a level
/// named for a value (`lr1000…0`, `threshold_rate0.000…05`) longer than [`MAX_NAME`].
pub fn unnamable(settings: &TrainSettings, seed: u64) -> Option<String> {
    let dir = run_dir(Path::new(""), settings, seed);
    dir.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).find(|c| c.len() > MAX_NAME).map(|c| {
        let start: String = c.chars().take(24).collect();
        format!("its folder level `{start}…` would be {} bytes, longer than a folder name may be ({MAX_NAME})", c.len())
    })
}

pub fn run_dir(out: &Path, settings: &TrainSettings, seed: u64) -> PathBuf {
    let base = match settings.model {
        crate::engine::model::Network::Lenet5 => out.to_path_buf(),
        other => out.join(other.name()),
    };
    let lr = base.join(settings.dataset.name()).join(settings.method.name()).join(format!("lr{}", settings.lr));
    let seed = format!("seed{seed}");
    let rules = settings.rule_changes();
    if rules.is_empty() {
        // Folders written before the rule level existed hold runs of other rule settings
        // here; such a run is its own, never this one's: the preset's run then names its
        // rule settings too (`lr0.003/target_rate0.5-threshold_rate0.03/seed0`).
        let plain = lr.join(&seed);
        let another_settings_run = read_config(&plain)
            .is_ok_and(|c| c.settings.method == settings.method && !c.settings.rule_changes().is_empty());
        return if another_settings_run { lr.join(settings.rule_values().join("-")).join(seed) } else { plain };
    }
    let here = lr.join(rules.join("-")).join(&seed);
    let before = lr.join(&seed);
    let written_before = || read_config(&before).is_ok_and(|c| c.settings.rule_changes() == rules);
    if !here.exists() && written_before() {
        before
    } else {
        here
    }
}

/// `config.json`: what the run is (its settings, seed and data) and what it ran on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunConfig {
    /// [`FORMAT_VERSION`] of the writer (absent in folders written before it was recorded: 1).
    #[serde(default = "first_version")]
    pub format_version: u32,
    /// Every setting, at the top level of the object.
    #[serde(flatten)]
    pub settings: TrainSettings,
    pub seed: u64,
    /// A subset of the data (`--limit`), never pooled with full-data runs.
    pub data_limit: Limit,
    // What the run ran on and read: recorded by homeonorm, optional for other writers
    // (empty: not recorded, and not written, as in an imported table's runs).
    /// The seeds trained together with this one as one seed-batched model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seed_batch: Vec<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub train_images: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub test_images: usize,
    #[serde(default, skip_serializing_if = "is_empty_path")]
    pub data_dir: PathBuf,
    /// Each data file read: its path, size in bytes and SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_files: Vec<DataFile>,
    /// `cpu`, `cuda:0`, …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    /// The writer and its libraries (free-form for other writers).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub system: serde_json::Value,
    /// What the writer chose where the paper is silent (free-form for other writers).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub choices: serde_json::Value,
}

fn first_version() -> u32 {
    1
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_empty_path(p: &Path) -> bool {
    p.as_os_str().is_empty()
}

/// A CSV file of a run folder: its name, its columns (the header, written even when
/// there are no rows) and its row type.
pub trait CsvFile: Serialize + DeserializeOwned {
    const NAME: &'static str;
    const COLUMNS: &'static [&'static str];
}

/// A row of `curve.csv`: the mean training loss since the previous evaluation (empty:
/// not recorded, as in an imported table without losses) and the test accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    pub iteration: usize,
    pub train_loss: Option<f64>,
    pub test_accuracy: f64,
}

impl CsvFile for CurveRow {
    const NAME: &'static str = CURVE;
    const COLUMNS: &'static [&'static str] = &["iteration", "train_loss", "test_accuracy"];
}

/// A row of `activation_prob.csv`: one unit's activation probability over a training batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationRow {
    pub iteration: usize,
    pub layer: String,
    pub unit: usize,
    pub activation_prob: f64,
}

impl CsvFile for ActivationRow {
    const NAME: &'static str = ACTIVATION_PROB;
    const COLUMNS: &'static [&'static str] = &["iteration", "layer", "unit", "activation_prob"];
}

/// A row of `unit_stats.csv`: one unit's measures on the test set at the end (an
/// empty `mean_active_value` for a unit never active, an empty `alpha` for methods
/// without α). The measures' own type is the row.
pub use crate::engine::metrics::UnitStats as UnitRow;

impl CsvFile for UnitRow {
    const NAME: &'static str = UNIT_STATS;
    const COLUMNS: &'static [&'static str] =
        &["layer", "unit", "activation_prob", "entropy", "mean_active_value", "alpha"];
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
    /// Test accuracy at the end with a test batch of one example (the run's
    /// `eval_stats`): what a method gives without a test batch's statistics (null for a
    /// diverged run, and in folders written before it was measured).
    #[serde(default)]
    pub test_accuracy_batch1: Option<f64>,
    pub best_accuracy: Option<f64>,
    pub best_iteration: Option<usize>,
    pub final_train_loss: Option<f64>,
    /// Seconds from start to the end of training (absent: not recorded).
    #[serde(default)]
    pub wall_time_s: Option<f64>,
    /// Per hidden layer, on the test set at the end (empty for a diverged run, and for
    /// a run that did not record the measures).
    #[serde(default)]
    pub layers: Vec<LayerSummary>,
    /// The size in bytes of every other file of the run as written, so that a file cut
    /// short or altered afterwards makes the run unfinished (absent: not checked).
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, u64>,
}

/// `provenance.json`: each stretch of the run's training, in order — one, or one per
/// process that took the run up from a checkpoint (a preemption, a lost node).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub stretches: Vec<Stretch>,
}

/// One process's stretch of a run: what code ran it where, on what, from which command
/// and job, when, over which iterations. Every field but the iterations may be absent
/// (another writer's, or not known).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stretch {
    /// The iteration it started at (0, or the checkpoint's it took up) and ended at.
    pub from_iteration: usize,
    pub to_iteration: usize,
    /// UTC, RFC 3339, to the second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// The writer's version (homeonorm's, `CARGO_PKG_VERSION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homeonorm: Option<String>,
    /// The git commit its binary was built from, `-dirty` when its source differed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libtorch: Option<String>,
    /// `cpu`, `cuda:0`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The CPU's model name, or the GPU's name and driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// Intra-op threads (libtorch's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The command line, as typed (a sweep's worker records its sweep's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The Slurm job it ran in, when it ran in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmJob>,
}

/// Slurm's names for the job a stretch ran in (its environment's `SLURM_*`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlurmJob {
    /// `SLURM_JOB_ID`.
    pub job_id: String,
    /// `SLURM_ARRAY_JOB_ID` and `SLURM_ARRAY_TASK_ID`, for an array task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_task_id: Option<String>,
    /// `SLURM_RESTART_COUNT`: how often the job was requeued before this start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
    /// `SLURMD_NODENAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl SlurmJob {
    /// How the job is named on the command line: `123_4` for an array task, else `123`.
    pub fn name(&self) -> String {
        match (&self.array_job_id, &self.array_task_id) {
            (Some(job), Some(task)) => format!("{job}_{task}"),
            _ => self.job_id.clone(),
        }
    }
}

/// A run folder's `provenance.json`, or `None` when the run did not record it.
pub fn read_provenance(dir: &Path) -> Result<Option<Provenance>> {
    if has(dir, PROVENANCE) {
        read_json(&dir.join(PROVENANCE)).map(Some)
    } else {
        Ok(None)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Missing,
    /// Why the folder is not a complete run.
    Unfinished(String),
    Done(Outcome),
    /// A whole `config.json` this homeonorm does not read (a newer format, or keys or
    /// values it does not know), and why: another writer's result, never deleted or redone.
    Foreign(String),
}

/// Whether a run folder holds a finished run: every file present and readable.
pub fn state(dir: &Path) -> RunState {
    if !dir.exists() {
        return RunState::Missing;
    }
    if let Some(why) = foreign(dir) {
        return RunState::Foreign(why);
    }
    match check_complete(dir) {
        Ok(summary) => RunState::Done(summary.outcome),
        Err(e) => RunState::Unfinished(format!("{e:#}")),
    }
}

/// Why a folder's `config.json` is whole JSON that this homeonorm does not read, if it is.
/// `config.json` is written whole (a rename), so JSON that parses was written so, by a
/// newer homeonorm or another program; a cut-short file does not parse, and is unfinished.
fn foreign(dir: &Path) -> Option<String> {
    let path = dir.join(CONFIG);
    let value: serde_json::Value = serde_json::from_str(&read_regular(&path).ok()?).ok()?;
    let version = format_of(&value);
    if version > FORMAT_VERSION {
        return Some(format!(
            "{}: run-folder format {version}, newer than this homeonorm's {FORMAT_VERSION}",
            path.display()
        ));
    }
    let config = match serde_json::from_value::<RunConfig>(value.clone()) {
        Ok(config) => config,
        Err(e) => return Some(format!("{}: not a configuration this homeonorm reads: {e}", path.display())),
    };
    // (serde ignores unknown keys beside a flattened struct: they are found by writing it back)
    let known = serde_json::to_value(&config).ok()?;
    let unknown: Vec<&String> = value.as_object()?.keys().filter(|k| known.get(k.as_str()).is_none()).collect();
    (!unknown.is_empty()).then(|| format!("{}: unknown field(s) {unknown:?}", path.display()))
}

/// The format version a whole `config.json` records (absent: 1); `None` when there is
/// no such file or it is not JSON.
pub fn recorded_format(dir: &Path) -> Option<u32> {
    let text = read_regular(&dir.join(CONFIG)).ok()?;
    Some(format_of(&serde_json::from_str(&text).ok()?))
}

fn format_of(config: &serde_json::Value) -> u32 {
    let version = config.get("format_version").and_then(|v| v.as_u64()).unwrap_or(1);
    u32::try_from(version).unwrap_or(u32::MAX)
}

/// Reads every file of a run folder; the summary if all read back, else what is wrong.
/// An optional file that is absent, and not listed in the summary, was not recorded.
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
    let curve = read_csv::<CurveRow>(dir)?;
    if let Some(pair) = curve.windows(2).find(|pair| pair[1].iteration <= pair[0].iteration) {
        bail!(
            "{}: iteration {} after iteration {} (rows out of order or repeated)",
            dir.join(CURVE).display(),
            pair[1].iteration,
            pair[0].iteration
        );
    }
    if has(dir, UNIT_STATS) {
        read_csv::<UnitRow>(dir)?;
    }
    read_provenance(dir)?;
    // The heat-map rows are megabytes for a full run, and a sweep checks every run it
    // skips: where their size is recorded, that check stands for reading them.
    if has(dir, ACTIVATION_PROB) && !summary.files.contains_key(ACTIVATION_PROB) {
        read_csv::<ActivationRow>(dir)?;
    }
    Ok(summary)
}

/// Whether a complete run folder holds one of its optional files (recorded it).
pub fn has(dir: &Path, name: &str) -> bool {
    dir.join(name).is_file()
}

/// One of a run folder's optional CSV files: its rows, or `None` when the run did not
/// record it (the file is absent).
pub fn read_optional_csv<T: CsvFile>(dir: &Path) -> Result<Option<Vec<T>>> {
    if has(dir, T::NAME) {
        read_csv(dir).map(Some)
    } else {
        Ok(None)
    }
}

pub fn read_summary(dir: &Path) -> Result<Summary> {
    let path = dir.join(SUMMARY);
    let summary: Summary = read_json(&path)?;
    summary.check().map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(summary)
}

impl Summary {
    /// What no run can have written: an accuracy outside [0, 1], none for a complete run.
    fn check(&self) -> Result<()> {
        if self.outcome == Outcome::Complete && self.final_accuracy.is_none() {
            bail!("final_accuracy is null on a complete run");
        }
        for (name, value) in [
            ("final_accuracy", self.final_accuracy),
            ("best_accuracy", self.best_accuracy),
            ("test_accuracy_batch1", self.test_accuracy_batch1),
        ] {
            if let Some(v) = value.filter(|v| !(0.0..=1.0).contains(v)) {
                bail!("{name} {v} is not an accuracy (0 to 1)");
            }
        }
        Ok(())
    }
}

/// `config.json`, checked: a folder of a newer format is refused by name.
pub fn read_config(dir: &Path) -> Result<RunConfig> {
    let path = dir.join(CONFIG);
    let config: RunConfig = read_json(&path)?;
    if config.format_version > FORMAT_VERSION {
        bail!(
            "{}: run-folder format {}; this homeonorm reads format {FORMAT_VERSION} and older",
            path.display(),
            config.format_version
        );
    }
    Ok(config)
}

/// The settings recorded in a run folder's `config.json` that differ from `expected`
/// (see [`TrainSettings::identity`]), each as "key: recorded X, now Y", and the data's
/// content where `data_now` and the folder both record its hashes.
pub fn differences(
    dir: &Path,
    expected: &serde_json::Map<String, serde_json::Value>,
    data_now: Option<&[DataFile]>,
) -> Result<Vec<String>> {
    let config = read_config(dir)?;
    let recorded = config.settings.identity(config.data_limit);
    let mut changed: Vec<String> = expected
        .iter()
        .filter(|(key, value)| recorded.get(*key) != Some(value))
        .map(|(key, value)| {
            let was = recorded.get(key).map_or("absent".to_string(), |v| v.to_string());
            format!("{key}: recorded {was}, now {value}")
        })
        .collect();
    changed.extend(data_now.and_then(|now| crate::engine::data::data_difference(&config.data_files, now)));
    Ok(changed)
}

/// A run folder's file as text, if it is a regular file: a FIFO, a device or a folder
/// under a run file's name is refused, never opened (opening a FIFO waits for a writer).
pub fn read_regular(path: &Path) -> std::io::Result<String> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file (a FIFO, a device or a folder)"));
    }
    std::fs::read_to_string(path)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = read_regular(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Reads one of a run folder's CSV files into rows; errors name the file.
pub fn read_csv<T: CsvFile>(dir: &Path) -> Result<Vec<T>> {
    let path = &dir.join(T::NAME);
    let text = read_regular(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader.deserialize().collect::<Result<Vec<T>, _>>().with_context(|| format!("{}: malformed", path.display()))
}

/// Clears a run folder's outputs for a fresh start, `summary.json` first so that it
/// never looks complete while holding a mix of old and new files. Other files (a
/// sweep's claim) stay.
pub fn prepare(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // `homeonorm eval`'s files beside a run describe its old weights: they go too.
    let evaluations: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("eval-") && n.ends_with(".json"))
        })
        .collect();
    let outputs = [SUMMARY, CONFIG, CURVE, ACTIVATION_PROB, UNIT_STATS, MODEL]
        .into_iter()
        .flat_map(|name| [dir.join(name), dir.join(format!(".{name}.tmp"))]);
    for path in outputs.chain(evaluations) {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename; an error names
/// the file (a full disk says which file it could not write). No temporary file is
/// left behind on failure. Returns the size written.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<u64> {
    write_through_temporary(dir, name, bytes, false)
}

/// [`write_atomic`], with the temporary file and then the folder fsynced: after a crash
/// the file is the old one or the new one, whole (what a checkpoint needs).
pub fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<u64> {
    write_through_temporary(dir, name, bytes, true)
}

fn write_through_temporary(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> Result<u64> {
    use std::io::Write as _;
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &target)?;
        if durable {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<(), std::io::Error>(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    Ok(bytes.len() as u64)
}

/// Writes `model.safetensors` (tensors moved to the CPU); returns its size.
pub fn write_model(dir: &Path, tensors: &[(String, tch::Tensor)]) -> Result<u64> {
    let tmp = dir.join(format!(".{MODEL}.tmp"));
    let on_cpu: Vec<(&str, tch::Tensor)> =
        tensors.iter().map(|(n, t)| (n.as_str(), t.to_device(tch::Device::Cpu).contiguous())).collect();
    let written = tch::Tensor::write_safetensors(&on_cpu, &tmp)
        .map_err(|e| anyhow!("{e}"))
        .and_then(|_| std::fs::rename(&tmp, dir.join(MODEL)).map_err(anyhow::Error::from));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", dir.join(MODEL).display()));
    }
    Ok(std::fs::metadata(dir.join(MODEL))?.len())
}

/// Reads `model.safetensors`; the error names the file.
pub fn read_model(dir: &Path) -> Result<std::collections::HashMap<String, tch::Tensor>> {
    let path = dir.join(MODEL);
    if !path.is_file() {
        bail!(
            "{}: no such file (a partial run, or one written before homeonorm kept its weights, records none)",
            path.display()
        );
    }
    let tensors = tch::Tensor::read_safetensors(&path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(tensors.into_iter().collect())
}

pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<u64> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(dir, name, text.as_bytes())
}

/// Writes one of a run folder's CSV files, its header first. Returns the size written.
pub fn write_csv<T: CsvFile>(dir: &Path, rows: &[T]) -> Result<u64> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    writer.write_record(T::COLUMNS)?;
    for row in rows {
        writer.serialize(row)?;
    }
    write_atomic(dir, T::NAME, &writer.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header written is the one serde would write for the row type.
    fn header_of<T: CsvFile>(row: T) {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(row).unwrap();
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), T::COLUMNS.join(","), "{}", T::NAME);
    }

    fn settings(method: &str) -> TrainSettings {
        TrainSettings::preset(crate::engine::data::DatasetKind::Cifar10, method.parse().unwrap())
    }

    fn config_of(settings: TrainSettings, seed: u64) -> RunConfig {
        RunConfig {
            format_version: FORMAT_VERSION,
            settings,
            seed,
            seed_batch: vec![seed],
            data_limit: Limit::default(),
            train_images: 1,
            test_images: 1,
            data_dir: "data".into(),
            data_files: Vec::new(),
            device: "cpu".into(),
            system: serde_json::Value::Null,
            choices: serde_json::Value::Null,
        }
    }

    #[test]
    fn changed_rule_settings_have_their_own_level_and_older_folders_stay_where_they_are() {
        let out = tempfile::tempdir().unwrap();
        let out = out.path();
        let preset = settings("adaptive-threshold");
        let lr = out.join("cifar10/adaptive-threshold/lr0.003");
        assert_eq!(run_dir(out, &preset, 3), lr.join("seed3"));
        let mut changed = preset.clone();
        (changed.target_rate, changed.threshold_rate) = (0.2, 0.1);
        assert_eq!(run_dir(out, &changed, 3), lr.join("target_rate0.2-threshold_rate0.1/seed3"));
        // A rule setting the method does not read adds no level (scaling_rate is homeostatic-scaling's).
        changed.scaling_rate = 0.01;
        assert_eq!(run_dir(out, &changed, 3), lr.join("target_rate0.2-threshold_rate0.1/seed3"));
        // Written before the level existed: found at lr<lr>/seed<k> when its config names these rules.
        std::fs::create_dir_all(lr.join("seed3")).unwrap();
        write_json(&lr.join("seed3"), CONFIG, &config_of(changed.clone(), 3)).unwrap();
        assert_eq!(run_dir(out, &changed, 3), lr.join("seed3"));
        let mut other = changed.clone();
        other.threshold_rate = 0.3;
        assert_eq!(run_dir(out, &other, 3), lr.join("target_rate0.2-threshold_rate0.3/seed3"));
        // The preset's own folder holds that older run: the preset's run names its rules
        // instead, and is never the older run's (#42: --retrain-changed wrote over it).
        assert_eq!(run_dir(out, &preset, 3), lr.join("target_rate0.5-threshold_rate0.03/seed3"));
    }

    #[test]
    fn every_csv_header_matches_its_row_type() {
        header_of(CurveRow { iteration: 1, train_loss: Some(0.5), test_accuracy: 0.1 });
        header_of(ActivationRow { iteration: 1, layer: "fc1".into(), unit: 0, activation_prob: 0.5 });
        header_of(UnitRow {
            layer: "fc1".into(),
            unit: 0,
            activation_prob: 0.5,
            entropy: 1.0,
            mean_active_value: None,
            alpha: None,
        });
    }

    #[test]
    fn every_file_and_column_is_described_in_the_format_document() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/run-folder.md")).unwrap();
        for file in FILES {
            assert!(doc.contains(&format!("`{file}`")), "docs/run-folder.md does not describe {file}");
        }
        let columns = [CurveRow::COLUMNS, ActivationRow::COLUMNS, UnitRow::COLUMNS].concat();
        let summary = serde_json::to_value(Summary {
            outcome: Outcome::Complete,
            diverged_at: None,
            iterations: 1,
            final_accuracy: None,
            test_accuracy_batch1: None,
            best_accuracy: None,
            best_iteration: None,
            final_train_loss: None,
            wall_time_s: None,
            layers: Vec::new(),
            files: Default::default(),
        })
        .unwrap();
        let layer = serde_json::to_value(LayerSummary::of("fc1", &[])).unwrap();
        let config = serde_json::to_value(config_of(settings("vanilla"), 0)).unwrap();
        let slurm = SlurmJob {
            job_id: "1".into(),
            array_job_id: Some("1".into()),
            array_task_id: Some("0".into()),
            restart_count: Some(0),
            node: Some("n".into()),
        };
        let some = || Some(String::new());
        let stretch = Stretch {
            from_iteration: 0,
            to_iteration: 1,
            started: some(),
            ended: some(),
            homeonorm: some(),
            commit: some(),
            libtorch: some(),
            device: some(),
            device_name: some(),
            threads: Some(1),
            host: some(),
            command: vec![String::new()],
            slurm: Some(slurm.clone()),
        };
        let provenance = serde_json::to_value(Provenance { stretches: vec![stretch.clone()] }).unwrap();
        let [stretch, slurm] = [serde_json::to_value(stretch).unwrap(), serde_json::to_value(slurm).unwrap()];
        let keys = [&summary, &layer, &config, &provenance, &stretch, &slurm]
            .into_iter()
            .flat_map(|v| v.as_object().unwrap().keys().cloned());
        for name in columns.iter().map(|c| c.to_string()).chain(keys) {
            assert!(doc.contains(&format!("`{name}`")), "docs/run-folder.md does not describe `{name}`");
        }
    }
}
