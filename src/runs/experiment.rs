//! Experiment files (`experiments/*.toml`): a grid of datasets × networks × methods ×
//! learning rates × seeds, with any training setting overridable.
//!
//! ```toml
//! name = "paper-cifar10"                 # results go to <out>/<name>/
//! datasets = ["cifar10"]
//! models = ["lenet5", "mlp"]             # optional: the networks (the preset: lenet5)
//! methods = ["vanilla", "batch-norm"]
//! learning_rates = [0.003]               # optional: each dataset's lr (below, or the paper's)
//! threshold_rates = [0.01, 0.03]         # optional: a rule setting's values, for the methods
//!                                        # that read it (also target_rates, scaling_rates)
//! seeds = 10                             # 0..9, or a list [0, 1, 7]
//!
//! [settings]                             # optional changes for every dataset
//! iterations = 3000
//! [settings.svhn]                        # optional changes for one dataset
//! iterations = 1000
//! ```
//!
//! A settings table is a `settings::SettingChanges`, the same changes `train`'s
//! flags make. Every field is checked; an error names the file, the line and the key.
//! The learning rates and rule settings are the grid's axes a model holds per model, so
//! a sweep trains a setting's values of them (and its seeds) as one model.

use crate::engine::data::DatasetKind;
use crate::engine::model::Network;
use crate::engine::norm::{MethodId, RuleSetting};
use crate::engine::settings::{SettingChanges, TrainSettings};
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Bounds that keep a typo (`seeds = 1000000000000`) from exhausting memory.
pub const MAX_SEEDS: usize = 100_000;
pub const MAX_RUNS: usize = 1_000_000;

/// The runs of a grid whose axes have these lengths; `None` past `usize::MAX` (counted
/// without wrapping: a grid of four 65,536-value axes is not a grid of none).
fn grid_size(lengths: impl IntoIterator<Item = usize>) -> Option<usize> {
    lengths.into_iter().try_fold(1usize, |n, len| n.checked_mul(len))
}

/// `path:line: key: message`; without the line (0) or the key (empty) where there is none.
#[derive(Debug)]
pub struct ExperimentError {
    pub path: PathBuf,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ExperimentError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentFile {
    name: Spanned<String>,
    datasets: Spanned<Vec<Spanned<String>>>,
    models: Option<Spanned<Vec<Spanned<String>>>>,
    methods: Spanned<Vec<Spanned<String>>>,
    learning_rates: Option<Spanned<Vec<Spanned<f64>>>>,
    target_rates: Option<Spanned<Vec<Spanned<f64>>>>,
    threshold_rates: Option<Spanned<Vec<Spanned<f64>>>>,
    scaling_rates: Option<Spanned<Vec<Spanned<f64>>>>,
    seeds: Spanned<Seeds>,
    /// Setting changes for every dataset, and tables of changes for one dataset
    /// (`[settings.svhn]`): each read as [`SettingChanges`].
    #[serde(default)]
    settings: toml::Table,
}

impl ExperimentFile {
    /// A rule setting's axis, `<name>s` in the file (`target_rates`).
    fn rule_axis(&self, rule: RuleSetting) -> Option<&Spanned<Vec<Spanned<f64>>>> {
        match rule {
            RuleSetting::TargetRate => self.target_rates.as_ref(),
            RuleSetting::ThresholdRate => self.threshold_rates.as_ref(),
            RuleSetting::ScalingRate => self.scaling_rates.as_ref(),
        }
    }
}

/// A rule setting's values in the grid.
struct RuleAxis {
    rule: RuleSetting,
    key: String,
    values: Vec<Spanned<f64>>,
    span: Range<usize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Seeds {
    Count(i64),
    List(Vec<i64>),
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
    /// Every run, in a stable order: dataset, network, method, learning rate, rule settings, seed.
    pub runs: Vec<RunSpec>,
}

impl Experiment {
    /// Keeps the runs of `datasets` only (all of them when it is empty); an error when
    /// none is left.
    pub fn keep_datasets(&mut self, datasets: &[DatasetKind]) -> anyhow::Result<()> {
        if datasets.is_empty() {
            return Ok(());
        }
        self.runs.retain(|r| datasets.contains(&r.settings.dataset));
        if self.runs.is_empty() {
            anyhow::bail!("{}: no runs left for datasets {datasets:?}", self.path.display());
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Experiment, ExperimentError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError {
            path: path.to_path_buf(),
            line: 0,
            key: String::new(),
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
            // The key the message names, else the one on the line it points at.
            let on_line = e.span().and_then(|span| {
                let line = text[..span.start.min(text.len())].rsplit('\n').next().unwrap_or("").to_string()
                    + text[span.start.min(text.len())..].split('\n').next().unwrap_or("");
                let key = line.split('=').next()?.trim().trim_matches(['[', ']']).trim().to_string();
                (!key.is_empty()).then_some(key)
            });
            let named = ["field `", "key `"].iter().find_map(|p| e.message().split(p).nth(1)?.split('`').next());
            let key = named.map(String::from).or(on_line).unwrap_or_default();
            err(e.span(), &key, e.message().trim().to_string())
        })?;

        let name = file.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') || name.chars().any(char::is_control)
        {
            return Err(err(Some(file.name.span()), "name", "must be a plain folder name".into()));
        }
        if name == crate::results::rundir::REPORT_DIR {
            // `report` writes a results folder's tables into that folder, and leaves it out of the runs.
            let message = format!("`{name}` is the report's own folder in a results folder; choose another name");
            return Err(err(Some(file.name.span()), "name", message));
        }
        let mut datasets = Vec::new();
        for d in file.datasets.get_ref() {
            datasets.push(d.get_ref().parse::<DatasetKind>().map_err(|m| err(Some(d.span()), "datasets", m))?);
        }
        let mut models: Vec<Network> = Vec::new();
        for m in file.models.as_ref().map(|l| l.get_ref().as_slice()).unwrap_or_default() {
            let network = <Network as clap::ValueEnum>::from_str(m.get_ref(), false).map_err(|_| {
                let known: Vec<&str> = Network::all().map(|n| n.name()).collect();
                err(
                    Some(m.span()),
                    "models",
                    format!("unknown network `{}`; networks: {}", m.get_ref(), known.join(", ")),
                )
            })?;
            models.push(network);
        }
        let models_span = file.models.as_ref().map_or(0..0, |l| l.span());
        if file.models.is_some() && models.is_empty() {
            return Err(err(Some(models_span), "models", "is empty: the grid would have no runs".into()));
        }
        let mut methods: Vec<MethodId> = Vec::new();
        for m in file.methods.get_ref() {
            methods.push(
                m.get_ref()
                    .parse()
                    .map_err(|e: crate::engine::norm::UnknownMethod| err(Some(m.span()), "methods", e.to_string()))?,
            );
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
        let mut rule_axes: Vec<RuleAxis> = Vec::new();
        for rule in RuleSetting::ALL {
            let Some(list) = file.rule_axis(rule) else { continue };
            let key = format!("{}s", rule.name());
            if list.get_ref().is_empty() {
                return Err(err(Some(list.span()), &key, "is empty: the grid would have no runs".into()));
            }
            if !methods.iter().any(|m| m.method().rule_settings().contains(&rule)) {
                let readers: Vec<&str> = crate::engine::norm::METHODS
                    .iter()
                    .filter(|m| m.rule_settings().contains(&rule))
                    .map(|m| m.name())
                    .collect();
                let message = format!("no method listed reads {} ({} do)", rule.name(), readers.join(", "));
                return Err(err(Some(list.span()), &key, message));
            }
            rule_axes.push(RuleAxis { rule, key, values: list.get_ref().clone(), span: list.span() });
        }
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
        let axes = [
            ("datasets", datasets.iter().map(|d| d.to_string()).collect(), file.datasets.span()),
            ("models", models.iter().map(|m| m.to_string()).collect(), models_span.clone()),
            ("methods", methods.iter().map(|m| m.to_string()).collect(), file.methods.span()),
            (
                "learning_rates",
                learning_rates.iter().flatten().map(|l| l.to_string()).collect(),
                file.learning_rates.as_ref().map_or(0..0, |l| l.span()),
            ),
            ("seeds", seeds.iter().map(|s| s.to_string()).collect(), file.seeds.span()),
        ];
        let rules = rule_axes
            .iter()
            .map(|a| (a.key.as_str(), a.values.iter().map(|v| v.get_ref().to_string()).collect(), a.span.clone()));
        for (key, values, span) in axes.into_iter().chain(rules) {
            if let Some(value) = twice(values) {
                return Err(err(Some(span), key, format!("{value} is listed twice")));
            }
        }
        let lengths =
            [datasets.len(), models.len().max(1), methods.len(), learning_rates.as_ref().map_or(1, |l| l.len())]
                .into_iter()
                .chain(rule_axes.iter().map(|a| a.values.len()))
                .chain([seeds.len()]);
        match grid_size(lengths) {
            Some(grid) if grid <= MAX_RUNS => {}
            grid => {
                let size = grid.map_or("more than 2^64".to_string(), |g| g.to_string());
                return Err(err(
                    Some(file.seeds.span()),
                    "seeds",
                    format!("the grid has {size} runs, more than the {MAX_RUNS} an experiment may have"),
                ));
            }
        }

        let tables = SettingTables::read(text, file.settings, &err)?;
        let mut runs = Vec::new();
        // Without `models`, one network: the settings' (the preset, or `model = ...`).
        let networks: Vec<Option<Network>> =
            if models.is_empty() { vec![None] } else { models.iter().copied().map(Some).collect() };
        for &dataset in &datasets {
            for &network in &networks {
                for &method in &methods {
                    let mut base = tables.settings(dataset, method, &err)?;
                    if let Some(network) = network {
                        base.model = network;
                        base.validate().map_err(|e| {
                            err(Some(models_span.clone()), "models", format!("{network} with {method}: {e}"))
                        })?;
                    }
                    let lrs = learning_rates.clone().unwrap_or_else(|| vec![base.lr]);
                    for &lr in &lrs {
                        let at_lr = TrainSettings { lr, ..base.clone() };
                        for settings in rule_combinations(&at_lr, &rule_axes, &err)? {
                            // What the sweep would refuse, refused now (the dry run too).
                            if let Some(why) = crate::results::rundir::unnamable(&settings, 0) {
                                let key = if why.contains("`lr") { "learning_rates" } else { "the rule settings" };
                                return Err(err(None, key, format!("{} lr {}: {why}", settings.method, settings.lr)));
                            }
                            for &seed in &seeds {
                                runs.push(RunSpec { settings: settings.clone(), seed });
                            }
                        }
                    }
                }
            }
        }
        Ok(Experiment { name, path: path.to_path_buf(), runs })
    }
}

/// Builds an error at a span of the file, for a key.
type ErrorAt<'a> = dyn Fn(Option<Range<usize>>, &str, String) -> ExperimentError + 'a;

/// `settings` at every combination of the values of the rule axes its method reads
/// (itself alone when it reads none), each value checked where the file gives it.
fn rule_combinations(
    settings: &TrainSettings,
    axes: &[RuleAxis],
    err: &ErrorAt,
) -> Result<Vec<TrainSettings>, ExperimentError> {
    let reads = settings.method.method().rule_settings();
    let mut combinations = vec![settings.clone()];
    for axis in axes.iter().filter(|a| reads.contains(&a.rule)) {
        let mut next = Vec::new();
        for settings in &combinations {
            for value in &axis.values {
                let mut s = settings.clone();
                s.set_rule(axis.rule, *value.get_ref());
                s.validate().map_err(|e| err(Some(value.span()), &axis.key, e.to_string()))?;
                next.push(s);
            }
        }
        combinations = next;
    }
    Ok(combinations)
}

/// The `[settings]` table and its per-dataset tables, each read as
/// [`SettingChanges`], with where each key is in the file.
struct SettingTables<'t> {
    text: &'t str,
    common: (SettingChanges, Vec<String>),
    per_dataset: Vec<(DatasetKind, SettingChanges, Vec<String>)>,
}

impl<'t> SettingTables<'t> {
    fn read(text: &'t str, mut table: toml::Table, err: &ErrorAt) -> Result<Self, ExperimentError> {
        let mut per_dataset = Vec::new();
        for dataset in DatasetKind::all() {
            let path = ["settings", dataset.name()];
            match table.remove(dataset.name()) {
                None => {}
                Some(toml::Value::Table(t)) => {
                    let (changes, keys) = read_changes(text, &path, t, err)?;
                    per_dataset.push((dataset, changes, keys));
                }
                Some(_) => {
                    return Err(err(key_span(text, &path), &path.join("."), "must be a table of settings".into()))
                }
            }
        }
        let common = read_changes(text, &["settings"], table, err)?;
        Ok(SettingTables { text, common, per_dataset })
    }

    /// The preset with `[settings]` and then `[settings.<dataset>]` applied, checked
    /// after each, so that an error names the table whose value is wrong.
    fn settings(
        &self,
        dataset: DatasetKind,
        method: MethodId,
        err: &ErrorAt,
    ) -> Result<TrainSettings, ExperimentError> {
        let mut s = TrainSettings::preset(dataset, method);
        let (common, common_keys) = &self.common;
        common.apply(&mut s);
        let blame = |e: crate::engine::settings::SettingError, table: &[&str], keys: &[String]| {
            // A key given in this table is the culprit; else the preset and an earlier table.
            let path = if keys.iter().any(|k| k == e.key) { [table, &[e.key]].concat() } else { table.to_vec() };
            err(key_span(self.text, &path), &path.join("."), e.message)
        };
        s.validate().map_err(|e| blame(e, &["settings"], common_keys))?;
        if let Some((_, changes, keys)) = self.per_dataset.iter().find(|(d, _, _)| *d == dataset) {
            changes.apply(&mut s);
            s.validate().map_err(|e| blame(e, &["settings", dataset.name()], keys))?;
        }
        Ok(s)
    }
}

/// One table of setting changes, key by key so that an error names its key and line.
fn read_changes(
    text: &str,
    table_path: &[&str],
    table: toml::Table,
    err: &ErrorAt,
) -> Result<(SettingChanges, Vec<String>), ExperimentError> {
    let keys: Vec<String> = table.keys().cloned().collect();
    for (key, value) in &table {
        let one = toml::Table::from_iter([(key.clone(), value.clone())]);
        if let Err(e) = toml::Value::Table(one).try_into::<SettingChanges>() {
            let path = [table_path, &[key.as_str()]].concat();
            return Err(err(key_span(text, &path), &path.join("."), e.message().trim().to_string()));
        }
    }
    let changes = toml::Value::Table(table).try_into::<SettingChanges>().expect("every key read alone");
    Ok((changes, keys))
}

/// Where a dotted key (`settings.svhn.iterations`) is in the file.
fn key_span(text: &str, path: &[&str]) -> Option<Range<usize>> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let (last, parents) = path.split_last()?;
    for key in parents {
        table = table.get(key)?.as_table_like()?;
    }
    let (key, item) = table.get_key_value(last)?;
    key.span().or_else(|| item.span())
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
