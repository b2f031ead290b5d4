//! `homeonorm report`: tables from the finished runs under a results folder —
//! per setting (dataset × method × learning rate × the other settings, never
//! pooled across them) n, the mean ± sample std (n − 1) over seeds and the mean's 95 %
//! confidence interval, side by side with the paper's published numbers and Welch's
//! test against them; a row per run (`runs.csv`, [`runs_table`]) and who made them
//! (provenance); the same tables as LaTeX on request.
//!
//! Layer measures per run are the paper's: mean over units and std across units
//! (population). A setting's row gives their mean over seeds.

use crate::engine::measures::{LayerSummary, LAYER_MEASURES};
use crate::engine::metrics::coefficient_of_variation;
use crate::engine::settings::{differing_columns, GroupKey};
use crate::results::rundir::{self, read_csv, CurveRow, Outcome, Provenance, Summary, UnitRow, REPORT_DIR};
use crate::results::runs_table::{self, Makers};
use crate::results::stats::{welch, Sample};
use crate::results::table::{self, Table};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The report column naming the row of the paper's Table 1 a method stands for.
const TABLE1_ROW: &str = "Table 1 row";
pub const FIGURES_DIR: &str = "figures";

/// One run folder found under the results folder.
pub struct RunRecord {
    pub dir: PathBuf,
    pub key: GroupKey,
    pub seed: u64,
    /// The content hash of the data it trained on (`None`: not recorded).
    pub data_sha256: Option<String>,
    /// None: unfinished, for the reason in `problem`.
    pub summary: Option<Summary>,
    pub problem: Option<String>,
    /// Who made it (`None`: not recorded, or not readable: then `problem` says why).
    pub provenance: Option<Provenance>,
}

/// What `collect` found: runs with a readable configuration, and folders that hold a
/// run's files but no readable `config.json` (so no setting to file them under).
pub struct Found {
    pub runs: Vec<RunRecord>,
    pub unreadable: Vec<(PathBuf, String)>,
    /// Folders holding a seed of a setting another folder holds too (a copy: `seed0.bak`
    /// beside `seed0`, two writers' roots), and why: a seed is counted once.
    pub duplicates: Vec<(PathBuf, String)>,
}

/// Folders and why each was left out, one indented line each (the first 20), for an
/// error that has nothing else to show.
pub fn reasons(left_out: &[(PathBuf, String)]) -> String {
    let mut lines: String =
        left_out.iter().take(20).map(|(dir, why)| format!("\n  {}: {why}", dir.display())).collect();
    if left_out.len() > 20 {
        lines += &format!("\n  … and {} more", left_out.len() - 20);
    }
    lines
}

/// Whether a folder holds any of a run folder's files (finished, temporary or a claim).
fn looks_like_run(dir: &Path) -> bool {
    rundir::FILES.iter().any(|f| dir.join(f).exists() || dir.join(format!(".{f}.tmp")).exists())
        || dir.join(rundir::CLAIM).exists()
}

/// What the report says of data whose hash a run folder does not record.
pub const NOT_RECORDED: &str = "not recorded";

/// Every run folder under `root`, complete or not.
pub fn collect(root: &Path) -> Result<Found> {
    let mut found = Found { runs: Vec::new(), unreadable: Vec::new(), duplicates: Vec::new() };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            // Real folders only: a symlink to a folder would count its runs again, or loop.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            // The results folder's own report holds no runs; a folder named so deeper down may.
            if is_dir && entry.path() != root.join(REPORT_DIR) {
                stack.push(entry.path());
            }
        }
        if !looks_like_run(&dir) {
            continue;
        }
        match rundir::read_config(&dir) {
            Err(e) => found.unreadable.push((dir, format!("{e:#}"))),
            Ok(config) => {
                let (summary, problem) = match rundir::check_complete(&dir) {
                    Ok(s) => (Some(s), None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                };
                let key = GroupKey::of(&config.settings, config.data_limit);
                let data_sha256 = crate::engine::data::content_sha256(&config.data_files);
                let provenance = rundir::read_provenance(&dir).ok().flatten();
                found.runs.push(RunRecord { dir, key, seed: config.seed, data_sha256, summary, problem, provenance });
            }
        }
    }
    // A seed of a setting in several folders is counted once: the folder named as homeonorm
    // names it (`seed<k>`) first, then the first by path.
    let copy = |r: &RunRecord| r.dir.file_name().is_none_or(|n| n.to_string_lossy() != format!("seed{}", r.seed));
    found.runs.sort_by(|a, b| {
        (a.key.sort_key().cmp(&b.key.sort_key()).then(a.seed.cmp(&b.seed)))
            .then(copy(a).cmp(&copy(b)))
            .then(a.dir.cmp(&b.dir))
    });
    let mut kept: Vec<RunRecord> = Vec::with_capacity(found.runs.len());
    for r in std::mem::take(&mut found.runs) {
        match kept.last().filter(|k| k.key == r.key && k.seed == r.seed) {
            Some(first) => {
                let why = format!(
                    "seed {} of its setting is also at {}, counted there",
                    r.seed,
                    crate::text::path(&first.dir)
                );
                found.duplicates.push((r.dir, why));
            }
            None => kept.push(r),
        }
    }
    found.runs = kept;
    found.unreadable.sort();
    Ok(found)
}

/// A value's mean and sample std over seeds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Spread {
    pub mean: Option<f64>,
    pub std: Option<f64>,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        Sample::of(values)
            .map_or_else(Spread::default, |s| Spread { mean: Some(s.mean), std: s.std.is_finite().then_some(s.std) })
    }
}

/// A layer's measures for one setting: each registered measure's mean over seeds of
/// its per-run value ([`LAYER_MEASURES`]' order), and the sample std over seeds of the
/// per-run CV of activation probability (Figure 3's error bars).
#[derive(Clone, Debug, Default)]
pub struct LayerRow {
    means: Vec<Option<f64>>,
    pub prob_cv_std: Option<f64>,
}

impl LayerRow {
    fn of(layers: &[&LayerSummary]) -> LayerRow {
        let per_run = |key: &str| layers.iter().filter_map(|l| l.get(key)).collect::<Vec<_>>();
        LayerRow {
            means: LAYER_MEASURES.iter().map(|m| Spread::of(&per_run(m.key)).mean).collect(),
            prob_cv_std: Spread::of(&per_run("activation_prob_cv")).std,
        }
    }

    /// The mean over seeds of the measure registered as `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        let index = LAYER_MEASURES.iter().position(|m| m.key == key)?;
        self.means.get(index).copied().flatten()
    }
}

/// One setting's results.
pub struct SettingResult {
    pub key: GroupKey,
    pub complete: Vec<u64>,
    /// Complete runs that recorded the per-unit measures (a partial run records its curve only).
    pub measured: usize,
    pub diverged: Vec<(u64, PathBuf)>,
    /// Seed, folder and why it is not complete.
    pub unfinished: Vec<(u64, PathBuf, String)>,
    pub final_accuracy: Spread,
    /// Final accuracy with a test batch of one example.
    pub accuracy_batch1: Spread,
    pub best_accuracy: Spread,
    /// The measured layers, in the order the runs list them.
    pub layers: Vec<(String, LayerRow)>,
    /// CV of activation probability across all fc units (fc1 and fc2 pooled; the
    /// network's [`pooled_layers`](crate::engine::model::Network::pooled_layers)), mean over seeds.
    pub fc_prob_cv: Option<f64>,
    /// CV of mean active value across all fc units ever active (fc1 and fc2 pooled), mean over
    /// seeds: of the poolings tried, the one that lands on the paper's numbers (docs/reproduction/).
    pub fc_value_cv: Option<f64>,
    pub curve: Vec<CurvePoint>,
    /// The data content hashes of its complete runs ("not recorded" for older folders), with their counts.
    pub data: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CurvePoint {
    pub iteration: usize,
    pub runs: usize,
    pub accuracy_mean: f64,
    pub accuracy_std: Option<f64>,
}

impl SettingResult {
    /// The final accuracies' sample (mean, sample std, n complete runs).
    pub fn accuracy_sample(&self) -> Option<Sample> {
        let mean = self.final_accuracy.mean?;
        Some(Sample { mean, std: self.final_accuracy.std.unwrap_or(f64::NAN), n: self.complete.len() })
    }

    /// A layer's measures, if the runs measured it.
    pub fn layer(&self, name: &str) -> Option<&LayerRow> {
        self.layers.iter().find(|(n, _)| n == name).map(|(_, row)| row)
    }
}

/// The distinct layer names, in the order first seen.
pub fn layer_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// One run's CV of activation probability and of mean active value across the units of
/// the `pooled` layers together (the "fc units" of the report).
pub fn pooled_cvs(units: &[UnitRow], pooled: &[&str]) -> (f64, f64) {
    let fc: Vec<&UnitRow> = units.iter().filter(|u| pooled.contains(&u.layer.as_str())).collect();
    let probs: Vec<f64> = fc.iter().map(|u| u.activation_prob).collect();
    let values: Vec<f64> = fc.iter().filter_map(|u| u.mean_active_value).collect();
    (coefficient_of_variation(&probs), coefficient_of_variation(&values))
}

/// Groups the records by setting and computes each setting's results.
pub fn summarize(records: &[RunRecord]) -> Result<Vec<SettingResult>> {
    let mut groups: Vec<(GroupKey, Vec<&RunRecord>)> = Vec::new();
    for r in records {
        match groups.iter_mut().find(|(k, _)| *k == r.key) {
            Some((_, g)) => g.push(r),
            None => groups.push((r.key.clone(), vec![r])),
        }
    }
    let mut results = Vec::new();
    for (key, runs) in groups {
        let complete: Vec<&RunRecord> = runs
            .iter()
            .copied()
            .filter(|r| r.summary.as_ref().is_some_and(|s| s.outcome == Outcome::Complete))
            .collect();
        let diverged = runs
            .iter()
            .filter(|r| r.summary.as_ref().is_some_and(|s| s.outcome == Outcome::Diverged))
            .map(|r| (r.seed, r.dir.clone()))
            .collect();
        let unfinished = runs
            .iter()
            .filter(|r| r.summary.is_none())
            .map(|r| (r.seed, r.dir.clone(), r.problem.clone().unwrap_or_default()))
            .collect();
        let summaries: Vec<&Summary> = complete.iter().map(|r| r.summary.as_ref().unwrap()).collect();
        let final_accuracy = Spread::of(&summaries.iter().filter_map(|s| s.final_accuracy).collect::<Vec<_>>());
        let accuracy_batch1 = Spread::of(&summaries.iter().filter_map(|s| s.test_accuracy_batch1).collect::<Vec<_>>());
        let best_accuracy = Spread::of(&summaries.iter().filter_map(|s| s.best_accuracy).collect::<Vec<_>>());
        let mut layers = Vec::new();
        for name in layer_names(summaries.iter().flat_map(|s| s.layers.iter().map(|l| l.layer.as_str()))) {
            let per_run: Vec<&LayerSummary> =
                summaries.iter().filter_map(|s| s.layers.iter().find(|l| l.layer == name)).collect();
            layers.push((name, LayerRow::of(&per_run)));
        }
        let (mut fc_cvs, mut fc_value_cvs) = (Vec::new(), Vec::new());
        let mut curves: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        let mut measured = 0;
        let pooled = key.settings.model.pooled_layers();
        for r in &complete {
            if let Some(units) = rundir::read_optional_csv::<UnitRow>(&r.dir)? {
                measured += 1;
                let (prob_cv, value_cv) = pooled_cvs(&units, &pooled);
                fc_cvs.push(prob_cv);
                fc_value_cvs.push(value_cv);
            }
            for row in read_csv::<CurveRow>(&r.dir)? {
                curves.entry(row.iteration).or_default().push(row.test_accuracy);
            }
        }
        let curve = curves
            .into_iter()
            .map(|(iteration, accs)| {
                let s = Spread::of(&accs);
                CurvePoint {
                    iteration,
                    runs: accs.len(),
                    accuracy_mean: s.mean.unwrap_or(f64::NAN),
                    accuracy_std: s.std,
                }
            })
            .collect();
        results.push(SettingResult {
            key,
            complete: complete.iter().map(|r| r.seed).collect(),
            measured,
            diverged,
            unfinished,
            final_accuracy,
            accuracy_batch1,
            best_accuracy,
            layers,
            fc_prob_cv: Spread::of(&fc_cvs).mean,
            fc_value_cv: Spread::of(&fc_value_cvs).mean,
            curve,
            data: complete.iter().fold(BTreeMap::new(), |mut data, r| {
                *data.entry(r.data_sha256.clone().unwrap_or_else(|| NOT_RECORDED.into())).or_default() += 1;
                data
            }),
        });
    }
    Ok(results)
}

/// A number the paper publishes.
pub struct PaperNumber {
    pub dataset: &'static str,
    pub method: &'static str,
    pub lr: f64,
    pub measure: Measure,
    pub value: f64,
    pub std: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Final test accuracy, %, mean ± std over seeds.
    Accuracy,
    /// CV of activation probability across hidden (fc) units.
    FcProbCv,
    /// fc1 activation probability, mean ± std across units.
    Fc1Prob,
    /// CV of mean active values across fc1 units.
    Fc1ValueCv,
    /// The same across fc1 and fc2 units pooled.
    FcValueCv,
    /// fc1 mean output value, mean ± std across units.
    Fc1Value,
}

impl Measure {
    fn label(self) -> &'static str {
        match self {
            Measure::Accuracy => "test accuracy (%)",
            Measure::FcProbCv => "CV of activation probability, fc units",
            Measure::Fc1Prob => "fc1 activation probability",
            Measure::Fc1ValueCv => "CV of mean active value, fc1",
            Measure::FcValueCv => "CV of mean active value, fc units",
            Measure::Fc1Value => "fc1 mean active value",
        }
    }

    /// Our value (and ± where the paper gives one) for a setting.
    fn ours(self, r: &SettingResult) -> (Option<f64>, Option<f64>) {
        let get = |key: &str| r.layer("fc1").and_then(|l| l.get(key));
        match self {
            Measure::Accuracy => (r.final_accuracy.mean.map(|v| 100.0 * v), r.final_accuracy.std.map(|v| 100.0 * v)),
            Measure::FcProbCv => (r.fc_prob_cv, None),
            Measure::FcValueCv => (r.fc_value_cv, None),
            Measure::Fc1Prob => (get("activation_prob_mean"), get("activation_prob_std")),
            Measure::Fc1ValueCv => (get("mean_active_value_cv"), None),
            Measure::Fc1Value => (get("mean_active_value_mean"), get("mean_active_value_std")),
        }
    }
}

/// Whether `settings` are the paper's protocol for `dataset` at some learning rate (its
/// numbers are comparable): the preset in every setting that changes the experiment but lr.
pub fn is_paper_protocol(settings: &crate::engine::settings::TrainSettings, dataset: &str) -> bool {
    let preset = crate::engine::settings::TrainSettings {
        lr: settings.lr,
        ..crate::engine::settings::TrainSettings::preset(settings.dataset, settings.method)
    };
    settings.dataset.name() == dataset
        && GroupKey::of(settings, Default::default()) == GroupKey::of(&preset, Default::default())
}

/// The paper's published numbers (sections 4.3, 4.4 and 5; CIFAR-10, 10 seeds, 45,000 iterations).
pub fn paper_numbers() -> Vec<PaperNumber> {
    use Measure::*;
    let n = |method, lr, measure, value, std| PaperNumber { dataset: "cifar10", method, lr, measure, value, std };
    vec![
        n("vanilla", 0.003, Accuracy, 59.3, Some(1.4)),
        n("weight-norm", 0.003, Accuracy, 63.8, Some(0.9)),
        n("batch-norm", 0.003, Accuracy, 65.8, Some(0.5)),
        n("synaptic-scaling", 0.003, Accuracy, 66.0, Some(0.7)),
        n("vanilla", 0.003, FcProbCv, 1.65, None),
        n("weight-norm", 0.003, FcProbCv, 1.38, None),
        n("batch-norm", 0.003, FcProbCv, 0.20, None),
        n("synaptic-scaling", 0.003, FcProbCv, 0.11, None),
        n("vanilla", 0.003, Fc1Prob, 0.10, Some(0.15)),
        n("weight-norm", 0.003, Fc1Prob, 0.17, Some(0.23)),
        n("batch-norm", 0.003, Fc1Prob, 0.41, Some(0.05)),
        n("synaptic-scaling", 0.003, Fc1Prob, 0.51, Some(0.02)),
        n("vanilla", 0.003, Fc1ValueCv, 0.55, None),
        n("weight-norm", 0.003, Fc1ValueCv, 0.30, None),
        n("batch-norm", 0.003, Fc1ValueCv, 0.16, None),
        n("synaptic-scaling", 0.003, Fc1ValueCv, 0.17, None),
        // The paper does not say over which units; fc1 and fc2 pooled lands on it (docs/reproduction/).
        n("vanilla", 0.003, FcValueCv, 0.55, None),
        n("weight-norm", 0.003, FcValueCv, 0.30, None),
        n("batch-norm", 0.003, FcValueCv, 0.16, None),
        n("synaptic-scaling", 0.003, FcValueCv, 0.17, None),
        n("vanilla", 0.003, Fc1Value, 13.36, Some(7.36)),
        n("weight-norm", 0.003, Fc1Value, 0.76, Some(0.23)),
        n("batch-norm", 0.003, Fc1Value, 0.89, Some(0.14)),
        n("synaptic-scaling", 0.003, Fc1Value, 0.63, Some(0.11)),
        n("batch-norm", 0.01, Accuracy, 67.0, Some(1.0)),
        n("batch-norm", 0.02, Accuracy, 67.0, Some(0.4)),
        n("batch-norm", 0.1, Accuracy, 58.0, None),
        n("synaptic-scaling", 0.01, Accuracy, 64.0, Some(2.0)),
        n("synaptic-scaling", 0.02, Accuracy, 56.0, Some(3.0)),
    ]
}

/// One `summary.csv` row as (column, value) pairs: every compared setting (see
/// [`GroupKey::columns`]), the counts, accuracy, and each layer's measures prefixed
/// by its name (`fc1_prob_mean`) for every layer in `layers`.
fn summary_columns(r: &SettingResult, layers: &[String]) -> Vec<(String, String)> {
    let num = csv_cell;
    let ci = r.accuracy_sample().and_then(|s| s.ci95());
    let mut cols = r.key.columns();
    cols.extend([
        ("runs".into(), r.complete.len().to_string()),
        ("measured_runs".into(), r.measured.to_string()),
        ("diverged".into(), r.diverged.len().to_string()),
        ("unfinished".into(), r.unfinished.len().to_string()),
        ("final_accuracy_mean".into(), num(r.final_accuracy.mean)),
        ("final_accuracy_std".into(), num(r.final_accuracy.std)),
        ("final_accuracy_ci95_low".into(), num(ci.map(|c| c.0))),
        ("final_accuracy_ci95_high".into(), num(ci.map(|c| c.1))),
        ("test_accuracy_batch1_mean".into(), num(r.accuracy_batch1.mean)),
        ("test_accuracy_batch1_std".into(), num(r.accuracy_batch1.std)),
        ("best_accuracy_mean".into(), num(r.best_accuracy.mean)),
        ("best_accuracy_std".into(), num(r.best_accuracy.std)),
        ("fc_prob_cv".into(), num(r.fc_prob_cv)),
        ("fc_value_cv".into(), num(r.fc_value_cv)),
        ("data_sha256".into(), r.data.keys().cloned().collect::<Vec<_>>().join(" ")),
    ]);
    cols.extend(measure_columns(layers, |layer, key| r.layer(layer).and_then(|row| row.get(key))));
    cols
}

/// A number as the CSV tables write it: its shortest exact decimal, empty when absent.
pub fn csv_cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// Each layer's registered measures as CSV columns `<layer>_<column>` (`fc1_prob_mean`),
/// their values from `value(layer, measure key)`.
pub fn measure_columns(layers: &[String], value: impl Fn(&str, &str) -> Option<f64>) -> Vec<(String, String)> {
    let mut cols = Vec::new();
    for layer in layers {
        for measure in LAYER_MEASURES {
            if let Some(column) = measure.report_column {
                cols.push((format!("{layer}_{column}"), csv_cell(value(layer, measure.key))));
            }
        }
    }
    cols
}

/// A `curves.csv` row: a setting's mean accuracy curve point.
#[derive(Serialize)]
struct CurvesCsvRow<'a> {
    dataset: &'a str,
    method: &'a str,
    model: &'a str,
    lr: f64,
    batch_size: usize,
    iterations_total: usize,
    /// The setting's row in `summary.csv` (other settings can tell two curves apart).
    setting: usize,
    iteration: usize,
    runs: usize,
    accuracy_mean: f64,
    accuracy_std: Option<f64>,
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn fmt_pm(mean: Option<f64>, std: Option<f64>, digits: usize) -> String {
    match (mean, std) {
        (Some(m), Some(s)) => format!("{m:.digits$} ± {s:.digits$}"),
        (m, _) => fmt(m, digits),
    }
}

/// Writes `report/summary.csv`, `report/runs.csv`, `report/curves.csv` and
/// `report/report.md` under `root`.
pub fn write(root: &Path) -> Result<Vec<SettingResult>> {
    let found = collect(root)?;
    if found.runs.is_empty() && found.unreadable.is_empty() {
        anyhow::bail!("{}: no run folders here", root.display());
    }
    let results = summarize(&found.runs)?;
    let out = root.join(REPORT_DIR);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    let layers = layer_names(results.iter().flat_map(|r| r.layers.iter().map(|(n, _)| n.as_str())));
    let summary: Vec<_> = results.iter().map(|r| summary_columns(r, &layers)).collect();
    rundir::write_atomic(&out, "summary.csv", &table::named_rows_csv(&summary)?)?;

    let mut curves = csv::Writer::from_writer(Vec::new());
    for (setting, r) in results.iter().enumerate() {
        let s = &r.key.settings;
        for p in &r.curve {
            curves.serialize(CurvesCsvRow {
                dataset: s.dataset.name(),
                method: s.method.name(),
                model: s.model.name(),
                lr: s.lr,
                batch_size: s.batch_size,
                iterations_total: s.iterations,
                setting,
                iteration: p.iteration,
                runs: p.runs,
                accuracy_mean: p.accuracy_mean,
                accuracy_std: p.accuracy_std,
            })?;
        }
    }
    rundir::write_atomic(&out, "curves.csv", &curves.into_inner()?)?;
    let setting_of = |r: &RunRecord| results.iter().position(|s| s.key == r.key).unwrap_or(usize::MAX);
    rundir::write_atomic(&out, "runs.csv", &runs_table::csv(root, &found.runs, setting_of, &layers)?)?;
    rundir::write_atomic(&out, "report.md", markdown(root, &results, &found).as_bytes())?;
    Ok(results)
}

/// The report's column naming each row's probe layer, when the rows' networks differ in it.
const PROBE_COLUMN: &str = "probe layer";

fn markdown(root: &Path, results: &[SettingResult], found: &Found) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# homeonorm report: {}\n", crate::text::path(root));
    let _ = writeln!(
        md,
        "Accuracy: mean ± sample std (n − 1) over seeds. Layer measures: per run, the mean over units and the std across \
         units (population), as the paper reports them; each cell is their mean over the setting's seeds. \"–\" is a \
         measure that is undefined (a CV or mean active value of a layer with no active unit) or absent; \"{NOT_RECORDED}\" \
         a setting none of whose runs recorded the measures (partial run folders: a curve and an outcome only, as \
         `homeonorm import` writes). Diverged and unfinished runs are counted, named below, and never averaged in. \
         \"fc units\": the hidden fc layers' units pooled, or, in a network without one (ResNet-20), its probe's.\n"
    );
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "n: the complete runs, the ones averaged; diverged and unfinished runs are counted apart. 95 % CI: the \
         mean's confidence interval, mean ± t(0.975, n − 1) · std / √n. `runs.csv` has every run.\n"
    );
    md += &results_table(results).0.markdown();
    let _ = writeln!(md, "\n## Against the paper\n");
    let _ = writeln!(
        md,
        "The paper's numbers are CIFAR-10, {PAPER_SEEDS} seeds, 45,000 iterations (sections 4.3–4.4 and 5). Each is set \
         beside every LeNet5 setting of ours with the same dataset, method and learning rate (the paper trains no other \
         network); where our iteration count differs, the row says so, and the comparison is only indicative. For \
         accuracy, whose ± is over the paper's seeds: our mean's difference in the paper's stds, and Welch's t-test of \
         our runs against its mean ± std of {PAPER_SEEDS} runs (two-sided p). Its other ± are spreads across units: \
         no test.\n"
    );
    let against = against_the_paper(results);
    if against.rows.is_empty() {
        let _ = writeln!(md, "No setting here matches one the paper reports.");
    } else {
        md += &against.markdown();
    }
    figures(&mut md, root);
    data_hashes(&mut md, results);
    md += &Makers::of(&found.runs).markdown();
    left_out(&mut md, results, found);
    md
}

/// How many seeds each number of the paper averages (section 4.2: ten random seeds).
pub const PAPER_SEEDS: usize = 10;

/// The results table's accuracy columns (the rest are the layer measures).
const ACCURACY_COLUMNS: [&str; 7] =
    ["n", "diverged", "unfinished", "final accuracy (%)", "95 % CI (%)", "test batch 1 (%)", "best accuracy (%)"];

/// "Results": a row per setting, its settings where rows differ, its measures; and how
/// many of its columns name the setting.
fn results_table(results: &[SettingResult]) -> (Table, usize) {
    // Dataset, method (and its Table 1 row), lr, batch and length always; any other
    // setting where the rows differ.
    const ALWAYS: [&str; 6] = ["dataset", "method", TABLE1_ROW, "lr", "batch_size", "iterations"];
    let keys: Vec<&GroupKey> = results.iter().map(|r| &r.key).collect();
    let mut setting_columns: Vec<String> = ALWAYS.iter().map(|c| c.to_string()).collect();
    for column in differing_columns(&keys) {
        let column = if column.starts_with("data_limit") { "data".to_string() } else { column };
        if !setting_columns.contains(&column) {
            setting_columns.push(column);
        }
    }
    // The single-layer measures describe each network's probe layer (fc1 but in
    // ResNet-20): named in the headers when the rows share one, else in a column.
    let mut probes: Vec<&str> = results.iter().map(|r| r.key.settings.model.probe()).collect();
    probes.sort();
    probes.dedup();
    let probe = match probes.as_slice() {
        [one] => one.to_string(),
        _ => {
            setting_columns.push(PROBE_COLUMN.to_string());
            "probe".to_string()
        }
    };
    // The activation probability of the other pooled ("fc") layers too, as the paper's
    // Figure 2 shows LeNet5's fc2 beside fc1.
    let pooled_besides_probe = |r: &SettingResult| {
        let network = r.key.settings.model;
        network.pooled_layers().into_iter().filter(move |l| *l != network.probe())
    };
    let other_layers = layer_names(results.iter().flat_map(pooled_besides_probe));
    let mut measures: Vec<String> = ACCURACY_COLUMNS.map(String::from).to_vec();
    measures.extend(
        ["activation prob", "prob CV", "entropy (bits)", "mean active value", "value CV"]
            .map(|m| format!("{probe} {m}")),
    );
    measures.extend(other_layers.iter().map(|l| format!("{l} activation prob")));
    measures.extend(["fc units prob CV".into(), "fc units value CV".into(), format!("{probe} α")]);
    let mut table = Table::new(setting_columns.iter().chain(&measures));
    for r in results {
        let probe = r.layer(r.key.settings.model.probe()).cloned().unwrap_or_default();
        let pct = |s: Spread| fmt_pm(s.mean.map(|v| 100.0 * v), s.std.map(|v| 100.0 * v), 2);
        let columns = r.key.columns();
        let mut cells: Vec<String> = setting_columns
            .iter()
            .map(|c| match c.as_str() {
                "data" => r.key.data_label(),
                PROBE_COLUMN => r.key.settings.model.probe().to_string(),
                TABLE1_ROW => r.key.settings.method.method().table1_row().to_string(),
                c => columns.iter().find(|(n, _)| n == c).map_or(String::new(), |(_, v)| v.clone()),
            })
            .collect();
        let ci = r.accuracy_sample().and_then(|s| s.ci95());
        cells.extend([
            r.complete.len().to_string(),
            r.diverged.len().to_string(),
            r.unfinished.len().to_string(),
            pct(r.final_accuracy),
            ci.map_or("–".into(), |(lo, hi)| format!("{:.2} to {:.2}", 100.0 * lo, 100.0 * hi)),
            // (absent from every complete run: none of them measured it; an import, say)
            if r.accuracy_batch1.mean.is_none() && !r.complete.is_empty() {
                NOT_RECORDED.to_string()
            } else {
                pct(r.accuracy_batch1)
            },
            pct(r.best_accuracy),
        ]);
        let pm = |row: &LayerRow, of: &str| fmt_pm(row.get(&format!("{of}_mean")), row.get(&format!("{of}_std")), 3);
        let mut unit_measures = vec![
            pm(&probe, "activation_prob"),
            fmt(probe.get("activation_prob_cv"), 3),
            fmt(probe.get("entropy_mean"), 3),
            pm(&probe, "mean_active_value"),
            fmt(probe.get("mean_active_value_cv"), 3),
        ];
        // (a network without the layer: "–")
        let other = |l: &String| pm(&r.layer(l).cloned().unwrap_or_default(), "activation_prob");
        unit_measures.extend(other_layers.iter().map(other));
        unit_measures.extend([fmt(r.fc_prob_cv, 3), fmt(r.fc_value_cv, 3), pm(&probe, "alpha")]);
        let recorded = r.measured > 0 || r.complete.is_empty();
        cells.extend(unit_measures.into_iter().map(|cell| if recorded { cell } else { NOT_RECORDED.to_string() }));
        table.push(cells);
    }
    (table, setting_columns.len())
}

/// "Against the paper": each published number beside every matching LeNet5 setting,
/// with, for accuracy (the paper's ± is over its seeds), the difference in the paper's
/// stds and Welch's t-test of our runs against its mean ± std of [`PAPER_SEEDS`] runs.
fn against_the_paper(results: &[SettingResult]) -> Table {
    let mut table = Table::new([
        "measure",
        "method",
        "lr",
        "paper",
        "ours",
        "ours − paper",
        "in paper stds",
        "Welch p",
        "our runs",
        "our iterations",
    ]);
    for p in paper_numbers() {
        let matches = |s: &crate::engine::settings::TrainSettings| {
            s.model == crate::engine::model::Network::PAPER
                && s.dataset.name() == p.dataset
                && s.method.name() == p.method
                && s.lr == p.lr
        };
        for r in results.iter().filter(|r| matches(&r.key.settings)) {
            let (ours, ours_std) = p.measure.ours(r);
            let digits = if p.measure == Measure::Accuracy { 1 } else { 2 };
            let unrecorded = p.measure != Measure::Accuracy && r.measured == 0 && !r.complete.is_empty();
            let shown = if unrecorded { NOT_RECORDED.to_string() } else { fmt_pm(ours, ours_std, digits) };
            let iterations = r.key.settings.iterations;
            let note =
                if iterations == 45_000 { iterations.to_string() } else { format!("{iterations} (paper: 45000)") };
            // Over seeds only for accuracy: the paper's other ± are spreads across units.
            let (in_stds, p_value) = match (p.measure, p.std, r.accuracy_sample()) {
                (Measure::Accuracy, Some(paper_std), Some(sample)) => {
                    let paper = Sample { mean: p.value, std: paper_std, n: PAPER_SEEDS };
                    let ours = Sample { mean: 100.0 * sample.mean, std: 100.0 * sample.std, ..sample };
                    (Some((ours.mean - p.value) / paper_std), welch(&ours, &paper))
                }
                _ => (None, None),
            };
            table.push(vec![
                p.measure.label().to_string(),
                p.method.to_string(),
                p.lr.to_string(),
                fmt_pm(Some(p.value), p.std, digits),
                shown,
                fmt(ours.map(|o| o - p.value), digits),
                fmt(in_stds, 2),
                p_value.map_or("–".into(), format_p),
                r.complete.len().to_string(),
                note,
            ]);
        }
    }
    table
}

/// A p-value as tables print it: three decimals, or "< 0.001".
fn format_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// `report --latex`: the report's tables as LaTeX (booktabs) in `report/tables.tex` —
/// the results' accuracy and their layer measures as two tables, and the comparison
/// with the paper; returns the file's path.
pub fn write_latex(root: &Path, results: &[SettingResult]) -> Result<PathBuf> {
    let (table, settings) = results_table(results);
    // Its columns that `keep` keeps: the settings with the accuracy, or with the measures.
    let pick = |keep: &dyn Fn(usize) -> bool| {
        let cells = |row: &[String]| row.iter().enumerate().filter(|(k, _)| keep(*k)).map(|(_, c)| c.clone()).collect();
        Table { header: cells(&table.header), rows: table.rows.iter().map(|row| cells(row)).collect() }
    };
    let split = settings + ACCURACY_COLUMNS.len();
    let accuracy = pick(&|k| k < split);
    let measures = pick(&|k| k < settings || k >= split);
    let name = crate::text::path(root);
    let mut tex = format!(
        "% homeonorm report --latex: {name}\n% \\usepackage{{booktabs}}; each table as report.md gives it.\n\n"
    );
    tex += &accuracy.latex(
        "Final test accuracy: mean ± sample std over the n complete runs, and the mean's 95 % confidence \
         interval (Student's t); diverged and unfinished runs are counted apart, never averaged in.",
        "tab:homeonorm-accuracy",
    );
    tex += "\n";
    tex += &measures.latex(
        "Layer measures: per run, the mean over units and the std across units (population); each cell is \
         their mean over the complete runs.",
        "tab:homeonorm-measures",
    );
    let against = against_the_paper(results);
    if !against.rows.is_empty() {
        tex += "\n";
        tex += &against.latex(
            "Against the paper (CIFAR-10, 10 seeds, 45,000 iterations). For accuracy: our mean's difference in \
             the paper's stds, and Welch's t-test of our runs against the paper's mean ± std of 10 runs.",
            "tab:homeonorm-paper",
        );
    }
    let out = root.join(REPORT_DIR);
    rundir::write_atomic(&out, "tables.tex", tex.as_bytes())?;
    Ok(out.join("tables.tex"))
}

/// "Figures": the figures `plot` drew, linked.
fn figures(md: &mut String, root: &Path) {
    let figures = root.join(REPORT_DIR).join(FIGURES_DIR);
    let mut names: Vec<String> = std::fs::read_dir(&figures)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".png") || n.ends_with(".svg"));
    names.sort();
    let _ = writeln!(md, "\n## Figures\n");
    if names.is_empty() {
        let _ = writeln!(md, "None yet: `homeonorm plot {}` draws them.", crate::text::path(root));
    }
    for n in names {
        let _ = writeln!(md, "![{n}]({FIGURES_DIR}/{n})");
    }
}

/// "Data": the content hashes the runs trained on.
fn data_hashes(md: &mut String, results: &[SettingResult]) {
    let _ = writeln!(md, "\n## Data\n");
    let _ = writeln!(
        md,
        "The content sha256 of each dataset's files as the complete runs recorded them \
         (`cd DIR && sha256sum *.bin | sha256sum` for CIFAR-10's binary files).\n"
    );
    let _ = writeln!(md, "| dataset | content sha256 | runs |\n|---|---|---|");
    let mut data: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for r in results {
        for (hash, n) in &r.data {
            *data.entry((r.key.settings.dataset.name(), hash)).or_default() += n;
        }
    }
    for ((dataset, hash), n) in data {
        let _ = writeln!(md, "| {dataset} | {hash} | {n} |");
    }
}

/// "Runs left out": diverged, unfinished, unreadable and duplicate runs, named.
fn left_out(md: &mut String, results: &[SettingResult], found: &Found) {
    let problems: Vec<String> =
        results
            .iter()
            .flat_map(|r| {
                r.diverged
                    .iter()
                    .map(|(s, d)| format!("- diverged: {} seed {s} ({})", r.key.label(), crate::text::path(d)))
                    .chain(r.unfinished.iter().map(|(s, d, why)| {
                        format!(
                            "- unfinished: {} seed {s} ({}): {}",
                            r.key.label(),
                            crate::text::path(d),
                            crate::text::escape(why)
                        )
                    }))
            })
            .chain(
                found
                    .unreadable
                    .iter()
                    .map(|(d, why)| format!("- unreadable: {}: {}", crate::text::path(d), crate::text::escape(why)))
                    .chain(found.duplicates.iter().map(|(d, why)| {
                        format!("- duplicate: {}: {}", crate::text::path(d), crate::text::escape(why))
                    })),
            )
            .collect();
    let _ = writeln!(md, "\n## Runs left out\n");
    if problems.is_empty() {
        let _ = writeln!(md, "None: every run folder found is complete.");
    } else {
        for p in problems {
            let _ = writeln!(md, "{p}");
        }
    }
}
