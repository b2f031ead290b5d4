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

//! On CUDA the scalars of a step (each model's `-step_size`, and `sqrt(bc2)`) are read
//! from a table on the device instead ([`Scalars::Device`]): the same numbers in the
//! same kernels, but a step then needs nothing from the host, so a CUDA graph can
//! capture it (`crate::engine::cuda_graph`). The host keeps the step count and refills the
//! table every [`TABLE_STEPS`] steps.

use tch::{Device, Kind, Tensor};

/// PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, no weight decay.
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Tensor operations in one update of one tensor (the lines above, with `grad * (1 − β2)`).
pub const UPDATE_OPERATIONS: usize = 9;

/// Steps whose scalars one device table holds.
pub const TABLE_STEPS: u64 = 1024;

/// Whether the models' learning rates differ (then the step sizes are a tensor).
fn rates_differ(lrs: &[f64]) -> bool {
    lrs.iter().any(|lr| *lr != lrs[0])
}

/// Where a step's scalars come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarSource {
    /// Host numbers, as PyTorch's loop passes them (the CPU's default).
    Host,
    /// A table on the parameters' device (CUDA's default: a step that a graph can capture).
    Device,
}

impl ScalarSource {
    /// The default on `device`.
    pub fn default_for(device: Device) -> ScalarSource {
        if device.is_cuda() {
            ScalarSource::Device
        } else {
            ScalarSource::Host
        }
    }
}

/// The scalars of steps `first ..= first + TABLE_STEPS - 1`, one row per step: each
/// model's `-lr / bc1`, then `sqrt(bc2)`, in the parameters' kind; and the row of the
/// next step, a device counter the step itself advances.
struct ScalarTable {
    table: Tensor,
    cursor: Tensor,
    first: u64,
}

pub struct Adam {
    params: Vec<Tensor>,
    /// One per model (the leading axis of every parameter).
    lrs: Vec<f64>,
    source: ScalarSource,
    /// Everything made at the first step, as PyTorch makes its state then.
    state: Option<FlatState>,
    table: Option<ScalarTable>,
    steps: u64,
}

/// A step's scalars: each model's `-lr / bc1`, and `sqrt(bc2)`.
fn step_scalars(lrs: &[f64], step: u64) -> (Vec<f64>, f64) {
    let step = step as f64;
    let bias_correction1 = 1.0 - BETA1.powf(step);
    let bias_correction2 = 1.0 - BETA2.powf(step);
    (lrs.iter().map(|lr| -(lr / bias_correction1)).collect(), bias_correction2.sqrt())
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
                    Tensor::arange(models, (Kind::Int64, p.device())).repeat_interleave_self_int(per_model, 0, None)
                })
                .collect();
            Tensor::cat(&per_param, 0)
        });
        FlatState { exp_avg: flat.zeros_like(), exp_avg_sq: flat.zeros_like(), params: flat, model_of_element }
    }
}

impl Adam {
    /// Adam over `params`, each with the models on its leading axis, model s at `lrs[s]`,
    /// with the scalar source of the parameters' device.
    pub fn new(params: Vec<Tensor>, lrs: Vec<f64>) -> Self {
        let source = params.first().map_or(ScalarSource::Host, |p| ScalarSource::default_for(p.device()));
        Self::with_scalars(params, lrs, source)
    }

    /// [`new`](Self::new) with the step's scalars from `source`.
    pub fn with_scalars(params: Vec<Tensor>, lrs: Vec<f64>, source: ScalarSource) -> Self {
        Adam { params, lrs, source, state: None, table: None, steps: 0 }
    }

    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Model `s`'s moments, `(exp_avg, exp_avg_sq)` of each parameter in [`params`](Self::params)
    /// order, shaped as the parameter's slice of that model (copies); `None` before the
    /// first step, when there are none.
    pub fn model_moments(&self, s: i64) -> Option<Vec<(Tensor, Tensor)>> {
        let state = self.state.as_ref()?;
        let models = self.lrs.len() as i64;
        let mut offset = 0;
        let mut moments = Vec::with_capacity(self.params.len());
        for param in &self.params {
            let per_model = param.numel() as i64 / models;
            let shape = &param.size()[1..];
            let slice = |flat: &Tensor| flat.narrow(0, offset + s * per_model, per_model).view(shape).copy();
            moments.push((slice(&state.exp_avg), slice(&state.exp_avg_sq)));
            offset += param.numel() as i64;
        }
        Some(moments)
    }

    /// Takes up where a run left off: `steps` updates taken and each model's moments
    /// (`moments[s]` as [`model_moments`](Self::model_moments) gave them), the parameters
    /// already holding their values. Makes the flat state now, as the first step would.
    pub fn restore(&mut self, steps: u64, moments: &[Vec<(Tensor, Tensor)>]) {
        assert_eq!(moments.len(), self.lrs.len(), "one model's moments per model");
        tch::no_grad(|| {
            let state = FlatState::new(&mut self.params, &self.lrs);
            let mut offset = 0;
            for (i, param) in self.params.iter().enumerate() {
                let per_model = param.numel() as i64 / self.lrs.len() as i64;
                for (s, model) in moments.iter().enumerate() {
                    let start = offset + s as i64 * per_model;
                    state.exp_avg.narrow(0, start, per_model).copy_(&model[i].0.reshape([-1]));
                    state.exp_avg_sq.narrow(0, start, per_model).copy_(&model[i].1.reshape([-1]));
                }
                offset += param.numel() as i64;
            }
            self.state = Some(state);
        });
        self.steps = steps;
        self.table = None; // refilled from the step count at the next step
    }

    /// Tensor operations one step launches (the profile's count): the gradients'
    /// gathering into one buffer, then one update over all parameters at once (and,
    /// from a device table, the row's read and the cursor's advance).
    pub fn operations_per_step(&self) -> usize {
        let table = if self.source == ScalarSource::Device { 4 } else { 0 };
        1 + UPDATE_OPERATIONS + usize::from(rates_differ(&self.lrs)) + table
    }

    /// One update with `grads[i]` the gradient of `params()[i]`: [`advance`](Self::advance)
    /// then [`update`](Self::update).
    pub fn step(&mut self, grads: &[Tensor]) {
        self.advance();
        self.update(grads);
    }

    /// The host's part of a step: counts it and, from a device table, refills the table
    /// when the step is past its rows. A captured [`update`](Self::update) is replayed
    /// after it, as an eager one runs after it.
    pub fn advance(&mut self) {
        self.steps += 1;
        if self.source == ScalarSource::Host {
            return;
        }
        let device = self.params[0].device();
        let kind = self.params[0].kind();
        let past = self.table.as_ref().is_none_or(|t| self.steps >= t.first + TABLE_STEPS);
        if past {
            let rows = self.table_rows(self.steps, kind, device);
            match &mut self.table {
                // In place: a captured update reads the table at its address.
                Some(table) => {
                    table.table.copy_(&rows);
                    let _ = table.cursor.zero_();
                    table.first = self.steps;
                }
                None => {
                    let cursor = Tensor::zeros([1], (Kind::Int64, device));
                    self.table = Some(ScalarTable { table: rows, cursor, first: self.steps });
                }
            }
        }
    }

    /// The scalars of steps `first ..` as table rows on `device`.
    fn table_rows(&self, first: u64, kind: Kind, device: Device) -> Tensor {
        let models = self.lrs.len() as i64;
        let mut values = Vec::with_capacity(TABLE_STEPS as usize * (self.lrs.len() + 1));
        for step in first..first + TABLE_STEPS {
            let (neg_step_sizes, bias_correction2_sqrt) = step_scalars(&self.lrs, step);
            values.extend(neg_step_sizes);
            values.push(bias_correction2_sqrt);
        }
        // Each value rounded to the parameters' kind, as a Python float is in the kernel.
        Tensor::from_slice(&values).view([TABLE_STEPS as i64, models + 1]).to_kind(kind).to_device(device)
    }

    /// The device's part of a step (after [`advance`](Self::advance)), with `grads[i]` the
    /// gradient of `params()[i]`.
    pub fn update(&mut self, grads: &[Tensor]) {
        assert_eq!(grads.len(), self.params.len(), "one gradient per parameter");
        let models = self.lrs.len() as i64;
        tch::no_grad(|| {
            let state = self.state.get_or_insert_with(|| FlatState::new(&mut self.params, &self.lrs));
            let grad = Tensor::cat(&grads.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(), 0);
            let _ = state.exp_avg.lerp_(&grad, 1.0 - BETA1);
            let _ = state.exp_avg_sq.g_mul_scalar_(BETA2);
            let _ = state.exp_avg_sq.addcmul_(&(&grad * (1.0 - BETA2)), &grad);
            let (scaled, denom) = match &self.table {
                None => {
                    let (neg_step_sizes, bias_correction2_sqrt) = step_scalars(&self.lrs, self.steps);
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
                    (scaled, denom)
                }
                Some(table) => {
                    // This step's row, read and passed on the device.
                    let row = table.table.index_select(0, &table.cursor).view([-1]);
                    let _ = table.cursor.shallow_clone().g_add_scalar_(1);
                    let mut denom = state.exp_avg_sq.sqrt() / row.narrow(0, models, 1);
                    let _ = denom.g_add_scalar_(EPS);
                    let sizes = row.narrow(0, 0, models);
                    let scaled = match &state.model_of_element {
                        None => &state.exp_avg * sizes.narrow(0, 0, 1),
                        Some(model_of_element) => &state.exp_avg * sizes.index_select(0, model_of_element),
                    };
                    (scaled, denom)
                }
            };
            let _ = state.params.addcdiv_(&scaled, &denom);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters of `models` models (two tensors, the models on the leading axis).
    fn parameters(models: i64, kind: Kind) -> Vec<Tensor> {
        crate::engine::torch_rng::seeded(1, || {
            vec![Tensor::randn([models, 5, 3], (kind, Device::Cpu)), Tensor::randn([models, 7], (kind, Device::Cpu))]
        })
    }

    #[test]
    fn the_device_table_of_scalars_updates_bit_for_bit_as_the_host_scalars_do() {
        for kind in [Kind::Float, Kind::Double] {
            for lrs in [vec![0.003; 3], vec![0.001, 0.003, 0.1]] {
                let mut host = Adam::with_scalars(parameters(3, kind), lrs.clone(), ScalarSource::Host);
                let mut table = Adam::with_scalars(parameters(3, kind), lrs.clone(), ScalarSource::Device);
                // Past two refills of the table, and with the steps split as a graph replays them.
                for step in 0..(2 * TABLE_STEPS + 5) {
                    let grads: Vec<Tensor> = crate::engine::torch_rng::seeded(step, || {
                        host.params().iter().map(|p| Tensor::randn(p.size().as_slice(), (kind, Device::Cpu))).collect()
                    });
                    host.step(&grads);
                    table.advance();
                    table.update(&grads);
                }
                assert_eq!(host.steps(), table.steps());
                for (a, b) in host.params().iter().zip(table.params()) {
                    assert!(a.equal(b), "{kind:?} at rates {lrs:?}: the table's update differs from the host's");
                }
                let state = |adam: &Adam| adam.state.as_ref().map(|s| s.exp_avg_sq.shallow_clone()).unwrap();
                assert!(state(&host).equal(&state(&table)));
            }
        }
    }
}
