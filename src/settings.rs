//! The settings of a run: one struct of every setting with the paper's presets
//! ([`TrainSettings`]), one struct of changes to them that the command line and
//! experiment files share ([`SettingChanges`]), one validation, and the key that
//! groups runs in reports and figures ([`GroupKey`]).
//!
//! A new setting is a field of [`TrainSettings`] and of [`SettingChanges`] (with its
//! line in [`SettingChanges::apply`]). It is then recorded in `config.json`, checked
//! when a sweep resumes, kept apart in reports and figures and shown as a report
//! column wherever it differs, unless it is named in [`BOOKKEEPING`].

use crate::data::batches::BatchOrder;
use crate::data::{DatasetKind, Limit, PixelStandardization};
use crate::model::{ModelOptions, Network};
use crate::norm::{self, EvalStats, MethodId, MethodOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every setting of a run. Recorded in each run's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    pub dataset: DatasetKind,
    pub method: MethodId,
    /// The network (absent in folders written before there was a choice: LeNet5).
    #[serde(default)]
    pub model: Network,
    pub lr: f64,
    pub batch_size: usize,
    pub iterations: usize,
    /// Test accuracy (on the whole test set) every this many iterations, and at the end.
    pub eval_every: usize,
    /// Activation probabilities over the training batch every this many iterations (Figure 2B).
    pub record_every: usize,
    /// Statistics used by normalized layers at test time (the paper: the test batch's own).
    pub eval_stats: EvalStats,
    /// Test batch size: matters for batch-statistics evaluation. The last partial batch is evaluated too.
    pub test_batch_size: usize,
    /// Apply the method to the conv layers too (the paper: "every layer except input and output").
    pub normalize_conv: bool,
    /// Also record the measures for conv channels (fc units are always recorded).
    pub conv_measures: bool,
    /// Pixel standardization after scaling pixels to [0, 1] (`Normalize(mean, std)`).
    pub normalization: PixelStandardization,
    /// Where each epoch's shuffle comes from (absent in folders written before it
    /// was a setting: those used ChaCha8).
    #[serde(default = "order_before_it_was_recorded")]
    pub batch_order: BatchOrder,
    /// group-norm: groups per layer (each must divide the layer's units).
    #[serde(default = "default_groups")]
    pub groups: usize,
    /// whitening: units (channels) whitened together, the last group of a layer smaller.
    #[serde(default = "default_whitening_group")]
    pub whitening_group_size: usize,
    /// adaptive-threshold, homeostatic-scaling: the activation probability p* each unit
    /// is held at, in (0, 1).
    #[serde(default = "default_target_rate")]
    pub target_rate: f64,
    /// adaptive-threshold: η of θ ← θ + η (p̂ − p*), positive.
    #[serde(default = "default_threshold_rate")]
    pub threshold_rate: f64,
    /// homeostatic-scaling: η of α ← α (1 + η (p* − p̄)), in (0, 1) so that α stays positive.
    #[serde(default = "default_scaling_rate")]
    pub scaling_rate: f64,
    /// homeostatic-scaling: steps the running average p̄ of each unit's activation
    /// probability averages over.
    #[serde(default = "default_rate_window")]
    pub rate_window: usize,
    /// dendritic-norm: inputs per branch of an fc unit.
    #[serde(default = "default_branch_size")]
    pub branch_size: usize,
}

// The defaults of the method settings, also for folders written before each was one
// (their runs used none of the methods that read them).
fn default_groups() -> usize {
    norm::DEFAULT_GROUPS as usize
}
fn default_whitening_group() -> usize {
    norm::DEFAULT_WHITENING_GROUP as usize
}
fn default_target_rate() -> f64 {
    norm::DEFAULT_TARGET_RATE
}
fn default_threshold_rate() -> f64 {
    norm::DEFAULT_THRESHOLD_RATE
}
fn default_scaling_rate() -> f64 {
    norm::DEFAULT_SCALING_RATE
}
fn default_rate_window() -> usize {
    norm::DEFAULT_RATE_WINDOW as usize
}
fn default_branch_size() -> usize {
    norm::DEFAULT_BRANCH_SIZE as usize
}

fn order_before_it_was_recorded() -> BatchOrder {
    BatchOrder::Chacha8
}

/// Settings that change what is recorded, not the experiment: left out of the key
/// that groups runs, so runs that differ only in them are averaged together.
/// (`eval_every` is not one: each evaluation draws from torch's generator, as a
/// script's test loader does, and so moves the DataLoader order's later epochs.)
pub const BOOKKEEPING: [&str; 2] = ["record_every", "conv_measures"];

/// The preset test batch size, for both datasets.
pub const PRESET_TEST_BATCH: usize = 1_000;
/// The largest batch, group or window size a setting may have (2^31 − 1).
pub const MAX_SIZE: usize = i32::MAX as usize;
/// The most iterations a run may have: 10^8, some 2,000 times the paper's CIFAR-10 protocol.
pub const MAX_ITERATIONS: usize = 100_000_000;

pub use crate::setting_error::SettingError;

impl TrainSettings {
    /// The paper's protocol for a dataset (section 4): CIFAR-10 batch 32, lr 0.003,
    /// 45,000 iterations; SVHN batch 256, lr 0.01, 8,000 iterations. The paper does
    /// not give its test batch size; with batch statistics at test time it matters
    /// (README, "Where the paper is silent"), and its numbers are those of large test
    /// batches: 1,000.
    pub fn preset(dataset: DatasetKind, method: MethodId) -> TrainSettings {
        let (batch_size, lr, iterations, eval_every) = match dataset {
            DatasetKind::Cifar10 => (32, 0.003, 45_000, 1_000),
            DatasetKind::Svhn => (256, 0.01, 8_000, 200),
        };
        TrainSettings {
            dataset,
            method,
            model: Network::default(),
            lr,
            batch_size,
            iterations,
            eval_every,
            record_every: 100,
            eval_stats: EvalStats::Batch,
            test_batch_size: PRESET_TEST_BATCH,
            normalize_conv: true,
            conv_measures: false,
            normalization: PixelStandardization::default(),
            batch_order: BatchOrder::default(),
            groups: default_groups(),
            whitening_group_size: default_whitening_group(),
            target_rate: default_target_rate(),
            threshold_rate: default_threshold_rate(),
            scaling_rate: default_scaling_rate(),
            rate_window: default_rate_window(),
            branch_size: default_branch_size(),
        }
    }

    /// The one check of every setting's value.
    pub fn validate(&self) -> Result<(), SettingError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(SettingError {
                key: "lr",
                message: format!("learning rate must be a positive finite number, got {}", self.lr),
            });
        }
        for (key, name, v) in [
            ("batch_size", "batch size", self.batch_size),
            ("iterations", "iterations", self.iterations),
            ("eval_every", "eval-every", self.eval_every),
            ("record_every", "record-every", self.record_every),
            ("test_batch_size", "test batch size", self.test_batch_size),
            ("groups", "groups", self.groups),
            ("whitening_group_size", "whitening group size", self.whitening_group_size),
            ("rate_window", "rate window", self.rate_window),
            ("branch_size", "branch size", self.branch_size),
        ] {
            if v == 0 {
                return Err(SettingError { key, message: format!("{name} must be positive, got 0") });
            }
            // Sizes reach torch as i64 and iterations are planned ahead: bounded where
            // they are checked, not wrapped or exhausted later.
            let most = if key == "iterations" { MAX_ITERATIONS } else { MAX_SIZE };
            if v > most {
                return Err(SettingError { key, message: format!("{name} must be at most {most}, got {v}") });
            }
        }
        // (low, high, what): each rate must lie strictly between its bounds.
        for (key, value, low, high, what) in [
            ("target_rate", self.target_rate, 0.0, 1.0, "a target activation probability p* must lie in (0, 1)"),
            ("threshold_rate", self.threshold_rate, 0.0, f64::INFINITY, "the threshold rate η must be positive"),
            (
                "scaling_rate",
                self.scaling_rate,
                0.0,
                1.0,
                "the scaling rate η must lie in (0, 1), so that α stays positive",
            ),
        ] {
            if !(value.is_finite() && value > low && value < high) {
                return Err(SettingError { key, message: format!("{what}, got {value}") });
            }
        }
        let (mean, std) = (self.normalization.mean, self.normalization.std);
        if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(SettingError {
                key: "normalization",
                message: format!("pixel standardization std must be positive and finite, got {std:?}"),
            });
        }
        if mean.iter().any(|m| !m.is_finite()) {
            return Err(SettingError {
                key: "normalization",
                message: format!("pixel standardization mean must be finite, got {mean:?}"),
            });
        }
        crate::model::check_method(self.method.method(), &self.model_options())
    }

    /// Seeds trained together as one model, at most: `requested`, or 1 for a method
    /// whose seed batch is not bit-exact (so that each run is its script's run).
    pub fn seeds_per_batch(&self, requested: usize) -> usize {
        if self.method.method().exact_in_a_seed_batch() {
            requested
        } else {
            1
        }
    }

    /// How the model is built.
    pub fn model_options(&self) -> ModelOptions {
        ModelOptions {
            network: self.model,
            normalize_conv: self.normalize_conv,
            method: MethodOptions {
                groups: self.groups as i64,
                whitening_group_size: self.whitening_group_size as i64,
                target_rate: self.target_rate,
                threshold_rate: self.threshold_rate,
                scaling_rate: self.scaling_rate,
                rate_window: self.rate_window as i64,
                branch_size: self.branch_size as i64,
            },
        }
    }

    /// What identifies a run's experiment in its `config.json`: every setting and the
    /// data subset. A complete run whose recorded identity differs from the one asked
    /// for is another experiment (see `rundir::differences`).
    pub fn identity(&self, data_limit: Limit) -> Map<String, Value> {
        let mut map = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("settings serialize to a JSON object"),
        };
        map.insert("data_limit".into(), serde_json::to_value(data_limit).expect("a limit serializes"));
        map
    }
}

/// Changes to a preset, from the command line (`--batch-size 64`) or an experiment
/// file (`batch_size = 64`, in `[settings]` or `[settings.<dataset>]`). Applied in
/// one place; checked by [`TrainSettings::validate`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct SettingChanges {
    /// The network (preset: lenet5, the paper's).
    #[arg(long, value_enum)]
    pub model: Option<Network>,
    /// Learning rate (preset: CIFAR-10 0.003, SVHN 0.01).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Training batch size (preset: CIFAR-10 32, SVHN 256).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Training iterations (preset: CIFAR-10 45,000, SVHN 8,000).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Test accuracy every N iterations (and at the end).
    #[arg(long, value_name = "N")]
    pub eval_every: Option<usize>,
    /// Activation probabilities of the training batch every N iterations.
    #[arg(long, value_name = "N")]
    pub record_every: Option<usize>,
    /// Test-time statistics: the test batch's own (the paper's) or the running ones.
    #[arg(long, value_enum)]
    pub eval_stats: Option<EvalStats>,
    /// Test batch size (preset: 1,000).
    #[arg(long)]
    pub test_batch_size: Option<usize>,
    /// Normalize the conv layers too (the paper's; `--normalize-conv false`: fc1 and fc2 only).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub normalize_conv: Option<bool>,
    /// Record the measures for conv channels too.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub conv_measures: Option<bool>,
    /// Pixel standardization, `{ mean = [..3], std = [..3] }` (experiment files only).
    #[arg(skip)]
    pub normalization: Option<PixelStandardization>,
    /// Each epoch's shuffle: PyTorch's DataLoader (the preset) or ChaCha8.
    #[arg(long, value_enum)]
    pub batch_order: Option<BatchOrder>,
    /// group-norm: groups per layer (preset 2).
    #[arg(long)]
    pub groups: Option<usize>,
    /// whitening: units whitened together (preset 16).
    #[arg(long)]
    pub whitening_group_size: Option<usize>,
    /// adaptive-threshold, homeostatic-scaling: target activation probability p*, in (0, 1) (preset 0.5).
    #[arg(long, value_name = "P")]
    pub target_rate: Option<f64>,
    /// adaptive-threshold: η of θ ← θ + η(p̂ − p*) (preset 0.03).
    #[arg(long, value_name = "ETA")]
    pub threshold_rate: Option<f64>,
    /// homeostatic-scaling: η of α ← α(1 + η(p* − p̄)), in (0, 1) (preset 0.001).
    #[arg(long, value_name = "ETA")]
    pub scaling_rate: Option<f64>,
    /// homeostatic-scaling: steps the running average p̄ averages over (preset 100).
    #[arg(long, value_name = "STEPS")]
    pub rate_window: Option<usize>,
    /// dendritic-norm: inputs per branch of an fc unit (preset 25).
    #[arg(long)]
    pub branch_size: Option<usize>,
}

impl SettingChanges {
    pub fn apply(&self, s: &mut TrainSettings) {
        fn set<T: Copy>(field: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *field = v;
            }
        }
        set(&mut s.model, self.model);
        set(&mut s.lr, self.lr);
        set(&mut s.batch_size, self.batch_size);
        set(&mut s.test_batch_size, self.test_batch_size);
        set(&mut s.iterations, self.iterations);
        set(&mut s.eval_every, self.eval_every);
        set(&mut s.record_every, self.record_every);
        set(&mut s.eval_stats, self.eval_stats);
        set(&mut s.normalize_conv, self.normalize_conv);
        set(&mut s.conv_measures, self.conv_measures);
        set(&mut s.normalization, self.normalization);
        set(&mut s.batch_order, self.batch_order);
        set(&mut s.groups, self.groups);
        set(&mut s.whitening_group_size, self.whitening_group_size);
        set(&mut s.target_rate, self.target_rate);
        set(&mut s.threshold_rate, self.threshold_rate);
        set(&mut s.scaling_rate, self.scaling_rate);
        set(&mut s.rate_window, self.rate_window);
        set(&mut s.branch_size, self.branch_size);
    }

    /// The preset with these changes, checked.
    pub fn settings(&self, dataset: DatasetKind, method: MethodId) -> Result<TrainSettings, SettingError> {
        let mut settings = TrainSettings::preset(dataset, method);
        self.apply(&mut settings);
        settings.validate()?;
        Ok(settings)
    }
}

/// What makes runs comparable: every setting but the [`BOOKKEEPING`] ones, and the
/// data subset. Reports and figures never pool runs whose keys differ.
#[derive(Clone, Debug)]
pub struct GroupKey {
    /// The settings of the first run found with this key (its bookkeeping settings
    /// may differ from the other runs').
    pub settings: TrainSettings,
    pub data_limit: Limit,
    /// The settings compared, in `config.json`'s order.
    fields: Map<String, Value>,
}

impl PartialEq for GroupKey {
    fn eq(&self, other: &GroupKey) -> bool {
        self.fields == other.fields
    }
}

impl GroupKey {
    pub fn of(settings: &TrainSettings, data_limit: Limit) -> GroupKey {
        let mut fields = settings.identity(data_limit);
        for key in BOOKKEEPING {
            fields.shift_remove(key);
        }
        GroupKey { settings: settings.clone(), data_limit, fields }
    }

    /// Tables' order: dataset, method (as registered), learning rate, then the rest.
    pub fn sort_key(&self) -> (String, usize, u64, String) {
        let s = &self.settings;
        (s.dataset.to_string(), s.method.order(), s.lr.to_bits(), Value::Object(self.fields.clone()).to_string())
    }

    /// Every compared setting as flat columns: nested values joined with `_`
    /// (`normalization_mean`, `data_limit_train`), lists as space-separated values,
    /// an absent value (`null`) as an empty cell.
    pub fn columns(&self) -> Vec<(String, String)> {
        let mut columns = Vec::new();
        for (key, value) in &self.fields {
            flatten(key, value, &mut columns);
        }
        columns
    }

    /// The same key without some settings (a figure of every method: without `method`).
    pub fn without(&self, keys: &[&str]) -> GroupKey {
        let mut key = self.clone();
        for k in keys {
            key.fields.shift_remove(*k);
        }
        key
    }

    /// "cifar10 vanilla lr 0.003" ("cifar10 mlp vanilla lr 0.003" for a network other
    /// than LeNet5), for messages.
    pub fn label(&self) -> String {
        let s = &self.settings;
        match s.model {
            Network::Lenet5 => format!("{} {} lr {}", s.dataset, s.method, s.lr),
            network => format!("{} {network} {} lr {}", s.dataset, s.method, s.lr),
        }
    }

    /// "full" or the subset's sizes.
    pub fn data_label(&self) -> String {
        let side = |n: Option<usize>| n.map_or("all".to_string(), |n| n.to_string());
        match (self.data_limit.train, self.data_limit.test) {
            (None, None) => "full".into(),
            (train, test) => format!("limit {}/{}", side(train), side(test)),
        }
    }
}

/// The columns of `keys` whose values are not the same in all of them, in column order.
pub fn differing_columns(keys: &[&GroupKey]) -> Vec<String> {
    let all: Vec<Vec<(String, String)>> = keys.iter().map(|k| k.columns()).collect();
    let Some(first) = all.first() else { return Vec::new() };
    first
        .iter()
        .filter(|(name, value)| {
            all.iter().any(|cols| cols.iter().find(|(n, _)| n == name).map(|(_, v)| v) != Some(value))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn flatten(key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{key}_{k}"), v, out);
            }
        }
        Value::Array(items) => {
            let cells: Vec<String> = items.iter().map(cell).collect();
            out.push((key.to_string(), cells.join(" ")));
        }
        v => out.push((key.to_string(), cell(v))),
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preset() -> TrainSettings {
        TrainSettings::preset(DatasetKind::Cifar10, "batch-norm".parse().unwrap())
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_setting() {
        assert!(preset().validate().is_ok());
        let refused = |change: fn(&mut TrainSettings)| {
            let mut s = preset();
            change(&mut s);
            s.validate().expect_err("refused").key
        };
        assert_eq!(refused(|s| s.normalization.mean = [f64::NAN, 0.5, 0.5]), "normalization");
        assert_eq!(refused(|s| s.normalization.mean = [0.5, f64::INFINITY, 0.5]), "normalization");
        assert_eq!(refused(|s| s.normalization.std = [0.5, 0.5, f64::INFINITY]), "normalization");
        assert_eq!(refused(|s| s.batch_size = MAX_SIZE + 1), "batch_size");
        assert_eq!(refused(|s| s.branch_size = usize::MAX), "branch_size");
        assert_eq!(refused(|s| s.iterations = MAX_ITERATIONS + 1), "iterations");
        let mut s = preset();
        (s.iterations, s.batch_size) = (MAX_ITERATIONS, MAX_SIZE);
        assert!(s.validate().is_ok(), "the bounds themselves are allowed");
    }

    #[test]
    fn bookkeeping_is_left_out_of_the_key_and_every_other_setting_is_in_it() {
        let base = GroupKey::of(&preset(), Limit::default());
        let mut s = preset();
        s.record_every = 3;
        s.conv_measures = true;
        assert_eq!(GroupKey::of(&s, Limit::default()), base, "bookkeeping changes no key");
        // Every other setting, changed alone, changes the key.
        let identity = preset().identity(Limit::default());
        let compared: Vec<&String> = identity.keys().filter(|k| !BOOKKEEPING.contains(&k.as_str())).collect();
        assert_eq!(compared.len(), identity.len() - BOOKKEEPING.len(), "BOOKKEEPING names settings that exist");
        type Change = Box<dyn Fn(&mut TrainSettings)>;
        let changes: Vec<(&str, Change)> = vec![
            ("dataset", Box::new(|s| s.dataset = DatasetKind::Svhn)),
            ("method", Box::new(|s| s.method = "vanilla".parse().unwrap())),
            ("model", Box::new(|s| s.model = Network::Mlp)),
            ("lr", Box::new(|s| s.lr = 0.01)),
            ("batch_size", Box::new(|s| s.batch_size = 64)),
            ("iterations", Box::new(|s| s.iterations = 10)),
            ("eval_every", Box::new(|s| s.eval_every = 7)),
            ("batch_order", Box::new(|s| s.batch_order = BatchOrder::Chacha8)),
            ("groups", Box::new(|s| s.groups = 4)),
            ("whitening_group_size", Box::new(|s| s.whitening_group_size = 8)),
            ("target_rate", Box::new(|s| s.target_rate = 0.2)),
            ("threshold_rate", Box::new(|s| s.threshold_rate = 0.1)),
            ("scaling_rate", Box::new(|s| s.scaling_rate = 0.1)),
            ("rate_window", Box::new(|s| s.rate_window = 10)),
            ("branch_size", Box::new(|s| s.branch_size = 10)),
            ("eval_stats", Box::new(|s| s.eval_stats = EvalStats::Running)),
            ("test_batch_size", Box::new(|s| s.test_batch_size = 500)),
            ("normalize_conv", Box::new(|s| s.normalize_conv = false)),
            ("normalization", Box::new(|s| s.normalization.mean = [0.4, 0.5, 0.6])),
        ];
        let names: Vec<&str> = changes.iter().map(|(n, _)| *n).collect();
        for key in &compared {
            assert!(key.as_str() == "data_limit" || names.contains(&key.as_str()), "no change tried for {key}");
        }
        for (name, change) in changes {
            let mut s = preset();
            change(&mut s);
            let key = GroupKey::of(&s, Limit::default());
            assert_ne!(key, base, "{name} must keep runs apart");
            let differing = differing_columns(&[&base, &key]);
            assert!(differing.iter().all(|c| c.starts_with(name)) && !differing.is_empty(), "{name}: {differing:?}");
        }
        let limited = GroupKey::of(&preset(), Limit { train: Some(10), test: None });
        assert_eq!(differing_columns(&[&base, &limited]), vec!["data_limit_train"]);
        assert_eq!(limited.data_label(), "limit 10/all");
    }

    #[test]
    fn columns_flatten_nested_settings() {
        let columns = GroupKey::of(&preset(), Limit { train: Some(5), test: None }).columns();
        let get = |name: &str| columns.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("method"), Some("batch-norm"));
        assert_eq!(get("lr"), Some("0.003"));
        assert_eq!(get("normalization_std"), Some("0.5 0.5 0.5"));
        assert_eq!((get("data_limit_train"), get("data_limit_test")), (Some("5"), Some("")));
        assert_eq!(get("record_every"), None);
        assert_eq!(get("batch_order"), Some("dataloader"));
    }

    #[test]
    fn the_test_batch_is_a_thousand_unless_given() {
        let method = "vanilla".parse().unwrap();
        let changes = SettingChanges { batch_size: Some(64), ..Default::default() };
        let s = changes.settings(DatasetKind::Svhn, method).unwrap();
        assert_eq!((s.batch_size, s.test_batch_size), (64, 1000));
        let changes = SettingChanges { batch_size: Some(64), test_batch_size: Some(50), ..Default::default() };
        assert_eq!(changes.settings(DatasetKind::Svhn, method).unwrap().test_batch_size, 50);
        let zero = SettingChanges { eval_every: Some(0), ..Default::default() };
        assert_eq!(zero.settings(DatasetKind::Svhn, method).unwrap_err().key, "eval_every");
    }

    #[test]
    fn rates_and_targets_out_of_range_are_refused() {
        let method = "adaptive-threshold".parse().unwrap();
        let refuse = |changes: SettingChanges, key: &str| {
            let err = changes.settings(DatasetKind::Cifar10, method).unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().starts_with(key), "{err}");
        };
        for p in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            refuse(SettingChanges { target_rate: Some(p), ..Default::default() }, "target_rate");
        }
        for eta in [0.0, -0.01, f64::INFINITY, f64::NAN] {
            refuse(SettingChanges { threshold_rate: Some(eta), ..Default::default() }, "threshold_rate");
        }
        for eta in [0.0, -0.01, 1.0, 2.0] {
            refuse(SettingChanges { scaling_rate: Some(eta), ..Default::default() }, "scaling_rate");
        }
        refuse(SettingChanges { rate_window: Some(0), ..Default::default() }, "rate_window");
        refuse(SettingChanges { branch_size: Some(0), ..Default::default() }, "branch_size");
        let fine = SettingChanges {
            target_rate: Some(0.1),
            threshold_rate: Some(3.0),
            scaling_rate: Some(0.9),
            rate_window: Some(1),
            branch_size: Some(400),
            ..Default::default()
        };
        let s = fine.settings(DatasetKind::Cifar10, method).unwrap();
        let options = s.model_options().method;
        assert_eq!(
            (
                options.target_rate,
                options.threshold_rate,
                options.scaling_rate,
                options.rate_window,
                options.branch_size
            ),
            (0.1, 3.0, 0.9, 1, 400)
        );
    }
}
