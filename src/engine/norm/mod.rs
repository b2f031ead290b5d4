//! The normalization methods: the paper's (Table 2), two ablations, and the rest of
//! its Table 1 — the deep-learning column and the neural one.
//!
//! A method attaches to one hidden layer and may change four things:
//! - the weight the layer applies (weight-norm: c·v/‖v‖; synaptic-scaling and
//!   scale-only: α·w), through [`MethodLayer::effective_weight`];
//! - the pre-activation z = w·x + b before the ReLU (batch-norm, mean-only and
//!   synaptic-scaling subtract the batch mean), through [`MethodLayer::normalize`];
//! - the activation (self-norm's SELU, divisive normalization), through
//!   [`MethodLayer::activate`];
//! - its own state after each training step, from the activity the step saw, outside
//!   the optimiser (adaptive thresholds, homeostatic scaling), through
//!   [`MethodLayer::after_step`].
//!
//! Layout: every per-model tensor has the seed batch's models on a leading axis S
//! (see `model.rs`): per-unit parameters are `[S, U]`, pre-activations `[S, B, U]`
//! for fc layers and `[S, B, C, H, W]` for conv layers, so a unit's statistics are
//! taken over every dim but 0 and 2 — what `BatchNorm1d`/`BatchNorm2d` do per
//! unit/channel of one model.
//!
//! Adding a method: one new file with a type implementing [`Method`] (name,
//! summary, colour, trainable parameters, their PyTorch names, its layer part), one
//! line in [`METHODS`],
//! and its branch in `reference/networks.py` (the PyTorch reference the parity test
//! holds it against). `tests/methods.rs::every_registered_method_is_complete`
//! fails until all of it is there, the README's method table included.

mod adaptive_threshold;
mod batch_norm;
mod dendritic_norm;
mod divisive_norm;
mod group_norm;
mod homeostatic_scaling;
mod instance_norm;
mod layer_norm;
mod mean_only;
mod scale_only;
mod self_norm;
mod synaptic_scaling;
mod vanilla;
mod weight_norm;
mod whitening;

use crate::engine::units::stat_dims;
use tch::{nn, Kind, Tensor};

pub use adaptive_threshold::AdaptiveThreshold;
pub use batch_norm::BatchNorm;
pub use dendritic_norm::DendriticNorm;
pub use divisive_norm::DivisiveNorm;
pub use group_norm::GroupNorm;
pub use homeostatic_scaling::HomeostaticScaling;
pub use instance_norm::InstanceNorm;
pub use layer_norm::LayerNorm;
pub use mean_only::MeanOnly;
pub use scale_only::ScaleOnly;
pub use self_norm::SelfNorm;
pub use synaptic_scaling::SynapticScaling;
pub use vanilla::Vanilla;
pub use weight_norm::WeightNorm;
pub use whitening::Whitening;

/// Every method homeonorm knows, in the order tables and figures list them: the
/// paper's four, its two ablations, the rest of Table 1's deep-learning column, then
/// its neural column.
pub static METHODS: &[&dyn Method] = &[
    &Vanilla,
    &BatchNorm,
    &WeightNorm,
    &SynapticScaling,
    &MeanOnly,
    &ScaleOnly,
    &LayerNorm,
    &GroupNorm,
    &InstanceNorm,
    &SelfNorm,
    &Whitening,
    &AdaptiveThreshold,
    &HomeostaticScaling,
    &DendriticNorm,
    &DivisiveNorm,
];

/// Momentum of the running statistics kept for `--eval-stats running` (PyTorch's default).
pub const RUNNING_MOMENTUM: f64 = 0.1;

/// Which statistics a normalized layer uses when it is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EvalStats {
    /// The paper's choice: the evaluated batch's own statistics (running statistics untouched).
    Batch,
    /// PyTorch's `eval()` mode: the running statistics gathered during training.
    Running,
}

/// Whether a forward pass is a training step or an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Batch statistics, and running statistics updated.
    Train,
    Eval(EvalStats),
}

/// What a method needs to know of the layer it attaches to.
#[derive(Clone, Debug)]
pub struct LayerSpec {
    /// Models side by side in the layer (the seed batch).
    pub models: i64,
    /// Output units (channels for a conv layer) of one model.
    pub units: i64,
    /// Inputs of a unit: input channels of a conv layer, input features of an fc one.
    pub inputs: i64,
    /// A conv layer (else fully connected).
    pub conv: bool,
    pub options: MethodOptions,
}

impl LayerSpec {
    /// An fc layer of `units` units with `inputs` inputs each, default options (tests).
    pub fn fc(models: i64, units: i64, inputs: i64) -> LayerSpec {
        LayerSpec { models, units, inputs, conv: false, options: MethodOptions::default() }
    }
}

/// The settings some methods take (`TrainSettings` holds them, checks their ranges,
/// and [`Method::check`] checks them against every layer before anything runs).
#[derive(Clone, Debug, PartialEq)]
pub struct MethodOptions {
    /// group-norm: groups per layer.
    pub groups: i64,
    /// whitening: units (channels) whitened together; the last group may be smaller.
    pub whitening_group_size: i64,
    /// adaptive-threshold and homeostatic-scaling: the activation probability p* each
    /// unit is held at (each model its own: [`RuleSetting`]).
    pub target_rate: PerModel,
    /// adaptive-threshold: η of θ ← θ + η (p̂ − p*).
    pub threshold_rate: PerModel,
    /// homeostatic-scaling: η of α ← α (1 + η (p* − p̄)).
    pub scaling_rate: PerModel,
    /// homeostatic-scaling: the steps p̄, the running average of p̂, averages over
    /// (p̄ ← p̄ + (p̂ − p̄)/window).
    pub rate_window: i64,
    /// dendritic-norm: inputs per branch of an fc unit (a conv unit's branch is one
    /// input channel's kernel).
    pub branch_size: i64,
}

impl Default for MethodOptions {
    fn default() -> Self {
        MethodOptions {
            groups: DEFAULT_GROUPS,
            whitening_group_size: DEFAULT_WHITENING_GROUP,
            target_rate: PerModel::every(DEFAULT_TARGET_RATE),
            threshold_rate: PerModel::every(DEFAULT_THRESHOLD_RATE),
            scaling_rate: PerModel::every(DEFAULT_SCALING_RATE),
            rate_window: DEFAULT_RATE_WINDOW,
            branch_size: DEFAULT_BRANCH_SIZE,
        }
    }
}

/// A scalar a method's local rule reads after each step. Like Adam's learning rate,
/// each model of a seed batch may hold its own: runs that differ only in these and
/// the learning rate train as one model (and an experiment may list several values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSetting {
    TargetRate,
    ThresholdRate,
    ScalingRate,
}

impl RuleSetting {
    pub const ALL: [RuleSetting; 3] = [RuleSetting::TargetRate, RuleSetting::ThresholdRate, RuleSetting::ScalingRate];

    /// Its name in `config.json` and in the settings (`--target-rate` on the command line).
    pub fn name(self) -> &'static str {
        match self {
            RuleSetting::TargetRate => "target_rate",
            RuleSetting::ThresholdRate => "threshold_rate",
            RuleSetting::ScalingRate => "scaling_rate",
        }
    }
}

/// A rule's setting for each model of a seed batch, or one value for every model.
#[derive(Clone, Debug, PartialEq)]
pub struct PerModel(Vec<f64>);

impl PerModel {
    pub fn every(value: f64) -> Self {
        PerModel(vec![value])
    }
    pub fn each(values: Vec<f64>) -> Self {
        assert!(!values.is_empty(), "a value per model");
        PerModel(values)
    }
    /// Model 0's value (every model's, when there is one).
    pub fn first(&self) -> f64 {
        self.0[0]
    }
    /// The operand the rule's arithmetic takes for `models` models on `device`.
    pub(crate) fn operand(&self, models: i64, device: tch::Device) -> RuleOperand {
        match self.0.as_slice() {
            [first, rest @ ..] if rest.iter().all(|v| v.to_bits() == first.to_bits()) => RuleOperand::Shared(*first),
            values => {
                assert_eq!(values.len() as i64, models, "one value per model");
                RuleOperand::Each(Tensor::from_slice(values).view([models, 1]).to_device(device))
            }
        }
    }
}

/// A rule setting in the rule's arithmetic. Where every model has the same value, a
/// scalar, as the script's `(rate - self.target_rate) * self.threshold_rate` takes it;
/// else each model's value as a column `[S, 1]` against the `[S, U]` unit tensors,
/// held in f64 and rounded to the units' kind where used, as ATen rounds a Python
/// float. The arithmetic is the same either way, so each model's numbers are its
/// run's alone (tests/seed_batch.rs).
pub(crate) enum RuleOperand {
    Shared(f64),
    Each(Tensor),
}

impl RuleOperand {
    fn column(values: &Tensor, like: &Tensor) -> Tensor {
        values.to_kind(like.kind())
    }
    /// `x − value`
    pub fn subtracted_from(&self, x: &Tensor) -> Tensor {
        match self {
            RuleOperand::Shared(v) => x - *v,
            RuleOperand::Each(values) => x - Self::column(values, x),
        }
    }
    /// `x + value`
    pub fn added_to(&self, x: &Tensor) -> Tensor {
        match self {
            RuleOperand::Shared(v) => x + *v,
            RuleOperand::Each(values) => x + Self::column(values, x),
        }
    }
    /// `x · value`
    pub fn multiplying(&self, x: &Tensor) -> Tensor {
        match self {
            RuleOperand::Shared(v) => x * *v,
            RuleOperand::Each(values) => x * Self::column(values, x),
        }
    }
    /// Every unit of each model set to its value (`x.fill_(value)`).
    pub fn fill(&self, x: &mut Tensor) {
        match self {
            RuleOperand::Shared(v) => drop(x.fill_(*v)),
            RuleOperand::Each(values) => x.copy_(&Self::column(values, x).expand_as(x)),
        }
    }
}

/// Group normalization's groups: 2, the most that divide every hidden layer of LeNet5
/// (6, 16, 120 and 84 units); Wu & He's 32 divides none of the conv layers.
pub const DEFAULT_GROUPS: i64 = 2;
/// Decorrelated batch normalization's group size (Huang et al. 2018): 16.
pub const DEFAULT_WHITENING_GROUP: i64 = 16;
/// The target activation probability: 0.5, where a unit's coding entropy is largest.
pub const DEFAULT_TARGET_RATE: f64 = 0.5;
/// adaptive-threshold's η (README, "The neural column": the sweep that chose it).
pub const DEFAULT_THRESHOLD_RATE: f64 = 0.03;
/// homeostatic-scaling's η (README, "The neural column").
pub const DEFAULT_SCALING_RATE: f64 = 0.001;
/// homeostatic-scaling's averaging window, in steps.
pub const DEFAULT_RATE_WINDOW: i64 = 100;
/// dendritic-norm's fc branch: 25 inputs, one conv2 channel's 5×5 map in fc1, so that a
/// branch gathers one presynaptic feature map as a conv unit's branch does.
pub const DEFAULT_BRANCH_SIZE: i64 = 25;

impl LayerSpec {
    /// The shape of a per-unit vector: `[S, U]`.
    pub fn unit_shape(&self) -> [i64; 2] {
        [self.models, self.units]
    }
}

/// A normalization method: what it is called, how it is drawn, and its per-layer part.
pub trait Method: Sync {
    /// The name used on the command line, in files and in tables (and in
    /// `reference/networks.py`'s `METHODS`).
    fn name(&self) -> &'static str;
    /// One line for `--help`, `info` and the README's method table.
    fn summary(&self) -> &'static str;
    /// Its colour in every figure (RGB). Each method has its own, far enough from every
    /// other method's to tell apart (checked by a test); [`PALETTE`] has unused ones.
    fn colour(&self) -> [u8; 3];
    /// The trainable parameters it adds to a hidden layer, with their sizes in one
    /// model (`fc1.norm.<name>`; most hold one value per unit: [`per_unit`]), checked
    /// against the model a test builds.
    fn parameter_sizes(&self, _layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        Vec::new()
    }
    /// Its parameters and buffers (`norm.<name>`) as the hidden layer's module in
    /// `reference/networks.py` names them in its `state_dict` (`("gamma", "bn.weight")`),
    /// so that weights cross over (`model.safetensors`).
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)];
    /// The name of the layer's own weight there.
    fn pytorch_weight(&self) -> &'static str {
        "layer.weight"
    }
    /// A step counter PyTorch keeps beside the parameters (BatchNorm's
    /// `num_batches_tracked`), written as the number of training steps.
    fn pytorch_step_counter(&self) -> Option<&'static str> {
        None
    }
    /// The row of the paper's Table 1 the method stands for (scale: mechanism).
    fn table1_row(&self) -> &'static str;
    /// Whether it applies to fc layers too (instance normalization does not: over one
    /// value per example its statistics are degenerate).
    fn applies_to_fc(&self) -> bool {
        true
    }
    /// Refuses options a layer cannot take (a group count that does not divide its units).
    fn check(&self, _layer: &str, _spec: &LayerSpec) -> Result<(), crate::engine::setting_error::SettingError> {
        Ok(())
    }
    /// Draws the layer's initial weight and bias again after `Net()`'s default
    /// initialisation, as the method's PyTorch reference does (self-normalization's
    /// LeCun normal); `None`: the defaults stay.
    fn reinitialise(&self, _weight_shape: &[i64]) -> Option<(Tensor, Tensor)> {
        None
    }
    /// The rule settings the method reads (its local rule's target and rate).
    fn rule_settings(&self) -> &'static [RuleSetting] {
        &[]
    }
    /// Whether a seed batch gives each model's numbers bit for bit as its run alone
    /// (on the CPU). Methods for which it does not are trained one seed at a time.
    fn exact_in_a_seed_batch(&self) -> bool {
        true
    }
    /// The method's own settings it reads, of [`METHOD_SETTINGS`](crate::engine::settings::METHOD_SETTINGS)
    /// (`groups`, `target_rate`, …): the others change nothing of its runs, so a change
    /// of them leaves its complete runs done (`TrainSettings::identity`). Its
    /// [`rule_settings`](Self::rule_settings) among them.
    fn method_settings(&self) -> &'static [&'static str] {
        &[]
    }
    /// What homeonorm chose where the method's literature or PyTorch leaves it open, as
    /// `config.json`'s `choices` records it: (key, text); methods that share a choice
    /// share its key (`docs/run-folder.md`).
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    /// Whether a training step of the method can be captured in a CUDA graph: none of
    /// its operations waits for the host (`crate::engine::cuda_graph`).
    fn captures_in_a_cuda_graph(&self) -> bool {
        true
    }
    /// Whether a seed batch trains faster than its runs one by one on single-threaded
    /// CPU workers (measured: BENCHMARKS.md); where it does not, the CPU's default is
    /// one run per model.
    fn seed_batch_pays_on_cpu(&self) -> bool {
        true
    }
    /// Creates the method's parameters for one hidden layer under `path`.
    /// `weight` is the layer's initial weight, `[S, U, …]`.
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, weight: &Tensor) -> Box<dyn MethodLayer>;
}

/// Colours to give methods, each at least 60 apart (RGB distance) from every other:
/// Okabe–Ito's eight, then Tableau's and Kelly's, for up to 20 methods in one figure.
pub const PALETTE: [[u8; 3]; 20] = [
    [0, 0, 0],
    [0, 114, 178],
    [230, 159, 0],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [86, 180, 233],
    [240, 228, 66],
    [148, 103, 189],
    [140, 86, 75],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [214, 39, 40],
    [44, 160, 44],
    [255, 152, 150],
    [0, 0, 128],
    [128, 0, 0],
    [170, 255, 195],
    [255, 0, 255],
];

impl std::fmt::Debug for dyn Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The part of a method that lives in one hidden layer.
pub trait MethodLayer: Send {
    /// The weight the layer applies, given its stored weight.
    fn effective_weight(&self, weight: &Tensor) -> Tensor {
        weight.shallow_clone()
    }
    /// The pre-activation after normalization (`[S, B, U, …]`).
    fn normalize(&self, z: &Tensor, _pass: Pass) -> Tensor {
        z.shallow_clone()
    }
    /// The activation after normalization (ReLU unless the method brings its own).
    fn activate(&self, z: &Tensor) -> Tensor {
        z.relu()
    }
    /// The learned per-unit scale α, `[S, U]`, for methods that have one.
    fn alpha(&self) -> Option<Tensor> {
        None
    }
    /// A local rule, run after each training step's optimiser step and outside it
    /// (no gradient): the layer updates its own state from `output`, its activations
    /// on that step's batch (`[S, B, U, …]`, after [`activate`](Self::activate)).
    fn after_step(&self, _output: &Tensor) {}
}

/// Each named parameter with one value per unit (`[S, U]`).
pub fn per_unit(layer: &LayerSpec, names: &[&'static str]) -> Vec<(&'static str, i64)> {
    names.iter().map(|&name| (name, layer.units)).collect()
}

/// The method of that name, or an error that lists the valid names.
pub fn method_by_name(name: &str) -> Result<&'static dyn Method, UnknownMethod> {
    METHODS.iter().copied().find(|m| m.name() == name).ok_or_else(|| UnknownMethod { name: name.to_string() })
}

/// The names of every method, for messages and `--help`.
pub fn method_names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name()).collect()
}

#[derive(Debug, thiserror::Error)]
#[error("unknown normalization method `{name}`; valid methods are: {}", method_names().join(", "))]
pub struct UnknownMethod {
    pub name: String,
}

/// A registered method, checked once where its name is read (command line,
/// experiment file, `config.json`) and carried as this type from there on. It
/// reads and writes as its name, and orders as [`METHODS`] lists methods.
#[derive(Clone, Copy)]
pub struct MethodId(&'static dyn Method);

impl MethodId {
    pub fn method(self) -> &'static dyn Method {
        self.0
    }
    pub fn name(self) -> &'static str {
        self.0.name()
    }
    /// Its place in [`METHODS`].
    pub fn order(self) -> usize {
        METHODS.iter().position(|m| m.name() == self.name()).expect("registered")
    }
    /// Every registered method.
    pub fn all() -> impl Iterator<Item = MethodId> {
        METHODS.iter().map(|m| MethodId(*m))
    }
}

impl std::str::FromStr for MethodId {
    type Err = UnknownMethod;
    fn from_str(name: &str) -> Result<Self, UnknownMethod> {
        method_by_name(name).map(MethodId)
    }
}

impl std::fmt::Display for MethodId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Debug for MethodId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

impl PartialEq for MethodId {
    fn eq(&self, other: &MethodId) -> bool {
        self.name() == other.name()
    }
}
impl Eq for MethodId {}

impl PartialEq<&str> for MethodId {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl PartialOrd for MethodId {
    fn partial_cmp(&self, other: &MethodId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MethodId {
    fn cmp(&self, other: &MethodId) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

impl serde::Serialize for MethodId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for MethodId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Each model's `f(model)`, stacked on a leading axis: one model's tensors at a time,
/// as a PyTorch script computes them for its one model. `f` takes its tensors from
/// [`model_slices`].
pub fn per_model(models: usize, f: impl Fn(usize) -> Tensor) -> Tensor {
    if models == 1 {
        return f(0).unsqueeze(0);
    }
    Tensor::stack(&(0..models).map(f).collect::<Vec<_>>(), 0)
}

/// Each model's slice of a `[S, …]` tensor that the backward pass goes through, as views.
/// One `unbind`, whose backward is one stack, and not S `select`s: each select's
/// backward fills a zero tensor of the whole `[S, …]` size and copies its model's
/// gradient in, S passes over the tensor (over fc1's S × 786,432 weights each MLP step).
/// With one model, the leading axis squeezed away: the gradient is handed back as it is.
/// (Buffers updated in place keep `select`: unbind's views may not be written through.)
pub fn model_slices(t: &Tensor) -> Vec<Tensor> {
    if t.size()[0] == 1 {
        vec![t.squeeze_dim(0)]
    } else {
        t.unbind(0)
    }
}

/// Per-unit γ (ones) and β (zeros), `[S, U]`, the affine of the normalizations that
/// have one.
pub(crate) fn affine(path: &nn::Path, layer: &LayerSpec) -> (Tensor, Tensor) {
    (path.ones("gamma", &layer.unit_shape()), path.zeros("beta", &layer.unit_shape()))
}

/// Shapes a per-unit tensor `[S, U]` so that it broadcasts against `like`
/// (`[S, B, U, …]` activations, or `[S, U, …]` weights when `batch_axis` is false).
fn per_unit_view(v: &Tensor, like: &Tensor, batch_axis: bool) -> Tensor {
    let size = v.size();
    let mut shape = vec![1i64; like.dim()];
    shape[0] = size[0];
    shape[if batch_axis { 2 } else { 1 }] = size[1];
    v.view(shape.as_slice())
}

/// A per-unit vector `[S, U]` shaped to broadcast against activations `z`.
pub(crate) fn per_unit_like_z(v: &Tensor, z: &Tensor) -> Tensor {
    per_unit_view(v, z, true)
}

/// Multiplies each output unit's weights by a per-unit factor `[S, U]`.
/// Works for conv weights `[S, U, C, k, k]` and fc weights `[S, U, in]` alike.
pub(crate) fn scale_rows(weight: &Tensor, factor: &Tensor) -> Tensor {
    weight * per_unit_view(factor, weight, false)
}

/// Mean-centering with a running mean: `z − μ_B` while training and in batch
/// evaluation, `z − running mean` in running evaluation. The running mean is
/// updated as BatchNorm updates its own (momentum 0.1) on training passes only.
/// Shared by mean-only and synaptic-scaling.
pub(crate) struct MeanCentering {
    running_mean: Tensor,
}

impl MeanCentering {
    pub(crate) fn new(path: &nn::Path, layer: &LayerSpec) -> Self {
        MeanCentering { running_mean: path.zeros_no_train("running_mean", &layer.unit_shape()) }
    }

    pub(crate) fn center(&self, z: &Tensor, pass: Pass) -> Tensor {
        match pass {
            Pass::Eval(EvalStats::Running) => z - per_unit_like_z(&self.running_mean, z),
            Pass::Train | Pass::Eval(EvalStats::Batch) => {
                let mean = z.mean_dim(stat_dims(z).as_slice(), true, None::<Kind>);
                if pass == Pass::Train {
                    tch::no_grad(|| {
                        let batch_mean = mean.detach().view(self.running_mean.size().as_slice());
                        let mut running = self.running_mean.shallow_clone();
                        let _ = running.g_mul_scalar_(1.0 - RUNNING_MOMENTUM);
                        let _ = running.g_add_(&(batch_mean * RUNNING_MOMENTUM));
                    });
                }
                z - mean
            }
        }
    }
}
