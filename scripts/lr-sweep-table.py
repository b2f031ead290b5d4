"""docs/reproduction/lr-sweep/README.md's tables, from its committed summary.csv only.

The first: each learning rate's final accuracy (%, mean +- sample std over the complete
runs) for batch-norm and synaptic scaling, beside the paper's section 5 text (ten seeds;
"~58" is stated without a spread, so it has no test) and, at 0.003, its Table 2, with
Welch's t-test of ours against the paper's and of the two methods against each other.
The second: the homeostasis measures the page's claims cite, per method and rate.

    python3 scripts/lr-sweep-table.py
"""
import csv
import os

from ttest import p_text, welch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "reproduction", "lr-sweep")
METHODS = ["batch-norm", "synaptic-scaling"]
# The paper's numbers as it writes them; "~58" has no spread.
PAPER = {
    ("batch-norm", "0.003"): "65.8 ± 0.5",
    ("batch-norm", "0.01"): "67 ± 1",
    ("batch-norm", "0.02"): "67 ± 0.4",
    ("batch-norm", "0.1"): "~58",
    ("synaptic-scaling", "0.003"): "66.0 ± 0.7",
    ("synaptic-scaling", "0.01"): "64 ± 2",
    ("synaptic-scaling", "0.02"): "56 ± 3",
}
PAPER_RUNS = 10  # the paper's seeds per setting (section 4)


def accuracy(row):
    """(mean %, sample std %, runs) of a summary row's final accuracy."""
    return 100 * float(row["final_accuracy_mean"]), 100 * float(row["final_accuracy_std"]), int(row["runs"])


def paper_cells(paper, ours):
    """The paper's number and Welch's p of ours against it ("" where it has no spread)."""
    if paper is None:
        return ["", ""]
    if "±" not in paper:
        return [paper, ""]
    mean, std = (float(x) for x in paper.split("±"))
    return [paper, p_text(welch(*ours, mean, std, PAPER_RUNS)[2])]


def accuracy_table(rows, rates):
    print("| learning rate | batch-norm, ours (%) | the paper | Welch p | synaptic scaling, ours (%) | the paper | Welch p | synaptic scaling − batch-norm (points) | Welch p |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lr in rates:
        cells = []
        for method in METHODS:
            ours = accuracy(rows[(method, lr)])
            cells += [f"{ours[0]:.1f} ± {ours[1]:.1f} ({ours[2]} runs)"] + paper_cells(PAPER.get((method, lr)), ours)
        bn, ss = accuracy(rows[("batch-norm", lr)]), accuracy(rows[("synaptic-scaling", lr)])
        shift = ss[0] - bn[0]
        cells += ["0.0" if abs(shift) < 0.05 else f"{shift:+.1f}", p_text(welch(*ss, *bn)[2])]
        print(f"| {lr} | " + " | ".join(cells) + " |")


def two_places(x):
    """x to two decimals, a value that rounds to zero written 0.00 whatever its sign."""
    return f"{0.0 if abs(x) < 0.005 else x:.2f}"


def measures_table(rows, rates):
    print("| method | learning rate | runs | fc1 activation prob | CV of activation prob, fc units | fc1 mean active value | fc1 mean α |")
    print("|---|---|---|---|---|---|---|")
    for method in METHODS:
        for lr in rates:
            r = rows[(method, lr)]
            alpha = two_places(float(r["fc1_alpha_mean"])) if r["fc1_alpha_mean"] else "–"
            print(
                f"| {method} | {lr} | {r['measured_runs']} | {float(r['fc1_prob_mean']):.2f} | {float(r['fc_prob_cv']):.2f} "
                f"| {float(r['fc1_active_value_mean']):#.3g} | {alpha} |"
            )


def main():
    rows = {(r["method"], r["lr"]): r for r in csv.DictReader(open(os.path.join(ROOT, "summary.csv")))}
    rates = sorted({lr for _, lr in rows}, key=float)
    accuracy_table(rows, rates)
    print()
    measures_table(rows, rates)


if __name__ == "__main__":
    main()
