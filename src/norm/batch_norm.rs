//! Batch normalization, exactly PyTorch's `BatchNorm1d/2d` (ε = 1e-5, biased
//! variance for normalizing, unbiased for the running variance, momentum 0.1):
//! ẑ = (z − μ_B)/√(σ²_B + ε); y = ReLU(γẑ + β). It calls the same libtorch kernel,
//! which wants channels on dim 1: the S models' units are laid side by side there
//! (`[B, S·U, …]`) for the call, each unit still normalized over its own model's batch.

use super::{EvalStats, LayerSpec, Method, MethodLayer, Pass, RUNNING_MOMENTUM};
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
        // [S, B, U, …] → [B, S·U, …]; per-unit vectors [S, U] → [S·U] (views, so the
        // running statistics are updated in place).
        let size = z.size();
        let mut side_by_side = size[1..].to_vec();
        side_by_side[1] *= size[0];
        let flat = |t: &Tensor| t.view([-1]);
        let (running_mean, running_var) = (running.0.map(flat), running.1.map(flat));
        let y = z.transpose(0, 1).reshape(side_by_side.as_slice()).batch_norm(
            Some(&flat(&self.gamma)),
            Some(&flat(&self.beta)),
            running_mean.as_ref(),
            running_var.as_ref(),
            batch_statistics,
            RUNNING_MOMENTUM,
            EPS,
            cudnn,
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
    fn unit_parameters(&self) -> &'static [&'static str] {
        &["gamma", "beta"]
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
