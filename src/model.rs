//! LeNet5 with one normalization method on every hidden layer, for S models at once.
//!
//! conv 3→6 5×5, ReLU, 2×2 max-pool, conv 6→16 5×5, ReLU, 2×2 max-pool,
//! fc 400→120, ReLU, fc 120→84, ReLU, fc 84→10 (the PyTorch CIFAR-10 tutorial's net).
//!
//! A "seed batch" of S independent models lives in one set of tensors: conv
//! layers are grouped convolutions (groups = S, the models' channels side by side,
//! so per-channel batch statistics stay per model) and fc layers are batched matrix
//! products. Adam is elementwise and the loss is the sum of the models' mean
//! losses, so each model trains exactly as it would alone. A single run is S = 1.
//!
//! Model s is initialised exactly as `torch.manual_seed(seed_s); Net()` initialises
//! PyTorch's `nn.Conv2d`/`nn.Linear` (same generator, same draws, same order).

use crate::norm::{LayerNorm, LayerSpec, Method, Pass, Vanilla};
use tch::{nn, Device, Kind, Tensor};

/// Input images: 3 channels of 32×32.
pub const INPUT_CHANNELS: i64 = 3;
pub const IMAGE_SIZE: i64 = 32;
pub const CLASSES: i64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    Conv,
    Fc,
}

/// Held while torch's global generator is reseeded and drawn from, so that draws in
/// other threads (tests run in parallel, say) cannot interleave with a model's.
pub static TORCH_RNG_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The layers of LeNet5, in PyTorch's construction (and initialisation) order.
#[derive(Clone, Copy, Debug)]
pub struct LayerShape {
    pub name: &'static str,
    pub kind: LayerKind,
    pub inputs: i64,
    pub units: i64,
    /// Normalized layers are the hidden ones; the output layer never is.
    pub hidden: bool,
}

const KERNEL: i64 = 5;

pub const LAYERS: [LayerShape; 5] = [
    LayerShape { name: "conv1", kind: LayerKind::Conv, inputs: 3, units: 6, hidden: true },
    LayerShape { name: "conv2", kind: LayerKind::Conv, inputs: 6, units: 16, hidden: true },
    LayerShape { name: "fc1", kind: LayerKind::Fc, inputs: 16 * 5 * 5, units: 120, hidden: true },
    LayerShape { name: "fc2", kind: LayerKind::Fc, inputs: 120, units: 84, hidden: true },
    LayerShape { name: "fc3", kind: LayerKind::Fc, inputs: 84, units: CLASSES, hidden: false },
];

impl LayerShape {
    /// One model's weight shape, as PyTorch stores it (`[out, in, k, k]` or `[out, in]`).
    pub fn weight_shape(&self) -> Vec<i64> {
        match self.kind {
            LayerKind::Conv => vec![self.units, self.inputs, KERNEL, KERNEL],
            LayerKind::Fc => vec![self.units, self.inputs],
        }
    }
    fn fan_in(&self) -> i64 {
        self.weight_shape()[1..].iter().product()
    }
}

/// The hidden layers, whose activations the measures use.
pub fn hidden_layers() -> impl Iterator<Item = &'static LayerShape> {
    LAYERS.iter().filter(|l| l.hidden)
}

/// Draws one layer's initial weight and bias from torch's global generator as
/// `nn.Conv2d`/`nn.Linear.reset_parameters` do: kaiming_uniform_(a = √5), then the
/// bias uniform in ±1/√fan_in. The arithmetic of the bounds follows
/// `torch.nn.init` in f64 so that the bounds are bit-identical.
fn pytorch_default_init(layer: &LayerShape) -> (Tensor, Tensor) {
    let fan_in = layer.fan_in() as f64;
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a.powi(2))).sqrt();
    let std = gain / fan_in.sqrt();
    let weight_bound = 3f64.sqrt() * std;
    let bias_bound = 1.0 / fan_in.sqrt();
    let opts = (Kind::Float, Device::Cpu);
    let mut weight = Tensor::empty(layer.weight_shape().as_slice(), opts);
    let _ = weight.uniform_(-weight_bound, weight_bound);
    let mut bias = Tensor::empty([layer.units], opts);
    let _ = bias.uniform_(-bias_bound, bias_bound);
    (weight, bias)
}

struct Layer {
    shape: LayerShape,
    /// Conv: `[S·U, C, k, k]`; fc: `[S, U, in]`.
    weight: Tensor,
    /// Conv: `[S·U]`; fc: `[S, U]`.
    bias: Tensor,
    norm: Box<dyn LayerNorm>,
}

/// What one forward pass gives.
pub struct Forward {
    /// `[S, B, 10]`.
    pub logits: Tensor,
    /// Post-ReLU activations of each hidden layer, in [`hidden_layers`] order, with
    /// the models' units side by side on dim 1: `[B, S·U]` or `[B, S·C, H, W]`.
    pub hidden: Vec<Tensor>,
}

pub struct LeNet5 {
    models: i64,
    layers: Vec<Layer>,
    conv_layout: ConvLayout,
}

/// How the S models' convolutions run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvLayout {
    /// Grouped on CUDA, per model on the CPU: each where it is fastest.
    #[default]
    Auto,
    /// One grouped convolution (groups = S): what CUDA runs.
    Grouped,
    /// S plain convolutions, one per model.
    PerModel,
}

impl LeNet5 {
    /// Builds S = `seeds.len()` models under `root`, model s initialised from `seeds[s]`.
    /// With `normalize_conv` false the method applies to fc1 and fc2 only.
    ///
    /// This reseeds torch's global generator (as `torch.manual_seed` would).
    pub fn new(root: &nn::Path, method: &'static dyn Method, seeds: &[u64], normalize_conv: bool) -> Self {
        assert!(!seeds.is_empty(), "a model needs at least one seed");
        let models = seeds.len() as i64;
        // Draw every model's parameters in PyTorch's order, one generator state per seed.
        let drawn: Vec<Vec<(Tensor, Tensor)>> = {
            let _rng = TORCH_RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            seeds
                .iter()
                .map(|&seed| {
                    tch::manual_seed(seed as i64);
                    LAYERS.iter().map(pytorch_default_init).collect()
                })
                .collect()
        };
        let layers = LAYERS
            .iter()
            .enumerate()
            .map(|(i, shape)| {
                let weights: Vec<&Tensor> = drawn.iter().map(|m| &m[i].0).collect();
                let biases: Vec<&Tensor> = drawn.iter().map(|m| &m[i].1).collect();
                let (weight, bias) = match shape.kind {
                    LayerKind::Conv => (Tensor::cat(&weights, 0), Tensor::cat(&biases, 0)),
                    LayerKind::Fc => (Tensor::stack(&weights, 0), Tensor::stack(&biases, 0)),
                };
                let path = root / shape.name;
                let weight = path.var_copy("weight", &weight);
                let bias = path.var_copy("bias", &bias);
                let spec = LayerSpec { models, units: shape.units };
                let layer_method: &dyn Method = match (shape.hidden, shape.kind) {
                    (false, _) => &Vanilla,
                    (true, LayerKind::Conv) if !normalize_conv => &Vanilla,
                    _ => method,
                };
                let norm = layer_method.attach(&(&path / "norm"), &spec, &weight);
                Layer { shape: *shape, weight, bias, norm }
            })
            .collect();
        LeNet5 { models, layers, conv_layout: ConvLayout::Auto }
    }

    /// Chooses the convolution layout (the tests run CUDA's grouped one on the CPU).
    pub fn set_conv_layout(&mut self, layout: ConvLayout) {
        self.conv_layout = layout;
    }

    pub fn models(&self) -> i64 {
        self.models
    }

    /// Forward pass. `x` is `[B, S·3, 32, 32]`: see [`per_model_input`] and [`shared_input`].
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Forward {
        let s = self.models;
        let mut hidden = Vec::with_capacity(4);
        let mut h = x.shallow_clone();
        for layer in &self.layers {
            let weight = layer.norm.effective_weight(&layer.weight);
            match layer.shape.kind {
                LayerKind::Conv => {
                    let z = convolve(&h, &weight, &layer.bias, s, self.conv_layout);
                    let y = layer.norm.normalize(&z, pass).relu();
                    h = y.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
                    hidden.push(y);
                }
                LayerKind::Fc => {
                    if h.dim() == 4 {
                        // [B, S·16, 5, 5] → [S, B, 400], flattening each model's channels as torch.flatten does.
                        let b = h.size()[0];
                        h = h.reshape([b, s, -1]).transpose(0, 1);
                    }
                    let z = h.matmul(&weight.transpose(1, 2)) + layer.bias.unsqueeze(1); // [S, B, U]
                    if !layer.shape.hidden {
                        return Forward { logits: z, hidden };
                    }
                    let (b, u) = (z.size()[1], layer.shape.units);
                    let z = z.transpose(0, 1).reshape([b, s * u]);
                    let y = layer.norm.normalize(&z, pass).relu();
                    h = y.view([b, s, u]).transpose(0, 1);
                    hidden.push(y);
                }
            }
        }
        unreachable!("LeNet5 ends with its output layer")
    }

    /// The learned α of each hidden layer, `[S, U]`, for methods that have one.
    pub fn alphas(&self) -> Vec<(&'static str, Tensor)> {
        self.layers
            .iter()
            .filter_map(|l| l.norm.alpha().map(|a| (l.shape.name, a.detach().view([self.models, -1]))))
            .collect()
    }
}

/// Each model's convolution over its own channels: by default one grouped
/// convolution (groups = S) on CUDA; on the CPU, S plain ones, because oneDNN's
/// grouped convolution is several times slower there than the same work as separate
/// convolutions (`examples/conv_layouts.rs` measures both).
fn convolve(x: &Tensor, weight: &Tensor, bias: &Tensor, models: i64, layout: ConvLayout) -> Tensor {
    let grouped = match layout {
        ConvLayout::Auto => x.device().is_cuda(),
        ConvLayout::Grouped => true,
        ConvLayout::PerModel => false,
    };
    if models == 1 || grouped {
        return x.conv2d(weight, Some(bias), [1, 1], [0, 0], [1, 1], models);
    }
    let (xs, ws, bs) = (x.chunk(models, 1), weight.chunk(models, 0), bias.chunk(models, 0));
    let per_model: Vec<Tensor> =
        xs.iter().zip(&ws).zip(&bs).map(|((x, w), b)| x.conv2d(w, Some(b), [1, 1], [0, 0], [1, 1], 1)).collect();
    Tensor::cat(&per_model, 1)
}

/// `[S, B, 3, 32, 32]` (one batch per model) → the model's input layout `[B, S·3, 32, 32]`.
pub fn per_model_input(x: &Tensor) -> Tensor {
    let size = x.size();
    x.transpose(0, 1).reshape([size[1], size[0] * size[2], size[3], size[4]])
}

/// `[B, 3, 32, 32]` (one batch for every model, as in evaluation) → `[B, S·3, 32, 32]`.
pub fn shared_input(x: &Tensor, models: i64) -> Tensor {
    x.repeat([1, models, 1, 1])
}

/// Splits a hidden activation `[B, S·U, …]` into `[B, S, U, …]`.
pub fn split_models(y: &Tensor, models: i64) -> Tensor {
    let mut shape = y.size();
    let units = shape[1] / models;
    shape.splice(1..2, [models, units]);
    y.view(shape.as_slice())
}

/// Model s's parameters and buffers in PyTorch's shapes, named as in the var store
/// (`conv1.weight`, `fc1.norm.gamma`, …).
pub fn model_state(vs: &nn::VarStore, model: i64, models: i64) -> Vec<(String, Tensor)> {
    let mut state: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            let t = t.detach();
            let one = match t.dim() {
                // fc weights [S, U, in] and biases [S, U]
                2 | 3 => t.get(model),
                // conv weights [S·U, C, k, k], conv biases and per-unit vectors [S·U]
                _ => {
                    let rows = t.size()[0] / models;
                    t.narrow(0, model * rows, rows)
                }
            };
            (name, one.copy())
        })
        .collect();
    state.sort_by(|a, b| a.0.cmp(&b.0));
    state
}

/// Trainable parameters per model, by name (counts, not values).
pub fn parameter_counts(vs: &nn::VarStore, models: i64) -> Vec<(String, i64)> {
    let trainable: Vec<Tensor> = vs.trainable_variables();
    let mut counts: Vec<(String, i64)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| trainable.iter().any(|v| v.data_ptr() == t.data_ptr()))
        .map(|(name, t)| (name, t.numel() as i64 / models))
        .collect();
    counts.sort();
    counts
}
