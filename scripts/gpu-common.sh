# What the GPU scripts (gpu-smoke.sh, gpu-check.sh, gpu-profile.sh) share; each sources
# it with its own arguments:  . "$(dirname "$0")/gpu-common.sh" "$@"
# Arguments: [BINARY] [PYTHON], the homeonorm binary built here (run against that
# machine's torch, through LD_LIBRARY_PATH) and a Python with PyTorch 2.11.
set -uo pipefail
bin="$(realpath "${1:-target/release/homeonorm}")"
python="${2:-python3}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HOMEONORM_PYTHON="$python" RUST_LOG=warn PYTHONUNBUFFERED=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Tables are saved to $OUT when set (the device tool's folder), else to the temporary one.
save="${OUT:-$tmp}"

section() { echo; echo "== $*"; }
# Runs a command under a time limit; a failure is reported and does not stop the script.
bounded() {
    local limit="$1"; shift
    timeout "$limit" "$@"
    local rc=$?
    [ "$rc" -eq 0 ] || echo "!! exit $rc (124: over the ${limit} s bound): $*"
    return 0
}
# CIFAR-10-format files of learnable synthetic images (class k brightens channel k % 3),
# N per file: 5 training files and a test file.  synthetic_cifar DIR N
synthetic_cifar() {
    "$python" - "$1" "$2" <<'PY'
import os, sys, torch
d, n = sys.argv[1], int(sys.argv[2]); os.makedirs(d, exist_ok=True)
g = torch.Generator().manual_seed(0)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    labels = torch.randint(0, 10, (n,), generator=g)
    pixels = torch.randint(0, 200, (n, 3, 1024), generator=g)
    pixels[torch.arange(n), labels % 3] += (labels[:, None] * 5).clamp(max=55)
    rows = torch.cat([labels[:, None].to(torch.uint8), pixels.reshape(n, 3072).to(torch.uint8)], 1)
    open(os.path.join(d, name), "wb").write(rows.numpy().tobytes())
PY
}
