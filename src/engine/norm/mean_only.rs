//! Mean-only normalization (ablation): the batch-mean centring of synaptic
//! scaling without its α: z = w·x + b; y = ReLU(z − μ_B).

use super::{LayerSpec, MeanCentering, Method, MethodLayer, Pass};
use tch::{nn, Tensor};

pub struct MeanOnly;

struct MeanOnlyLayer {
    centering: MeanCentering,
}

impl MethodLayer for MeanOnlyLayer {
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
    fn colour(&self) -> [u8; 3] {
        [0, 158, 115]
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("running_mean", "running_mean")]
    }
    fn table1_row(&self) -> &'static str {
        "ablation of synaptic scaling: its batch-mean centring alone"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        Box::new(MeanOnlyLayer { centering: MeanCentering::new(path, layer) })
    }
}
