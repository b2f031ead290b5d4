#!/usr/bin/env bash
# make reproduce: runs an experiment file on the data in DATA_DIR, then its report.
# Data: uses what is in DATA_DIR; else downloads it (where the network allows); for
# CIFAR-10 on a machine that reaches no dataset host, builds it from the JPEG copy in
# ../shared/data when that is there. A dataset that cannot be had is left out, loudly.
#   scripts/reproduce.sh EXPERIMENT DATA_DIR OUT
set -euo pipefail
experiment="$1"; data_dir="$2"; out="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here/../target/release/homeonorm"

have=()
if "$bin" data check --dataset cifar10 --dir "$data_dir/cifar-10-batches-bin" >/dev/null 2>&1 \
    || "$bin" download cifar10 --dir "$data_dir"; then
    have+=(cifar10)
elif "$here/cifar10-from-shared.sh" "$data_dir/cifar-10-batches-bin" 2>&1; then
    echo "reproduce: CIFAR-10 built from the JPEG copies in ../shared/data: numbers are close to, not identical with, those on the official files." >&2
    have+=(cifar10)
else
    echo "reproduce: no CIFAR-10: put cifar-10-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz) in $data_dir/" >&2
fi
if "$bin" data check --dataset svhn --dir "$data_dir/svhn" >/dev/null 2>&1 \
    || "$bin" download svhn --dir "$data_dir"; then
    have+=(svhn)
else
    echo "reproduce: no SVHN: put train_32x32.mat and test_32x32.mat (http://ufldl.stanford.edu/housenumbers/) in $data_dir/svhn/; running without it." >&2
fi
if [ ${#have[@]} -eq 0 ]; then
    echo "reproduce: no dataset available; nothing to run." >&2
    exit 1
fi
datasets="$(IFS=,; echo "${have[*]}")"
echo "reproduce: running $experiment on: $datasets" >&2
"$bin" sweep "$experiment" --data-dir "$data_dir" --out "$out" --datasets "$datasets"
name="$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$experiment" | head -n 1)"
"$bin" report "$out/$name"
# The figures, the paper's Figure 2 among them (plot also links them from report.md).
"$bin" plot "$out/$name" --paper
echo "reproduce: report in $out/$name/report/report.md" >&2
