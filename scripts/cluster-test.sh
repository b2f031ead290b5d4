#!/usr/bin/env bash
# make cluster-test: the shipped Slurm array job (deploy/slurm-array.sbatch,
# unchanged, configured by environment variables and sbatch's own resource options)
# submitted to a real single-node Slurm cluster started here for the test
# (scripts/slurm/cluster.sh), requeued and signalled mid-run (each going on from its
# checkpoint), resubmitted, and its
# results held bit for bit against the same grid swept locally.
#
#   scripts/cluster-test.sh [HOMEONORM_BINARY]     (default target/release/homeonorm)
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge when they are missing
# (root). Everything else lives in one temporary folder, removed at the end (kept with
# CLUSTER_TEST_KEEP=1); the daemons are stopped by their PIDs on any exit, Ctrl-C
# included. CLUSTER_TEST_TIMEOUT_S (default 600) bounds every wait.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="$(realpath "${1:-$repo/target/release/homeonorm}")"
timeout_s="${CLUSTER_TEST_TIMEOUT_S:-600}"
started=$(date +%s)

say() { echo "cluster-test: $*"; }
fail() {
    echo "cluster-test: FAILED: $*" >&2
    exit 1
}
[ -x "$binary" ] || fail "no homeonorm binary at $binary (make build first)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
    ! command -v munged >/dev/null; then
    say "installing Debian's slurmctld, slurmd, slurm-client and munge"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge; } >/tmp/cluster-test-apt.log 2>&1; then
        tail -n 20 /tmp/cluster-test-apt.log >&2
        fail "cannot install Slurm and munge with apt-get (root and Debian's package archive are needed; log above)"
    fi
fi

tmp="$(mktemp -d /tmp/homeonorm-cluster-test.XXXXXX)"
cluster="$tmp/cluster"
cleanup() {
    status=$?
    trap - EXIT INT TERM
    "$repo/scripts/slurm/cluster.sh" stop "$cluster" || true
    if [ "$status" != 0 ]; then
        for log in "$tmp"/work/logs/*.out; do
            [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
        done
    fi
    if [ "${CLUSTER_TEST_KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$repo/scripts/slurm/cluster.sh" start "$cluster" || fail "Slurm did not start (its logs are printed above)"
export SLURM_CONF="$cluster/slurm.conf"
say "a single-node Slurm cluster is up ($(sinfo -h -N -o '%N %c CPUs %t'); slurm.conf and start.sh in $cluster)"

# CIFAR-10-format files (6 × 400 records of random pixels) and a grid of 3 methods × 2 seeds.
mkdir -p "$tmp/data/cifar-10-batches-bin" "$tmp/work/logs"
python3 - "$tmp/data/cifar-10-batches-bin" <<'PY'
import os, random, sys
rng = random.Random(7)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        f.write(b"".join(bytes([rng.randrange(10)]) + rng.randbytes(3072) for _ in range(400)))
PY
cat >"$tmp/cluster-test.toml" <<'TOML'
name = "cluster-test"
datasets = ["cifar10"]
methods = ["vanilla", "batch-norm", "synaptic-scaling"]
seeds = 2

[settings]
iterations = 1500
eval_every = 500
record_every = 100
test_batch_size = 200
TOML
runs=6
results="$tmp/out/cluster-test"
export PATH="$(dirname "$binary"):$PATH" HOMEONORM_RUNNER=native HOMEONORM_DEVICE=cpu HOMEONORM_DATA="$tmp/data" \
    HOMEONORM_OUT="$tmp/out" HOMEONORM_SWEEP_ARGS="--limit 1000 --checkpoint-every 100it" RUST_LOG=info
cd "$tmp/work"
# The file as shipped; sbatch's options fit its resources to this one CPU node.
submit() {
    sbatch --parsable --array=0-2 --gres=none --cpus-per-task=1 --mem=1G --time=10 \
        "$repo/deploy/slurm-array.sbatch" "$tmp/cluster-test.toml"
}

wait_until() { # WHAT COMMAND...: polls COMMAND until it succeeds, within the time limit
    local what="$1"
    shift
    until "$@"; do
        [ $(($(date +%s) - started)) -lt "$timeout_s" ] || fail "timed out after ${timeout_s}s waiting for $what"
        sleep 0.2
    done
}
task_state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1 | cut -d= -f2; }
task_is() { [ "$(task_state "$1")" = "$2" ]; }
task_field() { scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -n 1 | cut -d= -f2; }
# A run of the task's shard is under way: a config.json without a summary.json beside it.
shard_run_in_progress() {
    local shard="$1" i=0 dir
    for dir in "$results"/cifar10/{vanilla,batch-norm,synaptic-scaling}/lr0.003/seed{0,1}; do
        if [ $((i % 3)) = "$shard" ] && [ -f "$dir/config.json" ] && [ ! -f "$dir/summary.json" ]; then
            return 0
        fi
        i=$((i + 1))
    done
    return 1
}
# A run of the task's shard has written a checkpoint (is mid-run).
shard_checkpointed() {
    local dir
    for dir in $(shard_dirs "$1"); do
        [ -f "$dir/checkpoint.safetensors" ] && return 0
    done
    return 1
}
# Grid order is method-major, seed-minor: run i belongs to shard i mod 3.
shard_dirs() {
    local shard="$1" i=0 dir
    for dir in "$results"/cifar10/{vanilla,batch-norm,synaptic-scaling}/lr0.003/seed{0,1}; do
        [ $((i % 3)) = "$shard" ] && echo "$dir"
        i=$((i + 1))
    done
}
job_done() { [ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]; }

first="$(submit)"
say "submitted array job $first (3 tasks, one shard each)"

# Task 1 is requeued mid-run: it stops, releases its claim and comes back, and goes on
# from its checkpoint.
wait_until "task 1 to checkpoint a run" shard_checkpointed 1
scontrol requeue "${first}_1"
say "requeued task ${first}_1 mid-run"
# Task 2 gets the batch shell's TERM (what --signal=B:TERM@120 sends before the time limit).
wait_until "task 2 to checkpoint a run" shard_checkpointed 2
scancel --signal=TERM --batch "${first}_2"
say "sent TERM to task ${first}_2's batch shell mid-run"
wait_until "task 2 to end" task_is "${first}_2" FAILED
stopped=""
for dir in $(shard_dirs 2); do
    [ -e "$dir/.claim" ] && fail "$dir: task 2's claim was not released when it stopped"
    [ -f "$dir/checkpoint.safetensors" ] && [ ! -f "$dir/summary.json" ] && stopped="$dir"
done
[ -n "$stopped" ] || fail "task 2 left no checkpointed run: TERM did not stop it mid-run"
say "task 2 stopped: $stopped unfinished with its checkpoint, its claim released"
wait_until "array job $first to finish" job_done "$first"
[ "$(task_state "${first}_0")" = COMPLETED ] || fail "task 0 ended $(task_state "${first}_0")"
[ "$(task_state "${first}_1")" = COMPLETED ] || fail "requeued task 1 ended $(task_state "${first}_1")"
[ "$(task_field "${first}_1" Restarts)" = 1 ] || fail "task 1 was not restarted once (Restarts=$(task_field "${first}_1" Restarts))"
for dir in $(shard_dirs 0) $(shard_dirs 1); do
    [ -f "$dir/summary.json" ] || fail "$dir: not complete after tasks 0 and 1 finished"
done
log1="logs/homeonorm-${first}_1.out"
grep -q "task 1/3, attempt 1," "$log1" && grep -q "task 1/3, attempt 2," "$log1" ||
    fail "$log1 does not show both attempts of the requeued task"
resumed="$(grep -o 'resumed at iteration [0-9]*' "$log1" | head -n 1 || true)"
[ -n "$resumed" ] || fail "$log1: the requeued task did not go on from its checkpoint"
say "task 1 came back (Restarts=1), $resumed, and finished its shard; its log holds both attempts"

second="$(submit)"
say "resubmitted the array as job $second"
wait_until "array job $second to finish" job_done "$second"
for t in 0 1 2; do
    [ "$(task_state "${second}_$t")" = COMPLETED ] || fail "resubmitted task $t ended $(task_state "${second}_$t")"
done
resumed="$(grep -o 'resumed at iteration [0-9]*' "logs/homeonorm-${second}_2.out" | head -n 1 || true)"
[ -n "$resumed" ] || fail "the resubmitted task 2 did not go on from the stopped run's checkpoint"
say "the resubmitted task 2 went on from the stopped run's checkpoint: $resumed"

# Every run complete, each trained to completion exactly once across all attempts.
homeonorm report "$results" >/dev/null
grep -q "None: every run folder found is complete." "$results/report/report.md" ||
    fail "report finds runs not complete: $(sed -n '/## Runs left out/,$p' "$results/report/report.md")"
plan="$(homeonorm sweep "$tmp/cluster-test.toml" --out "$tmp/out" --data-dir "$tmp/data" --limit 1000 --dry-run | grep " runs in this shard: ")"
[ "$plan" = "$runs runs in this shard: $runs done, 0 to run" ] || fail "after the resubmission: $plan"
for dir in $(shard_dirs 0) $(shard_dirs 1) $(shard_dirs 2); do
    n="$(cat logs/*.out | grep -c -F "$dir: test accuracy")" || true
    [ "$n" = 1 ] || fail "$dir was trained to completion $n times"
done
say "report: all $runs runs complete, each trained to completion once"

# The same grid swept here, without a scheduler: bit for bit the same runs.
homeonorm sweep "$tmp/cluster-test.toml" --out "$tmp/local" --data-dir "$tmp/data" --limit 1000 --device cpu \
    --threads 1 >"$tmp/local.log" 2>&1 || { cat "$tmp/local.log" >&2; fail "the local sweep failed"; }
homeonorm compare "$results" "$tmp/local/cluster-test" --out "$tmp/compare" --tolerance 0 ||
    fail "the cluster's runs differ from the local sweep's"
say "compare --tolerance 0: the cluster's runs and the local sweep's are identical"
say "passed in $(($(date +%s) - started)) s"
