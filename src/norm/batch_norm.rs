//! Batch normalization, exactly PyTorch's `BatchNorm1d/2d` (ε = 1e-5, biased
//! variance for normalizing, unbiased for the running variance, momentum 0.1):
//! ẑ = (z − μ_B)/√(σ²_B + ε); y = ReLU(γẑ + β). It calls the same libtorch kernel.

use super::{EvalStats, LayerNorm, LayerSpec, Method, Pass, RUNNING_MOMENTUM};
use tch::{nn, Tensor};

const EPS: f64 = 1e-5;

pub struct BatchNorm;

struct BatchNormLayer {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl LayerNorm for BatchNormLayer {
    fn normalize(&self, z: &Tensor, pass: Pass) -> Tensor {
        let running = (Some(&self.running_mean), Some(&self.running_var));
        let (running, batch_statistics) = match pass {
            Pass::Train => (running, true),
            // Batch statistics without touching the running ones: no running tensors given.
            Pass::Eval(EvalStats::Batch) => ((None, None), true),
            Pass::Eval(EvalStats::Running) => (running, false),
        };
        let cudnn = true;
        z.batch_norm(
            Some(&self.gamma),
            Some(&self.beta),
            running.0,
            running.1,
            batch_statistics,
            RUNNING_MOMENTUM,
            EPS,
            cudnn,
        )
    }
}

impl Method for BatchNorm {
    fn name(&self) -> &'static str {
        "batch-norm"
    }
    fn summary(&self) -> &'static str {
        "batch normalization: y = ReLU(γ(z − μ_B)/√(σ²_B + ε) + β)"
    }
    fn attach(&self, path: &nn::Path, layer: &LayerSpec, _weight: &Tensor) -> Box<dyn LayerNorm> {
        let n = layer.total_units();
        Box::new(BatchNormLayer {
            gamma: path.ones("gamma", &[n]),
            beta: path.zeros("beta", &[n]),
            running_mean: path.zeros_no_train("running_mean", &[n]),
            running_var: path.ones_no_train("running_var", &[n]),
        })
    }
}
