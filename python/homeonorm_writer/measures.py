"""The paper's homeostasis measures (section 4) as homeonorm computes them: per unit
(a conv channel counts its positions), the share of active (> 0) outputs, its binary
entropy and the mean of the active outputs; per layer, their mean and population std
across units."""
import math

import torch


def unit_dims(h):
    """The dimensions a unit's outputs spread over: the batch (and a channel's positions)."""
    return (0,) if h.dim() == 2 else (0, 2, 3)


def batch_activation_prob(h):
    """Each unit's share of active outputs on one batch (the heat maps' rows)."""
    return (h.detach() > 0).float().mean(dim=unit_dims(h)).double().tolist()


class UnitCounter:
    """Accumulates a layer's active outputs and their sum over the batches of a test pass."""

    def __init__(self):
        self.active = self.total = None
        self.observations = 0.0

    def add(self, h):
        y64 = h.detach().double()
        dims = unit_dims(h)
        active, total = (y64 > 0).double().sum(dim=dims), y64.relu().sum(dim=dims)  # active outputs only
        if self.active is None:
            self.active, self.total = torch.zeros_like(active), torch.zeros_like(total)
        self.active += active
        self.total += total
        self.observations += float(h.numel() // h.shape[1])

    def units(self, layer, alpha=None):
        """unit_stats.csv's rows of this layer."""
        alpha = alpha.detach().double().tolist() if alpha is not None else None
        rows = []
        for u, (a, s) in enumerate(zip(self.active.tolist(), self.total.tolist())):
            p = a / self.observations
            rows.append({"layer": layer, "unit": u, "activation_prob": p, "entropy": binary_entropy(p),
                         "mean_active_value": s / a if a > 0 else None, "alpha": alpha[u] if alpha else None})
        return rows


def binary_entropy(p):
    term = lambda q: 0.0 if q <= 0.0 else -q * math.log2(q)  # noqa: E731
    return term(p) + term(1.0 - p)


def mean_std(values):
    if not values:
        return math.nan, math.nan
    n = float(len(values))
    mean = sum(values) / n
    # d * d, not d ** 2: `**` is libm's pow, which rounds some squares otherwise (homeonorm's is d * d).
    var = sum((v - mean) * (v - mean) for v in values) / n
    return mean, math.sqrt(var)


def _finite(v):
    return v if math.isfinite(v) else None


def layer_summary(layer, units):
    """summary.json's layer object: across the layer's units, mean and population std."""
    probs = [u["activation_prob"] for u in units]
    values = [u["mean_active_value"] for u in units if u["mean_active_value"] is not None]
    alphas = [u["alpha"] for u in units if u["alpha"] is not None]
    p_mean, p_std = mean_std(probs)
    v_mean, v_std = mean_std(values)
    a_mean, a_std = mean_std(alphas)
    return {
        "layer": layer, "units": len(units),
        "activation_prob_mean": _finite(p_mean), "activation_prob_std": _finite(p_std),
        "activation_prob_cv": _finite(p_std / p_mean) if p_mean else None,
        "entropy_mean": _finite(mean_std([u["entropy"] for u in units])[0]),
        "mean_active_value_mean": _finite(v_mean), "mean_active_value_std": _finite(v_std),
        "mean_active_value_cv": _finite(v_std / v_mean) if values and v_mean else None,
        "never_active_units": len(units) - len(values),
        "alpha_mean": _finite(a_mean) if alphas else None, "alpha_std": _finite(a_std) if alphas else None,
    }
