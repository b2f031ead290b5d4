"""LeNet5 (and the other networks: MLP, PlainCNN, ResNet20, in NETWORKS) with each
normalization method, written as a PyTorch user would write it.

batch-norm, weight-norm, layer-norm, group-norm and instance-norm are PyTorch's own
modules (nn.BatchNorm1d/2d, torch.nn.utils.parametrizations.weight_norm,
nn.LayerNorm / nn.GroupNorm(1, C), nn.GroupNorm, nn.InstanceNorm2d(affine=True));
self-norm is nn.SELU with LeCun-normal initial weights (Klambauer et al. 2017);
the others are plain transcriptions of their equations:
    synaptic-scaling  w~ = a*w;  z = w~ x + b;  y = relu(z - mean_B(z))
    mean-only                    z = w x + b;   y = relu(z - mean_B(z))
    scale-only        w~ = a*w;                 y = relu(w~ x + b)
    whitening         per group of units: y = relu(g * Sigma_B^(-1/2) (z - mean_B(z)) + b)
                      (decorrelated batch normalization, Huang et al. 2018, ZCA)
    adaptive-threshold              y = relu(w x + b - theta); after opt.step():
                      theta += eta (p - p*), p the unit's share of active outputs on the batch
    homeostatic-scaling  w~ = a*w;  y = relu(w~ x + b); after opt.step():
                      pbar += (p - pbar) / window;  a *= 1 + eta (p* - pbar)
    dendritic-norm    per branch of a unit's inputs (conv: an input channel; fc: branch_size
                      inputs): w_b = c_b v_b / |v_b|;  y = relu(w x + b)
    divisive-norm     y_i = relu(z_i) / (exp(s) + mean_j relu(z_j)), per example (and position)
The after-step rules run under torch.no_grad() after opt.step(): `Net.after_step()`.
Parameter names exported by `named_state` are homeonorm's (conv1.weight,
fc1.norm.gamma, ...), so that both sides can exchange weights."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm

METHODS = ["vanilla", "batch-norm", "weight-norm", "synaptic-scaling", "mean-only", "scale-only",
           "layer-norm", "group-norm", "instance-norm", "self-norm", "whitening",
           "adaptive-threshold", "homeostatic-scaling", "dendritic-norm", "divisive-norm"]
# The method settings and their presets (homeonorm's MethodOptions).
OPTIONS = dict(groups=2, whitening_group_size=16, target_rate=0.5, threshold_rate=0.03, scaling_rate=0.001,
               rate_window=100, branch_size=25)


def options_from(settings):
    """Net's options from a run's settings (config.json, or train.py's arguments as a dict)."""
    return {k: settings.get(k, v) for k, v in OPTIONS.items()}
MOMENTUM = 0.1
EPS = 1e-5


class Whitening(nn.Module):
    """Decorrelated batch normalization (Huang et al. 2018): ZCA whitening of groups of
    `group` units (channels) over the batch (and positions), a per-unit affine; running
    mean and whitening matrix (momentum 0.1) for running-statistics evaluation."""

    def __init__(self, n, group):
        super().__init__()
        self.group = group
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_wm", torch.eye(n))
        self.eval_stats = "batch"

    def forward(self, z):
        c = z.shape[1]
        x = z.transpose(0, 1).reshape(c, -1)  # units x (batch * positions)
        use_batch = self.training or self.eval_stats == "batch"
        parts = []
        for start in range(0, c, self.group):
            g = min(self.group, c - start)
            xg = x[start:start + g]
            if use_batch:
                mean = xg.mean(dim=1, keepdim=True)
                xc = xg - mean
                cov = xc @ xc.t() / xc.shape[1] + EPS * torch.eye(g, dtype=z.dtype)
                eigenvalues, eigenvectors = torch.linalg.eigh(cov)
                wm = eigenvectors @ torch.diag(eigenvalues.rsqrt()) @ eigenvectors.t()
                if self.training:
                    with torch.no_grad():
                        self.running_mean[start:start + g].mul_(1 - MOMENTUM).add_(mean.flatten() * MOMENTUM)
                        self.running_wm[start:start + g, start:start + g].mul_(1 - MOMENTUM).add_(wm * MOMENTUM)
            else:
                xc = xg - self.running_mean[start:start + g].view(-1, 1)
                wm = self.running_wm[start:start + g, start:start + g]
            parts.append(wm @ xc)
        y = torch.cat(parts, 0).reshape(c, z.shape[0], *z.shape[2:]).transpose(0, 1).contiguous()
        shape = (1, -1) + (1,) * (z.dim() - 2)
        return y * self.weight.view(shape) + self.bias.view(shape)


class Hidden(nn.Module):
    """One hidden layer (conv or fc) with its normalization and ReLU; in a residual block,
    the shortcut (`residual`) is added between the two."""

    def __init__(self, layer, method, groups, whitening_group_size, target_rate, threshold_rate, scaling_rate,
                 rate_window, branch_size):
        super().__init__()
        self.conv = isinstance(layer, nn.Conv2d)
        if method == "instance-norm" and not self.conv:
            method = "vanilla"  # over one value per example the statistic is degenerate
        self.method = method
        n = layer.out_channels if self.conv else layer.out_features
        if method == "self-norm":  # LeCun normal, as Klambauer et al. initialise SNNs
            fan_in = layer.weight[0].numel()
            nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(fan_in))
            nn.init.zeros_(layer.bias)
        self.layer = weight_norm(layer, name="weight", dim=0) if method == "weight-norm" else layer
        if method == "batch-norm":
            self.bn = nn.BatchNorm2d(n) if self.conv else nn.BatchNorm1d(n)
        if method == "layer-norm":
            self.ln = nn.GroupNorm(1, n) if self.conv else nn.LayerNorm(n)
        if method == "group-norm":
            self.gn = nn.GroupNorm(groups, n)
        if method == "instance-norm":
            self.inorm = nn.InstanceNorm2d(n, affine=True)
        if method == "whitening":
            self.wh = Whitening(n, whitening_group_size)
        if method in ("synaptic-scaling", "scale-only"):
            self.alpha = nn.Parameter(torch.ones(n))
        self.target_rate, self.threshold_rate, self.scaling_rate = target_rate, threshold_rate, scaling_rate
        self.rate_window = rate_window
        if method == "adaptive-threshold":
            self.register_buffer("theta", torch.zeros(n))
        if method == "homeostatic-scaling":  # buffers: the rule sets them, not the loss
            self.register_buffer("alpha", torch.ones(n))
            self.register_buffer("average_rate", torch.full((n,), target_rate))
        if method == "dendritic-norm":
            w = self.layer.weight
            self.branch = w[0, 0].numel() if self.conv else branch_size
            with torch.no_grad():
                norms = [b.norm(dim=1, keepdim=True) for b in w.reshape(n, -1).split(self.branch, 1)]
            self.branch_gain = nn.Parameter(torch.cat(norms, 1))
        if method == "divisive-norm":
            self.log_sigma = nn.Parameter(torch.zeros(1))
        if method in ("synaptic-scaling", "mean-only"):
            self.register_buffer("running_mean", torch.zeros(n))
        self.eval_stats = "batch"

    def unit_shape(self):
        return (1, -1, 1, 1) if self.conv else (1, -1)

    def forward(self, x, residual=None):
        w = self.layer.weight
        if hasattr(self, "alpha"):
            w = self.alpha.view(-1, *([1] * (w.dim() - 1))) * w
        if self.method == "dendritic-norm":
            rows = w.reshape(w.shape[0], -1)
            branches = [b * (self.branch_gain[:, i:i + 1] / b.norm(dim=1, keepdim=True))
                        for i, b in enumerate(rows.split(self.branch, 1))]
            w = torch.cat(branches, 1).view_as(w)
        if self.conv:
            z = F.conv2d(x, w, self.layer.bias, stride=self.layer.stride, padding=self.layer.padding)
        else:
            z = F.linear(x, w, self.layer.bias)
        if self.method == "batch-norm":
            if not self.training and self.eval_stats == "batch":
                # torch.batch_norm: F.batch_norm refuses one value per channel (a test batch of 1)
                z = torch.batch_norm(z, self.bn.weight, self.bn.bias, None, None, True, 0.0, self.bn.eps,
                                     torch.backends.cudnn.enabled)
            else:
                z = self.bn(z)
        elif self.method == "layer-norm":
            z = self.ln(z)
        elif self.method == "group-norm":
            z = self.gn(z)
        elif self.method == "instance-norm":
            z = self.inorm(z)
        elif self.method == "whitening":
            self.wh.eval_stats = self.eval_stats
            z = self.wh(z)
        elif hasattr(self, "running_mean"):
            if self.training or self.eval_stats == "batch":
                mean = z.mean(dim=(0, 2, 3) if self.conv else (0,), keepdim=True)
                if self.training:
                    with torch.no_grad():
                        self.running_mean.mul_(1 - MOMENTUM).add_(mean.flatten() * MOMENTUM)
                z = z - mean
            else:
                z = z - self.running_mean.view(self.unit_shape())
        elif self.method == "adaptive-threshold":
            z = z - self.theta.view(self.unit_shape())
        if residual is not None:
            z = z + residual
        if self.method == "self-norm":
            y = F.selu(z)
        elif self.method == "divisive-norm":
            r = F.relu(z)
            y = r / (self.log_sigma.exp() + r.mean(dim=1, keepdim=True))
        else:
            y = F.relu(z)
        if self.training:
            self.last_output = y.detach()
        return y

    @torch.no_grad()
    def after_step(self):
        """The local rules, from the activity of the last training batch."""
        if self.method not in ("adaptive-threshold", "homeostatic-scaling"):
            return
        y = self.last_output
        rate = (y > 0).to(y.dtype).mean(dim=(0, 2, 3) if self.conv else (0,))
        if self.method == "adaptive-threshold":
            self.theta.add_((rate - self.target_rate) * self.threshold_rate)
        else:
            self.average_rate.mul_(1 - 1 / self.rate_window).add_(rate / self.rate_window)
            self.alpha.mul_(1 + self.scaling_rate * (self.target_rate - self.average_rate))


class Networks(nn.Module):
    """What every network shares: its hidden layers by (module) name, their rules and test
    statistics. PROBE is the hidden layer a report's single-layer measures describe."""
    PROBE = "fc1"

    def hidden(self):
        return {name: self.get_submodule(name) for name in self.HIDDEN}

    def after_step(self):
        for h in self.hidden().values():
            h.after_step()

    def set_eval_stats(self, stats):
        for h in self.hidden().values():
            h.eval_stats = stats


class Net(Networks):
    """The PyTorch CIFAR-10 tutorial's LeNet5; layers created in the tutorial's order."""
    HIDDEN, OUTPUT = ("conv1", "conv2", "fc1", "fc2"), "fc3"

    def __init__(self, method, normalize_conv=True, **options):
        super().__init__()
        conv1 = nn.Conv2d(3, 6, 5)
        conv2 = nn.Conv2d(6, 16, 5)
        fc1 = nn.Linear(16 * 5 * 5, 120)
        fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        conv_method = method if normalize_conv else "vanilla"
        options = {**OPTIONS, **options}
        self.conv1 = Hidden(conv1, conv_method, **options)
        self.conv2 = Hidden(conv2, conv_method, **options)
        self.fc1 = Hidden(fc1, method, **options)
        self.fc2 = Hidden(fc2, method, **options)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2, 2)
        x = F.max_pool2d(self.conv2(x), 2, 2)
        x = torch.flatten(x, 1)
        return self.fc3(self.fc2(self.fc1(x)))


class MLP(Networks):
    """Three hidden fc layers (256, 128, 64 units) on the flattened image."""
    HIDDEN, OUTPUT = ("fc1", "fc2", "fc3"), "fc4"

    def __init__(self, method, normalize_conv=True, **options):
        super().__init__()
        fc1, fc2, fc3 = nn.Linear(3 * 32 * 32, 256), nn.Linear(256, 128), nn.Linear(128, 64)
        self.fc4 = nn.Linear(64, 10)
        options = {**OPTIONS, **options}
        self.fc1, self.fc2, self.fc3 = (Hidden(layer, method, **options) for layer in (fc1, fc2, fc3))

    def forward(self, x):
        return self.fc4(self.fc3(self.fc2(self.fc1(torch.flatten(x, 1)))))


class PlainCNN(Networks):
    """VGG-style: three stages of two 3x3 convolutions (16, 32, 64 channels, padding 1),
    a 2x2 max-pool after each stage, one hidden fc layer (128 units)."""
    HIDDEN, OUTPUT = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1"), "fc2"

    def __init__(self, method, normalize_conv=True, **options):
        super().__init__()
        channels = [3, 16, 16, 32, 32, 64, 64]
        convs = [nn.Conv2d(a, b, 3, padding=1) for a, b in zip(channels, channels[1:])]
        fc1 = nn.Linear(64 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)
        options = {**OPTIONS, **options}
        conv_method = method if normalize_conv else "vanilla"
        for i, conv in enumerate(convs, 1):
            setattr(self, f"conv{i}", Hidden(conv, conv_method, **options))
        self.fc1 = Hidden(fc1, method, **options)

    def forward(self, x):
        for i in range(1, 7):
            x = getattr(self, f"conv{i}")(x)
            if i % 2 == 0:
                x = F.max_pool2d(x, 2, 2)
        return self.fc2(self.fc1(torch.flatten(x, 1)))


class BasicBlock(nn.Module):
    """He et al.'s basic block: two 3x3 convolutions, the method in place of batch
    normalization after each, the shortcut added before the second's activation. Where the
    block widens and halves the image, the shortcut is the input subsampled with zero
    channels padded on both sides (their option A, as the common CIFAR implementations)."""

    def __init__(self, conv1, conv2, method, options):
        super().__init__()
        self.conv1 = Hidden(conv1, method, **options)
        self.conv2 = Hidden(conv2, method, **options)
        self.pad = (conv1.out_channels - conv1.in_channels) // 2

    def shortcut(self, x):
        if self.pad == 0:
            return x
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0)

    def forward(self, x):
        return self.conv2(self.conv1(x), residual=self.shortcut(x))


class ResNet20(Networks):
    """He et al.'s ResNet-20 for CIFAR-10: conv 3x3 (16), three stages of three basic blocks
    (16, 32, 64 channels; the second and third stage's first block strided), global average
    pool, fc. Convolutions keep nn.Conv2d's bias and default initialisation, as every network
    here does; every layer is created before the methods are attached, as in the others."""
    HIDDEN = ("conv1",) + tuple(f"layer{s}.{b}.conv{c}" for s in (1, 2, 3) for b in range(3) for c in (1, 2))
    OUTPUT, PROBE = "fc", "layer3.2.conv2"

    def __init__(self, method, normalize_conv=True, **options):
        super().__init__()
        conv1 = nn.Conv2d(3, 16, 3, padding=1)
        widths = [(16, 16)] * 3 + [(16, 32)] + [(32, 32)] * 2 + [(32, 64)] + [(64, 64)] * 2
        pairs = [(nn.Conv2d(a, b, 3, stride=b // a, padding=1), nn.Conv2d(b, b, 3, padding=1)) for a, b in widths]
        self.fc = nn.Linear(64, 10)
        options = {**OPTIONS, **options}
        conv_method = method if normalize_conv else "vanilla"
        self.conv1 = Hidden(conv1, conv_method, **options)
        blocks = [BasicBlock(first, second, conv_method, options) for first, second in pairs]
        self.layer1, self.layer2, self.layer3 = (nn.Sequential(*blocks[i:i + 3]) for i in (0, 3, 6))

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = F.avg_pool2d(x, x.size(3))
        return self.fc(torch.flatten(x, 1))


# The networks by their names in config.json (`model`).
NETWORKS = {"lenet5": Net, "mlp": MLP, "plain-cnn": PlainCNN, "resnet20": ResNet20}


def _slots(net):
    """(homeonorm name, getter, setter-target module, attribute) for every tensor."""
    slots = {}
    for name, h in net.hidden().items():
        layer = h.layer
        if h.method == "weight-norm":
            p = layer.parametrizations.weight
            slots[f"{name}.weight"] = p.original1
            slots[f"{name}.norm.g"] = p.original0
        else:
            slots[f"{name}.weight"] = layer.weight
        slots[f"{name}.bias"] = layer.bias
        if h.method == "batch-norm":
            slots[f"{name}.norm.gamma"] = h.bn.weight
            slots[f"{name}.norm.beta"] = h.bn.bias
            slots[f"{name}.norm.running_mean"] = h.bn.running_mean
            slots[f"{name}.norm.running_var"] = h.bn.running_var
        for module, parts in (("ln", ("weight", "bias")), ("gn", ("weight", "bias")), ("inorm", ("weight", "bias")),
                              ("wh", ("weight", "bias", "running_mean", "running_wm"))):
            if hasattr(h, module):
                ours = {"weight": "gamma", "bias": "beta"}
                for part in parts:
                    slots[f"{name}.norm.{ours.get(part, part)}"] = getattr(getattr(h, module), part)
        for ours, theirs in (("alpha", "alpha"), ("theta", "theta"), ("average_rate", "average_rate"),
                             ("gain", "branch_gain"), ("log_sigma", "log_sigma")):
            if hasattr(h, theirs):
                slots[f"{name}.norm.{ours}"] = getattr(h, theirs)
        if hasattr(h, "running_mean"):
            slots[f"{name}.norm.running_mean"] = h.running_mean
    output = net.get_submodule(net.OUTPUT)
    slots[f"{net.OUTPUT}.weight"] = output.weight
    slots[f"{net.OUTPUT}.bias"] = output.bias
    return slots


def named_state(net):
    """Every parameter and buffer under homeonorm's names."""
    return {k: v.detach() for k, v in _slots(net).items()}


def load_state(net, state):
    slots = _slots(net)
    missing = set(slots) ^ set(state)
    if missing:
        raise KeyError(f"names not on both sides: {sorted(missing)}")
    with torch.no_grad():
        for k, v in slots.items():
            v.copy_(state[k].reshape(v.shape))
