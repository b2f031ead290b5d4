"""The PyTorch side of homeonorm's parity tests.

    python parity.py init CASE_DIR...    torch.manual_seed(seed); Net(method) -> CASE_DIR/torch_init.safetensors
    python parity.py train CASE_DIR...   the same steps as homeonorm       -> CASE_DIR/torch.safetensors

Each CASE_DIR holds case.json ({"model", "method", "seed", "lr", "dtype", "threads"}) and, for train,
init.safetensors (homeonorm's initial state) and batches.safetensors
(x [T,B,3,32,32], y [T,B], test_x [N,3,32,32]). Training is the plain loop of a
paper's script: Adam with PyTorch's defaults, cross-entropy, loss.backward(), opt.step(),
then the methods' own rules (net.after_step())."""
import json
import os
import sys

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "python")]
import homeonorm_writer.safetensors as safetensors_io  # noqa: E402
from networks import NETWORKS, load_state, named_state  # noqa: E402


def read_case(d):
    with open(os.path.join(d, "case.json")) as f:
        return json.load(f)


def init(d):
    case = read_case(d)
    torch.manual_seed(case["seed"])
    net = NETWORKS[case.get("model", "lenet5")](case["method"], case.get("normalize_conv", True))
    safetensors_io.save(os.path.join(d, "torch_init.safetensors"), named_state(net))


def train(d):
    case = read_case(d)
    torch.set_num_threads(case.get("threads", 1))
    dtype = {"f32": torch.float32, "f64": torch.float64}[case.get("dtype", "f32")]
    net = NETWORKS[case.get("model", "lenet5")](case["method"], case.get("normalize_conv", True)).to(dtype)
    state = {k: v.to(dtype) for k, v in safetensors_io.load(os.path.join(d, "init.safetensors")).items()}
    load_state(net, state)
    batches = safetensors_io.load(os.path.join(d, "batches.safetensors"))
    x, y, test_x = batches["x"].to(dtype), batches["y"], batches["test_x"].to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=case["lr"])
    losses = []
    net.train()
    for t in range(x.shape[0]):
        opt.zero_grad()
        loss = F.cross_entropy(net(x[t]), y[t])
        loss.backward()
        opt.step()
        net.after_step()
        losses.append(loss.detach())
    out = {"losses": torch.stack(losses)}
    net.eval()
    with torch.no_grad():
        net.set_eval_stats("batch")
        out["logits_batch"] = net(test_x)
        net.set_eval_stats("running")
        out["logits_running"] = net(test_x)
    for k, v in named_state(net).items():
        out["final." + k] = v
    safetensors_io.save(os.path.join(d, "torch.safetensors"), out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, dirs = sys.argv[1], sys.argv[2:]
    for d in dirs:
        if mode == "init":
            init(d)
        else:
            train(d)
