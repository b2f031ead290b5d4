"""TensorBoard's side of tests/tensorboard.rs.

    python tests/python/read_tensorboard.py read LOGDIR
        reads a log folder with TensorBoard's own reader (EventAccumulator, as
        `tensorboard --logdir` loads it) and prints, as JSON, every run's scalars,
        histograms and HParams records (parsed with the HParams plugin's own protos);
    python tests/python/read_tensorboard.py torch-curves RESULTS LOGDIR
        writes each finished run's curve (curve.csv) under RESULTS with PyTorch's
        SummaryWriter into LOGDIR, one run per run folder, as a PyTorch script logs it.
"""
import csv
import json
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from google.protobuf import json_format


def read_run(path):
    acc = EventAccumulator(path, size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    run = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "histograms": {},
        "hparams": {},
    }
    for tag in tags["histograms"]:
        run["histograms"][tag] = [
            {"step": e.step, "min": e.histogram_value.min, "max": e.histogram_value.max,
             "num": e.histogram_value.num, "sum": e.histogram_value.sum,
             "sum_squares": e.histogram_value.sum_squares,
             "bucket_limit": list(e.histogram_value.bucket_limit), "bucket": list(e.histogram_value.bucket)}
            for e in acc.Histograms(tag)
        ]
    # The HParams plugin's records, parsed with its own protocol buffers.
    try:
        records = acc.PluginTagToContent("hparams")
    except KeyError:  # a run without them
        records = {}
    for tag, content in records.items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        run["hparams"][tag] = json_format.MessageToDict(data, preserving_proto_field_name=True)
    return run


def read(logdir):
    runs = {}
    for folder, _, files in os.walk(logdir):
        if any("tfevents" in f for f in files):
            runs[os.path.relpath(folder, logdir)] = read_run(folder)
    json.dump(runs, sys.stdout, sort_keys=True)


def torch_curves(results, logdir):
    from torch.utils.tensorboard import SummaryWriter

    for folder, _, files in os.walk(results):
        if "summary.json" not in files:
            continue
        with SummaryWriter(log_dir=os.path.join(logdir, os.path.relpath(folder, results))) as writer:
            with open(os.path.join(folder, "curve.csv"), newline="") as f:
                for row in csv.DictReader(f):
                    step = int(row["iteration"])
                    writer.add_scalar("test_accuracy", float(row["test_accuracy"]), step)
                    if row["train_loss"]:
                        writer.add_scalar("train_loss", float(row["train_loss"]), step)


def main():
    if sys.argv[1] == "read":
        read(sys.argv[2])
    elif sys.argv[1] == "torch-curves":
        torch_curves(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")


if __name__ == "__main__":
    main()
