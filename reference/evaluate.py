"""Evaluates a finished run folder's weights with PyTorch: homeonorm's or train.py's.

    python reference/evaluate.py RUN_DIR [--test-batch-size N] [--eval-stats batch|running] [--data-dir DIR]

Builds the run's network (Net(method) for LeNet5) as its config.json says, loads model.safetensors with
load_state_dict (strict), and prints the test accuracy (and writes nothing)."""
import argparse
import json
import os
import sys

import torch
from torch.utils.data import DataLoader

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "python")]
from homeonorm_writer import load_safetensors  # noqa: E402
from networks import NETWORKS, options_from  # noqa: E402
from train import Images, evaluate, read_cifar10, read_svhn  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--test-batch-size", type=int)
    p.add_argument("--eval-stats", choices=["batch", "running"])
    p.add_argument("--data-dir", help="the dataset's folder (default: where the run read it)")
    p.add_argument("--threads", type=int)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(os.path.join(args.run_dir, "config.json")) as f:
        config = json.load(f)
    net = NETWORKS[config.get("model", "lenet5")](config["method"], config["normalize_conv"], **options_from(config))
    net.load_state_dict(load_safetensors(os.path.join(args.run_dir, "model.safetensors")))
    folder = args.data_dir or config["data_dir"]
    _, (test_x, test_y), _ = (read_cifar10 if config["dataset"] == "cifar10" else read_svhn)(folder)
    limit = config["data_limit"]["test"]
    if limit is not None:
        test_x, test_y = test_x[:limit], test_y[:limit]
    loader = DataLoader(Images(test_x, test_y), batch_size=args.test_batch_size or config["test_batch_size"])
    accuracy = evaluate(net, loader, args.eval_stats or config["eval_stats"], "cpu")
    print(json.dumps({"accuracy": accuracy}))


if __name__ == "__main__":
    main()
