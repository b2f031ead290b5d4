#!/usr/bin/env bash
# Builds homeonorm's image and runs it as a cluster job would, checking files and exit
# codes; one pass/fail line per step. Needs root: it installs Debian's docker.io (and
# debootstrap, for the fallback base) when missing, and starts dockerd if none runs.
#
#   scripts/docker-test.sh            # or: make docker-test
#   KEEP=1 scripts/docker-test.sh     # keep the image, containers' results and base
#   BASE=IMAGE scripts/docker-test.sh # build on IMAGE instead of the default base
#
# The default base (the Dockerfile's CUDA image) is pulled if the registry answers;
# where it does not, a Debian bookworm base is built with debootstrap from Debian's
# package registry and imported. The build context is the repository's tracked files
# plus this machine's Rust toolchain and extra CA certificates (docker/README.md).
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image=homeonorm:docker-test
work="$(mktemp -d /tmp/homeonorm-docker-test.XXXXXX)"
passes=0
failures=0
containers=()

pass() { printf 'PASS  %s\n' "$*"; passes=$((passes + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
quiet() { "$@" >/dev/null 2>&1; }
check() { # check "what" command...: PASS or FAIL by the command's exit status
    local what="$1"; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
cleanup() {
    for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
    if [ -z "${KEEP:-}" ]; then
        docker rmi -f "$image" >/dev/null 2>&1
        docker image prune -f --filter label=org.homeonorm.stage=build >/dev/null 2>&1
        rm -rf "$work"
    else
        echo "kept: image $image, work folder $work"
    fi
}
trap cleanup EXIT

# PACKAGE...: Debian's packages installed (root, Debian's archive), or the test ends naming them.
apt_install() {
    echo "docker-test: installing $* with apt-get"
    # flock: one apt-get at a time when CI runs the Slurm tests' installs beside this one.
    if ! flock /tmp/homeonorm-apt.lock sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
        -y -qq --no-install-recommends "$@"' apt "$@" >"$work/apt.log" 2>&1; then
        tail -n 20 "$work/apt.log" >&2
        echo "docker-test: FAILED: cannot install $* with apt-get (root and Debian's package archive are needed)" >&2
        exit 2
    fi
}

# 1. A docker daemon.
if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null && command -v docker >/dev/null || apt_install docker.io
    (dockerd >"$work/dockerd.log" 2>&1 &)
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
check "docker daemon answers" quiet docker info || exit 1

# 2. The base image.
default_base="$(sed -n 's/^ARG BASE=//p' "$repo/Dockerfile" | head -n 1)"
base="${BASE:-}"
if [ -z "$base" ]; then
    if timeout 120 docker pull "$default_base" >/dev/null 2>&1; then
        base="$default_base"
    else
        base=homeonorm-base:bookworm
        if ! docker image inspect "$base" >/dev/null 2>&1; then
            command -v debootstrap >/dev/null || apt_install debootstrap
            debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
                && tar -C "$work/rootfs" -c . | docker import - "$base" >/dev/null
            rm -rf "$work/rootfs"
        fi
    fi
fi
check "base image $base (default $default_base)" quiet docker image inspect "$base" || exit 1

# 3. The build context: tracked files, this machine's toolchain and CA certificates.
context="$work/context"
mkdir -p "$context"
git -C "$repo" ls-files -z --cached --others --exclude-standard | (cd "$repo" && xargs -0 cp --parents -t "$context")
sysroot="$(rustc --print sysroot)"
mkdir -p "$context/docker/toolchain/bin" "$context/docker/ca-certificates"
cp "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$context/docker/toolchain/bin/"
cp -r "$sysroot/lib" "$context/docker/toolchain/"
cp /usr/local/share/ca-certificates/*.crt "$context/docker/ca-certificates/" 2>/dev/null
start=$(date +%s)
commit="$(git -C "$repo" rev-parse HEAD)"
if docker build --build-arg "BASE=$base" --build-arg "HOMEONORM_COMMIT=$commit" -t "$image" "$context" \
    >"$work/build.log" 2>&1; then
    pass "image built in $(($(date +%s) - start)) s"
else
    fail "image build (log: $work/build.log)"; tail -n 30 "$work/build.log"; KEEP=1; exit 1
fi
rm -rf "$context"
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "image size: $((size / 1000000)) MB"
check "runs as a non-root user" test "$(docker run --rm --entrypoint id "$image" -u)" != 0
check "experiment files in the image" quiet docker run --rm --entrypoint test "$image" -f /opt/homeonorm/experiments/paper-cifar10.toml

# 4. Data (small CIFAR-10-format files, mounted read-only) and a results folder.
data="$work/data/cifar-10-batches-bin"
mkdir -p "$data"
python3 - "$data" <<'PY'
import os, random, sys
d = sys.argv[1]; rng = random.Random(0)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    rows = bytearray()
    for k in range(200):
        label = k % 10
        rows.append(label)
        rows.extend(min(255, rng.randrange(200) + (55 if (p // 1024) == label % 3 else 0)) for p in range(3072))
    open(os.path.join(d, name), "wb").write(bytes(rows))
PY
results="$work/results"
mkdir -p "$results" "$work/exp"
chmod 0777 "$results"
for name in small long; do
    iterations=$([ "$name" = small ] && echo 60 || echo 4000)
    cat >"$work/exp/$name.toml" <<EOF
name = "$name"
datasets = ["cifar10"]
methods = ["vanilla", "batch-norm"]
seeds = 2

[settings]
iterations = $iterations
eval_every = 20
EOF
done
sed -i 's/methods = .*/methods = ["batch-norm"]/; s/seeds = 2/seeds = 1/' "$work/exp/long.toml"
run() { docker run --rm -v "$work/data:/data:ro" -v "$work/exp:/exp:ro" -v "$results:/results" "$image" "$@"; }
common=(--data-dir /data --limit 1000 --device cpu --threads 1)

# 5. The steps.
info="$(docker run --rm "$image" info 2>&1)"
check "homeonorm info" grep -q "libtorch         2.11.0" <<<"$info"
run train --dataset cifar10 --method batch-norm --iterations 40 --eval-every 20 --out /results/train "${common[@]}" \
    >"$work/train.log" 2>&1
check "train: a complete run folder" test -f "$results/train/cifar10/batch-norm/lr0.003/seed0/summary.json"
check "provenance.json names the commit the image was built from" \
    grep -q "\"commit\": \"$commit\"" "$results/train/cifar10/batch-norm/lr0.003/seed0/provenance.json"

run sweep /exp/small.toml --out /results --shard 0/2 "${common[@]}" >"$work/shard0.log" 2>&1 &
shard0=$!
run sweep /exp/small.toml --out /results --shard 1/2 "${common[@]}" >"$work/shard1.log" 2>&1 &
shard1=$!
wait $shard0; s0=$?
wait $shard1; s1=$?
done_runs=$(find "$results/small" -name summary.json | wc -l)
check "two shards at once into one folder: exit $s0/$s1, $done_runs of 4 runs complete" \
    test "$s0" = 0 -a "$s1" = 0 -a "$done_runs" = 4

containers+=(homeonorm-docker-test-stop)
docker run -d --name homeonorm-docker-test-stop -v "$work/data:/data:ro" -v "$work/exp:/exp:ro" \
    -v "$results:/results" "$image" sweep /exp/long.toml --out /results "${common[@]}" >/dev/null
run_dir="$results/long/cifar10/batch-norm/lr0.003/seed0"
for _ in $(seq 120); do [ -f "$run_dir/config.json" ] && break; sleep 0.5; done
docker stop -t 30 homeonorm-docker-test-stop >/dev/null
status=$(docker inspect -f '{{.State.ExitCode}}' homeonorm-docker-test-stop)
check "docker stop (SIGTERM) mid-run: exit $status, claim released, run left unfinished" \
    test "$status" = 130 -a ! -e "$run_dir/.claim" -a ! -e "$run_dir/summary.json"
sed -i 's/iterations = 4000/iterations = 100/' "$work/exp/long.toml"
run sweep /exp/long.toml --out /results "${common[@]}" >"$work/rerun.log" 2>&1
check "a rerun finishes it" test -f "$run_dir/summary.json"

run report /results/small >"$work/report.log" 2>&1
check "report on the shards' results" grep -q "every run folder found is complete" "$results/small/report/report.md"

if [ "$failures" -eq 0 ]; then
    echo "docker-test: passed ($passes steps)"
else
    echo "docker-test: FAILED: $failures of $((passes + failures)) steps"
    exit 1
fi
