# What the Slurm tests (scripts/cluster-test.sh, scripts/multinode-test.sh) share; sourced
# after they set `name` (their name in messages), `repo`, `binary` and `timeout_s`.
# Gives: say, fail, Debian's Slurm and munge installed when missing, a temporary folder
# $tmp with $cluster in it (torn down on every exit, Ctrl-C and TERM included; kept with
# CLUSTER_TEST_KEEP=1), slurm (a client command where the controller is reachable),
# wait_until, the array tasks' state, and a CIFAR-10-format data set and a 6-run grid.
started=$(date +%s)

say() { echo "$name: $*"; }
failure=""
fail() {
    failure="$*"
    echo "$name: FAILED: $*" >&2
    exit 1
}
[ -x "$binary" ] || fail "no homeonorm binary at $binary (make build first)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
    ! command -v munged >/dev/null || ! command -v ip >/dev/null || ! command -v nsenter >/dev/null; then
    say "installing Debian's slurmctld, slurmd, slurm-client, munge, iproute2 and util-linux"
    # flock: one apt-get at a time when CI runs another test's installs beside this one.
    if ! flock /tmp/homeonorm-apt.lock sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
        -y -qq --no-install-recommends slurmctld slurmd slurm-client munge iproute2 util-linux' >"/tmp/$name-apt.log" 2>&1; then
        tail -n 20 "/tmp/$name-apt.log" >&2
        fail "cannot install Slurm, munge and iproute2 with apt-get (root and Debian's package archive are needed; log above)"
    fi
fi

tmp="$(mktemp -d "/tmp/homeonorm-$name.XXXXXX")"
cluster="$tmp/cluster"
cleanup() {
    status=$?
    trap - EXIT INT TERM
    "$repo/scripts/slurm/cluster.sh" stop "$cluster" || true
    if [ "$status" != 0 ]; then
        for log in "$tmp"/*/logs/*.out; do
            [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
        done
        # Again below the logs, where a reader of the output's tail (CI's) sees it.
        [ -z "$failure" ] || echo "$name: FAILED: $failure" >&2
    fi
    if [ "${CLUSTER_TEST_KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

slurm() { "$repo/scripts/slurm/cluster.sh" client "$cluster" "$@"; }

wait_until() { # WHAT COMMAND...: polls COMMAND until it succeeds, within the time limit
    local what="$1"
    shift
    until "$@"; do
        [ $(($(date +%s) - started)) -lt "$timeout_s" ] || fail "timed out after ${timeout_s}s waiting for $what"
        sleep 0.2
    done
}
task_field() { slurm scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -n 1 | cut -d= -f2; }
task_state() { task_field "$1" JobState; }
task_is() { [ "$(task_state "$1")" = "$2" ]; }
ended_as() { # TASK STATE: the task ended so (fails the test if it ended otherwise)
    local state
    state="$(task_state "$1")"
    [ "$state" = "$2" ] || fail "task $1 ended $state, not $2"
}
job_done() { [ -z "$(slurm squeue -h -j "$1" -o %i 2>/dev/null)" ]; }

# CIFAR-10-format files (6 × 400 records of random pixels) and a grid of 3 methods × 2 seeds.
mkdir -p "$tmp/data/cifar-10-batches-bin"
python3 - "$tmp/data/cifar-10-batches-bin" <<'PY'
import os, random, sys
rng = random.Random(7)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        f.write(b"".join(bytes([rng.randrange(10)]) + rng.randbytes(3072) for _ in range(400)))
PY
experiment="$tmp/cluster-test.toml"
cat >"$experiment" <<'TOML'
name = "cluster-test"
datasets = ["cifar10"]
methods = ["vanilla", "batch-norm", "synaptic-scaling"]
seeds = 2

[settings]
iterations = 500
eval_every = 250
record_every = 100
test_batch_size = 200
TOML
runs=6
# The grid's run folders in its order (method-major, seed-minor) under results folder $1.
grid_dirs() {
    local dir
    for dir in "$1"/cifar10/{vanilla,batch-norm,synaptic-scaling}/lr0.003/seed{0,1}; do echo "$dir"; done
}
# Shard I of N's run folders under results folder $1 (run i belongs to shard i mod N).
shard_dirs() {
    local results="$1" shard="$2" count="$3" i=0 dir
    for dir in $(grid_dirs "$results"); do
        [ $((i % count)) = "$shard" ] && echo "$dir"
        i=$((i + 1))
    done
}
# A run of shard I of N has written a checkpoint (is mid-run).
shard_checkpointed() {
    local dir
    for dir in $(shard_dirs "$@"); do
        [ -f "$dir/checkpoint.safetensors" ] && return 0
    done
    return 1
}
export PATH="$(dirname "$binary"):$PATH" HOMEONORM_RUNNER=native HOMEONORM_DEVICE=cpu HOMEONORM_DATA="$tmp/data" \
    RUST_LOG=info

# The same grid swept here, without a scheduler, into $tmp/local.
local_sweep() {
    homeonorm sweep "$experiment" --out "$tmp/local" --data-dir "$tmp/data" --limit 1000 --device cpu \
        --threads 1 >"$tmp/local.log" 2>&1 || { cat "$tmp/local.log" >&2; fail "the local sweep failed"; }
}

# Every run of results folder $1 complete and trained to completion exactly once across the
# logs in $2, and bit for bit the local sweep's runs (compare --tolerance 0, and the weights
# and measure files byte for byte).
check_results() {
    local results="$1" logs="$2" plan dir n
    homeonorm report "$results" >/dev/null
    grep -q "None: every run folder found is complete." "$results/report/report.md" ||
        fail "report finds runs not complete: $(sed -n '/## Runs left out/,$p' "$results/report/report.md")"
    plan="$(homeonorm sweep "$experiment" --out "$(dirname "$results")" --data-dir "$tmp/data" --limit 1000 --dry-run |
        grep " runs in this shard: ")"
    [ "$plan" = "$runs runs in this shard: $runs done, 0 to run" ] || fail "$results: $plan"
    for dir in $(grid_dirs "$results"); do
        n="$(cat "$logs"/*.out | grep -c -F "$dir: test accuracy")" || true
        [ "$n" = 1 ] || fail "$dir was trained to completion $n times"
        [ ! -e "$dir/.claim" ] || fail "$dir: a claim was left behind"
    done
    homeonorm compare "$results" "$tmp/local/cluster-test" --out "$tmp/compare" --tolerance 0 >/dev/null ||
        fail "$results: the cluster's runs differ from the local sweep's ($(grep -m 3 -i differ "$tmp/compare/compare.md"))"
    # compare reads the measures; the weights and measure files, byte for byte, as well.
    local file local_dir
    for dir in $(grid_dirs "$results"); do
        local_dir="$tmp/local/cluster-test/${dir#"$results"/}"
        for file in model.safetensors curve.csv activation_prob.csv unit_stats.csv; do
            cmp -s "$dir/$file" "$local_dir/$file" || fail "$dir/$file differs from the local sweep's"
        done
    done
}
