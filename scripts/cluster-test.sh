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
name=cluster-test
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="$(realpath "${1:-$repo/target/release/homeonorm}")"
timeout_s="${CLUSTER_TEST_TIMEOUT_S:-600}"
source "$repo/scripts/slurm/test-common.sh"

"$repo/scripts/slurm/cluster.sh" start "$cluster" || fail "Slurm did not start (its logs are printed above)"
export SLURM_CONF="$cluster/slurm.conf"
say "a single-node Slurm cluster is up ($(sinfo -h -N -o '%N %c CPUs %t'); slurm.conf and start.sh in $cluster)"
mkdir -p "$tmp/work/logs"
results="$tmp/out/cluster-test"
export HOMEONORM_OUT="$tmp/out" HOMEONORM_SWEEP_ARGS="--limit 1000 --checkpoint-every 100it"
cd "$tmp/work"
# The file as shipped; sbatch's options fit its resources to this one CPU node.
submit() {
    sbatch --parsable --array=0-2 --gres=none --cpus-per-task=1 --mem=1G --time=10 \
        "$repo/deploy/slurm-array.sbatch" "$experiment"
}

first="$(submit)"
say "submitted array job $first (3 tasks, one shard each)"

# Task 1 is requeued mid-run: it stops, releases its claim and comes back, and goes on
# from its checkpoint.
wait_until "task 1 to checkpoint a run" shard_checkpointed "$results" 1 3
scontrol requeue "${first}_1"
say "requeued task ${first}_1 mid-run"
# Task 2 gets the batch shell's TERM (what --signal=B:TERM@120 sends before the time limit).
wait_until "task 2 to checkpoint a run" shard_checkpointed "$results" 2 3
scancel --signal=TERM --batch "${first}_2"
say "sent TERM to task ${first}_2's batch shell mid-run"
wait_until "task 2 to end" task_is "${first}_2" FAILED
# The README's promise: a stopped task exits 130 (homeonorm is the batch shell).
[ "$(task_field "${first}_2" ExitCode)" = "130:0" ] ||
    fail "the TERM'd task 2 ended with ExitCode=$(task_field "${first}_2" ExitCode), not 130:0"
stopped=""
for dir in $(shard_dirs "$results" 2 3); do
    [ -e "$dir/.claim" ] && fail "$dir: task 2's claim was not released when it stopped"
    [ -f "$dir/checkpoint.safetensors" ] && [ ! -f "$dir/summary.json" ] && stopped="$dir"
done
[ -n "$stopped" ] || fail "task 2 left no checkpointed run: TERM did not stop it mid-run"
say "task 2 stopped: $stopped unfinished with its checkpoint, its claim released"
wait_until "array job $first to finish" job_done "$first"
ended_as "${first}_0" COMPLETED
ended_as "${first}_1" COMPLETED # (the requeued one)
[ "$(task_field "${first}_1" Restarts)" = 1 ] || fail "task 1 was not restarted once (Restarts=$(task_field "${first}_1" Restarts))"
for dir in $(shard_dirs "$results" 0 3) $(shard_dirs "$results" 1 3); do
    [ -f "$dir/summary.json" ] || fail "$dir: not complete after tasks 0 and 1 finished"
done
log1="logs/homeonorm-${first}_1.out"
grep -q "task 1/3 (shard 1/3), attempt 1," "$log1" && grep -q "task 1/3 (shard 1/3), attempt 2," "$log1" ||
    fail "$log1 does not show both attempts of the requeued task"
# Its first attempt stopped cleanly: the stop's own error line, no panic, before attempt 2 began.
first_attempt="$(sed -n '/task 1\/3 (shard 1\/3), attempt 1,/,/task 1\/3 (shard 1\/3), attempt 2,/p' "$log1")"
grep -q "^error: .*interrupted by a stop signal" <<<"$first_attempt" && ! grep -q "panicked" <<<"$first_attempt" ||
    fail "$log1: the requeued task's first attempt did not stop cleanly: $(tail -n 3 <<<"$first_attempt")"
resumed="$(grep -o 'resumed at iteration [0-9]*' "$log1" | head -n 1 || true)"
[ -n "$resumed" ] || fail "$log1: the requeued task did not go on from its checkpoint"
say "task 1 came back (Restarts=1), $resumed, and finished its shard; its log holds both attempts"

second="$(submit)"
say "resubmitted the array as job $second"
wait_until "array job $second to finish" job_done "$second"
for t in 0 1 2; do
    ended_as "${second}_$t" COMPLETED
done
resumed="$(grep -o 'resumed at iteration [0-9]*' "logs/homeonorm-${second}_2.out" | head -n 1 || true)"
[ -n "$resumed" ] || fail "the resubmitted task 2 did not go on from the stopped run's checkpoint"
say "the resubmitted task 2 went on from the stopped run's checkpoint: $resumed"

# Every run complete, each trained to completion exactly once across all attempts, and
# bit for bit the same runs as the same grid swept here without a scheduler.
local_sweep
check_results "$results" logs
say "report: all $runs runs complete, each trained to completion once; compare --tolerance 0: identical to a local sweep"
say "passed in $(($(date +%s) - started)) s"
