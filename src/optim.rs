//! `torch.optim.Adam` with its defaults, as PyTorch runs it for CPU tensors (the
//! single-tensor path), operation for operation, so that an update is bit-identical
//! to a PyTorch script's (libtorch's C++ `torch::optim::Adam` rounds differently).
//!
//! Per parameter, after `step += 1`:
//!
//! ```text
//! exp_avg.lerp_(grad, 1 - β1)
//! exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 - β2)
//! bc1 = 1 - β1**step;  bc2 = 1 - β2**step            (Python floats: f64)
//! step_size = lr / bc1
//! denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(ε)
//! param.addcdiv_(exp_avg, denom, value=-step_size)
//! ```
//!
//! Models of a batch may have learning rates of their own (a sweep packs the runs of
//! one setting that differ only in `lr` into one model): then `exp_avg` is multiplied
//! by each model's `-step_size` as a tensor over the models' leading axis, in the
//! parameter's precision — the products the scalar gives, rounded alike.
//!
//! tch's `addcmul_`/`addcdiv_` take no `value`; the kernels compute
//! `self + value * t1 * t2` and `self + value * t1 / t2` in the tensor's precision,
//! so `t1` is multiplied by `value` first (`../shared/notes` and a check against
//! PyTorch's own `value=` give identical results).

use tch::Tensor;

/// PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, no weight decay.
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

pub struct Adam {
    params: Vec<Tensor>,
    /// One per model (the leading axis of every parameter).
    lrs: Vec<f64>,
    /// `(exp_avg, exp_avg_sq)` per parameter, created at the first step (as PyTorch
    /// does), in the parameters' kind and device at that time.
    moments: Vec<(Tensor, Tensor)>,
    steps: u64,
}

impl Adam {
    /// Adam over `params`, each with the models on its leading axis, model s at `lrs[s]`.
    pub fn new(params: Vec<Tensor>, lrs: Vec<f64>) -> Self {
        Adam { params, lrs, moments: Vec::new(), steps: 0 }
    }

    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update with `grads[i]` the gradient of `params()[i]`.
    pub fn step(&mut self, grads: &[Tensor]) {
        assert_eq!(grads.len(), self.params.len(), "one gradient per parameter");
        if self.moments.is_empty() {
            self.moments = self.params.iter().map(|p| (p.zeros_like(), p.zeros_like())).collect();
        }
        self.steps += 1;
        let step = self.steps as f64;
        let bias_correction1 = 1.0 - BETA1.powf(step);
        let bias_correction2 = 1.0 - BETA2.powf(step);
        let neg_step_sizes: Vec<f64> = self.lrs.iter().map(|lr| -(lr / bias_correction1)).collect();
        let one_rate = neg_step_sizes.iter().all(|s| *s == neg_step_sizes[0]);
        let bias_correction2_sqrt = bias_correction2.sqrt();
        tch::no_grad(|| {
            for ((param, grad), (exp_avg, exp_avg_sq)) in self.params.iter().zip(grads).zip(&mut self.moments) {
                let _ = exp_avg.lerp_(grad, 1.0 - BETA1);
                let _ = exp_avg_sq.g_mul_scalar_(BETA2);
                let _ = exp_avg_sq.addcmul_(&(grad * (1.0 - BETA2)), grad);
                let mut denom = exp_avg_sq.sqrt() / bias_correction2_sqrt;
                let _ = denom.g_add_scalar_(EPS);
                let scaled = if one_rate {
                    &*exp_avg * neg_step_sizes[0]
                } else {
                    // [S, 1, …]: each model's step size, rounded to the parameter's kind as a scalar is.
                    let mut shape = vec![1i64; param.dim()];
                    shape[0] = neg_step_sizes.len() as i64;
                    let sizes = Tensor::from_slice(&neg_step_sizes).to_kind(param.kind()).to_device(param.device());
                    &*exp_avg * sizes.view(shape.as_slice())
                };
                let _ = param.shallow_clone().addcdiv_(&scaled, &denom);
            }
        });
    }
}
