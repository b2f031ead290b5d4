//! Divisive normalization (Heeger 1992; Carandini & Heeger 2011): a neuron's response
//! is divided by the pooled activity of its neighbours, per input:
//! y_i = ReLU(z_i) / (σ + mean_j ReLU(z_j)), the pool being the layer's units (in a
//! conv layer, the channels at the same position), σ > 0 learned per layer as
//! σ = exp(s), s starting at 0. This is the canonical form with exponent 1; the
//! generalized form's exponent n (≈ 2 in cortex) would add a parameter the paper's
//! comparison does not need. Needs no batch statistics: each example is divided by
//! its own pool.

use super::{model_slices, per_model, LayerSpec, Method, MethodLayer};
use tch::{nn, Kind, Tensor};

pub struct DivisiveNorm;

struct DivisiveNormLayer {
    /// s = log σ, `[S, 1]`.
    log_sigma: Tensor,
}

impl MethodLayer for DivisiveNormLayer {
    fn activate(&self, z: &Tensor) -> Tensor {
        // One model at a time: exp rounds apart in vector lanes and a scalar tail.
        let (zs, log_sigmas) = (model_slices(z), model_slices(&self.log_sigma));
        per_model(zs.len(), |s| {
            let response = zs[s].relu();
            let pool = response.mean_dim([1].as_slice(), true, None::<Kind>);
            &response / (log_sigmas[s].exp() + pool)
        })
    }
}

impl Method for DivisiveNorm {
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("divisive_norm", "y_i = relu(z_i) / (exp(s) + mean_j relu(z_j)) per example, the pool the layer's units (conv: the channels at each position), exponent 1, s learned per layer from 0"))
    }
    fn name(&self) -> &'static str {
        "divisive-norm"
    }
    fn summary(&self) -> &'static str {
        "divisive normalization: y_i = ReLU(z_i)/(σ + mean_j ReLU(z_j)) per example, σ learned per layer"
    }
    fn colour(&self) -> [u8; 3] {
        [23, 190, 207]
    }
    fn parameter_sizes(&self, _layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        vec![("log_sigma", 1)]
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("log_sigma", "log_sigma")]
    }
    fn table1_row(&self) -> &'static str {
        "layer of neurons: divisive normalization"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        Box::new(DivisiveNormLayer { log_sigma: path.zeros("log_sigma", &[layer.models, 1]) })
    }
}
