#!/usr/bin/env bash
# The sweep that chose adaptive-threshold's and homeostatic-scaling's rates
# (docs/neural-column/): each rate on the real CIFAR-10 copy, 3,000 iterations of the
# paper's protocol, seed 0, then one report over all of them (the rate is a setting, so
# the report keeps every rate apart and names it).
#   scripts/neural-column-rates.sh [OUT]   (default outputs/neural-column-rates)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-outputs/neural-column-rates}
homeonorm=(scripts/with-libtorch.sh target/release/homeonorm)
train() { "${homeonorm[@]}" train --dataset cifar10 --seed 0 --iterations 3000 --eval-every 500 "$@"; }
for rate in 0.01 0.03 0.1 0.3; do
  train --method adaptive-threshold --threshold-rate "$rate" --out "$out/adaptive-threshold-$rate"
done
for rate in 0.001 0.003 0.01; do
  train --method homeostatic-scaling --scaling-rate "$rate" --out "$out/homeostatic-scaling-$rate"
done
train --method vanilla --out "$out/vanilla"
"${homeonorm[@]}" report "$out"
