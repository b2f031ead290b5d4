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
//! All parameters live in one flat buffer (each parameter a view of its stretch, set
//! at the first step), so each of those lines is one operation over every parameter
//! instead of one per parameter: elementwise arithmetic gives each element the same
//! bits either way (`tests/parity.rs` holds the result to PyTorch's per-tensor loop).
//!
//! Models of a batch may have learning rates of their own (a sweep packs the runs of
//! one setting that differ only in `lr` into one model): then `exp_avg` is multiplied
//! by each model's `-step_size` as a tensor, one per element gathered by the element's
//! model, in the parameters' precision — the products the scalar gives, rounded alike.
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

/// Tensor operations in one update of one tensor (the lines above, with `grad * (1 − β2)`).
pub const UPDATE_OPERATIONS: usize = 9;

/// Whether the models' learning rates differ (then the step sizes are a tensor).
fn rates_differ(lrs: &[f64]) -> bool {
    lrs.iter().any(|lr| *lr != lrs[0])
}

pub struct Adam {
    params: Vec<Tensor>,
    /// One per model (the leading axis of every parameter).
    lrs: Vec<f64>,
    /// Everything made at the first step, as PyTorch makes its state then.
    state: Option<FlatState>,
    steps: u64,
}

/// The parameters as one buffer, and Adam's moments beside it.
struct FlatState {
    /// Every parameter flattened, one after another; the parameters are views of it.
    params: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// Each element's model (its parameter's leading index), when the models' rates differ.
    model_of_element: Option<Tensor>,
}

impl FlatState {
    /// Moves `params` into one buffer (each becomes a view of its stretch).
    fn new(params: &mut [Tensor], lrs: &[f64]) -> Self {
        let flat = Tensor::cat(&params.iter().map(|p| p.detach().reshape([-1])).collect::<Vec<_>>(), 0);
        let mut offset = 0;
        for param in params.iter_mut() {
            let n = param.numel() as i64;
            param.set_data(&flat.narrow(0, offset, n).view(param.size().as_slice()));
            offset += n;
        }
        let model_of_element = rates_differ(lrs).then(|| {
            let models = lrs.len() as i64;
            let per_param: Vec<Tensor> = params
                .iter()
                .map(|p| {
                    let per_model = p.numel() as i64 / models;
                    Tensor::arange(models, (tch::Kind::Int64, p.device()))
                        .repeat_interleave_self_int(per_model, 0, None)
                })
                .collect();
            Tensor::cat(&per_param, 0)
        });
        FlatState { exp_avg: flat.zeros_like(), exp_avg_sq: flat.zeros_like(), params: flat, model_of_element }
    }
}

impl Adam {
    /// Adam over `params`, each with the models on its leading axis, model s at `lrs[s]`.
    pub fn new(params: Vec<Tensor>, lrs: Vec<f64>) -> Self {
        Adam { params, lrs, state: None, steps: 0 }
    }

    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Tensor operations one step launches (the profile's count): the gradients'
    /// gathering into one buffer, then one update over all parameters at once.
    pub fn operations_per_step(&self) -> usize {
        1 + UPDATE_OPERATIONS + usize::from(rates_differ(&self.lrs))
    }

    /// One update with `grads[i]` the gradient of `params()[i]`.
    pub fn step(&mut self, grads: &[Tensor]) {
        assert_eq!(grads.len(), self.params.len(), "one gradient per parameter");
        self.steps += 1;
        let step = self.steps as f64;
        let bias_correction1 = 1.0 - BETA1.powf(step);
        let bias_correction2 = 1.0 - BETA2.powf(step);
        let neg_step_sizes: Vec<f64> = self.lrs.iter().map(|lr| -(lr / bias_correction1)).collect();
        let bias_correction2_sqrt = bias_correction2.sqrt();
        tch::no_grad(|| {
            let state = self.state.get_or_insert_with(|| FlatState::new(&mut self.params, &self.lrs));
            let grad = Tensor::cat(&grads.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(), 0);
            let _ = state.exp_avg.lerp_(&grad, 1.0 - BETA1);
            let _ = state.exp_avg_sq.g_mul_scalar_(BETA2);
            let _ = state.exp_avg_sq.addcmul_(&(&grad * (1.0 - BETA2)), &grad);
            let mut denom = state.exp_avg_sq.sqrt() / bias_correction2_sqrt;
            let _ = denom.g_add_scalar_(EPS);
            let scaled = match &state.model_of_element {
                None => &state.exp_avg * neg_step_sizes[0],
                Some(model_of_element) => {
                    // Each model's step size, rounded to the parameters' kind as a scalar is.
                    let sizes = Tensor::from_slice(&neg_step_sizes)
                        .to_kind(state.params.kind())
                        .to_device(state.params.device());
                    &state.exp_avg * sizes.index_select(0, model_of_element)
                }
            };
            let _ = state.params.addcdiv_(&scaled, &denom);
        });
    }
}
