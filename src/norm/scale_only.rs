//! Scale-only (ablation): the learned per-neuron α of synaptic scaling without
//! its mean centring: w̃ = α·w; y = ReLU(w̃·x + b).

use super::{scale_rows, LayerNorm, LayerSpec, Method};
use tch::{nn, Tensor};

pub struct ScaleOnly;

struct ScaleOnlyLayer {
    alpha: Tensor,
}

impl LayerNorm for ScaleOnlyLayer {
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
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn LayerNorm> {
        Box::new(ScaleOnlyLayer { alpha: path.ones("alpha", &[layer.total_units()]) })
    }
}
