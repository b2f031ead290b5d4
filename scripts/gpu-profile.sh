#!/usr/bin/env bash
# Where a CUDA training step's time goes, and how far apart two CUDA runs of one seed
# land (PyTorch's own spread: the yardstick for homeonorm on CUDA). For a machine with
# an NVIDIA GPU and PyTorch 2.11:
#   scripts/gpu-profile.sh [BINARY] [PYTHON]
# Sections (each bounded in time; a failing one does not stop the rest):
#   1. the machine and `homeonorm info`;
#   2. model-iterations per second at 10 and 60 models per process (bench, in process);
#   3. kernels and GPU time per training step (Nsight Compute, when it runs here):
#      the difference between 6 and 3 timed steps, so start-up kernels cancel;
#   4. what evaluation costs: a 10-model run of 20 steps on CIFAR-10-sized data;
#   5. the yardstick: the same seeds twice on CUDA, for homeonorm and for PyTorch,
#      each against the other and against the CPU (where the two are bit-identical).
# Numbers it saves go to $OUT when set (the device tool's folder), else to a temporary one.
. "$(dirname "$0")/gpu-common.sh" "$@"

section "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
nproc
"$python" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())'
bounded 60 "$bin" info

section "model-iterations per second, one process (bench --in-process)"
for seeds in 10 60; do
    bounded 120 "$bin" bench --device cuda --methods vanilla,batch-norm,synaptic-scaling --seeds "$seeds" \
        --iterations 100 --warmup 10 --in-process --python none | tee -a "$save/bench.txt"
done

section "kernels and GPU time per step (Nsight Compute; 6 timed steps minus 3)"
ncu="$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
if [ -n "$ncu" ]; then
    for seeds in 10 60; do
        for steps in 3 6; do
            bounded 150 "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --page raw \
                --log-file "$tmp/ncu-$seeds-$steps.log" \
                "$bin" bench --worker --device cuda --methods batch-norm --seeds "$seeds" --iterations "$steps" \
                --warmup 1 >"$tmp/ncu-$seeds-$steps.csv" 2>"$tmp/ncu-$seeds-$steps.err"
        done
    done
    tail -5 "$tmp/ncu-10-3.err" "$tmp/ncu-10-3.log" 2>/dev/null
    "$python" - "$tmp" <<'PY'
import csv, collections, io, sys
root = sys.argv[1]
SCALE = {"nsecond": 1.0, "ns": 1.0, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6}
def kernels(stem):
    # ncu writes its table to standard output or, with --log-file, there: look in both.
    for path in (stem + ".csv", stem + ".log"):
        try:
            text = open(path, errors="replace").read()
        except OSError:
            continue
        start = text.find('"ID"')
        if start < 0:
            continue
        rows = list(csv.DictReader(io.StringIO(text[start:])))
        scale = SCALE.get(rows[0].get("gpu__time_duration.sum", "").strip(), 1.0)  # the units row
        out = []
        for r in rows[1:]:
            try:
                out.append((r["Kernel Name"], float(r["gpu__time_duration.sum"].replace(",", "")) * scale))
            except (KeyError, ValueError, AttributeError):
                pass
        return out
    return None
for seeds in (10, 60):
    a, b = kernels(f"{root}/ncu-{seeds}-3"), kernels(f"{root}/ncu-{seeds}-6")
    if not a or not b:
        print(f"{seeds} models: no kernel table (see ncu's log)"); continue
    n = (len(b) - len(a)) / 3
    # The last 3 steps of the longer run: its kernels after the shorter run's count.
    tail = b[len(a):]
    gpu = sum(t for _, t in tail) / 3
    print(f"{seeds} models: {n:.0f} kernels per step, GPU busy {gpu / 1e3:.0f} us per step")
    by_name = collections.Counter()
    count = collections.Counter()
    for name, t in tail:
        key = name.split("(")[0].split("<")[0][:60]
        by_name[key] += t / 3
        count[key] += 1 / 3
    for key, t in by_name.most_common(12):
        print(f"   {t / 1e3:8.1f} us  {count[key]:5.1f} x  {key}")
PY
else
    echo "no ncu on this machine"
fi

section "evaluation cost: 10 models, 20 steps, CIFAR-10-sized synthetic data (50,000 / 10,000)"
synthetic_cifar "$tmp/full/cifar-10-batches-bin" 10000
for every in 20 10; do
    start=$(date +%s.%N)
    bounded 200 "$bin" train --dataset cifar10 --method batch-norm --seed 0,1,2,3,4,5,6,7,8,9 --device cuda \
        --iterations 20 --eval-every "$every" --data-dir "$tmp/full" --out "$tmp/eval-$every" >/dev/null
    end=$(date +%s.%N)
    echo "eval every $every: $(awk "BEGIN { printf \"%.1f\", $end - $start }") s in all"
done

section "the yardstick: seeds 0 and 1, 400 steps on 2,000 synthetic images, each twice on CUDA"
synthetic_cifar "$tmp/small/cifar-10-batches-bin" 2000
common=(--dataset cifar10 --seed 0,1 --iterations 400 --eval-every 100 --limit 2000 --data-dir "$tmp/small")
for method in batch-norm synaptic-scaling; do
    for side in a b; do
        bounded 120 "$bin" train "${common[@]}" --method "$method" --device cuda --seeds-per-batch 2 \
            --out "$tmp/hn-cuda-$side" >/dev/null
        bounded 180 "$python" "$repo/reference/train.py" "${common[@]}" --method "$method" --device cuda \
            --out "$tmp/pt-cuda-$side" >/dev/null
    done
    bounded 120 "$bin" train "${common[@]}" --method "$method" --device cpu --seeds-per-batch 1 \
        --out "$tmp/cpu" >/dev/null
done
"$python" "$repo/scripts/curve-spread.py" "$tmp" "$save/yardstick.txt" \
    "pt-cuda-a:pt-cuda-b:PyTorch CUDA, twice" \
    "hn-cuda-a:hn-cuda-b:homeonorm CUDA, twice" \
    "hn-cuda-a:pt-cuda-a:homeonorm CUDA vs PyTorch CUDA" \
    "pt-cuda-a:cpu:PyTorch CUDA vs the CPU" \
    "hn-cuda-a:cpu:homeonorm CUDA vs the CPU"
