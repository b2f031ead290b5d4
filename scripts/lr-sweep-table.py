"""docs/reproduction/lr-sweep/README.md's table, from its committed summary.csv only: each
learning rate's final accuracy (%, mean +- sample std over the complete runs) for
batch-norm and synaptic scaling, beside the paper's section 5 text (ten seeds; "~58" is
stated without a spread) and, at 0.003, its Table 2.

    python3 scripts/lr-sweep-table.py
"""
import csv
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "reproduction", "lr-sweep")
METHODS = ["batch-norm", "synaptic-scaling"]
PAPER = {
    ("batch-norm", "0.003"): "65.8 ± 0.5",
    ("batch-norm", "0.01"): "67 ± 1",
    ("batch-norm", "0.02"): "67 ± 0.4",
    ("batch-norm", "0.1"): "~58",
    ("synaptic-scaling", "0.003"): "66.0 ± 0.7",
    ("synaptic-scaling", "0.01"): "64 ± 2",
    ("synaptic-scaling", "0.02"): "56 ± 3",
}


def main():
    rows = {(r["method"], r["lr"]): r for r in csv.DictReader(open(os.path.join(ROOT, "summary.csv")))}
    rates = sorted({lr for _, lr in rows}, key=float)
    print("| learning rate | batch-norm, ours (%) | the paper | synaptic scaling, ours (%) | the paper |")
    print("|---|---|---|---|---|")
    for lr in rates:
        cells = []
        for method in METHODS:
            r = rows[(method, lr)]
            mean, std = 100 * float(r["final_accuracy_mean"]), 100 * float(r["final_accuracy_std"])
            cells += [f"{mean:.1f} ± {std:.1f} ({r['runs']} runs)", PAPER.get((method, lr), "")]
        print(f"| {lr} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
