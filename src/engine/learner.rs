//! A model and its Adam optimiser: one training step, as a PyTorch script takes it
//! (`loss = F.cross_entropy(net(x), y); loss.backward(); optimizer.step()`).
//!
//! On CUDA the step is captured in a CUDA graph after [`WARMUP_STEPS`] eager steps on
//! the capture stream, and replayed from then on: the same kernels on the same tensors,
//! launched at once instead of one by one (`crate::engine::cuda_graph`). A step whose batch has
//! another size than the captured one (an epoch's last, partial batch) runs eagerly on
//! the same tensors. `HOMEONORM_CUDA_GRAPHS=0` turns graphs off.

use crate::engine::cuda_graph::CudaGraph;
use crate::engine::model::{Forward, Model, ModelOptions};
use crate::engine::norm::{model_slices, per_model, Method, Pass};
use crate::engine::optim::Adam;
use tch::{nn, Device, Kind, Tensor};

/// Eager steps on the capture stream before a step is captured (PyTorch's examples warm
/// up 3: cuDNN and cuBLAS set up their per-stream state then, not in the graph).
pub const WARMUP_STEPS: usize = 3;

/// Whether CUDA training steps are captured in graphs: unless `HOMEONORM_CUDA_GRAPHS` is
/// `0`, `off` or `false`, and where this build has them.
pub fn cuda_graphs_enabled() -> bool {
    CudaGraph::built() && !matches!(std::env::var("HOMEONORM_CUDA_GRAPHS").as_deref(), Ok("0" | "off" | "false"))
}

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
    graph: StepGraph,
    /// Whether this learner's work may be captured in CUDA graphs.
    capturable: bool,
}

/// Where a learner stands with a CUDA graph of its step.
enum StepGraph {
    /// Every step eager: the CPU, a method whose step waits for the host, graphs off.
    Off,
    /// Eager steps on the capture stream; the capture comes when `left` is 0 and a batch
    /// has the shape of the one before (not an epoch's partial last batch).
    WarmingUp {
        graph: CudaGraph,
        left: usize,
        last_shape: Vec<i64>,
    },
    Captured(Box<CapturedStep>),
}

/// A captured step: the inputs each replay reads (filled before it) and the outputs it
/// writes (in the graph's memory pool: dropped before the graph, fields drop in order).
struct CapturedStep {
    x: Tensor,
    labels: Tensor,
    losses: Tensor,
    forward: Forward,
    graph: CudaGraph,
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
        let capturable = device.is_cuda() && method.captures_in_a_cuda_graph() && cuda_graphs_enabled();
        let graph = match capturable {
            false => StepGraph::Off,
            true => match CudaGraph::new() {
                Ok(graph) => StepGraph::WarmingUp { graph, left: WARMUP_STEPS, last_shape: Vec::new() },
                Err(e) => {
                    log::warn!("{e}: training without a CUDA graph");
                    StepGraph::Off
                }
            },
        };
        Ok(Learner { vs, model, optimizer, kind: Kind::Float, graph, capturable })
    }

    /// Whether this learner's work may be captured in CUDA graphs (CUDA, a method whose
    /// step never waits for the host, graphs not turned off).
    pub fn capturable(&self) -> bool {
        self.capturable
    }

    /// Whether the step is captured in a CUDA graph (after the warm-up steps).
    pub fn graph_captured(&self) -> bool {
        matches!(self.graph, StepGraph::Captured(_))
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

    /// Everything model `s`'s training depends on but its data's order, for a checkpoint:
    /// its parameters and buffers under their var-store names (`var/conv1.weight`, …) and
    /// its Adam moments (`adam/<i>/exp_avg`, `adam/<i>/exp_avg_sq`, parameter i in the
    /// optimiser's order). Copies, on the model's device.
    pub fn model_checkpoint(&self, s: i64) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<(String, Tensor)> =
            crate::engine::model::model_state(&self.vs, s).into_iter().map(|(n, t)| (format!("var/{n}"), t)).collect();
        for (i, (exp_avg, exp_avg_sq)) in self.optimizer.model_moments(s).into_iter().flatten().enumerate() {
            tensors.push((format!("adam/{i}/exp_avg"), exp_avg));
            tensors.push((format!("adam/{i}/exp_avg_sq"), exp_avg_sq));
        }
        tensors
    }

    /// Takes up every model where a checkpoint left it: `states[s]` as
    /// [`model_checkpoint`](Self::model_checkpoint) gave model s's, after `steps` updates.
    /// Before the first step only. The error names a tensor missing, misshapen or of
    /// another kind.
    pub fn restore(&mut self, steps: u64, states: &[std::collections::HashMap<String, Tensor>]) -> Result<(), String> {
        assert_eq!(states.len() as i64, self.model.models(), "one state per model");
        assert_eq!(self.steps(), 0, "a learner is restored before its first step");
        let take = |state: &std::collections::HashMap<String, Tensor>, name: &str, like: &Tensor| {
            let t = state.get(name).ok_or_else(|| format!("no `{name}`"))?;
            if t.size() != like.size() || t.kind() != like.kind() {
                return Err(format!(
                    "`{name}` is {:?} {:?}, the model's {:?} {:?}",
                    t.kind(),
                    t.size(),
                    like.kind(),
                    like.size()
                ));
            }
            Ok(t.to_device(like.device()))
        };
        let variables = self.vs.variables();
        for (s, state) in states.iter().enumerate() {
            for (name, var) in &variables {
                let slot = var.get(s as i64);
                let value = take(state, &format!("var/{name}"), &slot)?;
                tch::no_grad(|| slot.shallow_clone().copy_(&value));
            }
        }
        if steps == 0 {
            return Ok(());
        }
        let models = self.model.models();
        let params: Vec<Tensor> = self.optimizer.params().iter().map(|p| p.get(0)).collect();
        let mut moments = Vec::with_capacity(states.len());
        for state in states {
            let mut model = Vec::with_capacity(params.len());
            for (i, like) in params.iter().enumerate() {
                let exp_avg = take(state, &format!("adam/{i}/exp_avg"), like)?;
                let exp_avg_sq = take(state, &format!("adam/{i}/exp_avg_sq"), like)?;
                model.push((exp_avg, exp_avg_sq));
            }
            moments.push(model);
        }
        debug_assert_eq!(moments.len() as i64, models);
        self.optimizer.restore(steps, &moments);
        Ok(())
    }

    /// Model s's state under PyTorch's names (`model.safetensors`).
    pub fn pytorch_state(&self, model: i64) -> Vec<(String, Tensor)> {
        self.model.pytorch_state(&self.vs, model, self.steps() as i64)
    }

    /// One Adam step on `x` (`[S, B, 3, 32, 32]`) and `labels` (`[S, B]`, int64).
    /// The loss is the sum over models of each model's mean cross-entropy, so
    /// every model's gradient is that of its own loss. Returns each model's loss
    /// `[S]` (detached) and the forward pass (its activations, for the measures: read
    /// them before the next step, which may write over them).
    pub fn step(&mut self, x: &Tensor, labels: &Tensor) -> (Tensor, Forward) {
        match std::mem::replace(&mut self.graph, StepGraph::Off) {
            StepGraph::Off => self.eager_step(x, labels),
            StepGraph::WarmingUp { graph, left, last_shape } if left > 0 || x.size() != last_shape => {
                self.warm_up(graph, left, x, labels)
            }
            StepGraph::WarmingUp { graph, .. } => self.capture(graph, x, labels),
            StepGraph::Captured(captured) if captured.x.size() == x.size() => self.replay(captured, x, labels),
            StepGraph::Captured(captured) => {
                self.graph = StepGraph::Captured(captured);
                self.eager_step(x, labels)
            }
        }
    }

    fn eager_step(&mut self, x: &Tensor, labels: &Tensor) -> (Tensor, Forward) {
        self.optimizer.advance();
        self.device_step(x, labels)
    }

    /// The step's device work, after the optimiser's host part ([`Adam::advance`]).
    fn device_step(&mut self, x: &Tensor, labels: &Tensor) -> (Tensor, Forward) {
        let forward = self.model.forward(x, Pass::Train);
        let losses = if self.model.per_model_on(x.device()) {
            per_model_loss(&forward.logits, labels)
        } else {
            batched_loss(&forward.logits, labels)
        };
        // The gradients as `loss.backward()` leaves them in `.grad` after `zero_grad()`
        // (set to None), without accumulating into an old gradient.
        let grads = Tensor::run_backward(&[losses.sum(None::<Kind>)], self.optimizer.params(), false, false);
        self.optimizer.update(&grads);
        // Then the methods' own rules, as a script runs them after `opt.step()`.
        self.model.after_step(&forward);
        (losses.detach(), forward)
    }

    fn warm_up(&mut self, mut graph: CudaGraph, left: usize, x: &Tensor, labels: &Tensor) -> (Tensor, Forward) {
        match graph.on_side_stream(|| self.eager_step(x, labels)) {
            Ok(out) => {
                self.graph = StepGraph::WarmingUp { graph, left: left.saturating_sub(1), last_shape: x.size() };
                out
            }
            Err(e) => panic!("a training step on the CUDA graph's stream: {e}"),
        }
    }

    fn capture(&mut self, mut graph: CudaGraph, x: &Tensor, labels: &Tensor) -> (Tensor, Forward) {
        // The inputs at fixed addresses, outside the graph's memory.
        let (static_x, static_labels) = (x.copy(), labels.copy());
        self.optimizer.advance();
        match graph.capture(|| self.device_step(&static_x, &static_labels)) {
            Ok((losses, forward)) => {
                let (nodes, kernels) = graph.counts();
                log::info!("training step captured in a CUDA graph: {nodes} nodes, {kernels} of them kernels");
                let captured = CapturedStep { x: static_x, labels: static_labels, losses, forward, graph };
                // The capture ran nothing: this step is its first replay.
                self.replay_captured(Box::new(captured))
            }
            Err(e) => {
                log::warn!("{e}: training without a CUDA graph");
                self.device_step(x, labels)
            }
        }
    }

    fn replay(&mut self, mut captured: Box<CapturedStep>, x: &Tensor, labels: &Tensor) -> (Tensor, Forward) {
        captured.x.copy_(x);
        captured.labels.copy_(labels);
        self.optimizer.advance();
        self.replay_captured(captured)
    }

    fn replay_captured(&mut self, mut captured: Box<CapturedStep>) -> (Tensor, Forward) {
        if let Err(e) = captured.graph.replay() {
            panic!("the training step's CUDA graph: {e}");
        }
        // The losses copied: the next replay writes over the graph's own.
        let out = (captured.losses.copy(), captured.forward.shallow_clone());
        self.graph = StepGraph::Captured(captured);
        out
    }
}

/// Mean cross-entropy of each model, as `F.cross_entropy(logits, labels)` computes
/// it for one: logits `[S, B, 10]`, labels `[S, B]` → `[S]`.
pub fn per_model_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let logits = model_slices(logits);
    per_model(logits.len(), |s| {
        logits[s].cross_entropy_loss::<Tensor>(&labels.get(s as i64), None, tch::Reduction::Mean, -100, 0.0)
    })
}

/// [`per_model_loss`] as one cross-entropy over every model's batch, then each model's
/// mean: a few kernels instead of a few per model (CUDA's batched layout; each model's
/// mean is the same sum over its batch, rounded as the device's reduction rounds it).
pub fn batched_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let size = logits.size();
    let each = logits.reshape([-1, size[2]]).cross_entropy_loss::<Tensor>(
        &labels.reshape([-1]),
        None,
        tch::Reduction::None,
        -100,
        0.0,
    );
    each.view([size[0], size[1]]).mean_dim([1i64].as_slice(), false, None::<Kind>)
}
