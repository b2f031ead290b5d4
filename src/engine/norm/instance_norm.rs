//! Instance normalization (Ulyanov et al. 2016): per input example and channel, the
//! mean and variance over positions, then a per-channel affine. Exactly
//! `nn.InstanceNorm2d(C, affine=True)` (no running statistics: the same in training
//! and both evaluation modes), ε = 1e-5, one model at a time.
//!
//! Conv layers only: an fc unit has one value per example, whose mean is itself and
//! variance zero, so instance normalization would replace every fc output by β (the
//! network could not learn). fc1 and fc2 stay vanilla, in the reference too.

use super::{affine, model_slices, per_model, per_unit, LayerSpec, Method, MethodLayer, Pass};
use tch::{nn, Tensor};

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

pub struct InstanceNorm;

struct InstanceNormLayer {
    gamma: Tensor,
    beta: Tensor,
}

impl MethodLayer for InstanceNormLayer {
    fn normalize(&self, z: &Tensor, _pass: Pass) -> Tensor {
        let (zs, gs, bs) = (model_slices(z), model_slices(&self.gamma), model_slices(&self.beta));
        per_model(zs.len(), |s| {
            zs[s].instance_norm(Some(&gs[s]), Some(&bs[s]), None::<&Tensor>, None::<&Tensor>, true, MOMENTUM, EPS, true)
        })
    }
}

impl Method for InstanceNorm {
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("instance_norm", "nn.InstanceNorm2d(C, affine=True) on conv layers, no running statistics; fc layers stay vanilla (one value per example: the statistic would zero the unit)"))
    }
    fn name(&self) -> &'static str {
        "instance-norm"
    }
    fn summary(&self) -> &'static str {
        "instance normalization (conv layers): ẑ = (z − μ_positions)/√(σ²_positions + ε) per example and channel; y = ReLU(γẑ + β)"
    }
    fn colour(&self) -> [u8; 3] {
        [148, 103, 189]
    }
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        per_unit(layer, &["gamma", "beta"])
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("gamma", "inorm.weight"), ("beta", "inorm.bias")]
    }
    fn table1_row(&self) -> &'static str {
        "single neuron: instance normalization"
    }
    fn applies_to_fc(&self) -> bool {
        false
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        let (gamma, beta) = affine(path, layer);
        Box::new(InstanceNormLayer { gamma, beta })
    }
}
