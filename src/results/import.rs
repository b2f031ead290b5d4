//! `homeonorm import TABLE.csv --out DIR`: a long-format results table from any tool
//! (a W&B export, a pandas frame, a paper's supplementary file) as partial run folders
//! (`config.json`, `curve.csv`, `summary.json`: docs/run-folder.md), so that `compare`,
//! `report` and `plot` put it beside homeonorm's runs.
//!
//! One row per method, learning rate, seed and iteration, with the test accuracy and
//! optionally the training loss. A column named as a setting (`batch_size`,
//! `iterations`, `dataset`, …) sets it for its row's run; every other setting is the
//! preset, changed by the command line's setting flags. A run's rows must agree on
//! their settings, and its last row must be its last iteration (the loss not finite
//! from some row on: a diverged run, as homeonorm records one).

use crate::engine::data::{DatasetKind, Limit};
use crate::engine::norm::MethodId;
use crate::engine::settings::{SettingChanges, TrainSettings};
use crate::results::rundir::{self, CurveRow, Outcome, RunConfig, Summary};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The table's column names, where they differ from homeonorm's.
#[derive(Clone, Debug, clap::Args)]
pub struct Columns {
    /// The method's column (values: registered method names, as `homeonorm info` lists).
    #[arg(long, default_value = "method", value_name = "NAME")]
    pub method_column: String,
    /// The learning rate's column (optional: without it, every run has --lr's, or the preset's).
    #[arg(long, default_value = "lr", value_name = "NAME")]
    pub lr_column: String,
    /// The seed's column (non-negative integers).
    #[arg(long, default_value = "seed", value_name = "NAME")]
    pub seed_column: String,
    /// The iteration's column (Adam steps done when the row was measured).
    #[arg(long, default_value = "iteration", value_name = "NAME")]
    pub iteration_column: String,
    /// The test accuracy's column (a fraction in [0, 1]; with --percent, in [0, 100]).
    #[arg(long, default_value = "test_accuracy", value_name = "NAME")]
    pub accuracy_column: String,
    /// The training loss's column (optional: absent, or an empty cell, is not recorded).
    #[arg(long, default_value = "train_loss", value_name = "NAME")]
    pub loss_column: String,
}

/// What `import` is told besides the table.
pub struct ImportOptions {
    pub columns: Columns,
    /// The dataset of rows without a `dataset` column.
    pub dataset: DatasetKind,
    /// Changes to the preset for every run (a setting column overrides them per run).
    pub changes: SettingChanges,
    /// The runs used a subset of each split (as `train --limit`).
    pub data_limit: Limit,
    /// Accuracies are percentages.
    pub percent: bool,
    /// Replace run folders already in the output folder (else: an error naming them).
    pub replace: bool,
}

/// One run gathered from the table: its settings and seed, its curve with each row's
/// line, and its first row's line and setting cells (every row's must be the same).
struct TableRun {
    settings: TrainSettings,
    seed: u64,
    rows: Vec<(usize, CurveRow)>,
    first_line: usize,
    cells: Map<String, Value>,
    /// Each iteration's line (a second row of one is a duplicate).
    lines: HashMap<usize, usize>,
}

/// Reads `table` and writes one partial run folder per (dataset, network, method,
/// learning rate, seed) under `out`; returns the folders written. Nothing is written when any
/// row is bad: the error names the file, the line and what is wrong.
pub fn import(table: &Path, out: &Path, options: &ImportOptions) -> Result<Vec<PathBuf>> {
    let runs = read_table(table, options)?;
    if runs.is_empty() {
        bail!("{}: no rows", table.display());
    }
    let mut plans = Vec::new();
    for run in &runs {
        let s = &run.settings;
        let dir = rundir::run_dir(out, s, run.seed);
        // Checked for every run before any is written: nothing is written when one cannot be.
        if let Some(why) = rundir::unnamable(s, run.seed) {
            bail!("{}: line {}: {why}", table.display(), run.first_line);
        }
        if let Some(file) = dir.ancestors().skip(1).find(|a| a.exists() && !a.is_dir()) {
            bail!(
                "{}: not a folder, where the run of line {} goes ({})",
                file.display(),
                run.first_line,
                dir.display()
            );
        }
        if let rundir::RunState::Foreign(why) = rundir::state(&dir) {
            bail!(
                "{}: another writer's run ({}): never written over, --replace or not; move it, or use another --out",
                dir.display(),
                crate::text::escape(&why)
            );
        }
        if dir.exists() && !options.replace {
            bail!(
                "{}: already holds a run (of {}, seed {}); pass --replace to write over it, or another --out",
                dir.display(),
                describe(s),
                run.seed
            );
        }
        plans.push((dir, run));
    }
    let mut written = Vec::new();
    for (dir, run) in plans {
        write_run(&dir, run, table, options.data_limit)?;
        written.push(dir);
    }
    Ok(written)
}

fn describe(s: &TrainSettings) -> String {
    crate::engine::settings::GroupKey::of(s, Limit::default()).label()
}

/// The longest line a results table may have, and the most bytes it may hold: a
/// table of a million rows is some 100 MB; `/dev/zero` given as one is refused.
const MAX_LINE: usize = 1 << 20;
const MAX_TABLE: u64 = 16 << 30;

/// A table's bytes, read with its bounds: an error past [`MAX_LINE`] bytes without a line
/// break, or [`MAX_TABLE`] bytes in all.
struct Bounded<R> {
    inner: R,
    line: usize,
    total: u64,
}

impl<R> Bounded<R> {
    fn new(inner: R) -> Self {
        Bounded { inner, line: 0, total: 0 }
    }
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &byte in &buf[..n] {
            self.line = if byte == b'\n' { 0 } else { self.line + 1 };
            if self.line > MAX_LINE {
                return Err(std::io::Error::other(format!("a line longer than {MAX_LINE} bytes: not a results table")));
            }
        }
        self.total += n as u64;
        if self.total > MAX_TABLE {
            return Err(std::io::Error::other(format!("more than {MAX_TABLE} bytes: not a results table")));
        }
        Ok(n)
    }
}

/// The table's runs, every row checked.
fn read_table(table: &Path, options: &ImportOptions) -> Result<Vec<TableRun>> {
    let file = std::fs::File::open(table).with_context(|| format!("cannot read {}", table.display()))?;
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(Bounded::new(file));
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no header row", table.display()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if let Some((i, name)) = header.iter().enumerate().find(|(i, h)| header[..*i].contains(h)) {
        bail!(
            "{}: column {name:?} is named twice (columns {} and {})",
            table.display(),
            header.iter().position(|h| h == name).unwrap() + 1,
            i + 1
        );
    }
    let c = &options.columns;
    let find = |name: &str| header.iter().position(|h| h == name);
    let required = |name: &str, flag: &str| {
        find(name).ok_or_else(|| {
            anyhow!("{}: no column {name:?} (the header has {header:?}; {flag} names another)", table.display())
        })
    };
    let method_at = required(&c.method_column, "--method-column")?;
    let seed_at = required(&c.seed_column, "--seed-column")?;
    let iteration_at = required(&c.iteration_column, "--iteration-column")?;
    let accuracy_at = required(&c.accuracy_column, "--accuracy-column")?;
    let lr_at = find(&c.lr_column);
    let loss_at = find(&c.loss_column);
    let own = [Some(method_at), lr_at, Some(seed_at), Some(iteration_at), Some(accuracy_at), loss_at];
    // Columns named as settings set them; the others (a W&B export's _runtime, say) are not read.
    let setting_keys = setting_keys();
    let mut setting_columns = Vec::new();
    let mut ignored = Vec::new();
    for (i, name) in header.iter().enumerate().filter(|(i, _)| !own.contains(&Some(*i))) {
        if setting_keys.iter().any(|k| k == name) {
            setting_columns.push((i, name.clone()));
        } else {
            ignored.push(name.as_str());
        }
    }
    if !ignored.is_empty() {
        log::info!("{}: columns not read (neither a run's key nor a setting): {ignored:?}", table.display());
    }

    let mut runs: Vec<TableRun> = Vec::new();
    // Each run's place in `runs`, by its folder's levels (a table of a million rows is read
    // in linear time: BENCHMARKS.md).
    let mut run_of: HashMap<(DatasetKind, &'static str, &'static str, u64, u64), usize> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        // (line numbers as an editor shows them: the header is line 1; a record spanning
        // lines is named by its first)
        let line = record.as_ref().ok().and_then(|r| r.position()).map_or(index + 2, |p| p.line() as usize);
        let record = record.map_err(|e| anyhow!("{}: line {line}: {e}", table.display()))?;
        let at = |column: &str| format!("{}: line {line}, column {column:?}", table.display());
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let method: MethodId = cell(method_at).parse().map_err(|e| anyhow!("{}: {e}", at(&c.method_column)))?;
        let lr = match lr_at.map(cell) {
            None => None,
            Some(v) => Some(number(v).ok_or_else(|| anyhow!("{}: {v:?} is not a number", at(&c.lr_column)))?),
        };
        let seed: u64 = cell(seed_at).parse().map_err(|_| {
            anyhow!("{}: {:?} is not a seed (a non-negative integer)", at(&c.seed_column), cell(seed_at))
        })?;
        let iteration: usize = cell(iteration_at).parse().map_err(|_| {
            anyhow!(
                "{}: {:?} is not an iteration (a non-negative integer)",
                at(&c.iteration_column),
                cell(iteration_at)
            )
        })?;
        let scale = if options.percent { 100.0 } else { 1.0 };
        let accuracy = number(cell(accuracy_at)).filter(|a| (0.0..=scale).contains(a)).ok_or_else(|| {
            let range = if options.percent { "0 to 100 (--percent)" } else { "0 to 1 (--percent: 0 to 100)" };
            anyhow!("{}: {:?} is not an accuracy from {range}", at(&c.accuracy_column), cell(accuracy_at))
        })? / scale;
        let train_loss = match loss_at.map(cell).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(number(v).ok_or_else(|| anyhow!("{}: {v:?} is not a number", at(&c.loss_column)))?),
        };
        let mut cells = Map::new();
        for (i, name) in &setting_columns {
            if !cell(*i).is_empty() {
                cells.insert(name.clone(), setting_value(cell(*i)));
            }
        }
        let settings =
            settings_of(&cells, method, lr, options).map_err(|e| anyhow!("{}: line {line}: {e:#}", table.display()))?;
        let lr = settings.lr;
        let row = CurveRow { iteration, train_loss, test_accuracy: accuracy };
        // A run is its dataset, network, method, learning rate and seed (its folder); its other
        // settings must agree row by row.
        let key = (settings.dataset, settings.model.name(), method.name(), lr.to_bits(), seed);
        let at = *run_of.entry(key).or_insert_with(|| {
            let lines = HashMap::new();
            runs.push(TableRun { settings, seed, rows: Vec::new(), first_line: line, cells: cells.clone(), lines });
            runs.len() - 1
        });
        let run = &mut runs[at];
        let said = |cells: &Map<String, Value>, key: &str| cells.get(key).map_or("empty".into(), |v| v.to_string());
        if let Some(key) = run.cells.keys().chain(cells.keys()).find(|k| run.cells.get(*k) != cells.get(*k)) {
            bail!(
                "{}: line {line}: {key} {}, but line {} of the same run ({method} lr {lr} seed {seed}) has {}: \
                 conflicting settings",
                table.display(),
                said(&cells, key),
                run.first_line,
                said(&run.cells, key)
            );
        }
        if let Some(first_line) = run.lines.insert(iteration, line) {
            bail!(
                "{}: line {line}: {method} lr {lr} seed {seed} iteration {iteration} again (first on line \
                 {first_line}): duplicate row",
                table.display()
            );
        }
        run.rows.push((line, row));
    }
    for run in &mut runs {
        run.rows.sort_by_key(|(_, r)| r.iteration);
        check_length(table, run)?;
    }
    Ok(runs)
}

/// A cell as a number: decimal, `NaN`, `inf` (what Python and Rust write), never empty.
fn number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok()
}

/// A setting's cell as JSON: a number or `true`/`false` as such, anything else a string.
fn setting_value(cell: &str) -> Value {
    serde_json::from_str::<Value>(cell)
        .ok()
        .filter(|v| v.is_number() || v.is_boolean())
        .unwrap_or_else(|| Value::String(cell.to_string()))
}

/// The keys a table column may set: every setting the command line and experiment
/// files change, and the dataset.
fn setting_keys() -> Vec<String> {
    let mut keys = vec!["dataset".to_string()];
    if let Ok(Value::Object(all)) =
        serde_json::to_value(TrainSettings::preset(DatasetKind::Cifar10, MethodId::all().next().expect("a method")))
    {
        keys.extend(all.keys().filter(|k| !["method", "lr", "normalization"].contains(&k.as_str())).cloned());
    }
    keys
}

/// A row's settings: the preset of its dataset and method, the command line's changes,
/// then its setting columns.
fn settings_of(
    cells: &Map<String, Value>,
    method: MethodId,
    lr: Option<f64>,
    options: &ImportOptions,
) -> Result<TrainSettings> {
    let mut cells = cells.clone();
    let dataset = match cells.remove("dataset") {
        None => options.dataset,
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| anyhow!("dataset {v} is not one homeonorm has (cifar10, svhn)"))?,
    };
    let columns: SettingChanges = serde_json::from_value(Value::Object(cells)).map_err(|e| anyhow!("{e}"))?;
    let mut settings = TrainSettings::preset(dataset, method);
    options.changes.apply(&mut settings);
    columns.apply(&mut settings);
    if let Some(lr) = lr {
        settings.lr = lr;
    }
    settings.validate()?;
    Ok(settings)
}

/// A run's rows must end at its last iteration, or stop where its loss stopped being
/// finite (a diverged run).
fn check_length(table: &Path, run: &TableRun) -> Result<()> {
    let s = &run.settings;
    let (last_line, last) = run.rows.last().expect("a run has a row");
    if diverged_at(run).is_none() && last.iteration != s.iterations {
        bail!(
            "{}: line {last_line}: the last row of {} seed {} is iteration {}, and its settings have {} iterations \
             (the preset's, unless --iterations or an iterations column says otherwise)",
            table.display(),
            describe(s),
            run.seed,
            last.iteration,
            s.iterations
        );
    }
    if let Some((line, r)) = run.rows.iter().find(|(_, r)| r.iteration > s.iterations) {
        bail!(
            "{}: line {line}: iteration {} is past the run's {} iterations",
            table.display(),
            r.iteration,
            s.iterations
        );
    }
    Ok(())
}

/// The iteration of the first row whose loss is not finite.
fn diverged_at(run: &TableRun) -> Option<usize> {
    run.rows.iter().find(|(_, r)| r.train_loss.is_some_and(|l| !l.is_finite())).map(|(_, r)| r.iteration)
}

/// Writes one run's folder: `config.json`, `curve.csv` (the rows before divergence),
/// `summary.json` last.
fn write_run(dir: &Path, run: &TableRun, table: &Path, data_limit: Limit) -> Result<()> {
    rundir::prepare(dir)?;
    let config = RunConfig {
        format_version: rundir::FORMAT_VERSION,
        settings: run.settings.clone(),
        seed: run.seed,
        data_limit,
        seed_batch: Vec::new(),
        train_images: 0,
        test_images: 0,
        data_dir: PathBuf::new(),
        data_files: Vec::new(),
        device: String::new(),
        system: serde_json::json!({
            "writer": "homeonorm import",
            "homeonorm": env!("CARGO_PKG_VERSION"),
            "table": table.display().to_string(),
        }),
        choices: Value::Null,
    };
    let mut files = BTreeMap::new();
    files.insert(rundir::CONFIG.to_string(), rundir::write_json(dir, rundir::CONFIG, &config)?);
    let diverged_at = diverged_at(run);
    let curve: Vec<CurveRow> =
        run.rows.iter().map(|(_, r)| r.clone()).filter(|r| diverged_at.is_none_or(|at| r.iteration < at)).collect();
    files.insert(rundir::CURVE.to_string(), rundir::write_csv(dir, &curve)?);
    let best = curve.iter().max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy));
    let last = curve.last();
    let summary = Summary {
        outcome: if diverged_at.is_some() { Outcome::Diverged } else { Outcome::Complete },
        diverged_at,
        iterations: diverged_at.or(last.map(|r| r.iteration)).unwrap_or(0),
        final_accuracy: if diverged_at.is_some() { None } else { last.map(|r| r.test_accuracy) },
        test_accuracy_batch1: None,
        best_accuracy: best.map(|b| b.test_accuracy),
        best_iteration: best.map(|b| b.iteration),
        final_train_loss: last.and_then(|r| r.train_loss),
        wall_time_s: None,
        layers: Vec::new(),
        files,
    };
    rundir::write_json(dir, rundir::SUMMARY, &summary)?;
    Ok(())
}
