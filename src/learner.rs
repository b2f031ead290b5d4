//! A model and its Adam optimiser: one training step, as a PyTorch script takes it
//! (`loss.backward(); optimizer.step()`).

use crate::model::{Forward, LeNet5};
use crate::norm::{Method, Pass};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// PyTorch's default Adam: β = (0.9, 0.999), ε = 1e-8, no weight decay.
fn pytorch_adam() -> nn::Adam {
    nn::Adam { beta1: 0.9, beta2: 0.999, wd: 0.0, eps: 1e-8, amsgrad: false }
}

#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    #[error("learning rate must be a positive finite number, got {0}")]
    BadLearningRate(f64),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

pub struct Learner {
    pub vs: nn::VarStore,
    pub model: LeNet5,
    optimizer: nn::Optimizer,
    kind: Kind,
}

impl Learner {
    /// S = `seeds.len()` models, model s initialised from `seeds[s]` as PyTorch would.
    pub fn new(
        method: &'static dyn Method,
        seeds: &[u64],
        normalize_conv: bool,
        lr: f64,
        device: Device,
    ) -> Result<Self, LearnerError> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(LearnerError::BadLearningRate(lr));
        }
        let vs = nn::VarStore::new(device);
        let model = LeNet5::new(&vs.root(), method, seeds, normalize_conv);
        let optimizer = pytorch_adam().build(&vs, lr)?;
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

    /// One Adam step on `x` (`[S, B, 3, 32, 32]`) and `labels` (`[S, B]`, int64).
    /// The loss is the sum over models of each model's mean cross-entropy, so
    /// every model's gradient is that of its own loss. Returns each model's loss
    /// `[S]` (detached) and the forward pass (its activations, for the measures).
    pub fn step(&mut self, x: &Tensor, labels: &Tensor) -> (Tensor, Forward) {
        let forward = self.model.forward(x, Pass::Train);
        let losses = per_model_loss(&forward.logits, labels);
        self.optimizer.backward_step(&losses.sum(None::<Kind>));
        (losses.detach(), forward)
    }
}

/// Mean cross-entropy of each model: logits `[S, B, 10]`, labels `[S, B]` → `[S]`.
pub fn per_model_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let size = logits.size();
    let (s, classes) = (size[0], size[2]);
    logits
        .reshape([-1, classes])
        .cross_entropy_loss::<Tensor>(&labels.reshape([-1]), None, tch::Reduction::None, -100, 0.0)
        .view([s, -1])
        .mean_dim(1, false, None::<Kind>)
}
