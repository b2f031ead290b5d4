//! Layer normalization (Lei Ba et al. 2016): per input example, the mean and variance
//! over the layer's units — an fc layer's units, a conv layer's channels × positions —
//! then a per-unit affine γ, β. Exactly `nn.LayerNorm(U)` (fc) and `nn.GroupNorm(1, C)`
//! (conv), ε = 1e-5, one model at a time. Per-example statistics: training and both
//! evaluation modes compute the same thing.

use super::{affine, model_slices, per_model, per_unit, LayerSpec, Method, MethodLayer, Pass};
use tch::{nn, Tensor};

const EPS: f64 = 1e-5;

pub struct LayerNorm;

struct LayerNormLayer {
    gamma: Tensor,
    beta: Tensor,
    conv: bool,
}

impl MethodLayer for LayerNormLayer {
    fn normalize(&self, z: &Tensor, _pass: Pass) -> Tensor {
        let (zs, gs, bs) = (model_slices(z), model_slices(&self.gamma), model_slices(&self.beta));
        per_model(zs.len(), |s| {
            let (zs, g, b) = (&zs[s], &gs[s], &bs[s]);
            if self.conv {
                zs.group_norm(1, Some(g), Some(b), EPS, true)
            } else {
                zs.layer_norm([zs.size()[1]], Some(g), Some(b), EPS, true)
            }
        })
    }
}

impl Method for LayerNorm {
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("layer_norm", "fc: nn.LayerNorm(U); conv: nn.GroupNorm(1, C), over channels x positions; eps 1e-5; per-example statistics, so both evaluation modes agree"))
    }
    fn name(&self) -> &'static str {
        "layer-norm"
    }
    fn summary(&self) -> &'static str {
        "layer normalization: ẑ = (z − μ_layer)/√(σ²_layer + ε) per example; y = ReLU(γẑ + β)"
    }
    fn colour(&self) -> [u8; 3] {
        [86, 180, 233]
    }
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        per_unit(layer, &["gamma", "beta"])
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("gamma", "ln.weight"), ("beta", "ln.bias")]
    }
    fn seed_batch_pays_on_cpu(&self) -> bool {
        false // slower batched on single-threaded CPU workers (BENCHMARKS.md)
    }
    fn table1_row(&self) -> &'static str {
        "layer of neurons: layer normalization"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        let (gamma, beta) = affine(path, layer);
        Box::new(LayerNormLayer { gamma, beta, conv: layer.conv })
    }
}
