"""The paper's protocol (Shen, Wang & Navlakha 2021, section 4) as a PyTorch script.

    python reference/train.py --dataset cifar10 --method batch-norm --seed 0 --out outputs/torch

torch.manual_seed(seed); Net(method); DataLoader(train, batch_size, shuffle=True);
torch.optim.Adam(net.parameters(), lr); F.cross_entropy; loss.backward(); opt.step();
every --eval-every iterations an evaluation over DataLoader(test, test_batch_size);
the homeostasis measures at the end. It reads the data files homeonorm reads
(CIFAR-10's binary batches, SVHN's .mat files) and writes a run folder in
homeonorm's format (docs/run-folder.md), so that `homeonorm report`, `plot` and
`compare` read it like homeonorm's own. Its flags mirror `homeonorm train`.
"""
import argparse
import json
import math
import os
import platform
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lenet5 import OPTIONS, Net, options_from  # noqa: E402
import safetensors_io  # noqa: E402

FORMAT_VERSION = 1
PRESETS = {  # the paper's: batch size, learning rate, iterations, evaluation interval
    "cifar10": dict(batch_size=32, lr=0.003, iterations=45_000, eval_every=1_000),
    "svhn": dict(batch_size=256, lr=0.01, iterations=8_000, eval_every=200),
}
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


# ---------------------------------------------------------------- data

def read_cifar10(folder):
    """CIFAR-10's binary batches: per record a label byte and 3,072 pixel bytes (C, H, W)."""
    def read(names):
        records = []
        for name in names:
            raw = np.fromfile(os.path.join(folder, name), dtype=np.uint8)
            records.append(raw.reshape(-1, 3073))
        records = np.concatenate(records)
        return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)
    train_files = [f"data_batch_{i}.bin" for i in range(1, 6)]
    return read(train_files), read(["test_batch.bin"]), [os.path.join(folder, f) for f in train_files + ["test_batch.bin"]]


def read_mat(path):
    """The numeric arrays of a MATLAB v5 file (what scipy.io.loadmat gives, without scipy)."""
    with open(path, "rb") as f:
        data = f.read()
    arrays, pos = {}, 128
    types = {1: np.int8, 2: np.uint8, 3: np.int16, 4: np.uint16, 5: np.int32, 6: np.uint32, 7: np.float32,
             9: np.float64, 12: np.int64, 13: np.uint64}

    def element(buf, at):
        kind, size = struct.unpack_from("<II", buf, at)
        if kind >> 16:  # small element: size and type in one word, data in the next four bytes
            return kind & 0xFFFF, buf[at + 4: at + 4 + (kind >> 16)], at + 8
        end = at + 8 + size
        return kind, buf[at + 8: end], end + (-size % 8)

    while pos < len(data):
        kind, payload, pos = element(data, pos)
        if kind == 15:  # compressed
            kind, payload, _ = element(zlib.decompress(payload), 0)
        if kind != 14:  # not a matrix
            continue
        at, fields = 0, []
        while at < len(payload):
            k, p, at = element(payload, at)
            fields.append((k, p))
        dims = np.frombuffer(fields[1][1], dtype=np.int32)
        name = fields[2][1].decode()
        k, p = fields[3]
        arrays[name] = np.frombuffer(p, dtype=types[k]).reshape(tuple(dims), order="F")
    return arrays


def read_svhn(folder):
    def read(name):
        mat = read_mat(os.path.join(folder, name))
        images = np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1)).astype(np.uint8)  # [32, 32, 3, N] -> [N, 3, 32, 32]
        return images, (mat["y"].reshape(-1).astype(np.int64) % 10)  # 10 is the digit 0
    names = ["train_32x32.mat", "test_32x32.mat"]
    return read(names[0]), read(names[1]), [os.path.join(folder, n) for n in names]


class Images(Dataset):
    """uint8 images turned into tensors as ToTensor() then Normalize(MEAN, STD) do."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels
        self.mean = torch.as_tensor(MEAN, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.as_tensor(STD, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).to(torch.float32).div(255)
        return x.sub_(self.mean).div_(self.std), int(self.labels[i])


# ---------------------------------------------------------------- measures

def binary_entropy(p):
    term = lambda q: 0.0 if q <= 0.0 else -q * math.log2(q)
    return term(p) + term(1.0 - p)


def mean_std(values):
    if not values:
        return math.nan, math.nan
    n = float(len(values))
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    return mean, math.sqrt(var)


def finite(v):
    return v if math.isfinite(v) else None


def layer_summary(layer, units):
    probs = [u["activation_prob"] for u in units]
    values = [u["mean_active_value"] for u in units if u["mean_active_value"] is not None]
    alphas = [u["alpha"] for u in units if u["alpha"] is not None]
    p_mean, p_std = mean_std(probs)
    v_mean, v_std = mean_std(values)
    a_mean, a_std = mean_std(alphas)
    return {
        "layer": layer, "units": len(units),
        "activation_prob_mean": p_mean, "activation_prob_std": p_std, "activation_prob_cv": finite(p_std / p_mean) if p_mean else None,
        "entropy_mean": mean_std([u["entropy"] for u in units])[0],
        "mean_active_value_mean": finite(v_mean), "mean_active_value_std": finite(v_std),
        "mean_active_value_cv": finite(v_std / v_mean) if values and v_mean else None,
        "never_active_units": len(units) - len(values),
        "alpha_mean": a_mean if alphas else None, "alpha_std": a_std if alphas else None,
    }


def unit_dims(h):
    return (0,) if h.dim() == 2 else (0, 2, 3)


# ---------------------------------------------------------------- files

def ryu(x):
    """A float as Rust's ryu (homeonorm's CSV writer) writes it, so the files match byte for byte."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    sign, r = ("-" if x < 0 else ""), repr(abs(x))
    mant, exp = (r.split("e") + ["0"])[:2]
    whole, frac = (mant.split(".") + [""])[:2]
    digits = whole + frac
    point = len(whole) + int(exp)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    n, kk = len(digits), point
    if n <= kk <= 16:
        return sign + digits + "0" * (kk - n) + ".0"
    if 0 < kk <= 16:
        return sign + digits[:kk] + "." + digits[kk:]
    if -5 < kk <= 0:
        return sign + "0." + "0" * (-kk) + digits
    tail = "" if n == 1 else "." + digits[1:]
    return f"{sign}{digits[0]}{tail}e{kk - 1}"


def rust_display(x):
    """A float as Rust's `{}` formats it (folder names: lr0.003): never in exponent form."""
    text = ryu(x)
    if "e" not in text:
        return text[:-2] if text.endswith(".0") else text
    mant, exp = text.split("e")
    digits, point = mant.replace(".", ""), (mant.index(".") if "." in mant else len(mant)) + int(exp)
    return digits + "0" * (point - len(digits)) if point >= len(digits) else "0." + "0" * -point + digits


def cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return ryu(v)
    return str(v)


def write_atomic(folder, name, data):
    tmp = os.path.join(folder, f".{name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(folder, name))
    return len(data)


def write_csv(folder, name, columns, rows):
    lines = [",".join(columns)] + [",".join(cell(r[c]) for c in columns) for r in rows]
    return write_atomic(folder, name, ("\n".join(lines) + "\n").encode())


def write_json(folder, name, value):
    return write_atomic(folder, name, (json.dumps(value, indent=2) + "\n").encode())


# ---------------------------------------------------------------- one run

def evaluate(net, loader, eval_stats, measured=None):
    """Test accuracy; with `measured` (name -> module), each unit's activity too."""
    net.eval()
    net.set_eval_stats(eval_stats)
    correct, seen, hooks = 0, {}, []
    counts = {}
    if measured:
        for name, module in measured.items():
            hooks.append(module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o)))
    with torch.no_grad():
        for x, y in loader:
            correct += (net(x).argmax(-1) == y).sum().item()
            for name, h in seen.items():
                y64 = h.double()
                dims = unit_dims(h)
                active, total = (y64 > 0).double().sum(dim=dims), y64.relu().sum(dim=dims)  # active outputs only
                c = counts.setdefault(name, [torch.zeros_like(active), torch.zeros_like(total), 0.0])
                c[0] += active
                c[1] += total
                c[2] += float(h.numel() // h.shape[1])
    for hook in hooks:
        hook.remove()
    net.train()
    return correct / len(loader.dataset), counts


def train_one(args, seed, data, folder_read, out):
    started = time.time()
    (train_x, train_y), (test_x, test_y), files = data
    folder = os.path.join(out, args.dataset, args.method, f"lr{rust_display(args.lr)}", f"seed{seed}")
    os.makedirs(folder, exist_ok=True)
    for name in ("summary.json", "config.json", "curve.csv", "activation_prob.csv", "unit_stats.csv", "model.safetensors"):
        if os.path.exists(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name))
    settings = {
        "dataset": args.dataset, "method": args.method, "lr": args.lr, "batch_size": args.batch_size,
        "iterations": args.iterations, "eval_every": args.eval_every, "record_every": args.record_every,
        "eval_stats": args.eval_stats, "test_batch_size": args.test_batch_size,
        "normalize_conv": args.normalize_conv, "conv_measures": args.conv_measures,
        "normalization": {"mean": list(MEAN), "std": list(STD)}, "batch_order": "dataloader",
        "groups": args.groups, "whitening_group_size": args.whitening_group_size,
        "target_rate": args.target_rate, "threshold_rate": args.threshold_rate, "scaling_rate": args.scaling_rate,
        "rate_window": args.rate_window, "branch_size": args.branch_size,
    }
    config = dict(format_version=FORMAT_VERSION, **settings, seed=seed,
                  data_limit={"train": args.limit, "test": args.limit}, seed_batch=[seed],
                  train_images=len(train_y), test_images=len(test_y), data_dir=folder_read,
                  data_files=[{"path": f, "bytes": os.path.getsize(f)} for f in files], device=args.device,
                  system={"writer": "reference/train.py", "torch": torch.__version__, "python": platform.python_version(),
                          "cpu_threads": torch.get_num_threads()},
                  choices={"weight_init": "torch.manual_seed(seed); Net(method)",
                           "optimizer": "torch.optim.Adam(net.parameters(), lr)",
                           "batch_order": "DataLoader(train, batch_size, shuffle=True)"})
    sizes = {"config.json": write_json(folder, "config.json", config)}

    torch.manual_seed(seed)
    net = Net(args.method, args.normalize_conv, **options_from(vars(args))).to(args.device)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    train_loader = DataLoader(Images(train_x, train_y), batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(Images(test_x, test_y), batch_size=args.test_batch_size, shuffle=False)
    hidden = net.hidden()
    measured = {n: m for n, m in hidden.items() if n.startswith("fc") or args.conv_measures}
    batch_activity = {}
    for name, module in measured.items():
        module.register_forward_hook(lambda m, i, o, name=name: batch_activity.__setitem__(name, o) if m.training else None)

    curve, activation_rows, diverged_at = [], [], None
    loss_sum, loss_steps, it = 0.0, 0, 0
    net.train()
    while it < args.iterations and diverged_at is None:
        for x, y in train_loader:
            it += 1
            x, y = x.to(args.device), y.to(args.device)
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            net.after_step()
            value = loss.item()
            if diverged_at is None and not math.isfinite(value):
                diverged_at = it
            loss_sum += value
            loss_steps += 1
            if it % args.record_every == 0:
                for name, h in batch_activity.items():
                    probs = (h.detach() > 0).float().mean(dim=unit_dims(h)).double().tolist()
                    activation_rows += [{"iteration": it, "layer": name, "unit": u, "activation_prob": p} for u, p in enumerate(probs)]
            if it % args.eval_every == 0 or it == args.iterations:
                if diverged_at is not None:
                    print(f"seed {seed}: the loss is not finite at iteration {diverged_at}: diverged", file=sys.stderr)
                    break
                accuracy, _ = evaluate(net, test_loader, args.eval_stats)
                curve.append({"iteration": it, "train_loss": loss_sum / loss_steps, "test_accuracy": accuracy})
                print(f"seed {seed} iteration {it}: loss {loss_sum / loss_steps:.4f} test accuracy {100 * accuracy:.2f} %", flush=True)
                loss_sum, loss_steps = 0.0, 0
            if it == args.iterations:
                break

    final_accuracy, counts = evaluate(net, test_loader, args.eval_stats, measured)
    one_by_one = DataLoader(Images(test_x, test_y), batch_size=1, shuffle=False)
    accuracy_batch1 = None if diverged_at else evaluate(net, one_by_one, args.eval_stats)[0]
    units = []
    if diverged_at is None:
        for name in measured:
            active, total, observations = counts[name]
            alpha = getattr(hidden[name], "alpha", None)
            alpha = alpha.detach().double().tolist() if alpha is not None else None
            for u, (a, s) in enumerate(zip(active.tolist(), total.tolist())):
                p = a / observations
                units.append({"layer": name, "unit": u, "activation_prob": p, "entropy": binary_entropy(p),
                              "mean_active_value": s / a if a > 0 else None, "alpha": alpha[u] if alpha else None})
    else:
        activation_rows = [r for r in activation_rows if r["iteration"] < diverged_at]
    sizes["curve.csv"] = write_csv(folder, "curve.csv", ["iteration", "train_loss", "test_accuracy"], curve)
    sizes["activation_prob.csv"] = write_csv(folder, "activation_prob.csv", ["iteration", "layer", "unit", "activation_prob"], activation_rows)
    sizes["unit_stats.csv"] = write_csv(folder, "unit_stats.csv", ["layer", "unit", "activation_prob", "entropy", "mean_active_value", "alpha"], units)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    safetensors_io.save(os.path.join(folder, "model.safetensors"), state)
    sizes["model.safetensors"] = os.path.getsize(os.path.join(folder, "model.safetensors"))
    best = None
    for row in curve:  # the last of equal maxima, as homeonorm's max_by
        if best is None or row["test_accuracy"] >= best["test_accuracy"]:
            best = row
    summary = {
        "outcome": "diverged" if diverged_at else "complete", "diverged_at": diverged_at,
        "iterations": diverged_at or it, "final_accuracy": None if diverged_at else final_accuracy,
        "test_accuracy_batch1": accuracy_batch1,
        "best_accuracy": best and best["test_accuracy"], "best_iteration": best and best["iteration"],
        "final_train_loss": curve[-1]["train_loss"] if curve else None, "wall_time_s": time.time() - started,
        "layers": [] if diverged_at else [layer_summary(n, [u for u in units if u["layer"] == n]) for n in measured],
        "files": sizes,
    }
    write_json(folder, "summary.json", summary)
    print(f"{folder}: " + (f"diverged at iteration {diverged_at}" if diverged_at else f"test accuracy {100 * final_accuracy:.2f} %"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=sorted(PRESETS))
    p.add_argument("--method", required=True)
    p.add_argument("--seed", default="0", help="seeds, comma-separated; each its own run")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--iterations", type=int)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--record-every", type=int, default=100)
    p.add_argument("--eval-stats", choices=["batch", "running"], default="batch")
    p.add_argument("--test-batch-size", type=int, default=1000)
    p.add_argument("--normalize-conv", choices=["true", "false"], default="true")
    p.add_argument("--conv-measures", action="store_true")
    p.add_argument("--groups", type=int, default=OPTIONS["groups"], help="group-norm: groups per layer")
    p.add_argument("--whitening-group-size", type=int, default=OPTIONS["whitening_group"],
                   help="whitening: units whitened together")
    p.add_argument("--target-rate", type=float, default=OPTIONS["target_rate"],
                   help="adaptive-threshold, homeostatic-scaling: target activation probability")
    p.add_argument("--threshold-rate", type=float, default=OPTIONS["threshold_rate"], help="adaptive-threshold: eta")
    p.add_argument("--scaling-rate", type=float, default=OPTIONS["scaling_rate"], help="homeostatic-scaling: eta")
    p.add_argument("--rate-window", type=int, default=OPTIONS["rate_window"],
                   help="homeostatic-scaling: steps of the running average")
    p.add_argument("--branch-size", type=int, default=OPTIONS["branch_size"], help="dendritic-norm: fc inputs per branch")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--limit", type=int, help="use the first N images of each split")
    p.add_argument("--out", default="outputs/torch")
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    for key, value in PRESETS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.normalize_conv = args.normalize_conv == "true"
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = os.path.join(args.data_dir, "cifar-10-batches-bin" if args.dataset == "cifar10" else "svhn")
    train, test, files = (read_cifar10 if args.dataset == "cifar10" else read_svhn)(folder)
    if args.limit is not None:
        train, test = [(x[: args.limit], y[: args.limit]) for x, y in (train, test)]
    for seed in [int(s) for s in args.seed.split(",")]:
        train_one(args, seed, (train, test, files), folder, args.out)


if __name__ == "__main__":
    main()
