"""The PyTorch side of homeonorm's parity tests.

    python parity.py init CASE_DIR...    torch.manual_seed(seed); Net(method) -> CASE_DIR/torch_init.safetensors
    python parity.py train CASE_DIR...   the same steps as homeonorm       -> CASE_DIR/torch.safetensors
                                         and twice again from initial values nudged by
                                         one rounding step   -> CASE_DIR/torch_nudged_{1,2}.safetensors

Each CASE_DIR holds case.json ({"method", "seed", "lr", "dtype"}) and, for train,
init.safetensors (homeonorm's initial state) and batches.safetensors
(x [T,B,3,32,32], y [T,B], test_x [N,3,32,32]). Training is the plain loop of a
paper's script: Adam with PyTorch's defaults, cross-entropy, loss.backward()."""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from lenet5 import Net, load_state, named_state  # noqa: E402


def read_case(d):
    with open(os.path.join(d, "case.json")) as f:
        return json.load(f)


def init(d):
    case = read_case(d)
    torch.manual_seed(case["seed"])
    net = Net(case["method"], case.get("normalize_conv", True))
    safetensors_io.save(os.path.join(d, "torch_init.safetensors"), named_state(net))


def nudge(state, dtype, seed):
    """Moves every initial value by one rounding step of `dtype` (relative eps/2, random
    sign): a difference no two float implementations can avoid. How far training
    carries it shows how closely any implementation can agree with this one."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.finfo(dtype).eps / 2
    return {k: v * (1 + eps * torch.randint(0, 2, v.shape, generator=g).to(dtype).mul(2).sub(1)) if v.is_floating_point() else v
            for k, v in state.items()}


def train(d, nudge_seed=None):
    case = read_case(d)
    dtype = {"f32": torch.float32, "f64": torch.float64}[case.get("dtype", "f32")]
    net = Net(case["method"], case.get("normalize_conv", True)).to(dtype)
    state = {k: v.to(dtype) for k, v in safetensors_io.load(os.path.join(d, "init.safetensors")).items()}
    load_state(net, state if nudge_seed is None else nudge(state, dtype, nudge_seed))
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
    name = "torch.safetensors" if nudge_seed is None else f"torch_nudged_{nudge_seed}.safetensors"
    safetensors_io.save(os.path.join(d, name), out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, dirs = sys.argv[1], sys.argv[2:]
    for d in dirs:
        if mode == "init":
            init(d)
        else:
            train(d)
            if read_case(d).get("dtype", "f32") == "f32":  # f64 needs no spread: it is held to 1e-4 outright
                train(d, nudge_seed=1)
                train(d, nudge_seed=2)
