#!/usr/bin/env bash
# make reproduce: runs an experiment file on the data in DATA_DIR, then its report.
set -euo pipefail
experiment="$1"; data_dir="$2"; out="$3"
bin=target/release/homeonorm
if ! "$bin" sweep --help >/dev/null 2>&1; then
    echo "homeonorm has no experiment runner yet (the sweep subcommand); nothing to reproduce." >&2
    exit 1
fi
"$bin" sweep "$experiment" --data-dir "$data_dir" --out "$out"
"$bin" report "$out"
