//! Group normalization (Wu & He 2018): per input example, the mean and variance over
//! groups of units (channels × positions for a conv layer), then a per-unit affine.
//! Exactly `nn.GroupNorm(groups, U)` on conv and fc layers alike, ε = 1e-5, one model
//! at a time. Groups per layer: the setting `groups` (2 by default), which must
//! divide every normalized layer's units.

use super::{affine, model_slices, per_model, per_unit, LayerSpec, Method, MethodLayer, Pass};
use crate::engine::setting_error::SettingError;
use tch::{nn, Tensor};

const EPS: f64 = 1e-5;

pub struct GroupNorm;

struct GroupNormLayer {
    gamma: Tensor,
    beta: Tensor,
    groups: i64,
}

impl MethodLayer for GroupNormLayer {
    fn normalize(&self, z: &Tensor, _pass: Pass) -> Tensor {
        let (zs, gs, bs) = (model_slices(z), model_slices(&self.gamma), model_slices(&self.beta));
        per_model(zs.len(), |s| zs[s].group_norm(self.groups, Some(&gs[s]), Some(&bs[s]), EPS, true))
    }
}

impl Method for GroupNorm {
    fn method_settings(&self) -> &'static [&'static str] {
        &["groups"]
    }
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("group_norm", "nn.GroupNorm(groups, U) on conv and fc layers, groups = the setting (2 by default: the most dividing 6, 16, 120 and 84); eps 1e-5"))
    }
    fn name(&self) -> &'static str {
        "group-norm"
    }
    fn summary(&self) -> &'static str {
        "group normalization: ẑ = (z − μ_group)/√(σ²_group + ε) per example; y = ReLU(γẑ + β)"
    }
    fn colour(&self) -> [u8; 3] {
        [240, 228, 66]
    }
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        per_unit(layer, &["gamma", "beta"])
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("gamma", "gn.weight"), ("beta", "gn.bias")]
    }
    fn seed_batch_pays_on_cpu(&self) -> bool {
        false // slower batched on single-threaded CPU workers (BENCHMARKS.md)
    }
    fn table1_row(&self) -> &'static str {
        "single neuron: group normalization"
    }
    fn check(&self, layer: &str, spec: &LayerSpec) -> Result<(), SettingError> {
        let groups = spec.options.groups;
        if groups < 1 || spec.units % groups != 0 {
            return Err(SettingError {
                key: "groups",
                message: format!(
                    "group-norm's {groups} group(s) do not divide {layer}'s {} units; choose a divisor of every normalized layer's units (`homeonorm info --method group-norm --model NETWORK` lists the layers)",
                    spec.units
                ),
            });
        }
        Ok(())
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        let (gamma, beta) = affine(path, layer);
        Box::new(GroupNormLayer { gamma, beta, groups: layer.options.groups })
    }
}
