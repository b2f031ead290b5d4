//! The normalization methods of the paper (Table 2) and two ablations.
//!
//! A method attaches to one hidden layer and may change two things:
//! - the weight the layer applies (weight-norm: c·v/‖v‖; synaptic-scaling and
//!   scale-only: α·w), through [`LayerNorm::effective_weight`];
//! - the pre-activation z = w·x + b before the ReLU (batch-norm, mean-only and
//!   synaptic-scaling subtract the batch mean), through [`LayerNorm::normalize`].
//!
//! Layout: a layer holds the units of every model of a seed batch side by side
//! (see `model.rs`): per-unit parameters are 1-D of length `models × units`, and
//! pre-activations have those units along dim 1 (`[B, S·U]` for fc layers,
//! `[B, S·C, H, W]` for conv layers), so statistics are taken over every dim but 1
//! — exactly what `BatchNorm1d`/`BatchNorm2d` do per unit/channel.
//!
//! Adding a method: one new file with a type implementing [`Method`], and one line
//! in [`METHODS`].

mod batch_norm;
mod mean_only;
mod scale_only;
mod synaptic_scaling;
mod vanilla;
mod weight_norm;

use tch::{nn, Kind, Tensor};

pub use batch_norm::BatchNorm;
pub use mean_only::MeanOnly;
pub use scale_only::ScaleOnly;
pub use synaptic_scaling::SynapticScaling;
pub use vanilla::Vanilla;
pub use weight_norm::WeightNorm;

/// Every method homeonorm knows, in the order tables and figures list them.
pub static METHODS: &[&dyn Method] = &[&Vanilla, &BatchNorm, &WeightNorm, &SynapticScaling, &MeanOnly, &ScaleOnly];

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
}

impl LayerSpec {
    pub fn total_units(&self) -> i64 {
        self.models * self.units
    }
}

/// A normalization method: builds its per-layer part.
pub trait Method: Sync {
    /// The name used on the command line, in files and in tables.
    fn name(&self) -> &'static str;
    /// One line for `--help` and `info`.
    fn summary(&self) -> &'static str;
    /// Creates the method's parameters for one hidden layer under `path`.
    /// `weight` is the layer's initial weight (`[S·U, …]` or `[S, U, …]`).
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, weight: &Tensor) -> Box<dyn LayerNorm>;
}

impl std::fmt::Debug for dyn Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The part of a method that lives in one hidden layer.
pub trait LayerNorm: Send {
    /// The weight the layer applies, given its stored weight.
    fn effective_weight(&self, weight: &Tensor) -> Tensor {
        weight.shallow_clone()
    }
    /// The pre-activation after normalization (units along dim 1).
    fn normalize(&self, z: &Tensor, _pass: Pass) -> Tensor {
        z.shallow_clone()
    }
    /// The learned per-unit scale α, `[S·U]`, for methods that have one.
    fn alpha(&self) -> Option<Tensor> {
        None
    }
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

/// The dims that statistics are taken over: every dim of `z` but dim 1 (units).
pub(crate) fn stat_dims(z: &Tensor) -> Vec<i64> {
    (0..z.dim() as i64).filter(|&d| d != 1).collect()
}

/// Shapes a per-unit vector `[S·U]` so that it broadcasts against `z` (units on dim 1).
pub(crate) fn per_unit_like_z(v: &Tensor, z: &Tensor) -> Tensor {
    let mut shape = vec![1i64; z.dim()];
    shape[1] = -1;
    v.view(shape.as_slice())
}

/// Multiplies each output unit's weights by a per-unit factor `[S·U]`.
/// Works for conv weights `[S·U, C, k, k]` and fc weights `[S, U, in]` alike.
pub(crate) fn scale_rows(weight: &Tensor, factor: &Tensor) -> Tensor {
    let rows = factor.size()[0];
    (weight.reshape([rows, -1]) * factor.unsqueeze(1)).reshape(weight.size())
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
        MeanCentering { running_mean: path.zeros_no_train("running_mean", &[layer.total_units()]) }
    }

    pub(crate) fn center(&self, z: &Tensor, pass: Pass) -> Tensor {
        match pass {
            Pass::Eval(EvalStats::Running) => z - per_unit_like_z(&self.running_mean, z),
            Pass::Train | Pass::Eval(EvalStats::Batch) => {
                let mean = z.mean_dim(stat_dims(z).as_slice(), true, None::<Kind>);
                if pass == Pass::Train {
                    tch::no_grad(|| {
                        let batch_mean = mean.detach().view([-1]);
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
