#!/usr/bin/env bash
# make multinode-test: the shipped Slurm array job (deploy/slurm-array.sbatch, unchanged)
# on a throwaway Slurm cluster of three compute nodes, each slurmd in its own network
# namespace with its own address and host name (scripts/slurm/cluster.sh --nodes 3),
# all sharing one results folder as nodes share a filesystem, through the faults a real
# cluster produces. Each fault on a results folder of its own; after each, every run is
# complete, trained to completion exactly once, and bit for bit the same grid swept
# here without a scheduler (compare --tolerance 0):
#
#   lost      a node's slurmd and every process of its jobs killed at once mid-run: Slurm
#             marks it DOWN and requeues its task onto another node, which takes the
#             run's claim over after the claim timeout and goes on from its checkpoint
#   stalled   a node's job processes stopped (SIGSTOP) past the claim timeout while a
#             sweep on another node waits for the run: that node takes it over; the
#             stalled worker, continued, writes nothing into it and ends its sweep
#   cut off   a node's link to the controller down while its job runs, then up: Slurm
#             requeues the task elsewhere, the two attempts share the shard through the
#             claims
#   at once   two array jobs of one sweep submitted together, one with a task per shard,
#             one with three shards per task (HOMEONORM_SHARDS_PER_TASK) under a cluster
#             whose MaxArraySize (3) refuses a fourth task
#
#   scripts/multinode-test.sh [HOMEONORM_BINARY]     (default target/release/homeonorm)
#
# Root; installs Debian's Slurm and munge when missing. Everything lives in one
# temporary folder and the test's own namespaces, torn down on every exit (Ctrl-C and
# TERM included; CLUSTER_TEST_KEEP=1 keeps the folder). CLUSTER_TEST_TIMEOUT_S (default
# 900) bounds the whole test.
set -euo pipefail
name=multinode-test
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="$(realpath "${1:-$repo/target/release/homeonorm}")"
timeout_s="${CLUSTER_TEST_TIMEOUT_S:-900}"
source "$repo/scripts/slurm/test-common.sh"
node() { "$repo/scripts/slurm/cluster.sh" "$1" "$cluster" "$2"; }

# A claim untouched for 12 s is taken over; checkpoints every 100 iterations.
claim_timeout_s=12
export HOMEONORM_SWEEP_ARGS="--limit 1000 --checkpoint-every 100it --claim-timeout-minutes 0.2"
"$repo/scripts/slurm/cluster.sh" start "$cluster" --nodes 3 --cpus 2 --max-array-size 3 ||
    fail "Slurm did not start (its logs are printed above)"
say "a 3-node Slurm cluster is up: $(slurm sinfo -h -N -o '%N' | tr '\n' ' ')each in its own network namespace"
local_sweep

# FAULT SBATCH-OPTIONS...: submits the shipped array job for the fault's own results
# folder ($tmp/FAULT/out), from $tmp/FAULT (its logs in $tmp/FAULT/logs); prints the job id.
submit() {
    local fault="$1"
    shift
    mkdir -p "$tmp/$fault/logs"
    (cd "$tmp/$fault" && HOMEONORM_OUT="$tmp/$fault/out" slurm sbatch --parsable --gres=none --cpus-per-task=1 \
        --mem=1G --time=10 "$@" "$repo/deploy/slurm-array.sbatch" "$experiment")
}
results_of() { echo "$tmp/$1/out/cluster-test"; }
node_of() { task_field "$1" BatchHost; }
all_idle() { [ "$(slurm sinfo -h -o %t | sort -u)" = idle ]; }
node_down() { [ "$(slurm sinfo -h -n "$1" -o %t)" = "down*" ]; }
queue_empty() { [ -z "$(slurm squeue -h -o %i)" ]; }

# --- a node lost mid-run ---------------------------------------------------------------
job="$(submit lost --array=0-2)"
results="$(results_of lost)"
wait_until "task 1 to checkpoint a run" shard_checkpointed "$results" 1 3
lost_node="$(node_of "${job}_1")"
node lose "$lost_node"
say "lost: killed $lost_node (slurmd and every process of its jobs) while task ${job}_1 was mid-run"
wait_until "Slurm to mark $lost_node down" node_down "$lost_node"
wait_until "job $job to finish" job_done "$job"
for t in 0 1 2; do ended_as "${job}_$t" COMPLETED; done
[ "$(task_field "${job}_1" Restarts)" -ge 1 ] || fail "task ${job}_1 was not requeued"
[ "$(node_of "${job}_1")" != "$lost_node" ] || fail "task ${job}_1 ran again on the lost node"
log="$tmp/lost/logs/homeonorm-${job}_1.out"
grep -q "taking over a stale claim" "$log" || fail "$log: the requeued task did not take the lost node's claim over"
resumed="$(grep -o 'resumed at iteration [0-9]*' "$log" | head -n 1)" ||
    fail "$log: the requeued task did not go on from the checkpoint"
check_results "$results" "$tmp/lost/logs"
say "lost: $lost_node marked down, task 1 requeued onto $(node_of "${job}_1"), took the claim over after the" \
    "timeout and $resumed; all runs complete once, identical to the local sweep"
node revive "$lost_node"
wait_until "$lost_node to rejoin" all_idle

# --- a node that stalls past the claim timeout ------------------------------------------
# Two one-task arrays of the whole grid: A on node1, B on node2; node1 stalls with a run.
a="$(submit stalled --array=0 -w node1)"
b="$(submit stalled --array=0 -w node2)"
results="$(results_of stalled)"
held_by() { # HOST: a run whose claim HOST holds has a checkpoint; prints it
    local dir
    for dir in $(grid_dirs "$results"); do
        if grep -q "\"host\":\"$1\"" "$dir/.claim" 2>/dev/null && [ -f "$dir/checkpoint.safetensors" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}
# Stopped while it holds a checkpointed run (if the run ended in between, let it go on and try again).
stalled_run=""
for _ in $(seq 10); do
    wait_until "node1 to checkpoint a run it holds" held_by node1 >/dev/null
    node stall node1
    stalled_run="$(held_by node1)" && break
    node wake node1
done
[ -n "$stalled_run" ] || fail "node1 never held a checkpointed run when stopped (10 tries)"
say "stalled: node1's job processes stopped (SIGSTOP) with $stalled_run claimed and checkpointed"
taken() { grep -q '"host":"node2"' "$stalled_run/.claim" 2>/dev/null || [ -f "$stalled_run/summary.json" ]; }
wait_until "node2 to take $stalled_run over" taken
log_a="$tmp/stalled/logs/homeonorm-${a}_0.out"
lines_before_wake="$(wc -l <"$log_a")"
node wake node1
say "stalled: node2 took the run over after the ${claim_timeout_s} s claim timeout; node1 continued"
wait_until "both jobs to finish" queue_empty
ended_as "${a}_0" COMPLETED
ended_as "${b}_0" COMPLETED
# From the wake to the worker's word that its run was taken over: no checkpoint (it stops
# at its first checkpoint after waking, unwritten). It may then train runs still unclaimed.
stopped="taken over by another worker; stopped without writing"
after_wake="$(tail -n +"$((lines_before_wake + 1))" "$log_a")"
grep -q "$stopped" <<<"$after_wake" || fail "the stalled worker did not find its run taken over"
! sed "/$stopped/,\$d" <<<"$after_wake" | grep -q "checkpoint at iteration" ||
    fail "the stalled worker wrote a checkpoint of its taken-over run after it woke"
grep -q "resumed at iteration" "$tmp/stalled/logs/homeonorm-${b}_0.out" ||
    fail "node2 did not go on from the stalled run's checkpoint"
check_results "$results" "$tmp/stalled/logs"
say "stalled: node1, continued, stopped the run unwritten; node2 finished it from the checkpoint; identical"

# --- a node cut off from the controller --------------------------------------------------
# One task of the whole grid, so that it still trains when Slurm starts it again elsewhere.
job="$(submit cutoff --array=0)"
results="$(results_of cutoff)"
wait_until "the task to checkpoint a run" shard_checkpointed "$results" 0 1
cut_node="$(node_of "${job}_0")"
node cut "$cut_node"
say "cut off: $cut_node's link to the controller down while task ${job}_0 trains on it"
wait_until "Slurm to mark $cut_node down" node_down "$cut_node"
started_elsewhere() { task_is "${job}_0" RUNNING && [ "$(node_of "${job}_0")" != "$cut_node" ]; }
wait_until "Slurm to start the task again on another node" started_elsewhere
runs_left="$(for dir in $(grid_dirs "$results"); do [ -f "$dir/summary.json" ] || echo "$dir"; done | wc -l)"
node reconnect "$cut_node"
wait_until "job $job to finish" job_done "$job"
ended_as "${job}_0" COMPLETED
check_results "$results" "$tmp/cutoff/logs"
taken_over="$(grep -c "taking over a stale claim" "$tmp/cutoff/logs/homeonorm-${job}_0.out")" || true
say "cut off: Slurm started the task again on $(node_of "${job}_0") with $runs_left of $runs runs unfinished" \
    "while the cut-off attempt still trained; $cut_node back; $taken_over run(s) taken over from the first" \
    "attempt's claims; all runs complete once, identical to the local sweep"
slurm scontrol update NodeName="$cut_node" State=RESUME 2>/dev/null || true

# --- two array jobs of one sweep at once, one under MaxArraySize ------------------------
if submit atonce --array=0-3 >/dev/null 2>&1; then
    fail "the cluster took a 4-task array: MaxArraySize=3 is not in effect"
fi
first="$(submit atonce --array=0-2)"
second="$(HOMEONORM_SHARDS_PER_TASK=3 submit atonce --array=0-1)"
say "at once: array $first (3 tasks, shard i/3) and array $second (2 tasks, 3 shards of 6 each) submitted together"
wait_until "both arrays to finish" queue_empty
for t in "${first}_0" "${first}_1" "${first}_2" "${second}_0" "${second}_1"; do ended_as "$t" COMPLETED; done
grep -q "(shard 3-5/6)" "$tmp/atonce/logs/homeonorm-${second}_1.out" || fail "task ${second}_1 did not run shards 3-5 of 6"
check_results "$(results_of atonce)" "$tmp/atonce/logs"
say "at once: no run trained twice; identical to the local sweep"
say "passed in $(($(date +%s) - started)) s"
