"""How far apart the curves of the same runs in two results trees land: the GPU
scripts' yardstick (two CUDA runs of one seed, homeonorm against PyTorch, CUDA
against the CPU).

    curve-spread.py ROOT SAVE A:B:LABEL [A:B:LABEL ...]

For each pair of trees A and B under ROOT, each run both hold (keyed by method and
seed): the largest difference of training loss and of test accuracy over the curve,
and both final accuracies. Prints the lines and writes them to SAVE.
"""
import csv
import glob
import os
import sys


def curves(root, tree):
    out = {}
    for f in glob.glob(os.path.join(root, tree, "**", "curve.csv"), recursive=True):
        rel = os.path.relpath(os.path.dirname(f), os.path.join(root, tree)).split(os.sep)
        # <dataset>/<method>/.../seed<k>: keyed by method and seed
        with open(f) as rows:
            out[(rel[1], rel[-1])] = list(csv.DictReader(rows))
    return out


def main():
    root, save, pairs = sys.argv[1], sys.argv[2], [p.split(":", 2) for p in sys.argv[3:]]
    width = max(len(what) for _, _, what in pairs) + 1
    lines = []
    for a, b, what in pairs:
        ca, cb = curves(root, a), curves(root, b)
        common = sorted(set(ca) & set(cb))
        if not common:
            lines.append(f"{what}: no runs in common ({len(ca)} vs {len(cb)})")
            continue
        for key in common:
            rows = list(zip(ca[key], cb[key]))
            dl = max(abs(float(x["train_loss"]) - float(y["train_loss"])) for x, y in rows)
            da = max(abs(float(x["test_accuracy"]) - float(y["test_accuracy"])) for x, y in rows)
            final = f"{float(ca[key][-1]['test_accuracy']):.3f} / {float(cb[key][-1]['test_accuracy']):.3f}"
            lines.append(f"{what:<{width}} {key[0]:<17} {key[1]:<6} max |loss diff| {dl:.3g}  "
                         f"max |acc diff| {da:.3g}  final acc {final}")
    print("\n".join(lines))
    with open(save, "w") as out:
        out.write("\n".join(lines) + "\n")


main()
