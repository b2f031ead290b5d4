//! The networks ([`Network`]: the paper's LeNet5, an MLP, a plain CNN, ResNet-20), each
//! with one normalization method on every hidden layer, for S models at once. A network
//! is its table of layers ([`Network::layers`]); everything downstream asks the model for
//! its hidden layers.
//!
//! LeNet5: conv 3→6 5×5, ReLU, 2×2 max-pool, conv 6→16 5×5, ReLU, 2×2 max-pool,
//! fc 400→120, ReLU, fc 120→84, ReLU, fc 84→10 (the PyTorch CIFAR-10 tutorial's net).
//!
//! A "seed batch" of S independent models lives in one set of tensors, with the
//! models on a leading axis S of every per-model tensor: weights `[S, U, …]`, biases
//! and per-unit vectors `[S, U]`, inputs `[S, B, 3, 32, 32]`, activations
//! `[S, B, U, …]`. On the CPU each model's layers run as PyTorch runs them for one
//! model (`F.conv2d`, `F.linear`, one per model: [`Layout::PerModel`]), so each
//! model's numbers are bit for bit those of a PyTorch script with its seed. On CUDA
//! the seed batch runs as one grouped convolution (groups = S, the one place the
//! models' channels are laid side by side, `[B, S·C, H, W]`) and batched matrix
//! products ([`Layout::Batched`]), faster and equal up to rounding. Adam is
//! elementwise and the loss is the sum of the models' mean losses, so each model
//! trains exactly as it would alone. A single run is S = 1.
//!
//! Model s is initialised exactly as `torch.manual_seed(seed_s); Net()` initialises
//! PyTorch's `nn.Conv2d`/`nn.Linear` (same generator, same draws, same order).

use crate::engine::norm::{model_slices, per_model, LayerSpec, Method, MethodLayer, MethodOptions, Pass, Vanilla};
use crate::engine::setting_error::SettingError;
use tch::{nn, Device, Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    Conv,
    Fc,
}

/// One layer of a network, in PyTorch's construction (and initialisation) order.
#[derive(Clone, Copy, Debug)]
pub struct LayerShape {
    pub name: &'static str,
    pub kind: LayerKind,
    pub inputs: i64,
    pub units: i64,
    /// Normalized layers are the hidden ones; the output layer never is.
    pub hidden: bool,
    /// Conv: the kernel's side, the zero padding on each side and the stride (fc: 0, 0, 1).
    pub kernel: i64,
    pub padding: i64,
    pub stride: i64,
    /// Conv: the pooling after its activation.
    pub pool: Pool,
    /// Its place in a residual block, if it has one.
    pub residual: Residual,
}

/// The pooling after a conv layer's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    None,
    /// 2×2 max-pool, stride 2 (`F.max_pool2d(x, 2, 2)`).
    Max2,
    /// Average over all positions (`F.avg_pool2d(x, x.size(3))`), before the output layer.
    GlobalAverage,
}

/// A layer's place in a residual block (He et al. 2016): the block's input is kept at
/// the layer that opens it and added at the layer that closes it, after that layer's
/// normalization and before its activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residual {
    None,
    /// The block's first layer: its input is the shortcut.
    Opens,
    /// The block's last layer: normalize, add the shortcut, activate.
    Closes,
}

const fn conv(name: &'static str, inputs: i64, units: i64, kernel: i64, padding: i64, pool: bool) -> LayerShape {
    let pool = if pool { Pool::Max2 } else { Pool::None };
    LayerShape {
        name,
        kind: LayerKind::Conv,
        inputs,
        units,
        hidden: true,
        kernel,
        padding,
        stride: 1,
        pool,
        residual: Residual::None,
    }
}

const fn fc(name: &'static str, inputs: i64, units: i64) -> LayerShape {
    LayerShape {
        name,
        kind: LayerKind::Fc,
        inputs,
        units,
        hidden: true,
        kernel: 0,
        padding: 0,
        stride: 1,
        pool: Pool::None,
        residual: Residual::None,
    }
}

/// A residual block's two 3×3 convolutions (padded; the first strided where the block
/// halves the image): He et al.'s basic block.
const fn block(first: &'static str, second: &'static str, inputs: i64, units: i64) -> [LayerShape; 2] {
    let stride = if inputs == units { 1 } else { 2 };
    [
        LayerShape { stride, residual: Residual::Opens, ..conv(first, inputs, units, 3, 1, false) },
        LayerShape { residual: Residual::Closes, ..conv(second, units, units, 3, 1, false) },
    ]
}

/// The output layer: the classes' logits, never normalized.
const fn output(name: &'static str, inputs: i64) -> LayerShape {
    LayerShape { hidden: false, ..fc(name, inputs, crate::engine::data::CLASSES as i64) }
}

/// The PyTorch CIFAR-10 tutorial's LeNet5, the paper's network.
const LENET5: [LayerShape; 5] = [
    conv("conv1", 3, 6, 5, 0, true),
    conv("conv2", 6, 16, 5, 0, true),
    fc("fc1", 16 * 5 * 5, 120),
    fc("fc2", 120, 84),
    output("fc3", 84),
];

/// Three hidden fc layers on the flattened image.
const MLP: [LayerShape; 4] = [fc("fc1", 3 * 32 * 32, 256), fc("fc2", 256, 128), fc("fc3", 128, 64), output("fc4", 64)];

/// VGG-style: three stages of two 3×3 convolutions (16, 32, 64 channels, padded), each
/// stage ending in a 2×2 max-pool, then one hidden fc layer.
const PLAIN_CNN: [LayerShape; 8] = [
    conv("conv1", 3, 16, 3, 1, false),
    conv("conv2", 16, 16, 3, 1, true),
    conv("conv3", 16, 32, 3, 1, false),
    conv("conv4", 32, 32, 3, 1, true),
    conv("conv5", 32, 64, 3, 1, false),
    conv("conv6", 64, 64, 3, 1, true),
    fc("fc1", 64 * 4 * 4, 128),
    output("fc2", 128),
];

/// He et al.'s ResNet-20 for CIFAR-10: a 3×3 convolution (16 channels), three stages of
/// three basic blocks (16, 32, 64 channels; the second and third stage's first block
/// strided, its shortcut subsampled and zero-padded: their "option A"), a global average
/// pool, fc. Layers are named by their PyTorch modules (`layer2.0.conv1`).
const RESNET20: [LayerShape; 20] = {
    let [b10, b11] = block("layer1.0.conv1", "layer1.0.conv2", 16, 16);
    let [b20, b21] = block("layer1.1.conv1", "layer1.1.conv2", 16, 16);
    let [b30, b31] = block("layer1.2.conv1", "layer1.2.conv2", 16, 16);
    let [b40, b41] = block("layer2.0.conv1", "layer2.0.conv2", 16, 32);
    let [b50, b51] = block("layer2.1.conv1", "layer2.1.conv2", 32, 32);
    let [b60, b61] = block("layer2.2.conv1", "layer2.2.conv2", 32, 32);
    let [b70, b71] = block("layer3.0.conv1", "layer3.0.conv2", 32, 64);
    let [b80, b81] = block("layer3.1.conv1", "layer3.1.conv2", 64, 64);
    let [b90, b91] = block("layer3.2.conv1", "layer3.2.conv2", 64, 64);
    let b91 = LayerShape { pool: Pool::GlobalAverage, ..b91 };
    [
        conv("conv1", 3, 16, 3, 1, false),
        b10,
        b11,
        b20,
        b21,
        b30,
        b31,
        b40,
        b41,
        b50,
        b51,
        b60,
        b61,
        b70,
        b71,
        b80,
        b81,
        b90,
        b91,
        output("fc", 64),
    ]
};

/// The network a run trains: `config.json`'s `model` (absent in format-1 folders, all
/// of them LeNet5). A value this homeonorm does not know makes a folder another
/// writer's (foreign). A network is its layer table; `reference/networks.py` has each
/// as a PyTorch module (`NETWORKS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// conv1, conv2 (6 and 16 channels, 5×5), fc1, fc2 (120 and 84 units), fc3: the paper's.
    #[default]
    Lenet5,
    /// fc1, fc2, fc3 (256, 128 and 64 units) on the flattened image, fc4.
    Mlp,
    /// conv1–conv6 (3×3; 16, 16, 32, 32, 64, 64 channels; a max-pool after every second), fc1 (128), fc2.
    PlainCnn,
    /// conv1, then layer1–layer3's three basic blocks each (16, 32, 64 channels), fc.
    Resnet20,
}

impl Network {
    /// The paper's network: its published numbers are LeNet5's.
    pub const PAPER: Network = Network::Lenet5;

    /// Its layers in construction order; the last is the output layer.
    pub fn layers(self) -> &'static [LayerShape] {
        match self {
            Network::Lenet5 => &LENET5,
            Network::Mlp => &MLP,
            Network::PlainCnn => &PLAIN_CNN,
            Network::Resnet20 => &RESNET20,
        }
    }

    /// The hidden layer whose units a report's and a figure's single-layer measures
    /// describe, always measured: the paper's fc1, or the last residual block (ResNet-20
    /// has no hidden fc layer; its channels are what the classifier reads).
    pub fn probe(self) -> &'static str {
        match self {
            Network::Lenet5 | Network::Mlp | Network::PlainCnn => "fc1",
            Network::Resnet20 => "layer3.2.conv2",
        }
    }

    /// The layers whose units the paper's pooled CVs pool ("fc units"): the hidden fc
    /// layers (LeNet5's fc1 and fc2), or, in a network without one, the probe.
    pub fn pooled_layers(self) -> Vec<&'static str> {
        let fc: Vec<&'static str> =
            self.layers().iter().filter(|l| l.hidden && l.kind == LayerKind::Fc).map(|l| l.name).collect();
        if fc.is_empty() {
            vec![self.probe()]
        } else {
            fc
        }
    }

    /// Its name in files and on the command line (`lenet5`, `plain-cnn`).
    pub fn name(self) -> &'static str {
        match self {
            Network::Lenet5 => "lenet5",
            Network::Mlp => "mlp",
            Network::PlainCnn => "plain-cnn",
            Network::Resnet20 => "resnet20",
        }
    }

    pub fn all() -> impl Iterator<Item = Network> {
        <Network as clap::ValueEnum>::value_variants().iter().copied()
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl LayerShape {
    /// One model's weight shape, as PyTorch stores it (`[out, in, k, k]` or `[out, in]`).
    pub fn weight_shape(&self) -> Vec<i64> {
        match self.kind {
            LayerKind::Conv => vec![self.units, self.inputs, self.kernel, self.kernel],
            LayerKind::Fc => vec![self.units, self.inputs],
        }
    }
    fn fan_in(&self) -> i64 {
        self.weight_shape()[1..].iter().product()
    }
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

/// How a model is built besides its method.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelOptions {
    pub network: Network,
    /// The method applies to the conv layers too (else to the hidden fc layers only).
    pub normalize_conv: bool,
    pub method: MethodOptions,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions { network: Network::default(), normalize_conv: true, method: MethodOptions::default() }
    }
}

/// The method in each layer: `method` in the hidden layers it applies to, vanilla
/// elsewhere (the output layer, conv layers with `normalize_conv` false, fc layers
/// for a method that does not apply to them).
fn layer_method(shape: &LayerShape, method: &'static dyn Method, options: &ModelOptions) -> &'static dyn Method {
    match (shape.hidden, shape.kind) {
        (false, _) => &Vanilla,
        (true, LayerKind::Conv) if !options.normalize_conv => &Vanilla,
        (true, LayerKind::Fc) if !method.applies_to_fc() => &Vanilla,
        _ => method,
    }
}

impl LayerShape {
    /// What a method attached to this layer of `models` models is told of it.
    pub fn spec(&self, models: i64, options: &MethodOptions) -> LayerSpec {
        LayerSpec {
            models,
            units: self.units,
            inputs: self.inputs,
            conv: self.kind == LayerKind::Conv,
            options: options.clone(),
        }
    }
}

/// Refuses options that a layer the method applies to cannot take, naming the setting
/// and the layer, and a method that would apply to no hidden layer (the run would be
/// vanilla's under its name): a conv-only method in the MLP, or any method with
/// `normalize_conv` false where the method takes no hidden fc layer (ResNet-20 has none).
pub fn check_method(method: &'static dyn Method, options: &ModelOptions) -> Result<(), SettingError> {
    let hidden = || options.network.layers().iter().filter(|l| l.hidden);
    for shape in hidden() {
        layer_method(shape, method, options).check(shape.name, &shape.spec(1, &options.method))?;
    }
    let applies_nowhere = |options: &ModelOptions| {
        method.name() != Vanilla.name() && hidden().all(|l| layer_method(l, method, options).name() == Vanilla.name())
    };
    let network = options.network;
    if applies_nowhere(&ModelOptions { normalize_conv: true, ..options.clone() }) {
        return Err(SettingError {
            key: "model",
            message: format!(
                "{} applies to no hidden layer of {network} (it normalizes conv layers only, and {network} has none)",
                method.name()
            ),
        });
    }
    if applies_nowhere(options) {
        let why = if hidden().any(|l| l.kind == LayerKind::Fc) {
            format!("{} takes no fc layer", method.name())
        } else {
            format!("{network} has no hidden fc layer")
        };
        return Err(SettingError {
            key: "normalize_conv",
            message: format!(
                "with normalize_conv false, {} applies to no hidden layer of {network} ({why})",
                method.name()
            ),
        });
    }
    Ok(())
}

/// Every layer's initial weight and bias, drawn from torch's global generator in the
/// order `Net(method)` draws them: each layer's defaults in construction order, then
/// the method's own initialisation where it has one (what a script's
/// `torch.manual_seed(seed); Net(method)` leaves the generator at).
pub fn draw_initial_parameters(method: &'static dyn Method, options: &ModelOptions) -> Vec<(Tensor, Tensor)> {
    let layers = options.network.layers();
    let mut drawn: Vec<(Tensor, Tensor)> = layers.iter().map(pytorch_default_init).collect();
    for (shape, parameters) in layers.iter().zip(&mut drawn) {
        if let Some(again) = layer_method(shape, method, options).reinitialise(&shape.weight_shape()) {
            *parameters = again;
        }
    }
    drawn
}

struct Layer {
    shape: LayerShape,
    /// Conv: `[S, U, C, k, k]`; fc: `[S, U, in]`.
    weight: Tensor,
    /// `[S, U]`.
    bias: Tensor,
    /// The method in this layer (vanilla for the output layer, and for conv layers
    /// when only fc layers are normalized).
    method: &'static dyn Method,
    norm: Box<dyn MethodLayer>,
}

/// What one forward pass gives.
pub struct Forward {
    /// `[S, B, 10]`.
    pub logits: Tensor,
    /// Post-ReLU activations of each hidden layer, in [`Model::hidden_layers`]
    /// order: `[S, B, U]` or `[S, B, C, H, W]`.
    pub hidden: Vec<Tensor>,
}

impl Forward {
    /// Another handle on the same tensors (no copy).
    pub fn shallow_clone(&self) -> Forward {
        Forward { logits: self.logits.shallow_clone(), hidden: self.hidden.iter().map(Tensor::shallow_clone).collect() }
    }
}

/// A network's S models.
pub struct Model {
    network: Network,
    models: i64,
    layers: Vec<Layer>,
    layout: Layout,
}

/// How the S models' conv and fc layers run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Batched on CUDA, per model on the CPU.
    #[default]
    Auto,
    /// One grouped convolution (groups = S) and batched matrix products: what CUDA runs.
    /// (An unfolded lowering, im2col and one batched matrix product over the models, was
    /// measured ten times slower on an H200: BENCHMARKS.md.)
    Batched,
    /// Each model's `F.conv2d` and `F.linear`, one after another: exact, and on the
    /// CPU also the faster (oneDNN's grouped convolution is several times slower there).
    PerModel,
}

impl Layout {
    fn per_model(self, device: Device) -> bool {
        match self {
            Layout::Auto => !device.is_cuda(),
            Layout::Batched => false,
            Layout::PerModel => true,
        }
    }
}

impl Model {
    /// Builds S = `seeds.len()` models under `root`, model s initialised from `seeds[s]`.
    ///
    /// This reseeds torch's global generator (as `torch.manual_seed` would).
    pub fn new(root: &nn::Path, method: &'static dyn Method, seeds: &[u64], options: &ModelOptions) -> Self {
        assert!(!seeds.is_empty(), "a model needs at least one seed");
        let models = seeds.len() as i64;
        // Draw every model's parameters in PyTorch's order, one generator state per seed.
        let drawn: Vec<Vec<(Tensor, Tensor)>> = seeds
            .iter()
            .map(|&seed| crate::engine::torch_rng::seeded(seed, || draw_initial_parameters(method, options)))
            .collect();
        let layers = options
            .network
            .layers()
            .iter()
            .enumerate()
            .map(|(i, shape)| {
                let weights: Vec<&Tensor> = drawn.iter().map(|m| &m[i].0).collect();
                let biases: Vec<&Tensor> = drawn.iter().map(|m| &m[i].1).collect();
                let (weight, bias) = (Tensor::stack(&weights, 0), Tensor::stack(&biases, 0));
                let path = layer_path(root, shape.name);
                let weight = path.var_copy("weight", &weight);
                let bias = path.var_copy("bias", &bias);
                let spec = shape.spec(models, &options.method);
                let layer_method = layer_method(shape, method, options);
                let norm = layer_method.attach(&(&path / "norm"), &spec, &weight);
                Layer { shape: *shape, weight, bias, method: layer_method, norm }
            })
            .collect();
        Model { network: options.network, models, layers, layout: Layout::Auto }
    }

    /// Chooses the layout (the tests run CUDA's batched one on the CPU).
    pub fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
    }

    /// Whether the models run one by one on `device` ([`Layout::PerModel`]) rather than batched.
    pub fn per_model_on(&self, device: Device) -> bool {
        self.layout.per_model(device)
    }

    pub fn models(&self) -> i64 {
        self.models
    }

    pub fn network(&self) -> Network {
        self.network
    }

    /// The hidden layers (normalized, measured), in order; [`Forward::hidden`] follows it.
    pub fn hidden_layers(&self) -> Vec<LayerShape> {
        self.layers.iter().map(|l| l.shape).filter(|l| l.hidden).collect()
    }

    /// Forward pass. `x` is `[S, B, 3, 32, 32]`: each model's own batch, or one batch
    /// for every model ([`shared_input`]).
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Forward {
        self.forward_with(x, pass, &self.applied_weights())
    }

    /// The weight each layer applies (its method's [`MethodLayer::effective_weight`]),
    /// in layer order: computed once for many evaluation batches, where the weights
    /// do not change (dendritic normalization's takes some sixty small ops).
    pub fn applied_weights(&self) -> Vec<Tensor> {
        self.layers.iter().map(|l| l.norm.effective_weight(&l.weight)).collect()
    }

    /// [`forward`](Self::forward) with the layers' applied weights given.
    pub fn forward_with(&self, x: &Tensor, pass: Pass, weights: &[Tensor]) -> Forward {
        let per_model = self.layout.per_model(x.device());
        let mut hidden = Vec::with_capacity(self.layers.len());
        let mut h = x.shallow_clone();
        // The open residual block's input.
        let mut shortcut: Option<Tensor> = None;
        for (layer, weight) in self.layers.iter().zip(weights) {
            let shape = &layer.shape;
            if shape.residual == Residual::Opens {
                shortcut = Some(h.shallow_clone());
            }
            let z = match shape.kind {
                LayerKind::Conv => convolve(&h, weight, &layer.bias, shape.padding, shape.stride, per_model),
                LayerKind::Fc => {
                    // [S, B, 16, 5, 5] → [S, B, 400] (or the image, for the MLP), flattening
                    // each model's channels as torch.flatten does.
                    let flat = if h.dim() > 3 { h.flatten(2, -1) } else { h.shallow_clone() };
                    linear(&flat, weight, &layer.bias, per_model) // [S, B, U]
                }
            };
            if !shape.hidden {
                return Forward { logits: z, hidden };
            }
            let normalized = layer.norm.normalize(&z, pass);
            let summed = if shape.residual == Residual::Closes {
                let input = shortcut.take().expect("a residual block closes after it opens");
                normalized + block_shortcut(&input, shape.units)
            } else {
                normalized
            };
            let y = layer.norm.activate(&summed);
            h = pool(&y, shape.pool);
            hidden.push(y);
        }
        unreachable!("a network ends with its output layer")
    }

    /// Runs each hidden layer's after-step rule (adaptive thresholds, homeostatic
    /// scaling) on its activations of the step, `forward.hidden`, without gradient.
    pub fn after_step(&self, forward: &Forward) {
        tch::no_grad(|| {
            for (layer, output) in self.layers.iter().filter(|l| l.shape.hidden).zip(&forward.hidden) {
                layer.norm.after_step(output);
            }
        });
    }

    /// The learned α of each hidden layer, `[S, U]`, for methods that have one.
    pub fn alphas(&self) -> Vec<(&'static str, Tensor)> {
        self.layers.iter().filter_map(|l| l.norm.alpha().map(|a| (l.shape.name, a.detach()))).collect()
    }
}

/// A conv layer's pooling of its activations `[S, B, C, H, W]`; max_pool2d and
/// avg_pool2d take 4-D input: the models' batches one after another.
fn pool(y: &Tensor, pool: Pool) -> Tensor {
    let size = y.size();
    let side = |t: Tensor| t.reshape([size[0] * size[1], size[2], size[3], size[4]]);
    let pooled = match pool {
        Pool::None => return y.shallow_clone(),
        Pool::Max2 => side(y.shallow_clone()).max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
        Pool::GlobalAverage => {
            let all = [size[3], size[4]];
            side(y.shallow_clone()).avg_pool2d(all, all, [0, 0], false, true, None::<i64>)
        }
    };
    let out = pooled.size();
    pooled.view([size[0], size[1], size[2], out[2], out[3]])
}

/// What a residual block adds to its last layer's output: its input `[S, B, C, H, W]`,
/// or, where the block widens to `units` channels and halves the image, the input
/// subsampled (`x[:, :, ::2, ::2]`) with zero channels padded on both sides (He et
/// al.'s option A: no parameters).
fn block_shortcut(input: &Tensor, units: i64) -> Tensor {
    let channels = input.size()[2];
    if channels == units {
        return input.shallow_clone();
    }
    let pad = (units - channels) / 2;
    let subsampled = input.slice(3, 0, None, 2).slice(4, 0, None, 2);
    subsampled.constant_pad_nd([0, 0, 0, 0, pad, pad])
}

/// Each model's convolution over its own input: `x` `[S, B, C, H, W]`, weight
/// `[S, U, C, k, k]`, bias `[S, U]` → `[S, B, U, H', W']`: `F.conv2d` per model, or
/// one grouped convolution (`examples/conv_layouts.rs` times both).
fn convolve(x: &Tensor, weight: &Tensor, bias: &Tensor, padding: i64, stride: i64, one_by_one: bool) -> Tensor {
    let models = weight.size()[0];
    let (padding, stride) = ([padding, padding], [stride, stride]);
    if one_by_one || models == 1 {
        let (x, weight, bias) = (model_slices(x), model_slices(weight), model_slices(bias));
        return per_model(x.len(), |m| x[m].conv2d(&weight[m], Some(&bias[m]), stride, padding, [1, 1], 1));
    }
    // The models' channels side by side, [B, S·C, H, W], for one grouped convolution.
    let size = x.size();
    let side_by_side = x.transpose(0, 1).reshape([size[1], models * size[2], size[3], size[4]]);
    let z = side_by_side.conv2d(&weight.flatten(0, 1), Some(&bias.flatten(0, 1)), stride, padding, [1, 1], models);
    let out = z.size();
    z.view([out[0], models, -1, out[2], out[3]]).transpose(0, 1)
}

/// Each model's fc layer: `x` `[S, B, in]`, weight `[S, U, in]`, bias `[S, U]` →
/// `[S, B, U]`: `F.linear` per model (`addmm`), or one batched matrix product.
fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor, one_by_one: bool) -> Tensor {
    if one_by_one {
        let (x, weight, bias) = (model_slices(x), model_slices(weight), model_slices(bias));
        return per_model(x.len(), |m| x[m].linear(&weight[m], Some(&bias[m])));
    }
    x.matmul(&weight.transpose(1, 2)) + bias.unsqueeze(1)
}

/// `[B, 3, 32, 32]` (one batch for every model, as in evaluation) → `[S, B, 3, 32, 32]`
/// (a view: the images are not copied).
pub fn shared_input(x: &Tensor, models: i64) -> Tensor {
    let mut size = x.size();
    size.insert(0, models);
    x.unsqueeze(0).expand(size.as_slice(), false)
}

/// Model s's parameters and buffers in PyTorch's shapes, named as in the var store
/// (`conv1.weight`, `fc1.norm.gamma`, …).
pub fn model_state(vs: &nn::VarStore, model: i64) -> Vec<(String, Tensor)> {
    let mut state: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(name, t)| (name, t.detach().get(model).copy())).collect();
    state.sort_by(|a, b| a.0.cmp(&b.0));
    state
}

/// A layer's var-store path: its name's parts nested (`layer2.0.conv1` is
/// `layer2` / `0` / `conv1`, as PyTorch nests modules), so that its variables are
/// named as PyTorch's parameters are.
fn layer_path<'a>(root: &nn::Path<'a>, name: &str) -> nn::Path<'a> {
    let mut parts = name.split('.');
    let first = root / parts.next().unwrap_or(name);
    parts.fold(first, |path, part| &path / part)
}

/// PyTorch's name for a var-store name (`conv1.norm.gamma` → `conv1.bn.weight`) in
/// `reference/networks.py`'s `Net`, given each layer's method; `None` for a name the
/// method does not declare.
fn pytorch_name(layers: &[Layer], name: &str) -> Option<String> {
    let (layer, part) = layers.iter().find_map(|l| Some((l, name.strip_prefix(l.shape.name)?.strip_prefix('.')?)))?;
    let layer_name = layer.shape.name;
    let renamed = match part {
        _ if !layer.shape.hidden => part,
        "weight" => layer.method.pytorch_weight(),
        "bias" => "layer.bias",
        _ => {
            let own = part.strip_prefix("norm.")?;
            layer.method.pytorch_names().iter().find(|(ours, _)| *ours == own)?.1
        }
    };
    Some(format!("{layer_name}.{renamed}"))
}

impl Model {
    /// Model s's parameters and buffers under the names and in the shapes of
    /// `reference/networks.py`'s `Net(method).state_dict()`, with `steps` training
    /// steps for the step counters PyTorch keeps (BatchNorm's `num_batches_tracked`).
    pub fn pytorch_state(&self, vs: &nn::VarStore, model: i64, steps: i64) -> Vec<(String, Tensor)> {
        let mut state: Vec<(String, Tensor)> = model_state(vs, model)
            .into_iter()
            .map(|(name, t)| (pytorch_name(&self.layers, &name).unwrap_or(name), t))
            .collect();
        for layer in self.layers.iter().filter(|l| l.shape.hidden) {
            if let Some(counter) = layer.method.pytorch_step_counter() {
                state.push((format!("{}.{counter}", layer.shape.name), Tensor::from(steps)));
            }
        }
        state.sort_by(|a, b| a.0.cmp(&b.0));
        state
    }

    /// Sets model s's parameters and buffers from a PyTorch state (as
    /// [`pytorch_state`](Self::pytorch_state) names it). Every tensor must be there
    /// with its shape, and nothing else; the error names what is not.
    pub fn load_pytorch_state(
        &self,
        vs: &nn::VarStore,
        model: i64,
        state: &std::collections::HashMap<String, Tensor>,
    ) -> Result<(), String> {
        let ours = vs.variables();
        let mut expected: Vec<String> = Vec::new();
        for (name, var) in &ours {
            let theirs = pytorch_name(&self.layers, name).ok_or_else(|| format!("{name} has no PyTorch name"))?;
            let value = state.get(&theirs).ok_or_else(|| format!("no `{theirs}`"))?;
            let slot = var.get(model);
            if value.size() != slot.size() {
                return Err(format!("`{theirs}` has shape {:?}, the model's is {:?}", value.size(), slot.size()));
            }
            // What PyTorch's strict load would not turn into these weights: another dtype
            // (I32 weights cast to floats are another model), or values that are not numbers.
            if value.kind() != slot.kind() {
                return Err(format!("`{theirs}` is {:?}, the model's is {:?}", value.kind(), slot.kind()));
            }
            if !bool::try_from(value.isfinite().all()).unwrap_or(false) {
                return Err(format!("`{theirs}` holds NaN or infinite values"));
            }
            tch::no_grad(|| slot.shallow_clone().copy_(&value.to_device(slot.device())));
            expected.push(theirs);
        }
        for layer in self.layers.iter().filter(|l| l.shape.hidden) {
            expected.extend(layer.method.pytorch_step_counter().map(|c| format!("{}.{c}", layer.shape.name)));
        }
        let mut unknown: Vec<&String> = state.keys().filter(|k| !expected.contains(k)).collect();
        unknown.sort();
        match unknown.first() {
            Some(name) => Err(format!("`{name}` is not a tensor of this model (another method or layout?)")),
            None => Ok(()),
        }
    }
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
