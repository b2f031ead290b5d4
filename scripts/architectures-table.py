"""docs/architectures/README.md's tables, from its committed runs.csv and curves.csv only:
those of docs/architectures (LeNet5, the MLP, the plain CNN) and of its resnet20/ folder
(ResNet-20, trained on a later machine as experiments/architectures-long-resnet20-cifar10.toml).

1. Per network and method: the final test accuracy (%, mean +- sample std over the complete
   runs, n) and the CV of the probe layer's activation probability across its units (mean
   over those runs; a run whose probe units are all silent has no CV, and the cell says how
   many such runs it leaves out). The probe is fc1, or ResNet-20's last block (it has no
   hidden fc layer).
2. Per network: the methods ranked by accuracy, each against the next below it and against
   vanilla by Welch's t-test (two-sided), and how much each curve still climbed over its
   last evaluation interval.

    python3 scripts/architectures-table.py
    ARCHITECTURES_DIRS=outputs/architectures-long-cifar10/report python3 scripts/architectures-table.py

(the second reads report folders not yet committed, as the sweep's own; several are
separated by the path separator, ':').
"""
import csv
import os
from collections import defaultdict

from ttest import mean_std, p_text, welch

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "architectures")
ROOTS = (os.environ.get("ARCHITECTURES_DIRS") or os.pathsep.join([DOCS, os.path.join(DOCS, "resnet20")])).split(os.pathsep)
NETWORKS = ["lenet5", "mlp", "plain-cnn", "resnet20"]
METHODS = ["vanilla", "batch-norm", "synaptic-scaling", "layer-norm", "homeostatic-scaling"]
PROBE = {"resnet20": "layer3.2.conv2"}


def rows(name):
    """The rows of the result sets' `name` (runs.csv or curves.csv): each network's from the
    last set that has it (docs/architectures' own runs.csv still lists the two ResNet-20
    runs begun there, whose folders were lost; resnet20/ holds the ResNet-20 runs)."""
    sets = [list(csv.DictReader(open(os.path.join(root, name)))) for root in ROOTS]
    for k, set_rows in enumerate(sets):
        later = {r["model"] for later_rows in sets[k + 1:] for r in later_rows}
        yield from (r for r in set_rows if r["model"] not in later)


def complete_runs():
    """(network, method) -> [(final accuracy %, probe CV or None where every probe unit is
    silent)] of the complete runs, and
    (network, method) -> [the iteration each unfinished run reached, "?" where runs.csv records none]."""
    runs, unfinished = defaultdict(list), defaultdict(list)
    for r in rows("runs.csv"):
        key = (r["model"], r["method"])
        if r["outcome"] == "complete":
            cv = r[PROBE.get(r["model"], "fc1") + "_prob_cv"]
            probe_cv = float(cv) if cv else None
            runs[key].append((100 * float(r["final_accuracy"]), probe_cv))
        else:
            unfinished[key].append(r["iterations_trained"] or "?")
    return runs, unfinished


def last_climbs():
    """(network, method) -> (from iteration, to iteration, points climbed) over the last
    evaluation interval of the mean curve."""
    points = defaultdict(list)
    for r in rows("curves.csv"):
        points[(r["model"], r["method"])].append((int(r["iteration"]), 100 * float(r["accuracy_mean"])))
    climbs = {}
    for key, curve in points.items():
        curve.sort()
        (i0, a0), (i1, a1) = curve[-2], curve[-1]
        climbs[key] = (i0, i1, a1 - a0)
    return climbs


def probe_cv_cell(cvs):
    """The mean probe CV of a setting's complete runs, naming the runs with no CV left out."""
    defined = [c for c in cvs if c is not None]
    silent = len(cvs) - len(defined)
    mean = f"{sum(defined) / len(defined):.2f}" if defined else "–"
    return mean + (f" ({silent} of {len(cvs)} runs all silent)" if silent else "")


def main():
    runs, unfinished = complete_runs()
    networks = [n for n in NETWORKS if any((n, m) in runs or (n, m) in unfinished for m in METHODS)]
    # (network, method) -> (mean, sample std, n) of the final accuracies, where n >= 2
    stats = {key: (*mean_std([a for a, _ in done]), len(done)) for key, done in runs.items() if len(done) >= 2}
    print("| network | " + " | ".join(METHODS) + " |")
    print("|---|" + "---|" * len(METHODS))
    for net in networks:
        cells, cvs = [], []
        for m in METHODS:
            done = runs.get((net, m), [])
            if (net, m) in stats:
                mean, std, n = stats[(net, m)]
                cells.append(f"{mean:.1f} ± {std:.1f} ({n})")
            elif done:
                cells.append(f"{done[0][0]:.1f} (1)")
            else:
                cells.append("–")
            cvs.append(probe_cv_cell([c for _, c in done]))
        print(f"| {net}: accuracy (runs) | " + " | ".join(cells) + " |")
        print(f"| {net}: probe CV | " + " | ".join(cvs) + " |")
    for (net, m), reached in sorted(unfinished.items()):
        print(f"unfinished: {net} {m}: {len(reached)} run(s), at iterations {sorted(reached)}")

    climbs = last_climbs()
    for net in networks:
        ranked = sorted((m for m in METHODS if (net, m) in stats), key=lambda m: -stats[(net, m)][0])
        vanilla = stats.get((net, "vanilla"))
        print()
        print(f"{net}, most accurate first (Welch p against the next below, and against vanilla):")
        for m, below in zip(ranked, ranked[1:] + [None]):
            mean, std, n = stats[(net, m)]
            next_p = p_text(welch(mean, std, n, *stats[(net, below)])[2]) if below else "–"
            against = "–"
            if vanilla and m != "vanilla":
                against = f"{p_text(welch(mean, std, n, *vanilla)[2])} ({mean - vanilla[0]:+.2f})"
            i0, i1, climb = climbs[(net, m)]
            print(f"  {m}: {mean:.2f} ± {std:.2f} (n = {n}); vs next {next_p}; vs vanilla {against}; "
                  f"curve {i0}->{i1}: {climb:+.2f} points")

if __name__ == "__main__":
    main()
