//! Self-normalization (Klambauer et al. 2017): no normalization layer; SELU
//! activations, y = λ(z if z > 0 else α(eᶻ − 1)), with LeCun-normal initial weights
//! (N(0, 1/fan_in), biases 0) drawn after `Net()`'s defaults, as `nn.init.normal_` and
//! `nn.init.zeros_` redraw them in the reference. "Active" stays output > 0.

use super::{model_slices, per_model, LayerSpec, Method, MethodLayer};
use tch::{nn, Device, Kind, Tensor};

pub struct SelfNorm;

struct SeluLayer;

impl MethodLayer for SeluLayer {
    fn activate(&self, z: &Tensor) -> Tensor {
        // One model at a time: SELU's exp is computed in vector lanes and a scalar tail,
        // which may round apart, so each model's values must sit where they sit alone.
        let zs = model_slices(z);
        per_model(zs.len(), |s| zs[s].selu())
    }
}

impl Method for SelfNorm {
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("self_norm", "SELU on the hidden layers, their weights redrawn N(0, 1/fan_in) and biases 0 after the default initialisation; the output layer keeps its default; active = output > 0"))
    }
    fn name(&self) -> &'static str {
        "self-norm"
    }
    fn summary(&self) -> &'static str {
        "self-normalization: y = SELU(w·x + b), LeCun-normal initial weights"
    }
    fn colour(&self) -> [u8; 3] {
        [140, 86, 75]
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    fn seed_batch_pays_on_cpu(&self) -> bool {
        false // slower batched on single-threaded CPU workers (BENCHMARKS.md)
    }
    fn table1_row(&self) -> &'static str {
        "single neuron: self-normalization"
    }
    fn reinitialise(&self, weight_shape: &[i64]) -> Option<(Tensor, Tensor)> {
        let fan_in: i64 = weight_shape[1..].iter().product();
        let mut weight = Tensor::empty(weight_shape, (Kind::Float, Device::Cpu));
        let _ = weight.normal_(0.0, 1.0 / (fan_in as f64).sqrt());
        Some((weight, Tensor::zeros([weight_shape[0]], (Kind::Float, Device::Cpu))))
    }
    fn attach(&self, _path: &nn::Path, _layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        Box::new(SeluLayer)
    }
}
