//! Weight normalization, exactly `torch.nn.utils.parametrizations.weight_norm(dim=0)`:
//! the stored weight is v, the applied weight is w = c·v/‖v‖ with one c per output
//! unit, initialised to ‖v‖ (so the first forward pass equals vanilla's).

use super::{scale_rows, LayerSpec, Method, MethodLayer};
use tch::{nn, Tensor};

pub struct WeightNorm;

struct WeightNormLayer {
    g: Tensor,
}

/// ‖v‖ per output unit: `[S, U, …]` → `[S, U]`.
fn row_norms(v: &Tensor) -> Tensor {
    v.flatten(2, -1).norm_scalaropt_dim(2, [2].as_slice(), false)
}

impl MethodLayer for WeightNormLayer {
    fn effective_weight(&self, v: &Tensor) -> Tensor {
        scale_rows(v, &(&self.g / row_norms(v)))
    }
}

impl Method for WeightNorm {
    fn name(&self) -> &'static str {
        "weight-norm"
    }
    fn summary(&self) -> &'static str {
        "weight normalization: w = c·v/‖v‖, y = ReLU(w·x + b)"
    }
    fn colour(&self) -> [u8; 3] {
        [230, 159, 0]
    }
    fn unit_parameters(&self) -> &'static [&'static str] {
        &["g"]
    }
    fn attach(&self, path: &nn::Path, _layer: &LayerSpec, weight: &Tensor) -> Box<dyn MethodLayer> {
        let initial_norm = tch::no_grad(|| row_norms(weight));
        Box::new(WeightNormLayer { g: path.var_copy("g", &initial_norm) })
    }
}
