#!/usr/bin/env bash
# The training benchmark (see BENCHMARKS.md): homeonorm's single model, 10 seeds
# batched, and the PyTorch reference's 10 runs in sequence, on this machine.
#   benches/bench.sh [extra `homeonorm bench` arguments, e.g. --device cuda]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/with-libtorch.sh cargo build --release
exec scripts/with-libtorch.sh target/release/homeonorm bench "$@"
