//! Weight normalization, exactly `torch.nn.utils.parametrizations.weight_norm(dim=0)`:
//! the stored weight is v, the applied weight is w = c·v/‖v‖ with one c per output
//! unit, initialised to ‖v‖ (so the first forward pass equals vanilla's). The
//! applied weight is `torch._weight_norm(v, g, 0)`, the op the parametrization calls.

use super::{per_unit, LayerSpec, Method, MethodLayer};
use tch::{nn, Tensor};

pub struct WeightNorm;

struct WeightNormLayer {
    g: Tensor,
}

/// ‖v‖ per output unit, `[S, U, …]` → `[S, U, 1, …]`: one model's is `[U, 1, …]`,
/// the shape in which PyTorch keeps g (`norm_except_dim(v, 2, 0)`).
fn row_norms(v: &Tensor) -> Tensor {
    let mut shape = vec![1i64; v.dim()];
    (shape[0], shape[1]) = (v.size()[0], v.size()[1]);
    v.flatten(2, -1).norm_scalaropt_dim(2, [2].as_slice(), false).view(shape.as_slice())
}

impl MethodLayer for WeightNormLayer {
    fn effective_weight(&self, v: &Tensor) -> Tensor {
        // Every model's rows at once, `[S·U, …]` and g `[S·U, 1, …]`: the kernel
        // normalizes row by row.
        let size = v.size();
        Tensor::internal_weight_norm(&v.flatten(0, 1), &self.g.flatten(0, 1), 0).view(size.as_slice())
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
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        per_unit(layer, &["g"])
    }
    fn pytorch_weight(&self) -> &'static str {
        "layer.parametrizations.weight.original1"
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("g", "layer.parametrizations.weight.original0")]
    }
    fn table1_row(&self) -> &'static str {
        "synaptic weights: weight normalization"
    }
    fn attach(&self, path: &nn::Path, _layer: &LayerSpec, weight: &Tensor) -> Box<dyn MethodLayer> {
        let initial_norm = tch::no_grad(|| row_norms(weight));
        Box::new(WeightNormLayer { g: path.var_copy("g", &initial_norm) })
    }
}
