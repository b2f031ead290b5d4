//! Synaptic scaling, the paper's method (section 3): each neuron scales all its
//! incoming weights by one learned factor α (initialised to 1) and its
//! pre-activation is centred on the batch mean:
//! w̃ = α·w; z = w̃·x + b; y = ReLU(z − μ_B).

use super::{per_unit, scale_rows, LayerSpec, MeanCentering, Method, MethodLayer, Pass};
use tch::{nn, Tensor};

pub struct SynapticScaling;

struct SynapticScalingLayer {
    alpha: Tensor,
    centering: MeanCentering,
}

impl MethodLayer for SynapticScalingLayer {
    fn effective_weight(&self, weight: &Tensor) -> Tensor {
        scale_rows(weight, &self.alpha)
    }
    fn normalize(&self, z: &Tensor, pass: Pass) -> Tensor {
        self.centering.center(z, pass)
    }
    fn alpha(&self) -> Option<Tensor> {
        Some(self.alpha.shallow_clone())
    }
}

impl Method for SynapticScaling {
    fn name(&self) -> &'static str {
        "synaptic-scaling"
    }
    fn summary(&self) -> &'static str {
        "the paper's synaptic scaling: w̃ = α·w, y = ReLU(w̃·x + b − μ_B)"
    }
    fn colour(&self) -> [u8; 3] {
        [213, 94, 0]
    }
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        per_unit(layer, &["alpha"])
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("alpha", "alpha"), ("running_mean", "running_mean")]
    }
    fn table1_row(&self) -> &'static str {
        "synaptic weights: synaptic scaling, the brain's (the paper's method)"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        Box::new(SynapticScalingLayer {
            alpha: path.ones("alpha", &layer.unit_shape()),
            centering: MeanCentering::new(path, layer),
        })
    }
}
