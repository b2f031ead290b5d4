//! `homeonorm compare A B`: two results folders side by side — homeonorm's and a
//! PyTorch script's, a CPU and a GPU run, two machines, two versions.
//!
//! Settings are matched by their [`GroupKey`] (every setting that changes the
//! experiment, and the data subset). For each setting on both sides: mean ± sample
//! std over seeds of the final accuracy and of each layer measure on each side,
//! their difference and Welch's t-test p-value; where the same seeds are on both
//! sides, the largest per-seed difference, the largest curve difference and the
//! first iteration at which the curves part ("identical" when they never do).
//! Unfinished runs are named and left out; settings on one side only are listed.

use crate::engine::measures::{LayerSummary, LAYER_MEASURES};
use crate::engine::metrics::mean_sample_std;
use crate::engine::settings::GroupKey;
use crate::results::report::{self, collect, RunRecord};
use crate::results::rundir::{read_csv, CurveRow, Outcome};
use crate::results::runs_table::Makers;
use crate::results::stats::welch_p;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One complete run's numbers.
struct RunNumbers {
    seed: u64,
    final_accuracy: f64,
    accuracy_batch1: Option<f64>,
    layers: Vec<LayerSummary>,
    curve: Vec<CurveRow>,
    data_sha256: Option<String>,
}

/// One side's runs of one setting.
struct Side {
    runs: Vec<RunNumbers>,
}

/// A measure compared across the two sides of a setting.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MeasureRow {
    pub setting: String,
    pub measure: String,
    pub runs_a: usize,
    pub mean_a: Option<f64>,
    pub std_a: Option<f64>,
    pub runs_b: usize,
    pub mean_b: Option<f64>,
    pub std_b: Option<f64>,
    /// B's mean − A's.
    pub difference: Option<f64>,
    pub welch_p: Option<f64>,
    /// Seeds on both sides, and the largest |B − A| among them.
    pub paired_seeds: usize,
    pub largest_paired_difference: Option<f64>,
}

/// The curves of the seeds both sides ran.
#[derive(Clone, Debug)]
pub struct CurveAgreement {
    pub setting: String,
    pub seeds: usize,
    /// The largest |B − A| of test accuracy and of training loss at a shared iteration
    /// (the loss: `None` where no shared row records it on both sides, as an import
    /// without losses).
    pub largest_accuracy_difference: f64,
    pub largest_loss_difference: Option<f64>,
    /// The first iteration at which any seed's curves differ; `None`: identical.
    pub first_parting: Option<usize>,
    /// Curve rows (iterations) present on one side only, over all seeds.
    pub one_sided_rows: usize,
}

pub struct Comparison {
    pub measures: Vec<MeasureRow>,
    pub curves: Vec<CurveAgreement>,
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
    /// Runs left out (unfinished or unreadable), with why.
    pub left_out: Vec<(PathBuf, String)>,
    /// Seeds on both sides that trained on different data (by content hash): never
    /// the same run, whatever their numbers.
    pub data_differs: Vec<String>,
    /// Seeds of a setting on both sides that only one side ran.
    pub one_sided_seeds: Vec<String>,
    /// Each side's code (homeonorm version and commit, libtorch) and devices, from its
    /// runs' `provenance.json`: informative, never a difference in itself.
    pub made_by: [Makers; 2],
}

impl Comparison {
    /// What differs in the code and devices the two sides ran on, described (empty: the
    /// same, or not recorded on a side).
    pub fn made_differently(&self) -> Vec<String> {
        let [a, b] = &self.made_by;
        let mut out = Vec::new();
        for (what, a, b) in [("code", a.code(), b.code()), ("devices", a.devices(), b.devices())] {
            if !a.is_empty() && !b.is_empty() && a != b {
                out.push(format!(
                    "the two sides ran on different {what}: A on {}; B on {}",
                    a.join(", "),
                    b.join(", ")
                ));
            }
        }
        out
    }
}

impl Comparison {
    /// What keeps the two sides from being the same results within `tolerance`,
    /// described: differences beyond it (a NaN is beyond any), curves with rows on one
    /// side only, runs on other data, and anything on one side only or left out
    /// (unfinished, diverged, unreadable) — a gate never passes on what it did not compare.
    pub fn beyond(&self, tolerance: f64) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.measures {
            for (what, v) in [("mean difference", m.difference), ("paired difference", m.largest_paired_difference)] {
                if let Some(v) = v.filter(|v| v.abs() > tolerance || v.is_nan()) {
                    out.push(format!("{}: {}: {what} {v:e}", m.setting, m.measure));
                }
            }
        }
        out.extend(self.data_differs.iter().cloned());
        for c in &self.curves {
            for (what, d) in
                [("test accuracy", Some(c.largest_accuracy_difference)), ("training loss", c.largest_loss_difference)]
            {
                if let Some(d) = d.filter(|d| *d > tolerance || d.is_nan()) {
                    out.push(format!("{}: {what} curves differ by up to {d:e}", c.setting));
                }
            }
            if c.one_sided_rows > 0 {
                out.push(format!("{}: {} curve row(s) on one side only", c.setting, c.one_sided_rows));
            }
        }
        out.extend(self.one_sided_seeds.iter().cloned());
        out.extend(self.only_a.iter().map(|s| format!("{s}: in A only")));
        out.extend(self.only_b.iter().map(|s| format!("{s}: in B only")));
        out.extend(
            self.left_out
                .iter()
                .map(|(dir, why)| format!("{}: left out: {}", crate::text::path(dir), crate::text::escape(why))),
        );
        out
    }
}

/// How one run's value of a measure is read.
type Getter = Box<dyn Fn(&RunNumbers) -> Option<f64>>;

/// The complete runs of a results folder by setting; what was left out, and every
/// run folder found (for the format check), are added to `left_out` and `dirs`.
fn read_side(
    root: &Path,
    left_out: &mut Vec<(PathBuf, String)>,
    dirs: &mut Vec<PathBuf>,
) -> Result<(Vec<(GroupKey, Side)>, Makers)> {
    if !root.is_dir() {
        bail!("{}: not a folder", root.display());
    }
    let found = collect(root)?;
    if found.runs.is_empty() && found.unreadable.is_empty() {
        bail!("{}: not a results folder (no run folders in it)", root.display());
    }
    dirs.extend(found.runs.iter().map(|r| r.dir.clone()).chain(found.unreadable.iter().map(|(d, _)| d.clone())));
    left_out.extend(found.unreadable);
    left_out.extend(found.duplicates);
    let makers = Makers::of(&found.runs);
    let mut sides: Vec<(GroupKey, Side)> = Vec::new();
    for r in found.runs {
        let Some(numbers) = numbers_of(&r, left_out)? else { continue };
        match sides.iter_mut().find(|(k, _)| *k == r.key) {
            Some((_, side)) => side.runs.push(numbers),
            None => sides.push((r.key.clone(), Side { runs: vec![numbers] })),
        }
    }
    Ok((sides, makers))
}

fn numbers_of(r: &RunRecord, left_out: &mut Vec<(PathBuf, String)>) -> Result<Option<RunNumbers>> {
    let Some(summary) = &r.summary else {
        left_out.push((r.dir.clone(), r.problem.clone().unwrap_or_default()));
        return Ok(None);
    };
    if summary.outcome == Outcome::Diverged {
        left_out.push((r.dir.clone(), "diverged".into()));
        return Ok(None);
    }
    Ok(Some(RunNumbers {
        seed: r.seed,
        final_accuracy: summary.final_accuracy.unwrap_or(f64::NAN),
        accuracy_batch1: summary.test_accuracy_batch1,
        layers: summary.layers.clone(),
        curve: read_csv(&r.dir)?,
        data_sha256: r.data_sha256.clone(),
    }))
}

/// No run folder may be of a newer format than this homeonorm reads: the error names
/// the first (older formats are read as the current one, so they compare with it).
fn check_format(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        if let Some(version) =
            crate::results::rundir::recorded_format(dir).filter(|v| *v > crate::results::rundir::FORMAT_VERSION)
        {
            bail!(
                "{}: run-folder format {version}; this homeonorm reads format {} and older",
                dir.join(crate::results::rundir::CONFIG).display(),
                crate::results::rundir::FORMAT_VERSION
            );
        }
    }
    Ok(())
}

/// Compares the results folders `a` and `b`.
pub fn compare(a: &Path, b: &Path) -> Result<Comparison> {
    let mut left_out = Vec::new();
    let mut dirs = Vec::new();
    let (side_a, made_a) = read_side(a, &mut left_out, &mut dirs)?;
    let (side_b, made_b) = read_side(b, &mut left_out, &mut dirs)?;
    check_format(&dirs)?;
    if side_a.is_empty() || side_b.is_empty() {
        let empty = if side_a.is_empty() { a } else { b };
        bail!(
            "{}: no complete run to compare (every run folder there is unfinished or unreadable){}",
            empty.display(),
            report::reasons(&left_out)
        );
    }
    let mut comparison = Comparison {
        measures: Vec::new(),
        curves: Vec::new(),
        only_a: Vec::new(),
        only_b: Vec::new(),
        left_out,
        data_differs: Vec::new(),
        one_sided_seeds: Vec::new(),
        made_by: [made_a, made_b],
    };
    for (key, _) in side_b.iter().filter(|(k, _)| !side_a.iter().any(|(ka, _)| ka == k)) {
        comparison.only_b.push(describe(key));
    }
    for (key, runs_a) in &side_a {
        let Some((_, runs_b)) = side_b.iter().find(|(k, _)| k == key) else {
            comparison.only_a.push(describe(key));
            continue;
        };
        let setting = describe(key);
        let mut measures: Vec<(String, Getter)> = vec![
            ("final_accuracy".into(), Box::new(|r: &RunNumbers| Some(r.final_accuracy))),
            ("test_accuracy_batch1".into(), Box::new(|r: &RunNumbers| r.accuracy_batch1)),
        ];
        for layer in crate::results::report::layer_names(
            runs_a.runs.iter().flat_map(|r| r.layers.iter().map(|l| l.layer.as_str())),
        ) {
            for measure in LAYER_MEASURES.iter().filter(|m| m.compared) {
                let layer_name = layer.clone();
                measures.push((
                    format!("{layer}_{}", measure.key),
                    Box::new(move |r: &RunNumbers| {
                        r.layers.iter().find(|l| l.layer == layer_name).and_then(|l| l.get(measure.key))
                    }),
                ));
            }
        }
        for (measure, get) in measures {
            let row = measure_row(&setting, &measure, runs_a, runs_b, get.as_ref());
            if row.runs_a + row.runs_b > 0 {
                comparison.measures.push(row); // (α of a method without one: no row)
            }
        }
        comparison.curves.extend(curve_agreement(&setting, runs_a, runs_b));
        comparison.data_differs.extend(data_differences(&setting, runs_a, runs_b));
        for (side, these, other) in [("A", runs_a, runs_b), ("B", runs_b, runs_a)] {
            for r in these.runs.iter().filter(|r| !other.runs.iter().any(|o| o.seed == r.seed)) {
                comparison.one_sided_seeds.push(format!("{setting}: seed {} in {side} only", r.seed));
            }
        }
    }
    comparison.left_out.sort();
    Ok(comparison)
}

fn describe(key: &GroupKey) -> String {
    let s = &key.settings;
    let mut text = key.label();
    let preset = crate::engine::settings::TrainSettings::preset(s.dataset, s.method);
    let (ours, theirs) =
        (GroupKey::of(s, key.data_limit).columns(), GroupKey::of(&preset, Default::default()).columns());
    for (name, value) in ours {
        if !["dataset", "method", "lr"].contains(&name.as_str())
            && theirs.iter().find(|(n, _)| *n == name).map(|(_, v)| v) != Some(&value)
        {
            let _ = write!(text, ", {name} {}", if value.is_empty() { "–" } else { &value });
        }
    }
    text
}

fn measure_row(
    setting: &str,
    measure: &str,
    a: &Side,
    b: &Side,
    get: &dyn Fn(&RunNumbers) -> Option<f64>,
) -> MeasureRow {
    let values = |s: &Side| -> Vec<f64> { s.runs.iter().filter_map(get).filter(|v| v.is_finite()).collect() };
    let (va, vb) = (values(a), values(b));
    let spread = |v: &[f64]| {
        let (m, s) = mean_sample_std(v);
        (m.is_finite().then_some(m), s.is_finite().then_some(s))
    };
    let ((mean_a, std_a), (mean_b, std_b)) = (spread(&va), spread(&vb));
    let mut paired = Vec::new();
    for ra in &a.runs {
        if let Some(rb) = b.runs.iter().find(|r| r.seed == ra.seed) {
            if let (Some(x), Some(y)) = (get(ra), get(rb)) {
                paired.push((y - x).abs());
            }
        }
    }
    MeasureRow {
        setting: setting.to_string(),
        measure: measure.to_string(),
        runs_a: va.len(),
        mean_a,
        std_a,
        runs_b: vb.len(),
        mean_b,
        std_b,
        difference: mean_a.zip(mean_b).map(|(x, y)| y - x),
        welch_p: welch_p(&va, &vb),
        paired_seeds: paired.len(),
        largest_paired_difference: paired.iter().copied().reduce(nan_max),
    }
}

/// The seeds on both sides whose recorded data content differs.
fn data_differences(setting: &str, a: &Side, b: &Side) -> Vec<String> {
    a.runs
        .iter()
        .filter_map(|ra| {
            let rb = b.runs.iter().find(|r| r.seed == ra.seed)?;
            let (x, y) = (ra.data_sha256.as_deref()?, rb.data_sha256.as_deref()?);
            (x != y).then(|| {
                format!("{setting}: seed {}: trained on other data (content sha256 {x} in A, {y} in B)", ra.seed)
            })
        })
        .collect()
}

/// The larger of two differences, NaN if either is (`f64::max` drops a NaN, and a gate
/// must not pass on a NaN).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn curve_agreement(setting: &str, a: &Side, b: &Side) -> Option<CurveAgreement> {
    let mut agreement = CurveAgreement {
        setting: setting.to_string(),
        seeds: 0,
        largest_accuracy_difference: 0.0,
        largest_loss_difference: None,
        first_parting: None,
        one_sided_rows: 0,
    };
    for ra in &a.runs {
        let Some(rb) = b.runs.iter().find(|r| r.seed == ra.seed) else { continue };
        agreement.seeds += 1;
        let parting = |iteration: usize, first: &mut Option<usize>| {
            *first = Some(first.map_or(iteration, |f| f.min(iteration)));
        };
        for row in &ra.curve {
            match rb.curve.iter().find(|r| r.iteration == row.iteration) {
                None => {
                    agreement.one_sided_rows += 1;
                    parting(row.iteration, &mut agreement.first_parting);
                }
                Some(other) => {
                    let da = (other.test_accuracy - row.test_accuracy).abs();
                    agreement.largest_accuracy_difference = nan_max(agreement.largest_accuracy_difference, da);
                    // (a loss recorded on one side only is not a difference: nothing to compare)
                    let dl = other.train_loss.zip(row.train_loss).map(|(x, y)| (x - y).abs());
                    if let Some(dl) = dl {
                        let largest = agreement.largest_loss_difference.unwrap_or(0.0);
                        agreement.largest_loss_difference = Some(nan_max(largest, dl));
                    }
                    if da != 0.0 || dl.is_some_and(|dl| dl != 0.0) {
                        parting(row.iteration, &mut agreement.first_parting);
                    }
                }
            }
        }
        for row in rb.curve.iter().filter(|r| !ra.curve.iter().any(|x| x.iteration == r.iteration)) {
            agreement.one_sided_rows += 1;
            parting(row.iteration, &mut agreement.first_parting);
        }
    }
    (agreement.seeds > 0).then_some(agreement)
}

/// Writes `compare.csv` (one row per setting and measure) and `compare.md` into `out`.
pub fn write(comparison: &Comparison, a: &Path, b: &Path, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for m in &comparison.measures {
        csv.serialize(m)?;
    }
    crate::results::rundir::write_atomic(out, "compare.csv", &csv.into_inner()?)?;
    crate::results::rundir::write_atomic(out, "compare.md", markdown(comparison, a, b).as_bytes())?;
    Ok(())
}

pub fn markdown(c: &Comparison, a: &Path, b: &Path) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# homeonorm compare\n\nA: {}\nB: {}\n", crate::text::path(a), crate::text::path(b));
    let _ = writeln!(md, "## Curves of the seeds on both sides\n");
    let _ = writeln!(md, "| setting | seeds | curves | largest accuracy difference | largest loss difference |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for curve in &c.curves {
        let verdict = curve.first_parting.map_or("identical".to_string(), |i| format!("part at iteration {i}"));
        let loss = curve
            .largest_loss_difference
            .map_or(crate::results::report::NOT_RECORDED.to_string(), |d| format!("{d:e}"));
        let _ = writeln!(
            md,
            "| {} | {} | {verdict} | {:e} | {loss} |",
            curve.setting, curve.seeds, curve.largest_accuracy_difference
        );
    }
    let _ = writeln!(md, "\n## Final accuracy and measures (mean ± sample std over seeds)\n");
    let _ = writeln!(md, "| setting | measure | A | B | B − A | Welch p | paired seeds | largest paired difference |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    let pm = |m: Option<f64>, s: Option<f64>, n: usize| match (m, s) {
        (Some(m), Some(s)) => format!("{m:.6} ± {s:.6} (n = {n})"),
        (Some(m), None) => format!("{m:.6} (n = {n})"),
        _ => "–".into(),
    };
    for m in &c.measures {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            m.setting,
            m.measure,
            pm(m.mean_a, m.std_a, m.runs_a),
            pm(m.mean_b, m.std_b, m.runs_b),
            m.difference.map_or("–".into(), |d| format!("{d:e}")),
            m.welch_p.map_or("–".into(), |p| format!("{p:.3}")),
            m.paired_seeds,
            m.largest_paired_difference.map_or("–".into(), |d| format!("{d:e}")),
        );
    }
    for (title, list) in [
        ("Seeds trained on other data", &c.data_differs),
        ("Seeds of a shared setting on one side only", &c.one_sided_seeds),
        ("Settings in A only", &c.only_a),
        ("Settings in B only", &c.only_b),
    ] {
        let _ = writeln!(md, "\n## {title}\n");
        if list.is_empty() {
            let _ = writeln!(md, "None.");
        }
        for s in list.iter() {
            let _ = writeln!(md, "- {s}");
        }
    }
    let _ = writeln!(md, "\n## Code and devices\n");
    for (side, made) in ["A", "B"].iter().zip(&c.made_by) {
        let or_not = |list: Vec<String>| {
            if list.is_empty() {
                crate::results::report::NOT_RECORDED.to_string()
            } else {
                list.join("; ")
            }
        };
        let _ = writeln!(md, "- {side}: {} on {}", or_not(made.code()), or_not(made.devices()));
    }
    for line in c.made_differently() {
        let _ = writeln!(md, "\nNote: {line} (informative: not a difference of results).");
    }
    let _ = writeln!(md, "\n## Runs left out\n");
    if c.left_out.is_empty() {
        let _ = writeln!(md, "None.");
    }
    for (dir, why) in &c.left_out {
        let _ = writeln!(md, "- {}: {}", crate::text::path(dir), crate::text::escape(why));
    }
    md
}

/// `homeonorm compare`: writes the comparison of `a` and `b` to `out`, prints where the
/// curves part and what was left out, and with a `tolerance` fails when a difference
/// exceeds it (0 asks for identical results).
pub fn command(a: &Path, b: &Path, out: &Path, tolerance: Option<f64>) -> Result<()> {
    if let Some(t) = tolerance.filter(|t| !(t.is_finite() && *t >= 0.0)) {
        bail!("--tolerance must be a finite number ≥ 0, got {t}");
    }
    let comparison = compare(a, b)?;
    write(&comparison, a, b, out)?;
    for curve in &comparison.curves {
        let verdict = curve.first_parting.map_or("identical".into(), |i| format!("part at iteration {i}"));
        println!("{}: {} seed(s) on both sides, curves {verdict}", curve.setting, curve.seeds);
    }
    for line in &comparison.data_differs {
        println!("{line}");
    }
    for line in comparison.made_differently() {
        println!("note: {line}");
    }
    for (dir, why) in &comparison.left_out {
        log::warn!("left out {}: {}", crate::text::path(dir), crate::text::escape(why));
    }
    println!("wrote {} and compare.md", crate::text::path(&out.join("compare.csv")));
    if let Some(tolerance) = tolerance {
        let beyond = comparison.beyond(tolerance);
        if !beyond.is_empty() {
            for line in &beyond {
                println!("beyond {tolerance}: {line}");
            }
            bail!("{} difference(s) beyond the tolerance {tolerance} (listed above)", beyond.len());
        }
    }
    Ok(())
}
