#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and PyTorch 2.11 installed:
#   scripts/gpu-check.sh [BINARY] [PYTHON]
# Runs the homeonorm binary built here against that machine's torch (LD_LIBRARY_PATH)
# and prints, section by section (each bounded in time, a failing one does not stop
# the rest):
#   1. the machine and `homeonorm info` (is CUDA seen?);
#   2. the training benchmark on CUDA, four methods, every arrangement: 1 model, 10
#      seeds batched, sweep's workers, the PyTorch reference in sequence and in processes,
#      PyTorch reference's 10 runs in sequence;
#   3. GPU sharing: K processes at once (homeonorm 10-seed models, PyTorch scripts);
#      the seed-batch width (S = 10, 30, 60) and SVHN's batch of 256;
#   4. CUDA correctness: short real-format runs, seed-batched (grouped convolution)
#      against single runs on CUDA, CUDA against CPU, and CUDA twice;
#   5. wall time of 10-seed batched CIFAR-10-shaped runs, measured on a part of the
#      protocol and projected to the whole paper (paper-cifar10, paper-svhn,
#      lr-sweep-cifar10).
# Paste its output into BENCHMARKS.md with the machine's name.
set -uo pipefail
bin="$(realpath "${1:-target/release/homeonorm}")"
python="${2:-python3}"
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HOMEONORM_PYTHON="$python"
export RUST_LOG=warn
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

section() { echo; echo "== $*"; }
calc() { awk "BEGIN { printf \"%.1f\", $* }"; }
# Runs a section's command with a time bound, and says when it failed.
bounded() {
    local limit="$1"; shift
    timeout "$limit" "$@"
    local rc=$?
    [ "$rc" -eq 0 ] || echo "!! exit $rc (124: over the ${limit} s bound): $*"
    return 0
}

section "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
nproc
"$python" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())'
bounded 60 "$bin" info

section "benchmark on CUDA, batch 32 (model-iterations per second)"
bounded 300 "$bin" bench --device cuda --methods vanilla,batch-norm,synaptic-scaling,adaptive-threshold \
    --seeds 10 --iterations 200 --warmup 20

section "GPU shared by K processes: batch-norm, batch 32, total model-iterations per second"
for k in 1 2 4; do
    for i in $(seq "$k"); do
        "$bin" bench --device cuda --methods batch-norm --seeds 10 --iterations 200 --warmup 20 --in-process \
            >"$tmp/hn-$k-$i.txt" 2>&1 &
    done
    wait
    # The 10-batched column of each process's table.
    total=$(awk '$1 == "batch-norm" { s += $3 } END { printf "%.0f", s }' "$tmp"/hn-"$k"-*.txt)
    for i in $(seq "$k"); do
        "$python" reference/bench.py --method batch-norm --runs 2 --iterations 200 --warmup 20 --device cuda \
            >"$tmp/pt-$k-$i.txt" 2>&1 &
    done
    wait
    pt=$("$python" -c 'import json, sys; print(round(sum(json.load(open(f))["model_iterations_per_s"] for f in sys.argv[1:])))' "$tmp"/pt-"$k"-*.txt 2>/dev/null || echo "failed")
    echo "K=$k  homeonorm (10 batched each) $total   PyTorch (1 model each) $pt"
done

section "seed-batch width and SVHN's batch (homeonorm only)"
bounded 120 "$bin" bench --device cuda --methods batch-norm,synaptic-scaling --seeds 30 --iterations 200 --warmup 20 --in-process
bounded 120 "$bin" bench --device cuda --methods batch-norm --seeds 60 --iterations 200 --warmup 20 --in-process
bounded 120 "$bin" bench --device cuda --methods batch-norm,synaptic-scaling --seeds 10 --iterations 200 --warmup 20 --batch-size 256 --in-process

section "CUDA correctness: 3 seeds x 400 iterations on 5,000 CIFAR-10-format images"
"$python" - "$tmp/data/cifar-10-batches-bin" <<'PY'
# Learnable synthetic data in the real file format: class k brightens channel k % 3.
import os, sys, torch
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
g = torch.Generator().manual_seed(0)
for name, n in [(f"data_batch_{i}.bin", 10000) for i in range(1, 6)] + [("test_batch.bin", 10000)]:
    labels = torch.randint(0, 10, (n,), generator=g)
    pixels = torch.randint(0, 200, (n, 3, 1024), generator=g)
    pixels[torch.arange(n), labels % 3] += (labels[:, None] * 5).clamp(max=55)
    rows = torch.cat([labels[:, None].to(torch.uint8), pixels.reshape(n, 3072).to(torch.uint8)], 1)
    open(os.path.join(d, name), "wb").write(rows.numpy().tobytes())
PY
common=(--dataset cifar10 --seed 0,1,2 --iterations 400 --eval-every 200 --limit 5000 --data-dir "$tmp/data")
for method in batch-norm synaptic-scaling weight-norm; do
    bounded 120 "$bin" train "${common[@]}" --method "$method" --device cuda --seeds-per-batch 3 --out "$tmp/cuda-batched" >/dev/null
    bounded 120 "$bin" train "${common[@]}" --method "$method" --device cuda --seeds-per-batch 3 --out "$tmp/cuda-batched-again" >/dev/null
    bounded 120 "$bin" train "${common[@]}" --method "$method" --device cuda --seeds-per-batch 1 --out "$tmp/cuda-single" >/dev/null
    bounded 120 "$bin" train "${common[@]}" --method "$method" --device cpu --seeds-per-batch 1 --out "$tmp/cpu-single" >/dev/null
done
"$python" - "$tmp" <<'PY'
# Largest differences between the curve.csv files of two output trees, per method.
import csv, glob, os, sys
root = sys.argv[1]
def curves(tree):
    out = {}
    for f in glob.glob(os.path.join(root, tree, "**", "curve.csv"), recursive=True):
        out[os.path.relpath(f, os.path.join(root, tree))] = list(csv.DictReader(open(f)))
    return out
pairs = [("cuda-batched", "cuda-batched-again", "CUDA batched, twice"),
         ("cuda-batched", "cuda-single", "CUDA batched (grouped conv) vs CUDA single"),
         ("cuda-single", "cpu-single", "CUDA single vs CPU single")]
for a, b, what in pairs:
    ca, cb = curves(a), curves(b)
    if not ca or ca.keys() != cb.keys():
        print(f"{what}: run folders missing ({len(ca)} vs {len(cb)})"); continue
    by_method = {}
    for k in ca:
        m = k.split(os.sep)[1]
        dl = max(abs(float(x["train_loss"]) - float(y["train_loss"])) for x, y in zip(ca[k], cb[k]))
        da = max(abs(float(x["test_accuracy"]) - float(y["test_accuracy"])) for x, y in zip(ca[k], cb[k]))
        fa = float(ca[k][-1]["test_accuracy"])
        old = by_method.get(m, (0, 0, []))
        by_method[m] = (max(old[0], dl), max(old[1], da), old[2] + [fa])
    for m, (dl, da, fa) in sorted(by_method.items()):
        print(f"{what:<45} {m:<18} max |loss diff| {dl:.3g}  max |acc diff| {da:.3g}  final acc {['%.3f' % x for x in fa]}")
PY

section "wall time: 10 seeds batched, CIFAR-10 shape (50,000 train / 10,000 test), evaluation every 1,000"
declare -A rate
for method in batch-norm synaptic-scaling; do
    start=$(date +%s.%N)
    bounded 200 "$bin" train --dataset cifar10 --method "$method" --seed 0,1,2,3,4,5,6,7,8,9 --device cuda \
        --iterations 3000 --eval-every 1000 --data-dir "$tmp/data" --out "$tmp/time" >/dev/null
    end=$(date +%s.%N)
    secs=$(calc "$end - $start")
    rate[$method]=$secs
    echo "$method: 10 seeds x 3,000 iterations in $secs s; projected 45,000: $(calc "$secs * 15") s"
done
start=$(date +%s.%N)
bounded 200 "$bin" train --dataset cifar10 --method batch-norm --seed 0,1,2,3,4,5,6,7,8,9 --device cuda \
    --batch-size 256 --lr 0.01 --iterations 1000 --eval-every 1000 --data-dir "$tmp/data" --out "$tmp/time256" >/dev/null
end=$(date +%s.%N)
svhn=$(calc "$end - $start")
echo "batch-norm, batch 256 (SVHN's protocol shape): 10 seeds x 1,000 iterations in $svhn s; projected 8,000: $(calc "$svhn * 8") s"
cifar=$(calc "(${rate[batch-norm]} + ${rate[synaptic-scaling]}) / 2 * 15")
# paper-cifar10: 6 methods x 1 batch of 10 seeds; paper-svhn: 6 x 1; lr-sweep-cifar10: 6 methods x 6 lrs.
echo "projected, one process, 10 seeds per batch:"
echo "  paper-cifar10     6 x $cifar s = $(calc "6 * $cifar") s"
echo "  paper-svhn        6 x $(calc "$svhn * 8") s = $(calc "6 * $svhn * 8") s"
echo "  lr-sweep-cifar10  36 x $cifar s = $(calc "36 * $cifar") s"
echo "  whole paper       $(calc "42 * $cifar + 48 * $svhn") s"
