//! Weight normalization, exactly `torch.nn.utils.parametrizations.weight_norm(dim=0)`:
//! the stored weight is v, the applied weight is w = c·v/‖v‖ with one c per output
//! unit, initialised to ‖v‖ (so the first forward pass equals vanilla's).

use super::{scale_rows, LayerNorm, LayerSpec, Method};
use tch::{nn, Tensor};

pub struct WeightNorm;

struct WeightNormLayer {
    g: Tensor,
}

/// ‖v‖ per output unit, `[S·U]`.
fn row_norms(v: &Tensor, rows: i64) -> Tensor {
    v.reshape([rows, -1]).norm_scalaropt_dim(2, [1].as_slice(), false)
}

impl LayerNorm for WeightNormLayer {
    fn effective_weight(&self, v: &Tensor) -> Tensor {
        let rows = self.g.size()[0];
        scale_rows(v, &(&self.g / row_norms(v, rows)))
    }
}

impl Method for WeightNorm {
    fn name(&self) -> &'static str {
        "weight-norm"
    }
    fn summary(&self) -> &'static str {
        "weight normalization: w = c·v/‖v‖, y = ReLU(w·x + b)"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, weight: &Tensor) -> Box<dyn LayerNorm> {
        let initial_norm = tch::no_grad(|| row_norms(weight, layer.total_units()));
        Box::new(WeightNormLayer { g: path.var_copy("g", &initial_norm) })
    }
}
