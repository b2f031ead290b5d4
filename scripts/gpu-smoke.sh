#!/usr/bin/env bash
# A short CUDA check (a few minutes), for a machine with an NVIDIA GPU and PyTorch 2.11:
#   scripts/gpu-smoke.sh [BINARY] [PYTHON]
# Every method trains on CUDA (2 seeds batched, then alone) on CIFAR-10-format data and
# must reach a finite loss; the batched and single runs' curves are compared; and the
# training benchmark runs every method on CUDA. scripts/gpu-check.sh is the long one.
. "$(dirname "$0")/gpu-common.sh" "$@"
echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 60 "$bin" info
echo "== every method on CUDA: 2 seeds x 300 iterations on 3,000 CIFAR-10-format images"
synthetic_cifar "$tmp/data/cifar-10-batches-bin" 600
methods=$("$bin" info | sed -n 's/^methods *//p' | tr -d ' ')
common=(--dataset cifar10 --seed 0,1 --iterations 300 --eval-every 150 --limit 3000 --data-dir "$tmp/data" --device cuda)
for m in ${methods//,/ }; do
    timeout 120 "$bin" train "${common[@]}" --method "$m" --out "$tmp/batched" >/dev/null 2>"$tmp/err" || { echo "!! $m batched failed: $(tail -2 "$tmp/err")"; continue; }
    timeout 120 "$bin" train "${common[@]}" --method "$m" --seeds-per-batch 1 --out "$tmp/single" >/dev/null 2>"$tmp/err" || echo "!! $m single failed: $(tail -2 "$tmp/err")"
    "$python" - "$tmp" "$m" <<'PY'
import csv, sys
root, m = sys.argv[1], sys.argv[2]
rows = lambda tree, s: list(csv.DictReader(open(f"{root}/{tree}/cifar10/{m}/lr0.003/seed{s}/curve.csv")))
for s in (0, 1):
    a, b = rows("batched", s), rows("single", s)
    dl = max(abs(float(x["train_loss"]) - float(y["train_loss"])) for x, y in zip(a, b))
    print(f"{m:<17} seed {s}: final loss {float(a[-1]['train_loss']):.4f} acc {float(a[-1]['test_accuracy']):.3f}; batched vs single max |loss diff| {dl:.2g}")
PY
done
echo "== benchmark on CUDA, batch 32, model-iterations per second"
timeout 300 "$bin" bench --device cuda --seeds 10 --iterations 100 --warmup 10 --in-process
