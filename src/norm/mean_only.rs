//! Mean-only normalization (ablation): the batch-mean centring of synaptic
//! scaling without its α: z = w·x + b; y = ReLU(z − μ_B).

use super::{LayerNorm, LayerSpec, MeanCentering, Method, Pass};
use tch::{nn, Tensor};

pub struct MeanOnly;

struct MeanOnlyLayer {
    centering: MeanCentering,
}

impl LayerNorm for MeanOnlyLayer {
    fn normalize(&self, z: &Tensor, pass: Pass) -> Tensor {
        self.centering.center(z, pass)
    }
}

impl Method for MeanOnly {
    fn name(&self) -> &'static str {
        "mean-only"
    }
    fn summary(&self) -> &'static str {
        "batch-mean centring only: y = ReLU(w·x + b − μ_B)"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn LayerNorm> {
        Box::new(MeanOnlyLayer { centering: MeanCentering::new(path, layer) })
    }
}
