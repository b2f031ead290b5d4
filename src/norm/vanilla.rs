//! Vanilla: y = ReLU(w·x + b), no normalization.

use super::{LayerNorm, LayerSpec, Method};
use tch::{nn, Tensor};

pub struct Vanilla;

struct Identity;
impl LayerNorm for Identity {}

impl Method for Vanilla {
    fn name(&self) -> &'static str {
        "vanilla"
    }
    fn summary(&self) -> &'static str {
        "no normalization: y = ReLU(w·x + b)"
    }
    fn attach(&self, _path: &nn::Path, _layer: &LayerSpec, _weight: &Tensor) -> Box<dyn LayerNorm> {
        Box::new(Identity)
    }
}
