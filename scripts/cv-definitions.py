#!/usr/bin/env python3
"""The paper's coefficients of variation under each plausible pooling, from run folders.

    scripts/cv-definitions.py RESULTS_DIR [--methods m1,m2,...]

The paper reports "the coefficient of variation of node activation probabilities"
(Figure 2B; vanilla 1.65, weight-norm 1.38, batch-norm 0.20, synaptic scaling 0.11)
and of activation values (Figure 2D; 0.55, 0.30, 0.16, 0.17) without saying how it
pools units, seeds and iterations, nor which std. This computes, for each method's
complete runs in RESULTS_DIR (numpy only), the CV under each reading:

  test set, per run      units' end-of-training values on the test set (unit_stats.csv),
                         CV across the units of one run, then the mean over runs
  test set, pooled       the same values of every run's units at once
  training batches, ...  the heat-map rows (activation_prob.csv, every recorded iteration
                         of training): CV across units at each iteration, then the mean
                         over iterations and runs ("per iteration"); of each unit's mean
                         over training ("unit means"); or of every (unit, iteration) value
                         at once ("all values")

each with the population std (ddof 0, homeonorm's report) and the sample std (ddof 1),
for fc1 alone and for fc1 and fc2 together. Prints a Markdown table.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np

PAPER = {
    "prob": {"vanilla": 1.65, "weight-norm": 1.38, "batch-norm": 0.20, "synaptic-scaling": 0.11},
    "value": {"vanilla": 0.55, "weight-norm": 0.30, "batch-norm": 0.16, "synaptic-scaling": 0.17},
}


def runs(root):
    for dirpath, _, files in os.walk(root):
        if "summary.json" in files and "unit_stats.csv" in files:
            with open(os.path.join(dirpath, "summary.json")) as f:
                if json.load(f).get("outcome") != "complete":
                    continue
            with open(os.path.join(dirpath, "config.json")) as f:
                yield json.load(f)["method"], dirpath


def cv(values, ddof):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.mean() == 0:
        return np.nan
    return values.std(ddof=ddof) / values.mean()


def read_units(run, layers):
    prob, value = [], []
    with open(os.path.join(run, "unit_stats.csv")) as f:
        for row in csv.DictReader(f):
            if row["layer"] in layers:
                prob.append(float(row["activation_prob"]))
                if row["mean_active_value"] != "":
                    value.append(float(row["mean_active_value"]))
    return np.array(prob), np.array(value)


def read_heatmap(run, layers):
    """{iteration: [probabilities of the layers' units]}"""
    rows = {}
    with open(os.path.join(run, "activation_prob.csv")) as f:
        for row in csv.DictReader(f):
            if row["layer"] in layers:
                rows.setdefault(int(row["iteration"]), []).append(float(row["activation_prob"]))
    return np.array([rows[k] for k in sorted(rows)])  # [iterations, units]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--methods", default="vanilla,weight-norm,batch-norm,synaptic-scaling")
    args = parser.parse_args()
    methods = args.methods.split(",")
    by_method = {}
    for method, run in runs(args.root):
        by_method.setdefault(method, []).append(run)
    missing = [m for m in methods if m not in by_method]
    if missing:
        sys.exit(f"{args.root}: no complete runs of {', '.join(missing)}")

    rows = []  # (measure, definition, {method: value})
    for layers_name, layers in [("fc1", {"fc1"}), ("fc1+fc2", {"fc1", "fc2"})]:
        for ddof, std_name in [(0, "population std"), (1, "sample std")]:
            results = {}
            for method in methods:
                units = [read_units(r, layers) for r in by_method[method]]
                heat = [read_heatmap(r, layers) for r in by_method[method]]
                results[method] = {
                    ("prob", "test set, per run"): np.nanmean([cv(p, ddof) for p, _ in units]),
                    ("prob", "test set, pooled over seeds"): cv(np.concatenate([p for p, _ in units]), ddof),
                    ("prob", "training batches, per iteration"): np.nanmean(
                        [cv(row, ddof) for h in heat for row in h]
                    ),
                    ("prob", "training batches, unit means"): np.nanmean([cv(h.mean(axis=0), ddof) for h in heat]),
                    ("prob", "training batches, all values"): np.nanmean([cv(h.ravel(), ddof) for h in heat]),
                    ("value", "test set, per run"): np.nanmean([cv(v, ddof) for _, v in units]),
                    ("value", "test set, pooled over seeds"): cv(np.concatenate([v for _, v in units]), ddof),
                }
            for key in results[methods[0]]:
                measure, definition = key
                rows.append((measure, f"{layers_name}, {definition}, {std_name}", {m: results[m][key] for m in methods}))

    print(f"Runs: {', '.join(f'{m} {len(by_method[m])}' for m in methods)} (from {args.root})\n")
    for measure, title in [("prob", "activation probability"), ("value", "mean active value")]:
        print(f"### CV of {title}\n")
        print("| definition | " + " | ".join(methods) + " | largest distance from the paper |")
        print("|---|" + "---|" * (len(methods) + 1))
        paper = PAPER[measure]
        print("| **the paper** | " + " | ".join(f"**{paper.get(m, float('nan')):.2f}**" for m in methods) + " | |")
        for m_, definition, values in rows:
            if m_ != measure:
                continue
            worst = max(abs(values[m] - paper[m]) for m in methods if m in paper)
            print(f"| {definition} | " + " | ".join(f"{values[m]:.2f}" for m in methods) + f" | {worst:.2f} |")
        print()


if __name__ == "__main__":
    main()
