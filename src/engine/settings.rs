//! The settings of a run: one struct of every setting with the paper's presets
//! ([`TrainSettings`]), one struct of changes to them that the command line and
//! experiment files share ([`SettingChanges`]), one validation, and the key that
//! groups runs in reports and figures ([`GroupKey`]).
//!
//! A new setting is one entry in [`declare_settings!`]'s list below: its type, doc,
//! flag, preset, meaning when absent from an older `config.json`, and check. It is
//! then a flag, an experiment key, recorded in `config.json`, checked when a sweep
//! resumes, kept apart in reports and figures and shown as a report column wherever
//! it differs, unless it is named in [`BOOKKEEPING`]; a method that reads it takes it
//! through [`TrainSettings::model_options`]. (The settings tests fail until the new
//! setting has its change in `bookkeeping_is_left_out_of_the_key_and_every_other_setting_is_in_it`.)

use crate::engine::data::batches::BatchOrder;
use crate::engine::data::{DatasetKind, Limit, PixelStandardization};
use crate::engine::model::{ModelOptions, Network};
use crate::engine::norm::{self, EvalStats, MethodId, MethodOptions, PerModel, RuleSetting};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Declares every setting once: its type, its doc (the command line's help too), its
/// command-line flag, its preset, the value a `config.json` written before it was
/// recorded means, and its check. From that come [`TrainSettings`] (recorded in
/// `config.json`, read back with the absent-value rule), [`SettingChanges`] (the
/// command line's flags and an experiment file's keys, by the setting's name),
/// `TrainSettings::preset` and the per-setting part of `TrainSettings::validate`.
///
/// Each entry: `#[arg(…)]` (clap's; `skip`: experiment files only), `name: Type =
/// preset`, then optionally `absent: (value)` (what an older `config.json` without it
/// means; `preset`: the preset, for settings older runs never read; without it the
/// setting is required) and `check: f` (`Fn(&Type) -> Result<(), String>`). The
/// presets may read the dataset by the name given first.
macro_rules! declare_settings {
    (
        |$dataset:ident|
        $(
            $(#[doc = $doc:literal])*
            #[arg($($arg:tt)*)]
            $name:ident: $ty:ty = $preset:expr
            $(, absent: $absent:tt)?
            $(, check: $check:expr)?
            ;
        )*
    ) => {
        /// Every setting of a run. Recorded in each run's `config.json`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(try_from = "RecordedSettings")]
        pub struct TrainSettings {
            pub dataset: DatasetKind,
            pub method: MethodId,
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        /// `config.json`'s settings as written, any of them possibly absent (older folders).
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RecordedSettings {
            dataset: DatasetKind,
            method: MethodId,
            $( $name: Option<$ty>, )*
        }

        impl TryFrom<RecordedSettings> for TrainSettings {
            type Error = String;
            #[allow(unused_variables)]
            fn try_from(recorded: RecordedSettings) -> Result<TrainSettings, String> {
                let $dataset = recorded.dataset;
                Ok(TrainSettings {
                    dataset: recorded.dataset,
                    method: recorded.method,
                    $( $name: match recorded.$name {
                        Some(value) => value,
                        None => declare_settings!(@absent $name, $preset $(, $absent)?),
                    }, )*
                })
            }
        }

        /// Changes to a preset, from the command line (`--batch-size 64`) or an experiment
        /// file (`batch_size = 64`, in `[settings]` or `[settings.<dataset>]`). Applied in
        /// one place; checked by [`TrainSettings::validate`].
        #[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct SettingChanges {
            $( $(#[doc = $doc])* #[arg($($arg)*)] pub $name: Option<$ty>, )*
        }

        impl SettingChanges {
            pub fn apply(&self, settings: &mut TrainSettings) {
                $( if let Some(value) = &self.$name { settings.$name = value.clone(); } )*
            }
        }

        impl TrainSettings {
            /// The presets (the paper's protocol for `dataset`, section 4).
            pub fn preset($dataset: DatasetKind, method: MethodId) -> TrainSettings {
                TrainSettings { dataset: $dataset, method, $( $name: $preset, )* }
            }

            /// Each setting's own check, in declaration order.
            fn check_each(&self) -> Result<(), SettingError> {
                $( $( ($check)(&self.$name).map_err(|message| SettingError { key: stringify!($name), message })?; )? )*
                Ok(())
            }
        }
    };
    (@absent $name:ident, $preset:expr) => {
        return Err(format!("missing field `{}`", stringify!($name)))
    };
    (@absent $name:ident, $preset:expr, preset) => {
        $preset
    };
    (@absent $name:ident, $preset:expr, ($($absent:tt)*)) => {
        $($absent)*
    };
}

/// The paper's protocol for a dataset (section 4): CIFAR-10 batch 32, lr 0.003,
/// 45,000 iterations; SVHN batch 256, lr 0.01, 8,000 iterations.
struct Protocol {
    batch_size: usize,
    lr: f64,
    iterations: usize,
    eval_every: usize,
}

fn protocol(dataset: DatasetKind) -> Protocol {
    match dataset {
        DatasetKind::Cifar10 => Protocol { batch_size: 32, lr: 0.003, iterations: 45_000, eval_every: 1_000 },
        DatasetKind::Svhn => Protocol { batch_size: 256, lr: 0.01, iterations: 8_000, eval_every: 200 },
    }
}

/// A size's check: positive, and at most `most` (sizes reach torch as i64 and
/// iterations are planned ahead: bounded where they are checked, not wrapped or
/// exhausted later).
fn size(name: &'static str, most: usize) -> impl Fn(&usize) -> Result<(), String> {
    move |&v| match v {
        0 => Err(format!("{name} must be positive, got 0")),
        v if v > most => Err(format!("{name} must be at most {most}, got {v}")),
        _ => Ok(()),
    }
}

/// A rate's check: finite and strictly between `low` and `high`.
fn between(low: f64, high: f64, what: &'static str) -> impl Fn(&f64) -> Result<(), String> {
    move |&v| if v.is_finite() && v > low && v < high { Ok(()) } else { Err(format!("{what}, got {v}")) }
}

declare_settings! { |dataset|
    /// The network (preset: lenet5, the paper's).
    #[arg(long, value_enum)]
    model: Network = Network::Lenet5, absent: (Network::Lenet5);
    /// Learning rate (preset: CIFAR-10 0.003, SVHN 0.01).
    #[arg(long)]
    lr: f64 = protocol(dataset).lr,
        check: between(0.0, f64::INFINITY, "learning rate must be a positive finite number");
    /// Training batch size (preset: CIFAR-10 32, SVHN 256).
    #[arg(long)]
    batch_size: usize = protocol(dataset).batch_size, check: size("batch size", MAX_SIZE);
    /// Training iterations (preset: CIFAR-10 45,000, SVHN 8,000).
    #[arg(long)]
    iterations: usize = protocol(dataset).iterations, check: size("iterations", MAX_ITERATIONS);
    /// Test accuracy (on the whole test set) every N iterations, and at the end.
    #[arg(long, value_name = "N")]
    eval_every: usize = protocol(dataset).eval_every, check: size("eval-every", MAX_SIZE);
    /// Activation probabilities of the training batch every N iterations (Figure 2B; preset 100).
    #[arg(long, value_name = "N")]
    record_every: usize = 100, check: size("record-every", MAX_SIZE);
    /// Test-time statistics: the test batch's own (the paper's) or the running ones.
    #[arg(long, value_enum)]
    eval_stats: EvalStats = EvalStats::Batch;
    /// Test batch size (preset: 1,000): matters for batch-statistics evaluation. The last
    /// partial batch is evaluated too.
    #[arg(long)]
    test_batch_size: usize = PRESET_TEST_BATCH, check: size("test batch size", MAX_SIZE);
    /// Normalize the conv layers too (the paper's: "every layer except input and output";
    /// `--normalize-conv false`: the hidden fc layers only).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    normalize_conv: bool = true;
    /// Record the measures for conv channels too (fc units and the probe layer always are).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    conv_measures: bool = false;
    /// Pixel standardization after scaling pixels to [0, 1], `Normalize(mean, std)`:
    /// `{ mean = [..3], std = [..3] }` (experiment files only).
    #[arg(skip)]
    normalization: PixelStandardization = PixelStandardization::default(), check: PixelStandardization::check;
    /// Each epoch's shuffle: PyTorch's DataLoader (the preset) or ChaCha8 (what folders
    /// written before it was a setting used).
    #[arg(long, value_enum)]
    batch_order: BatchOrder = BatchOrder::default(), absent: (BatchOrder::Chacha8);
    /// group-norm: groups per layer, each dividing the layer's units (preset 2).
    #[arg(long)]
    groups: usize = norm::DEFAULT_GROUPS as usize, absent: preset, check: size("groups", MAX_SIZE);
    /// whitening: units (channels) whitened together, the last group of a layer smaller (preset 16).
    #[arg(long)]
    whitening_group_size: usize = norm::DEFAULT_WHITENING_GROUP as usize, absent: preset,
        check: size("whitening group size", MAX_SIZE);
    /// adaptive-threshold, homeostatic-scaling: the activation probability p* each unit
    /// is held at, in (0, 1) (preset 0.5).
    #[arg(long, value_name = "P")]
    target_rate: f64 = norm::DEFAULT_TARGET_RATE, absent: preset,
        check: between(0.0, 1.0, "a target activation probability p* must lie in (0, 1)");
    /// adaptive-threshold: η of θ ← θ + η(p̂ − p*), positive (preset 0.03).
    #[arg(long, value_name = "ETA")]
    threshold_rate: f64 = norm::DEFAULT_THRESHOLD_RATE, absent: preset,
        check: between(0.0, f64::INFINITY, "the threshold rate η must be positive");
    /// homeostatic-scaling: η of α ← α(1 + η(p* − p̄)), in (0, 1) so that α stays positive (preset 0.001).
    #[arg(long, value_name = "ETA")]
    scaling_rate: f64 = norm::DEFAULT_SCALING_RATE, absent: preset,
        check: between(0.0, 1.0, "the scaling rate η must lie in (0, 1), so that α stays positive");
    /// homeostatic-scaling: steps the running average p̄ of each unit's activation
    /// probability averages over (preset 100).
    #[arg(long, value_name = "STEPS")]
    rate_window: usize = norm::DEFAULT_RATE_WINDOW as usize, absent: preset, check: size("rate window", MAX_SIZE);
    /// dendritic-norm: inputs per branch of an fc unit (preset 25).
    #[arg(long)]
    branch_size: usize = norm::DEFAULT_BRANCH_SIZE as usize, absent: preset, check: size("branch size", MAX_SIZE);
}

/// Settings that change what is recorded, not the experiment: left out of the key
/// that groups runs, so runs that differ only in them are averaged together.
/// (`eval_every` is not one: each evaluation draws from torch's generator, as a
/// script's test loader does, and so moves the DataLoader order's later epochs.)
pub const BOOKKEEPING: [&str; 2] = ["record_every", "conv_measures"];

/// The settings only some methods read (each method declares its own:
/// `Method::method_settings`); a run's identity leaves out those its method does not read.
pub const METHOD_SETTINGS: [&str; 7] =
    ["groups", "whitening_group_size", "target_rate", "threshold_rate", "scaling_rate", "rate_window", "branch_size"];

/// The preset test batch size, for both datasets.
pub const PRESET_TEST_BATCH: usize = 1_000;
/// The largest batch, group or window size a setting may have (2^31 − 1).
pub const MAX_SIZE: usize = i32::MAX as usize;
/// The most iterations a run may have: 10^8, some 2,000 times the paper's CIFAR-10 protocol.
pub const MAX_ITERATIONS: usize = 100_000_000;

pub use crate::engine::setting_error::SettingError;

impl TrainSettings {
    /// Every setting's check, then whether the network takes the method with them.
    pub fn validate(&self) -> Result<(), SettingError> {
        self.check_each()?;
        crate::engine::model::check_method(self.method.method(), &self.model_options())
    }

    /// Whether `other` is these settings but for what each model of a seed batch holds
    /// its own of: the learning rate (Adam takes one per model) and the rule settings
    /// ([`RuleSetting`]). Runs one model can train together.
    pub fn equal_but_per_model(&self, other: &TrainSettings) -> bool {
        let mut other = TrainSettings { lr: self.lr, ..other.clone() };
        for rule in RuleSetting::ALL {
            other.set_rule(rule, self.rule(rule));
        }
        other == *self
    }

    /// A rule setting's value.
    pub fn rule(&self, rule: RuleSetting) -> f64 {
        match rule {
            RuleSetting::TargetRate => self.target_rate,
            RuleSetting::ThresholdRate => self.threshold_rate,
            RuleSetting::ScalingRate => self.scaling_rate,
        }
    }

    pub fn set_rule(&mut self, rule: RuleSetting, value: f64) {
        match rule {
            RuleSetting::TargetRate => self.target_rate = value,
            RuleSetting::ThresholdRate => self.threshold_rate = value,
            RuleSetting::ScalingRate => self.scaling_rate = value,
        }
    }

    /// The method's rule settings whose values differ from the preset's, each as
    /// `<name><value>` (`target_rate0.2`): what tells such a run's folder from the
    /// preset's (`rundir::run_dir`).
    pub fn rule_changes(&self) -> Vec<String> {
        let preset = TrainSettings::preset(self.dataset, self.method);
        self.method
            .method()
            .rule_settings()
            .iter()
            .filter(|&&rule| self.rule(rule).to_bits() != preset.rule(rule).to_bits())
            .map(|&rule| format!("{}{}", rule.name(), self.rule(rule)))
            .collect()
    }

    /// Every rule setting of the method, as [`rule_changes`](Self::rule_changes) names
    /// them, changed or not.
    pub fn rule_values(&self) -> Vec<String> {
        let rules = self.method.method().rule_settings();
        rules.iter().map(|&rule| format!("{}{}", rule.name(), self.rule(rule))).collect()
    }

    /// How the model is built.
    pub fn model_options(&self) -> ModelOptions {
        Self::model_options_of(&[self])
    }

    /// How the model of runs trained together is built (settings equal but per model,
    /// [`equal_but_per_model`](Self::equal_but_per_model)): the first run's options,
    /// each model with its own run's rule settings.
    pub fn model_options_of(runs: &[&TrainSettings]) -> ModelOptions {
        let each = |rule: RuleSetting| PerModel::each(runs.iter().map(|r| r.rule(rule)).collect());
        let first = runs[0];
        ModelOptions {
            network: first.model,
            normalize_conv: first.normalize_conv,
            method: MethodOptions {
                groups: first.groups as i64,
                whitening_group_size: first.whitening_group_size as i64,
                target_rate: each(RuleSetting::TargetRate),
                threshold_rate: each(RuleSetting::ThresholdRate),
                scaling_rate: each(RuleSetting::ScalingRate),
                rate_window: first.rate_window as i64,
                branch_size: first.branch_size as i64,
            },
        }
    }

    /// What identifies a run's experiment in its `config.json`: every setting its method
    /// reads and the data subset (a method's own setting another method does not read is
    /// left out: changing it leaves that method's runs as they are). A complete run whose
    /// recorded identity differs from the one asked for is another experiment (see
    /// `rundir::differences`).
    pub fn identity(&self, data_limit: Limit) -> Map<String, Value> {
        let mut map = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("settings serialize to a JSON object"),
        };
        let reads = self.method.method().method_settings();
        map.retain(|key, _| reads.contains(&key.as_str()) || !METHOD_SETTINGS.contains(&key.as_str()));
        map.insert("data_limit".into(), serde_json::to_value(data_limit).expect("a limit serializes"));
        map
    }
}

impl SettingChanges {
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
    /// Without `method` it is also without the methods' own settings, which each run
    /// holds only of its own method (so runs of different methods meet).
    pub fn without(&self, keys: &[&str]) -> GroupKey {
        let mut key = self.clone();
        let methods = if keys.contains(&"method") { &METHOD_SETTINGS[..] } else { &[] };
        for k in keys.iter().chain(methods) {
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
    let mut names: Vec<&String> = Vec::new();
    for (name, _) in all.iter().flatten() {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    // A column only some keys have (a method's own setting) differs when two of those
    // that have it disagree.
    names
        .into_iter()
        .filter(|name| {
            let mut values = all.iter().filter_map(|cols| cols.iter().find(|(n, _)| n == *name).map(|(_, v)| v));
            let first = values.next();
            values.any(|v| Some(v) != first)
        })
        .cloned()
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
        // A method's own setting keeps apart the runs of a method that reads it.
        let reader = |name: &str| match name {
            "groups" => "group-norm",
            "whitening_group_size" => "whitening",
            "target_rate" | "threshold_rate" => "adaptive-threshold",
            "scaling_rate" | "rate_window" => "homeostatic-scaling",
            "branch_size" => "dendritic-norm",
            _ => "batch-norm",
        };
        for (name, change) in changes {
            let method = reader(name).parse().unwrap();
            let base = GroupKey::of(&TrainSettings::preset(DatasetKind::Cifar10, method), Limit::default());
            let mut s = TrainSettings::preset(DatasetKind::Cifar10, method);
            change(&mut s);
            let key = GroupKey::of(&s, Limit::default());
            assert_ne!(key, base, "{name} must keep runs apart");
            if METHOD_SETTINGS.contains(&name) {
                // …and not those of a method that does not (batch-norm reads none of them).
                let mut unread = preset();
                change(&mut unread);
                assert_eq!(
                    GroupKey::of(&unread, Limit::default()),
                    GroupKey::of(&preset(), Limit::default()),
                    "{name}"
                );
            }
            let differing = differing_columns(&[&base, &key]);
            assert!(differing.iter().all(|c| c.starts_with(name)) && !differing.is_empty(), "{name}: {differing:?}");
        }
        let limited = GroupKey::of(&preset(), Limit { train: Some(10), test: None });
        assert_eq!(differing_columns(&[&base, &limited]), vec!["data_limit_train"]);
        assert_eq!(limited.data_label(), "limit 10/all");
    }

    #[test]
    fn a_setting_absent_from_an_older_config_reads_as_its_declaration_says() {
        let mut recorded = serde_json::to_value(preset()).unwrap();
        let object = recorded.as_object_mut().unwrap();
        for key in ["model", "batch_order", "groups", "target_rate"] {
            object.remove(key);
        }
        let read: TrainSettings = serde_json::from_value(recorded.clone()).unwrap();
        assert_eq!(read.model, Network::Lenet5, "before there was a choice: LeNet5");
        assert_eq!(read.batch_order, BatchOrder::Chacha8, "before it was recorded: ChaCha8");
        assert_eq!((read.groups, read.target_rate), (preset().groups, preset().target_rate), "their presets");
        // A setting every folder records is required; an unknown one is refused.
        let mut without_lr = recorded.clone();
        without_lr.as_object_mut().unwrap().remove("lr");
        let e = serde_json::from_value::<TrainSettings>(without_lr).unwrap_err();
        assert!(e.to_string().contains("missing field `lr`"), "{e}");
        recorded.as_object_mut().unwrap().insert("lr_typo".into(), 0.1.into());
        let e = serde_json::from_value::<TrainSettings>(recorded).unwrap_err();
        assert!(e.to_string().contains("unknown field `lr_typo`"), "{e}");
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
    fn each_rule_setting_is_the_setting_of_its_name() {
        for (k, rule) in RuleSetting::ALL.into_iter().enumerate() {
            // A method that reads the rule (its identity names it).
            let method = if rule == RuleSetting::ScalingRate { "homeostatic-scaling" } else { "adaptive-threshold" };
            let mut s = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
            let value = 0.0625 * (k + 1) as f64;
            s.set_rule(rule, value);
            assert_eq!((s.rule(rule), s.identity(Limit::default())[rule.name()].as_f64()), (value, Some(value)));
            let others = RuleSetting::ALL.into_iter().filter(|&r| r != rule);
            assert!(others.into_iter().all(|r| s.rule(r) == preset().rule(r)), "{rule:?} sets only itself");
            assert!(s.method.method().rule_settings().contains(&rule), "{method} reads {rule:?}");
        }
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
                options.target_rate.first(),
                options.threshold_rate.first(),
                options.scaling_rate.first(),
                options.rate_window,
                options.branch_size
            ),
            (0.1, 3.0, 0.9, 1, 400)
        );
    }
}
