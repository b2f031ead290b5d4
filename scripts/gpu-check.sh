#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and PyTorch 2.11 installed (about 6
# minutes on an H200; its first run is BENCHMARKS.md's of 2026-12-04, run 2):
#   scripts/gpu-check.sh [BINARY] [PYTHON]
# Runs the homeonorm binary built here against that machine's torch (LD_LIBRARY_PATH)
# and prints, section by section (each bounded in time; a failing one does not stop
# the rest):
#   1. the machine and `homeonorm info`;
#   2. model-iterations per second of one process (bench --worker) at 10 and 60 models,
#      eager and with CUDA graphs; then 120 and 240 models;
#   3. every method's step: captured in a CUDA graph or not, and its rate at 10 models;
#   4. the yardstick: the same seeds twice on CUDA for homeonorm and for PyTorch, each
#      against the other, without graphs, and against the CPU (where the two are
#      bit-identical);
#   5. the paper's grids (paper-cifar10, lr-sweep-cifar10, paper-svhn) swept end to end,
#      evaluations included, on synthetic data of the real sizes, at two lengths, and
#      projected to the paper's iterations.
# Saves its tables to $OUT when set (the device tool's folder). Paste what it prints
# into BENCHMARKS.md with the machine's name.
. "$(dirname "$0")/gpu-common.sh" "$@"

calc() { awk "BEGIN { printf \"%.1f\", $* }"; }
# One process's model-iterations per second: bench --worker's JSON line, or "failed".
rate() {
    local out
    out="$(timeout 90 "$bin" bench --worker --device cuda "$@" 2>"$tmp/rate.err" | tail -1)"
    "$python" -c 'import json, sys; print(round(json.loads(sys.argv[1])["model_iterations_per_s"]))' "$out" 2>/dev/null \
        || { echo "failed"; tail -3 "$tmp/rate.err" >&2; }
}
# SVHN's two .mat files at their real sizes (73,257 and 26,032 images), synthetic.
synthetic_svhn() {
    "$python" - "$1" <<'PY'
import os, sys, numpy as np, scipy.io
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(0)
for name, n in [("train_32x32.mat", 73257), ("test_32x32.mat", 26032)]:
    y = rng.integers(1, 11, size=(n, 1)).astype(np.float64)
    x = rng.integers(0, 200, size=(32, 32, 3, n), dtype=np.uint8)
    x[:, :, 0, :] += (y[:, 0] * 5).astype(np.uint8)[None, None, :]
    scipy.io.savemat(os.path.join(d, name), {"X": x, "y": y})
PY
}

section "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
nproc
"$python" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())'
bounded 60 "$bin" info

section "one process, batch 32: model-iterations per second (100 steps after 10 warm-up)"
printf '%-18s %-7s %8s %8s\n' method graphs "10" "60" | tee "$save/arrangements.txt"
for graphs in 0 1; do
    for method in batch-norm synaptic-scaling; do
        r10=$(HOMEONORM_CUDA_GRAPHS=$graphs rate --methods "$method" --seeds 10 --iterations 100 --warmup 10)
        r60=$(HOMEONORM_CUDA_GRAPHS=$graphs rate --methods "$method" --seeds 60 --iterations 100 --warmup 10)
        printf '%-18s %-7s %8s %8s\n' "$method" "$graphs" "$r10" "$r60" | tee -a "$save/arrangements.txt"
    done
done
for seeds in 120 240; do
    echo "batch-norm, $seeds models, graphs: $(rate --methods batch-norm --seeds "$seeds" --iterations 50 --warmup 10)"
done

section "every method at 10 models: captured in a CUDA graph? model-iterations per second"
for method in vanilla batch-norm weight-norm synaptic-scaling mean-only scale-only layer-norm group-norm \
    instance-norm self-norm whitening adaptive-threshold homeostatic-scaling dendritic-norm divisive-norm; do
    out="$(RUST_LOG=info timeout 90 "$bin" bench --worker --device cuda --methods "$method" --seeds 10 \
        --iterations 30 --warmup 5 2>&1)"
    graph=$(echo "$out" | grep -o "captured in a CUDA graph: [0-9]* nodes, [0-9]* of them kernels\|without a CUDA graph.*" | head -1)
    r=$("$python" -c 'import json, sys; print(round(json.loads(sys.argv[1].splitlines()[-1])["model_iterations_per_s"]))' "$out" 2>/dev/null || echo failed)
    printf '%-20s %8s  %s\n' "$method" "$r" "${graph:-eager (not captured)}"
done

section "the yardstick: seeds 0 and 1, 300 steps on 2,000 synthetic images"
synthetic_cifar "$tmp/small/cifar-10-batches-bin" 2000
common=(--dataset cifar10 --seed 0,1 --iterations 300 --eval-every 100 --limit 2000 --data-dir "$tmp/small")
for method in batch-norm synaptic-scaling; do
    for side in a b; do
        bounded 60 "$bin" train "${common[@]}" --method "$method" --device cuda --out "$tmp/hn-cuda-$side" >/dev/null 2>&1
        bounded 120 "$python" "$repo/reference/train.py" "${common[@]}" --method "$method" --device cuda \
            --out "$tmp/pt-cuda-$side" >/dev/null
    done
    HOMEONORM_CUDA_GRAPHS=0 bounded 60 "$bin" train "${common[@]}" --method "$method" --device cuda \
        --out "$tmp/hn-eager" >/dev/null 2>&1
    bounded 120 "$bin" train "${common[@]}" --method "$method" --device cpu --out "$tmp/cpu" >/dev/null 2>&1
done
"$python" "$repo/scripts/curve-spread.py" "$tmp" "$save/yardstick.txt" \
    "pt-cuda-a:pt-cuda-b:PyTorch CUDA, twice" \
    "hn-cuda-a:hn-cuda-b:homeonorm CUDA (graphs), twice" \
    "hn-cuda-a:hn-eager:homeonorm graphs vs eager" \
    "hn-cuda-a:pt-cuda-a:homeonorm CUDA vs PyTorch CUDA" \
    "pt-cuda-a:cpu:PyTorch CUDA vs the CPU" \
    "hn-cuda-a:cpu:homeonorm CUDA vs the CPU"
grep -h "cuda_graphs" "$tmp"/hn-cuda-a/cifar10/batch-norm/*/seed0/config.json 2>/dev/null | head -2

section "the paper's grids end to end (sweep's CUDA defaults, evaluations included), synthetic data of the real sizes"
synthetic_cifar "$tmp/full/cifar-10-batches-bin" 10000
synthetic_svhn "$tmp/full/svhn"
# grid, its runs' iterations, lengths timed
for spec in "paper-cifar10 45000 200 1200" "lr-sweep-cifar10 45000 200 1200" "paper-svhn 8000 200 800"; do
    set -- $spec
    declare -A took=()
    for length in "$3" "$4"; do
        exp="$tmp/$1-$length.toml"
        { cat "$repo/experiments/$1.toml"; printf '\n[settings]\niterations = %s\n' "$length"; } >"$exp"
        start=$(date +%s.%N)
        bounded 200 "$bin" sweep "$exp" --data-dir "$tmp/full" --out "$tmp/grids-$length" --device cuda \
            >"$tmp/sweep.log" 2>&1 || true
        end=$(date +%s.%N)
        took[$length]=$(calc "$end - $start")
        tail -1 "$tmp/sweep.log"
    done
    projected=$(calc "${took[$3]} + (${took[$4]} - ${took[$3]}) * ($2 - $3) / ($4 - $3)")
    echo "$1: ${took[$3]} s at $3 iterations, ${took[$4]} s at $4; projected to $2: $projected s" | tee -a "$save/grids.txt"
done
whole=$(awk '{ s += $(NF-1) } END { printf "whole paper, projected: %.0f s (%.1f minutes)", s, s / 60 }' "$save/grids.txt")
echo "$whole" | tee -a "$save/grids.txt"
