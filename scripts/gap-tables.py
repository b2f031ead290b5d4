"""The ten-seed answer to the vanilla / weight-norm gap, from committed files only:
docs/reproduction/summary.csv (the paper's protocol, pixels standardized with 0.5 / 0.5)
beside docs/reproduction/gap-standardization-ten-seeds/summary.csv (CIFAR-10's per-channel
mean and std), each method's final accuracy with Welch's t-test between the two and
against the paper's mean ± std of 10 seeds (section 4.3). Prints the Markdown table
docs/reproduction/README.md shows.

    python3 scripts/gap-ten-seeds.py
"""
import csv
import math
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "reproduction")
PAPER = {"vanilla": (59.3, 1.4), "weight-norm": (63.8, 0.9), "batch-norm": (65.8, 0.5), "synaptic-scaling": (66.0, 0.7)}
PAPER_SEEDS = 10


def betacf(a, b, x):
    """The continued fraction of the regularized incomplete beta function (Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a, b, x):
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * betacf(a, b, x) / a
    return 1.0 - front * betacf(b, a, 1 - x) / b


def welch(m1, s1, n1, m2, s2, n2):
    """Welch's t-test of two samples given as mean, sample std and n: (t, df, two-sided p)."""
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    t = (m1 - m2) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    return t, df, incomplete_beta(df / 2, 0.5, df / (df + t * t))


def accuracy(path):
    rows = {r["method"]: r for r in csv.DictReader(open(path)) if r["lr"] == "0.003"}
    return {m: (100 * float(r["final_accuracy_mean"]), 100 * float(r["final_accuracy_std"]), int(r["runs"]))
            for m, r in rows.items()}


def p_text(p):
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def main():
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


if __name__ == "__main__":
    main()
