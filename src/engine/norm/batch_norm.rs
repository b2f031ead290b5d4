//! Batch normalization, exactly PyTorch's `BatchNorm1d/2d` (ε = 1e-5, biased
//! variance for normalizing, unbiased for the running variance, momentum 0.1):
//! ẑ = (z − μ_B)/√(σ²_B + ε); y = ReLU(γẑ + β). It calls the same libtorch kernel.

use super::{model_slices, per_model, per_unit, EvalStats, LayerSpec, Method, MethodLayer, Pass, RUNNING_MOMENTUM};
use tch::{nn, Tensor};

const EPS: f64 = 1e-5;

pub struct BatchNorm;

struct BatchNormLayer {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl MethodLayer for BatchNormLayer {
    fn normalize(&self, z: &Tensor, pass: Pass) -> Tensor {
        let running = (Some(&self.running_mean), Some(&self.running_var));
        let (running, batch_statistics) = match pass {
            Pass::Train => (running, true),
            // Batch statistics without touching the running ones: no running tensors given.
            Pass::Eval(EvalStats::Batch) => ((None, None), true),
            Pass::Eval(EvalStats::Running) => (running, false),
        };
        let cudnn = true;
        let call = |z: &Tensor, gamma: &Tensor, beta: &Tensor, mean: Option<&Tensor>, var: Option<&Tensor>| {
            z.batch_norm(Some(gamma), Some(beta), mean, var, batch_statistics, RUNNING_MOMENTUM, EPS, cudnn)
        };
        let models = z.size()[0];
        if !z.device().is_cuda() || models == 1 {
            // One call per model on `[B, U, …]`, exactly PyTorch's call for that model
            // alone (so a seed batch gives each model's numbers bit for bit); the running
            // statistics are rows of `[S, U]`, updated in place.
            let (zs, gammas, betas) = (model_slices(z), model_slices(&self.gamma), model_slices(&self.beta));
            return per_model(zs.len(), |s| {
                let (mean, var) = (running.0.map(|t| t.get(s as i64)), running.1.map(|t| t.get(s as i64)));
                call(&zs[s], &gammas[s], &betas[s], mean.as_ref(), var.as_ref())
            });
        }
        // On CUDA, one kernel for the seed batch: the models' units side by side,
        // `[S, B, U, …]` → `[B, S·U, …]`, per-unit vectors `[S, U]` → `[S·U]` (views).
        let size = z.size();
        let mut side_by_side = size[1..].to_vec();
        side_by_side[1] *= models;
        let flat = |t: &Tensor| t.view([-1]);
        let (mean, var) = (running.0.map(flat), running.1.map(flat));
        let y = call(
            &z.transpose(0, 1).reshape(side_by_side.as_slice()),
            &flat(&self.gamma),
            &flat(&self.beta),
            mean.as_ref(),
            var.as_ref(),
        );
        let mut split = size.clone();
        split.swap(0, 1);
        y.view(split.as_slice()).transpose(0, 1)
    }
}

impl Method for BatchNorm {
    fn name(&self) -> &'static str {
        "batch-norm"
    }
    fn summary(&self) -> &'static str {
        "batch normalization: y = ReLU(γ(z − μ_B)/√(σ²_B + ε) + β)"
    }
    fn colour(&self) -> [u8; 3] {
        [0, 114, 178]
    }
    fn parameter_sizes(&self, layer: &LayerSpec) -> Vec<(&'static str, i64)> {
        per_unit(layer, &["gamma", "beta"])
    }
    fn pytorch_names(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("gamma", "bn.weight"),
            ("beta", "bn.bias"),
            ("running_mean", "bn.running_mean"),
            ("running_var", "bn.running_var"),
        ]
    }
    fn pytorch_step_counter(&self) -> Option<&'static str> {
        Some("bn.num_batches_tracked")
    }
    fn table1_row(&self) -> &'static str {
        "single neuron: batch normalization"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn MethodLayer> {
        let n = layer.unit_shape();
        Box::new(BatchNormLayer {
            gamma: path.ones("gamma", &n),
            beta: path.zeros("beta", &n),
            running_mean: path.zeros_no_train("running_mean", &n),
            running_var: path.ones_no_train("running_var", &n),
        })
    }
}
