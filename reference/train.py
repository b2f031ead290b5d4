"""The paper's protocol (Shen, Wang & Navlakha 2021, section 4) as a PyTorch script.

    python reference/train.py --dataset cifar10 --method batch-norm --seed 0 --out outputs/torch

torch.manual_seed(seed); Net(method); DataLoader(train, batch_size, shuffle=True);
torch.optim.Adam(net.parameters(), lr); F.cross_entropy; loss.backward(); opt.step();
every --eval-every iterations an evaluation over DataLoader(test, test_batch_size);
the homeostasis measures at the end. It reads the data files homeonorm reads
(CIFAR-10's binary batches, SVHN's .mat files) and writes a run folder in
homeonorm's format (docs/run-folder.md), so that `homeonorm report`, `plot` and
`compare` read it like homeonorm's own. Its flags mirror `homeonorm train`. The
folder is written by the repository's Python writer (python/homeonorm_writer, what
any PyTorch loop uses: `pip install ./python`).
"""
import argparse
import itertools
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

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "python")]  # (this checkout's writer, installed or not)
from homeonorm_writer import PRESETS, Run  # noqa: E402
from networks import NETWORKS, OPTIONS, options_from  # noqa: E402

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


# ---------------------------------------------------------------- one run

def evaluate(net, loader, eval_stats, device):
    """Test accuracy, with the test batch's statistics (the paper's) or the running ones."""
    net.eval()
    net.set_eval_stats(eval_stats)
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += (net(x).argmax(-1) == y).sum().item()
    net.train()
    return correct / len(loader.dataset)


def train_one(args, seed, data, folder_read, out):
    started = time.time()
    (train_x, train_y), (test_x, test_y), files = data
    run = Run(out, dataset=args.dataset, method=args.method, seed=seed, model=args.model,
              lr=args.lr, batch_size=args.batch_size, iterations=args.iterations, eval_every=args.eval_every,
              record_every=args.record_every, eval_stats=args.eval_stats, test_batch_size=args.test_batch_size,
              normalize_conv=args.normalize_conv, conv_measures=args.conv_measures,
              normalization={"mean": list(MEAN), "std": list(STD)}, batch_order="dataloader",
              groups=args.groups, whitening_group_size=args.whitening_group_size, target_rate=args.target_rate,
              threshold_rate=args.threshold_rate, scaling_rate=args.scaling_rate, rate_window=args.rate_window,
              branch_size=args.branch_size,
              data_limit=args.limit, train_images=len(train_y), test_images=len(test_y), data_dir=folder_read,
              data_files=files, device=args.device,
              system={"writer": "reference/train.py", "torch": torch.__version__, "python": platform.python_version(),
                      "cpu_threads": torch.get_num_threads()},
              choices={"weight_init": "torch.manual_seed(seed); Net(method)",
                       "optimizer": "torch.optim.Adam(net.parameters(), lr)",
                       "batch_order": "DataLoader(train, batch_size, shuffle=True)"})

    torch.manual_seed(seed)
    net = NETWORKS[args.model](args.method, args.normalize_conv, **options_from(vars(args))).to(args.device)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    train_loader = DataLoader(Images(train_x, train_y), batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(Images(test_x, test_y), batch_size=args.test_batch_size, shuffle=False)
    run.watch({n: m for n, m in net.hidden().items() if not m.conv or n == net.PROBE or args.conv_measures})

    it = 0
    net.train()
    while it < args.iterations and run.diverged_at is None:
        for x, y in train_loader:
            it += 1
            x, y = x.to(args.device), y.to(args.device)
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            net.after_step()
            run.step(it, loss.item())
            if it % args.eval_every == 0 or it == args.iterations:
                if run.diverged_at is not None:
                    print(f"seed {seed}: the loss is not finite at iteration {run.diverged_at}: diverged", file=sys.stderr)
                    break
                accuracy = evaluate(net, test_loader, args.eval_stats, args.device)
                run.log(it, accuracy)
                print(f"seed {seed} iteration {it}: loss {run.curve[-1]['train_loss']:.4f} "
                      f"test accuracy {100 * accuracy:.2f} %", flush=True)
            if it == args.iterations:
                break

    with run.measuring():
        final_accuracy = evaluate(net, test_loader, args.eval_stats, args.device)
    one_by_one = DataLoader(Images(test_x, test_y), batch_size=1, shuffle=False)
    accuracy_batch1 = None if run.diverged_at else evaluate(net, one_by_one, args.eval_stats, args.device)
    run.save_weights(net.state_dict())
    run.finish(final_accuracy=final_accuracy, test_accuracy_batch1=accuracy_batch1, wall_time_s=time.time() - started)
    print(f"{run.folder}: " + (f"diverged at iteration {run.diverged_at}" if run.diverged_at
                               else f"test accuracy {100 * final_accuracy:.2f} %"))


RULE_SETTINGS = ["target_rate", "threshold_rate", "scaling_rate"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=sorted(PRESETS))
    p.add_argument("--method", required=True, help="methods, comma-separated; each with every seed")
    p.add_argument("--model", default="lenet5", choices=sorted(NETWORKS), help="the network")
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
    p.add_argument("--whitening-group-size", type=int, default=OPTIONS["whitening_group_size"],
                   help="whitening: units whitened together")
    # The local rules' settings: a comma-separated list each, a run for every combination.
    p.add_argument("--target-rate", default=str(OPTIONS["target_rate"]),
                   help="adaptive-threshold, homeostatic-scaling: target activation probabilities")
    p.add_argument("--threshold-rate", default=str(OPTIONS["threshold_rate"]), help="adaptive-threshold: etas")
    p.add_argument("--scaling-rate", default=str(OPTIONS["scaling_rate"]), help="homeostatic-scaling: etas")
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
    rules = [[(key, float(v)) for v in getattr(args, key).split(",")] for key in RULE_SETTINGS]
    for method in args.method.split(","):
        for settings in itertools.product(*rules):
            for seed in [int(s) for s in args.seed.split(",")]:
                run = argparse.Namespace(**{**vars(args), "method": method, **dict(settings)})
                train_one(run, seed, (train, test, files), folder, args.out)


if __name__ == "__main__":
    main()
