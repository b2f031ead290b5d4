#!/usr/bin/env bash
# A throwaway single-node Slurm cluster in one folder, for homeonorm's cluster test
# (scripts/cluster-test.sh) or for trying the shipped sbatch file on a laptop:
#
#   scripts/slurm/cluster.sh start DIR   # renders DIR/slurm.conf and DIR/start.sh, runs it,
#                                        # waits until the node takes jobs
#   export SLURM_CONF=DIR/slurm.conf     # then sbatch, squeue, scontrol, scancel as usual
#   scripts/slurm/cluster.sh stop DIR    # stops the daemons start.sh started (by their PIDs)
#
# Everything lives in DIR: its own munge key and socket, its own ports, state, spool,
# logs and PID files; nothing under /etc is read or changed. Needs root and Debian's
# slurmctld, slurmd, slurm-client and munge (scripts/cluster-test.sh installs them).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command="${1:-}"
dir="${2:-}"
if [ -z "$command" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    mkdir -p "$dir/state" "$dir/spool"
    dir="$(cd "$dir" && pwd)"
    local host cpus memory_mb
    host="$(hostname -s)"
    cpus="$(nproc)"
    memory_mb=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024 / 2))
    sed -e "s|@DIR@|$dir|g" -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY_MB@|$memory_mb|g" \
        -e "s|@CTLD_PORT@|$(free_port)|g" -e "s|@SLURMD_PORT@|$(free_port)|g" \
        "$here/slurm.conf.in" >"$dir/slurm.conf"
    # munge refuses a key that others can read.
    dd if=/dev/urandom of="$dir/munge.key" bs=1 count=1024 status=none
    chmod 400 "$dir/munge.key"
    cat >"$dir/start.sh" <<START
#!/usr/bin/env bash
# Starts the cluster of $dir/slurm.conf; each daemon's PID goes to $dir/pids.
set -euo pipefail
munged -F --force --key-file=$dir/munge.key --socket=$dir/munge.socket \\
    --pid-file=$dir/munged.pid --log-file=$dir/munged.log --seed-file=$dir/munge.seed >>$dir/munged.out 2>&1 &
echo \$! >>$dir/pids
for _ in \$(seq 100); do [ -S $dir/munge.socket ] && break; sleep 0.1; done
slurmctld -D -i -f $dir/slurm.conf >>$dir/slurmctld.out 2>&1 &
echo \$! >>$dir/pids
slurmd -D -f $dir/slurm.conf >>$dir/slurmd.out 2>&1 &
echo \$! >>$dir/pids
START
    chmod +x "$dir/start.sh"
    : >"$dir/pids"
    "$dir/start.sh"
    local state=""
    for _ in $(seq 150); do
        state="$(SLURM_CONF="$dir/slurm.conf" sinfo -h -N -o %t 2>/dev/null || true)"
        [ "$state" = "idle" ] && return 0
        sleep 0.2
    done
    echo "slurm cluster: the node is not idle after 30 s (state: '${state:-no answer}'); logs in $dir:" >&2
    tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/munged.log >&2 2>/dev/null || true
    return 1
}

stop() {
    [ -f "$dir/pids" ] || return 0
    local pids
    pids="$(tac "$dir/pids")"
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 150); do
        local alive=0
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -f "$dir/pids"
}

case "$command" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
