"""The vanilla / weight-norm gap's two tables in docs/reproduction/README.md, from committed
files only, each claim's test beside it.

1. Each candidate cause at three seeds, paired by seed with the reproduction: the runs.csv of
   gap-standardization-ten-seeds (seeds 0-2: CIFAR-10's per-channel mean and std), gap-jpeg-q75
   and gap-jpeg-q50 (the copy re-encoded once more), each run against the run of
   docs/reproduction/runs.csv with the same method and seed (the same initial weights and
   batch order; only the data or its standardization differs). Paired t-test, two-sided.
2. The ten-seed answer on standardization: docs/reproduction/summary.csv (pixels standardized
   with 0.5 / 0.5) beside gap-standardization-ten-seeds/summary.csv, each method's final
   accuracy with Welch's t-test between the two and against the paper's mean +- std of 10
   seeds (section 4.3).

    python3 scripts/gap-tables.py
"""
import csv
import os

from ttest import mean_std, p_text, paired, welch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "reproduction")
PAPER = {"vanilla": (59.3, 1.4), "weight-norm": (63.8, 0.9), "batch-norm": (65.8, 0.5), "synaptic-scaling": (66.0, 0.7)}
PAPER_SEEDS = 10


def run_accuracy(path):
    """Final accuracy (%) of each complete run in a runs.csv, by (method, seed), and the data hashes."""
    runs, hashes = {}, set()
    for r in csv.DictReader(open(path)):
        if r["lr"] == "0.003" and r["outcome"] == "complete":
            runs[(r["method"], int(r["seed"]))] = 100 * float(r["final_accuracy"])
            hashes.add(r["data_sha256"])
    return runs, hashes


def short(hashes):
    return ", ".join(h[:8] + "…" for h in sorted(hashes))


def three_seed_table():
    baseline, base_hashes = run_accuracy(os.path.join(ROOT, "runs.csv"))
    causes = [
        ("per-channel dataset statistics in place of 0.5 / 0.5", "gap-standardization-ten-seeds"),
        ("the copy re-encoded once more, JPEG quality 75", "gap-jpeg-q75"),
        ("the copy re-encoded once more, JPEG quality 50", "gap-jpeg-q50"),
    ]
    print(f"Baseline: docs/reproduction/runs.csv, data {short(base_hashes)}")
    print()
    print("| cause | method | runs | data | accuracy (%), seeds 0–2 | the same seeds as reproduced | "
          "shift, paired by seed (points) | paired t p |")
    print("|---|---|---|---|---|---|---|---|")
    for cause, folder in causes:
        changed, hashes = run_accuracy(os.path.join(ROOT, folder, "runs.csv"))
        for method in ("vanilla", "weight-norm"):
            seeds = [s for s in range(3) if (method, s) in changed]
            ours = [changed[(method, s)] for s in seeds]
            base = [baseline[(method, s)] for s in seeds]
            shift, shift_std, p = paired([a - b for a, b in zip(ours, base)])
            (mo, so), (mb, sb) = mean_std(ours), mean_std(base)
            print(f"| {cause} | {method} | {len(seeds)} | {short(hashes)} | {mo:.1f} ± {so:.1f} | "
                  f"{mb:.1f} ± {sb:.1f} | {shift:+.1f} ± {shift_std:.1f} | {p_text(p)} |")


def accuracy(path):
    rows = {r["method"]: r for r in csv.DictReader(open(path)) if r["lr"] == "0.003"}
    return {m: (100 * float(r["final_accuracy_mean"]), 100 * float(r["final_accuracy_std"]), int(r["runs"]))
            for m, r in rows.items()}


def ten_seed_table():
    tutorial = accuracy(os.path.join(ROOT, "summary.csv"))
    per_channel = accuracy(os.path.join(ROOT, "gap-standardization-ten-seeds", "summary.csv"))
    print("| method | 0.5 / 0.5 (%) | per-channel (%) | shift (points) | Welch p, shift | paper (%) | "
          "per-channel − paper (paper stds) | Welch p, against the paper | within the paper's std |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method in PAPER:
        (ma, sa, na), (mb, sb, nb) = tutorial[method], per_channel[method]
        pm, ps = PAPER[method]
        _, _, p_shift = welch(mb, sb, nb, ma, sa, na)
        _, _, p_paper = welch(mb, sb, nb, pm, ps, PAPER_SEEDS)
        print(f"| {method} | {ma:.2f} ± {sa:.2f} (n = {na}) | {mb:.2f} ± {sb:.2f} (n = {nb}) | {mb - ma:+.2f} | "
              f"{p_text(p_shift)} | {pm} ± {ps} | {(mb - pm) / ps:+.2f} | {p_text(p_paper)} | "
              f"{'yes' if abs(mb - pm) <= ps else 'no'} |")


def main():
    three_seed_table()
    print()
    ten_seed_table()


if __name__ == "__main__":
    main()
