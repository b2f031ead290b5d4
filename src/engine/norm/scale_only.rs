//! Scale-only (ablation): the learned per-neuron α of synaptic scaling without
//! its mean centring: w̃ = α·w; y = ReLU(w̃·x + b).

use super::{per_unit, scale_rows, LayerSpec, Method, MethodLayer};
use tch::{nn, Tensor};

pub struct ScaleOnly;

struct ScaleOnlyLayer {
    alpha: Tensor,
}

impl MethodLayer for ScaleOnlyLayer {
    fn effective_weight(&self, weight: &Tensor) -> Tensor {
        scale_rows(weight, &self.alpha)
    }
    fn alpha(&self) -> Option<Tensor> {
        Some(self.alpha.shallow_clone())
    }
}

impl Method for ScaleOnly {
    fn name(&self) -> &'static str {
        "scale-only"
    }
    fn summary(&self) -> &'static str {
        "learned per-neuron scale only: w̃ = α·w, y = ReLU(w̃·x + b)"
    }
    fn colour(&self) -> [u8; 3] {
        [204, 121, 167]
    }
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        per_unit(layer, &["alpha"])
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("alpha", "alpha")]
    }
    fn table1_row(&self) -> &'static str {
        "ablation of synaptic scaling: its learned scale α alone"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        Box::new(ScaleOnlyLayer { alpha: path.ones("alpha", &layer.unit_shape()) })
    }
}
