"""PyTorch side of `homeonorm bench`: RUNS independent training runs of a network
(LeNet5 unless --model says) with one method, one after another, as a paper's script would (model, Adam,
loss.backward(), optimizer.step(), then the method's own rules), on synthetic data in
CIFAR-10's shape. `homeonorm bench` also starts several of it side by side.
Prints one JSON line: {"model", "method", "parameters", "runs", "iterations", "seconds",
"model_iterations_per_s", "threads"}."""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from networks import NETWORKS  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="lenet5", choices=sorted(NETWORKS))
    p.add_argument("--method", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2000, 3, 32, 32), dtype=torch.uint8, generator=g).to(device)
    labels = torch.randint(0, 10, (2000,), generator=g).to(device)
    total_seconds = 0.0
    for run in range(a.runs):
        torch.manual_seed(run)
        net = NETWORKS[a.model](a.method, True).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=0.003)
        net.train()

        def step():
            idx = torch.randint(0, images.shape[0], (a.batch_size,), device=device)
            x = (images[idx].float() / 255 - 0.5) / 0.5
            opt.zero_grad()
            loss = F.cross_entropy(net(x), labels[idx])
            loss.backward()
            opt.step()
            net.after_step()

        for _ in range(a.warmup):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(a.iterations):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        total_seconds += time.perf_counter() - start
    print(json.dumps({
        "model": a.model, "method": a.method, "parameters": sum(p.numel() for p in net.parameters()), "runs": a.runs, "iterations": a.iterations, "seconds": total_seconds,
        "model_iterations_per_s": a.runs * a.iterations / total_seconds, "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
