"""LeNet5 with each normalization method, written as a PyTorch user would write it.

batch-norm and weight-norm are PyTorch's own modules (nn.BatchNorm1d/2d and
torch.nn.utils.parametrizations.weight_norm); synaptic-scaling, mean-only and
scale-only are plain transcriptions of the paper's equations:
    synaptic-scaling  w~ = a*w;  z = w~ x + b;  y = relu(z - mean_B(z))
    mean-only                    z = w x + b;   y = relu(z - mean_B(z))
    scale-only        w~ = a*w;                 y = relu(w~ x + b)
Parameter names exported by `named_state` are homeonorm's (conv1.weight,
fc1.norm.gamma, ...), so that both sides can exchange weights."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm

METHODS = ["vanilla", "batch-norm", "weight-norm", "synaptic-scaling", "mean-only", "scale-only"]
MOMENTUM = 0.1


class Hidden(nn.Module):
    """One hidden layer (conv or fc) with its normalization and ReLU."""

    def __init__(self, layer, method):
        super().__init__()
        self.conv = isinstance(layer, nn.Conv2d)
        self.method = method
        n = layer.out_channels if self.conv else layer.out_features
        self.layer = weight_norm(layer, name="weight", dim=0) if method == "weight-norm" else layer
        if method == "batch-norm":
            self.bn = nn.BatchNorm2d(n) if self.conv else nn.BatchNorm1d(n)
        if method in ("synaptic-scaling", "scale-only"):
            self.alpha = nn.Parameter(torch.ones(n))
        if method in ("synaptic-scaling", "mean-only"):
            self.register_buffer("running_mean", torch.zeros(n))
        self.eval_stats = "batch"

    def unit_shape(self):
        return (1, -1, 1, 1) if self.conv else (1, -1)

    def forward(self, x):
        w = self.layer.weight
        if hasattr(self, "alpha"):
            w = self.alpha.view(-1, *([1] * (w.dim() - 1))) * w
        z = F.conv2d(x, w, self.layer.bias) if self.conv else F.linear(x, w, self.layer.bias)
        if self.method == "batch-norm":
            if not self.training and self.eval_stats == "batch":
                z = F.batch_norm(z, None, None, self.bn.weight, self.bn.bias, True, 0.0, self.bn.eps)
            else:
                z = self.bn(z)
        elif hasattr(self, "running_mean"):
            if self.training or self.eval_stats == "batch":
                mean = z.mean(dim=(0, 2, 3) if self.conv else (0,), keepdim=True)
                if self.training:
                    with torch.no_grad():
                        self.running_mean.mul_(1 - MOMENTUM).add_(mean.flatten() * MOMENTUM)
                z = z - mean
            else:
                z = z - self.running_mean.view(self.unit_shape())
        return F.relu(z)


class Net(nn.Module):
    """The PyTorch CIFAR-10 tutorial's LeNet5; layers created in the tutorial's order."""

    def __init__(self, method, normalize_conv=True):
        super().__init__()
        conv1 = nn.Conv2d(3, 6, 5)
        conv2 = nn.Conv2d(6, 16, 5)
        fc1 = nn.Linear(16 * 5 * 5, 120)
        fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        conv_method = method if normalize_conv else "vanilla"
        self.conv1 = Hidden(conv1, conv_method)
        self.conv2 = Hidden(conv2, conv_method)
        self.fc1 = Hidden(fc1, method)
        self.fc2 = Hidden(fc2, method)

    def hidden(self):
        return {"conv1": self.conv1, "conv2": self.conv2, "fc1": self.fc1, "fc2": self.fc2}

    def set_eval_stats(self, stats):
        for h in self.hidden().values():
            h.eval_stats = stats

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2, 2)
        x = F.max_pool2d(self.conv2(x), 2, 2)
        x = torch.flatten(x, 1)
        return self.fc3(self.fc2(self.fc1(x)))


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
        if hasattr(h, "alpha"):
            slots[f"{name}.norm.alpha"] = h.alpha
        if hasattr(h, "running_mean"):
            slots[f"{name}.norm.running_mean"] = h.running_mean
    slots["fc3.weight"] = net.fc3.weight
    slots["fc3.bias"] = net.fc3.bias
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
