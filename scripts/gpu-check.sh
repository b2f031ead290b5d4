#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and PyTorch 2.11 installed:
#   scripts/gpu-check.sh [BINARY] [PYTHON]
# Runs the homeonorm binary built here against that machine's torch (LD_LIBRARY_PATH),
# prints its info, the training benchmark on CUDA (1 model, 10 seeds batched, and the
# PyTorch reference's 10 runs in sequence), and times a full 45,000-iteration
# CIFAR-10-shaped run of the 10-seed batched model on synthetic data.
# Paste its output into BENCHMARKS.md with the machine's name.
set -euo pipefail
bin="${1:-target/release/homeonorm}"
python="${2:-python3}"
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HOMEONORM_PYTHON="$python"

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$python" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda)'
echo "== homeonorm info"
"$bin" info

echo "== benchmark (model-iterations per second)"
"$bin" bench --device cuda --seeds 10 --iterations 500 --warmup 50

echo "== full run: 10 seeds batched, 45,000 iterations, synthetic CIFAR-10-shaped data"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" - "$tmp/cifar-10-batches-bin" <<'PY'
import os, sys, torch
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
g = torch.Generator().manual_seed(0)
for name, n in [(f"data_batch_{i}.bin", 10000) for i in range(1, 6)] + [("test_batch.bin", 10000)]:
    labels = torch.randint(0, 10, (n, 1), generator=g, dtype=torch.uint8)
    pixels = torch.randint(0, 256, (n, 3072), generator=g, dtype=torch.uint8)
    open(os.path.join(d, name), "wb").write(torch.cat([labels, pixels], 1).numpy().tobytes())
PY
for method in batch-norm synaptic-scaling; do
    start=$(date +%s.%N)
    "$bin" train --dataset cifar10 --method "$method" --seed 0,1,2,3,4,5,6,7,8,9 --device cuda \
        --data-dir "$tmp" --out "$tmp/out" >/dev/null
    end=$(date +%s.%N)
    echo "$method: 10 seeds x 45,000 iterations in $(echo "$end - $start" | bc) s (evaluation every 1,000 included)"
done
