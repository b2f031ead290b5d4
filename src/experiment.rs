//! Experiment files (`experiments/*.toml`): a grid of datasets × methods ×
//! learning rates × seeds, with any training setting overridable.
//!
//! ```toml
//! name = "paper-cifar10"                 # results go to <out>/<name>/
//! datasets = ["cifar10"]
//! methods = ["vanilla", "batch-norm"]
//! learning_rates = [0.003]               # optional: each dataset's paper lr
//! seeds = 10                             # 0..9, or a list [0, 1, 7]
//!
//! [settings]                             # optional overrides for every dataset
//! iterations = 3000
//! [settings.svhn]                        # optional overrides for one dataset
//! iterations = 1000
//! ```
//!
//! Every field is checked; an error names the file, the line and the key.

use crate::data::{DatasetKind, Normalization};
use crate::norm::{method_by_name, EvalStats};
use crate::train::{SettingChanges, TrainSettings};
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Bounds that keep a typo (`seeds = 1000000000000`) from exhausting memory.
pub const MAX_SEEDS: usize = 100_000;
pub const MAX_RUNS: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {key}: {message}")]
pub struct ExperimentError {
    pub path: PathBuf,
    pub line: usize,
    pub key: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentFile {
    name: Spanned<String>,
    datasets: Spanned<Vec<Spanned<String>>>,
    methods: Spanned<Vec<Spanned<String>>>,
    learning_rates: Option<Spanned<Vec<Spanned<f64>>>>,
    seeds: Spanned<Seeds>,
    #[serde(default)]
    settings: Overrides,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Seeds {
    Count(i64),
    List(Vec<i64>),
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Overrides {
    batch_size: Option<Spanned<i64>>,
    iterations: Option<Spanned<i64>>,
    eval_every: Option<Spanned<i64>>,
    record_every: Option<Spanned<i64>>,
    eval_stats: Option<EvalStats>,
    test_batch_size: Option<Spanned<i64>>,
    normalize_conv: Option<bool>,
    conv_measures: Option<bool>,
    normalization: Option<Normalization>,
    /// Overrides for one dataset (only at the top level of `[settings]`).
    cifar10: Option<Spanned<Box<Overrides>>>,
    svhn: Option<Spanned<Box<Overrides>>>,
}

/// One run of a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub settings: TrainSettings,
    pub seed: u64,
}

/// A checked experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    pub path: PathBuf,
    /// Every run, in a stable order: dataset, method, learning rate, seed.
    pub runs: Vec<RunSpec>,
}

impl Experiment {
    pub fn load(path: &Path) -> Result<Experiment, ExperimentError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError {
            path: path.to_path_buf(),
            line: 0,
            key: "-".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Experiment, ExperimentError> {
        let err = |span: Option<Range<usize>>, key: &str, message: String| ExperimentError {
            path: path.to_path_buf(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            key: key.to_string(),
            message,
        };
        let file: ExperimentFile = toml::from_str(text).map_err(|e| {
            let key = e.message().split('`').nth(1).unwrap_or("-").to_string();
            err(e.span(), &key, e.message().trim().to_string())
        })?;

        let name = file.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') || name.chars().any(char::is_control)
        {
            return Err(err(Some(file.name.span()), "name", "must be a plain folder name".into()));
        }
        let mut datasets = Vec::new();
        for d in file.datasets.get_ref() {
            datasets.push(d.get_ref().parse::<DatasetKind>().map_err(|m| err(Some(d.span()), "datasets", m))?);
        }
        let mut methods = Vec::new();
        for m in file.methods.get_ref() {
            methods
                .push(method_by_name(m.get_ref()).map_err(|e| err(Some(m.span()), "methods", e.to_string()))?.name());
        }
        let learning_rates: Option<Vec<f64>> = match &file.learning_rates {
            None => None,
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(err(
                        Some(list.span()),
                        "learning_rates",
                        "is empty: the grid would have no runs".into(),
                    ));
                }
                for lr in list.get_ref() {
                    let v = *lr.get_ref();
                    if !(v.is_finite() && v > 0.0) {
                        return Err(err(
                            Some(lr.span()),
                            "learning_rates",
                            format!("{v} is not a positive learning rate"),
                        ));
                    }
                }
                Some(list.get_ref().iter().map(|l| *l.get_ref()).collect())
            }
        };
        for (key, list_len, span) in
            [("datasets", datasets.len(), file.datasets.span()), ("methods", methods.len(), file.methods.span())]
        {
            if list_len == 0 {
                return Err(err(Some(span), key, "is empty: the grid would have no runs".into()));
            }
        }
        let seeds: Vec<u64> = match file.seeds.get_ref() {
            Seeds::Count(n) if *n > MAX_SEEDS as i64 => {
                return Err(err(
                    Some(file.seeds.span()),
                    "seeds",
                    format!("{n} seeds is more than the {MAX_SEEDS} an experiment may have"),
                ))
            }
            Seeds::Count(n) if *n > 0 => (0..*n as u64).collect(),
            Seeds::List(list) if !list.is_empty() && list.iter().all(|s| *s >= 0) => {
                list.iter().map(|&s| s as u64).collect()
            }
            _ => {
                return Err(err(
                    Some(file.seeds.span()),
                    "seeds",
                    "must be a positive count or a non-empty list of seeds ≥ 0".into(),
                ))
            }
        };

        // A value listed twice would give two runs of one folder.
        let twice = |values: Vec<String>| {
            let mut seen = std::collections::BTreeSet::new();
            values.into_iter().find(|v| !seen.insert(v.clone()))
        };
        for (key, values, span) in [
            ("datasets", datasets.iter().map(|d| d.to_string()).collect(), file.datasets.span()),
            ("methods", methods.iter().map(|m| m.to_string()).collect(), file.methods.span()),
            (
                "learning_rates",
                learning_rates.iter().flatten().map(|l| l.to_string()).collect(),
                file.learning_rates.as_ref().map_or(0..0, |l| l.span()),
            ),
            ("seeds", seeds.iter().map(|s| s.to_string()).collect(), file.seeds.span()),
        ] {
            if let Some(value) = twice(values) {
                return Err(err(Some(span), key, format!("{value} is listed twice")));
            }
        }
        let grid = datasets.len() * methods.len() * learning_rates.as_ref().map_or(1, |l| l.len()) * seeds.len();
        if grid > MAX_RUNS {
            return Err(err(
                Some(file.seeds.span()),
                "seeds",
                format!("the grid has {grid} runs, more than the {MAX_RUNS} an experiment may have"),
            ));
        }

        let mut runs = Vec::new();
        for &dataset in &datasets {
            let specific = match dataset {
                DatasetKind::Cifar10 => &file.settings.cifar10,
                DatasetKind::Svhn => &file.settings.svhn,
            };
            if let Some(o) = specific {
                if let Some(nested) = o.get_ref().cifar10.as_ref().or(o.get_ref().svhn.as_ref()) {
                    return Err(err(
                        Some(nested.span()),
                        &format!("settings.{dataset}"),
                        "dataset tables go directly under [settings]".into(),
                    ));
                }
            }
            for &method in &methods {
                let mut base = TrainSettings::preset(dataset, method);
                apply(&mut base, &file.settings, "settings", &err)?;
                if let Some(o) = specific {
                    apply(&mut base, o.get_ref(), &format!("settings.{dataset}"), &err)?;
                }
                let lrs = learning_rates.clone().unwrap_or_else(|| vec![base.lr]);
                for &lr in &lrs {
                    for &seed in &seeds {
                        let mut settings = base.clone();
                        settings.lr = lr;
                        runs.push(RunSpec { settings, seed });
                    }
                }
            }
        }
        Ok(Experiment { name, path: path.to_path_buf(), runs })
    }
}

/// Builds an error at a span of the file, for a key.
type ErrorAt<'a> = dyn Fn(Option<Range<usize>>, &str, String) -> ExperimentError + 'a;

/// Checks a table of overrides and applies it.
fn apply(s: &mut TrainSettings, o: &Overrides, table: &str, err: &ErrorAt) -> Result<(), ExperimentError> {
    let positive = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<usize>, ExperimentError> {
        match v {
            None => Ok(None),
            Some(x) if *x.get_ref() > 0 => Ok(Some(*x.get_ref() as usize)),
            Some(x) => {
                Err(err(Some(x.span()), &format!("{table}.{key}"), format!("must be positive, got {}", x.get_ref())))
            }
        }
    };
    if let Some(v) = o.normalization {
        if v.std.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
            return Err(err(None, &format!("{table}.normalization"), format!("std must be positive, got {:?}", v.std)));
        }
    }
    let changes = SettingChanges {
        lr: None,
        batch_size: positive(&o.batch_size, "batch_size")?,
        iterations: positive(&o.iterations, "iterations")?,
        eval_every: positive(&o.eval_every, "eval_every")?,
        record_every: positive(&o.record_every, "record_every")?,
        eval_stats: o.eval_stats,
        test_batch_size: positive(&o.test_batch_size, "test_batch_size")?,
        normalize_conv: o.normalize_conv,
        conv_measures: o.conv_measures,
        normalization: o.normalization,
    };
    changes.apply(s);
    Ok(())
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
