//! Dendritic normalization (Rabinowitch & Segev 2008): a neuron's synapses sit on
//! dendritic branches, and each branch holds its total synaptic strength at a set
//! level, so that the inputs it gathers are weighed against each other within the
//! branch. A unit's weights are split into branches and each branch's weight vector
//! is kept at a learned norm: w_b = c_b · v_b/‖v_b‖ (weight normalization per branch),
//! c_b starting at ‖v_b‖ (so the first forward pass is vanilla's), y = ReLU(w·x + b).
//!
//! Branches: in a conv layer, one per input channel (its k×k kernel); in an fc layer,
//! contiguous groups of `branch_size` inputs (25 by default: in fc1 a branch then
//! gathers one conv2 channel's 5×5 map, as a conv unit's branch gathers one input
//! map; fc2's 120 inputs make four branches of 25 and one of 20).

use super::{model_slices, per_model, LayerSpec, Method, MethodLayer};
use tch::{nn, Tensor};

pub struct DendriticNorm;

struct DendriticNormLayer {
    /// c, `[S, U, branches]`.
    gain: Tensor,
    /// Inputs per branch in the weight's rows (`[U, in·k·k]` for a conv layer).
    branch: i64,
}

/// Inputs per branch of a unit's flattened weight, and branches per unit.
fn branches(layer: &LayerSpec, kernel_area: i64) -> (i64, i64) {
    if layer.conv {
        (kernel_area, layer.inputs)
    } else {
        let size = layer.options.branch_size;
        (size, (layer.inputs + size - 1) / size)
    }
}

/// Each branch of each row of one model's weight `v` (`[U, …]`, flattened to rows
/// `[U, in]`) with its norm `[U, 1]`, as `reference/networks.py` takes them.
fn branches_with_norms(v: &Tensor, branch: i64) -> Vec<(Tensor, Tensor)> {
    v.reshape([v.size()[0], -1])
        .split(branch, 1)
        .into_iter()
        .map(|part| {
            let norm = part.norm_scalaropt_dim(2, [1].as_slice(), true);
            (part, norm)
        })
        .collect()
}

/// One model's applied weight: each branch rescaled to norm `gain[u, b]`.
fn branch_normalized(v: &Tensor, gain: &Tensor, branch: i64) -> Tensor {
    let parts: Vec<Tensor> = branches_with_norms(v, branch)
        .iter()
        .enumerate()
        .map(|(b, (part, norm))| part * (gain.narrow(1, b as i64, 1) / norm))
        .collect();
    Tensor::cat(&parts, 1).view(v.size().as_slice())
}

impl MethodLayer for DendriticNormLayer {
    fn effective_weight(&self, v: &Tensor) -> Tensor {
        let (vs, gains) = (model_slices(v), model_slices(&self.gain));
        per_model(vs.len(), |s| branch_normalized(&vs[s], &gains[s], self.branch))
    }
}

impl Method for DendriticNorm {
    fn method_settings(&self) -> &'static [&'static str] {
        &["branch_size"]
    }
    fn choice(&self) -> Option<(&'static str, &'static str)> {
        Some(("dendritic_norm", "branches: a conv unit's input channels (one k x k kernel each); an fc unit's inputs in contiguous groups of branch_size (the last smaller); c_b starts at |v_b|"))
    }
    fn name(&self) -> &'static str {
        "dendritic-norm"
    }
    fn summary(&self) -> &'static str {
        "dendritic normalization: each branch's weights w_b = c_b·v_b/‖v_b‖, y = ReLU(w·x + b)"
    }
    fn colour(&self) -> [u8; 3] {
        [188, 189, 34]
    }
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        vec![("gain", layer.units * branches(layer, 1).1)]
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[("gain", "branch_gain")]
    }
    fn table1_row(&self) -> &'static str {
        "synaptic weights: dendritic normalization"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, weight: &Tensor) -> Box<dyn MethodLayer> {
        let size = weight.size();
        let kernel_area: i64 = size[3..].iter().product();
        let (branch, _) = branches(layer, kernel_area);
        // c starts at each branch's norm: the applied weight starts as v itself.
        let initial = tch::no_grad(|| {
            let weights = model_slices(weight);
            per_model(weights.len(), |s| {
                let norms: Vec<Tensor> = branches_with_norms(&weights[s], branch).into_iter().map(|p| p.1).collect();
                Tensor::cat(&norms, 1)
            })
        });
        Box::new(DendriticNormLayer { gain: path.var_copy("gain", &initial), branch })
    }
}
