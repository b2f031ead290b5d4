//! Vanilla: y = ReLU(w·x + b), no normalization.

use super::{LayerSpec, Method, MethodLayer};
use tch::{nn, Tensor};

pub struct Vanilla;

struct Identity;
impl MethodLayer for Identity {}

impl Method for Vanilla {
    fn name(&self) -> &'static str {
        "vanilla"
    }
    fn summary(&self) -> &'static str {
        "no normalization: y = ReLU(w·x + b)"
    }
    fn colour(&self) -> [u8; 3] {
        [0, 0, 0]
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    fn table1_row(&self) -> &'static str {
        "none (the baseline)"
    }
    fn attach(&self, _path: &nn::Path, _layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        Box::new(Identity)
    }
}
