#!/usr/bin/env bash
# Screenshots of TensorBoard over a results folder, as a reader sees it: exports the
# folder (homeonorm export tensorboard), serves it with `tensorboard --logdir` on
# loopback, and has headless Chromium draw the HParams tab's table and the Scalars tab's
# accuracy and fc1 activation-probability CV curves.
#   scripts/tensorboard-screenshot.sh RESULTS OUT_PREFIX
# writes OUT_PREFIX-hparams.png and OUT_PREFIX-scalars.png. Needs the set-up's venv
# (tensorboard) and Chromium (Debian's `chromium`, installed when missing; root).
set -euo pipefail
results="$1"; prefix="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$("$here/setup-libtorch.sh" | tail -n 1)"
bin="$here/../target/release/homeonorm"
if ! command -v chromium >/dev/null; then
    flock /tmp/homeonorm-apt.lock sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
        -y -qq --no-install-recommends chromium' >/tmp/tensorboard-screenshot-apt.log 2>&1 ||
        { tail -n 20 /tmp/tensorboard-screenshot-apt.log >&2; echo "cannot install chromium" >&2; exit 1; }
fi
logs="$(mktemp -d)"
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$logs"' EXIT
"$bin" export tensorboard "$results" --out "$logs/tb" >&2
port=6123
"$venv/bin/tensorboard" --logdir "$logs/tb" --host 127.0.0.1 --port "$port" >"$logs/server.log" 2>&1 &
server=$!
for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$port/data/runs" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -sf "http://127.0.0.1:$port/data/runs" >/dev/null || { cat "$logs/server.log" >&2; exit 1; }
shot() { # TAB FILE: Chromium's picture of TensorBoard's TAB (the page's scripts given time to load the data)
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1000 \
        --virtual-time-budget=20000 --screenshot="$2" "http://127.0.0.1:$port/#$1" >/dev/null 2>&1
    echo "wrote $2" >&2
}
shot hparams "$prefix-hparams.png"
# The Scalars tab (its charts draw without WebGL, which headless Chromium lacks), without
# smoothing, filtered to the accuracy and fc1's activation-probability CV.
shot "scalars&tagFilter=%5Etest_accuracy%24%7C%5Eactivation_prob_cv%2Ffc1%24&_smoothingWeight=0" "$prefix-scalars.png"
