//! A model and its Adam optimiser: one training step, as a PyTorch script takes it
//! (`loss = F.cross_entropy(net(x), y); loss.backward(); optimizer.step()`).

use crate::model::{Forward, Model, ModelOptions};
use crate::norm::{Method, Pass};
use crate::optim::Adam;
use tch::{nn, Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    #[error("learning rate must be a positive finite number, got {0}")]
    BadLearningRate(f64),
}

pub struct Learner {
    pub vs: nn::VarStore,
    pub model: Model,
    optimizer: Adam,
    kind: Kind,
}

impl Learner {
    /// S = `seeds.len()` models, model s initialised from `seeds[s]` as PyTorch would,
    /// with the default method options.
    pub fn new(
        method: &'static dyn Method,
        seeds: &[u64],
        normalize_conv: bool,
        lr: f64,
        device: Device,
    ) -> Result<Self, LearnerError> {
        Self::with_options(method, seeds, &ModelOptions { normalize_conv, ..ModelOptions::default() }, lr, device)
    }

    /// [`new`](Self::new) with the model's options.
    pub fn with_options(
        method: &'static dyn Method,
        seeds: &[u64],
        options: &ModelOptions,
        lr: f64,
        device: Device,
    ) -> Result<Self, LearnerError> {
        Self::with_learning_rates(method, seeds, options, &vec![lr; seeds.len()], device)
    }

    /// [`with_options`](Self::with_options) with model s at learning rate `lrs[s]`.
    pub fn with_learning_rates(
        method: &'static dyn Method,
        seeds: &[u64],
        options: &ModelOptions,
        lrs: &[f64],
        device: Device,
    ) -> Result<Self, LearnerError> {
        assert_eq!(lrs.len(), seeds.len(), "one learning rate per model");
        if let Some(&lr) = lrs.iter().find(|lr| !(lr.is_finite() && **lr > 0.0)) {
            return Err(LearnerError::BadLearningRate(lr));
        }
        let vs = nn::VarStore::new(device);
        let model = Model::new(&vs.root(), method, seeds, options);
        let optimizer = Adam::new(vs.trainable_variables(), lrs.to_vec());
        Ok(Learner { vs, model, optimizer, kind: Kind::Float })
    }

    /// Converts parameters and buffers to another float kind (the parity tests run in f64 too).
    pub fn set_float_kind(&mut self, kind: Kind) {
        self.vs.set_kind(kind);
        self.kind = kind;
    }

    /// The float kind of the parameters (inputs must match it).
    pub fn float_kind(&self) -> Kind {
        self.kind
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Training steps taken.
    pub fn steps(&self) -> u64 {
        self.optimizer.steps()
    }

    /// Model s's state under PyTorch's names (`model.safetensors`).
    pub fn pytorch_state(&self, model: i64) -> Vec<(String, Tensor)> {
        self.model.pytorch_state(&self.vs, model, self.steps() as i64)
    }

    /// One Adam step on `x` (`[S, B, 3, 32, 32]`) and `labels` (`[S, B]`, int64).
    /// The loss is the sum over models of each model's mean cross-entropy, so
    /// every model's gradient is that of its own loss. Returns each model's loss
    /// `[S]` (detached) and the forward pass (its activations, for the measures).
    pub fn step(&mut self, x: &Tensor, labels: &Tensor) -> (Tensor, Forward) {
        let forward = self.model.forward(x, Pass::Train);
        let losses = per_model_loss(&forward.logits, labels);
        // The gradients as `loss.backward()` leaves them in `.grad` after `zero_grad()`
        // (set to None), without accumulating into an old gradient.
        let grads = Tensor::run_backward(&[losses.sum(None::<Kind>)], self.optimizer.params(), false, false);
        self.optimizer.step(&grads);
        // Then the methods' own rules, as a script runs them after `opt.step()`.
        self.model.after_step(&forward);
        (losses.detach(), forward)
    }
}

/// Mean cross-entropy of each model, as `F.cross_entropy(logits, labels)` computes
/// it for one: logits `[S, B, 10]`, labels `[S, B]` → `[S]`.
pub fn per_model_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let losses: Vec<Tensor> = (0..logits.size()[0])
        .map(|s| logits.get(s).cross_entropy_loss::<Tensor>(&labels.get(s), None, tch::Reduction::Mean, -100, 0.0))
        .collect();
    Tensor::stack(&losses, 0)
}
