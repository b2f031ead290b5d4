#!/usr/bin/env bash
# A throwaway Slurm cluster in one folder, for homeonorm's cluster tests
# (scripts/cluster-test.sh, scripts/multinode-test.sh) or for trying the shipped sbatch
# file on a laptop:
#
#   scripts/slurm/cluster.sh start DIR [--nodes N] [--cpus C] [--max-array-size M]
#                                      # renders DIR/slurm.conf and DIR/start.sh, runs it,
#                                      # waits until every node takes jobs
#   export SLURM_CONF=DIR/slurm.conf   # then sbatch, squeue, scontrol, scancel ...
#   scripts/slurm/cluster.sh client DIR sbatch ...   # ... where the controller is reachable
#   scripts/slurm/cluster.sh stop DIR  # stops everything start.sh started
#
# Without --nodes: one node, this host, on loopback. With --nodes N: a controller and N
# compute nodes node1…nodeN, each in its own network namespace with its own address
# (10.213.0.1 the controller, 10.213.0.1I node I: addresses only inside the namespaces
# made here, on a bridge inside the controller's) and its own host name (`unshare
# --uts`); clients run in the controller's namespace (`client`). Every node sees this
# host's filesystem, as nodes see a shared filesystem. A node's faults, for tests:
#
#   cluster.sh lose DIR NODE        kill -9 its slurmd and every process of its jobs at once
#   cluster.sh revive DIR NODE      start its slurmd again (it rejoins: ReturnToService=2)
#   cluster.sh stall DIR NODE       SIGSTOP its jobs' processes (slurmd still answers)
#   cluster.sh wake DIR NODE        SIGCONT them
#   cluster.sh cut DIR NODE         its link to the controller down (its jobs run on)
#   cluster.sh reconnect DIR NODE   the link up again
#
# Everything lives in DIR: its own munge key and socket, ports, state, spool, logs and
# PID files; nothing under /etc is read or changed. `stop` ends the daemons by their
# PIDs, every process left in the namespaces, and the namespaces. Needs root and
# Debian's slurmctld, slurmd, slurm-client and munge (the tests install them).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command="${1:-}"
dir="${2:-}"
usage() {
    echo "usage: $0 start DIR [--nodes N] [--cpus C] [--max-array-size M] | stop DIR | client DIR COMMAND... |" \
        "lose|revive|stall|wake|cut|reconnect DIR NODE" >&2
    exit 2
}
[ -n "$command" ] && [ -n "$dir" ] || usage
shift 2

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The multi-node cluster's namespaces: DIR/netns holds their common prefix.
prefix() { cat "$dir/netns" 2>/dev/null; }
multi() { [ -f "$dir/netns" ]; }
node_ns() { echo "$(prefix)-${1#node}"; }
in_ns() { # NAMESPACE COMMAND...: COMMAND in that network namespace (the filesystem as it is)
    local ns="$1"
    shift
    nsenter --net="/run/netns/$ns" "$@"
}

start() {
    local nodes=0 cpus max_array=1001
    cpus="$(nproc)"
    while [ $# -gt 0 ]; do
        case "$1" in
        --nodes) nodes="$2" ;;
        --cpus) cpus="$2" ;;
        --max-array-size) max_array="$2" ;;
        *) usage ;;
        esac
        shift 2
    done
    mkdir -p "$dir/state" "$dir/spool"
    dir="$(cd "$dir" && pwd)"
    local memory_mb ctld_host node_lines="" node_list ctld_port slurmd_port slurmd_timeout
    memory_mb=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024 / 2 / (nodes > 0 ? nodes : 1)))
    if [ "$nodes" = 0 ]; then
        local host
        host="$(hostname -s)"
        ctld_host="$host"
        node_lines="NodeName=$host CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN"
        node_list="$host"
        ctld_port="$(free_port)" slurmd_port="$(free_port)" slurmd_timeout=300
    else
        [ "$nodes" -ge 1 ] && [ "$nodes" -le 9 ] || { echo "cluster.sh: --nodes takes 1 to 9" >&2; exit 2; }
        ctld_host="ctl(10.213.0.1)"
        for i in $(seq "$nodes"); do
            node_lines+="NodeName=node$i NodeAddr=10.213.0.1$i NodeHostname=node$i CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN"$'\n'
        done
        node_list="node[1-$nodes]"
        # Each daemon in its own namespace: the usual ports, no clash with anything here.
        ctld_port=6817 slurmd_port=6818 slurmd_timeout=10
    fi
    local conf
    conf="$(<"$here/slurm.conf.in")"
    conf="${conf//@DIR@/$dir}"
    conf="${conf//@CTLD_HOST@/$ctld_host}"
    conf="${conf//@CTLD_PORT@/$ctld_port}"
    conf="${conf//@SLURMD_PORT@/$slurmd_port}"
    conf="${conf//@SLURMD_TIMEOUT@/$slurmd_timeout}"
    conf="${conf//@MAX_ARRAY_SIZE@/$max_array}"
    conf="${conf//@NODES@/${node_lines%$'\n'}}"
    conf="${conf//@NODE_LIST@/$node_list}"
    printf '%s\n' "$conf" >"$dir/slurm.conf"
    # munge refuses a key that others can read.
    dd if=/dev/urandom of="$dir/munge.key" bs=1 count=1024 status=none
    chmod 400 "$dir/munge.key"
    : >"$dir/pids"
    if [ "$nodes" -gt 0 ]; then
        make_namespaces "$nodes"
    fi
    write_start_scripts "$nodes"
    "$dir/start.sh"
    local states=""
    for _ in $(seq 150); do
        states="$(client sinfo -h -N -o %t 2>/dev/null | sort -u | tr '\n' ' ' || true)"
        [ "$states" = "idle " ] && return 0
        sleep 0.2
    done
    echo "slurm cluster: the nodes are not all idle after 30 s (states: '${states:-no answer}'); logs in $dir:" >&2
    tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd-*.log "$dir"/munged.log >&2 2>/dev/null || true
    return 1
}

# The controller's namespace with a bridge, and one namespace per node joined to it by a veth pair.
make_namespaces() {
    local nodes="$1" prefix ctl
    prefix="hn$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
    echo "$prefix" >"$dir/netns"
    ctl="$prefix-ctl"
    ip netns add "$ctl"
    ip -n "$ctl" link set lo up
    ip -n "$ctl" link add br0 type bridge
    ip -n "$ctl" addr add 10.213.0.1/24 dev br0
    ip -n "$ctl" link set br0 up
    for i in $(seq "$nodes"); do
        local ns="$prefix-$i"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip link add "${prefix}v$i" type veth peer name eth0 netns "$ns"
        ip link set "${prefix}v$i" netns "$ctl"
        ip -n "$ctl" link set "${prefix}v$i" master br0 up
        ip -n "$ns" addr add "10.213.0.1$i/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

# DIR/start.sh starts munge, the controller and every node; DIR/node-NAME.sh one node's slurmd.
write_start_scripts() {
    local nodes="$1" ctld node_names
    if [ "$nodes" = 0 ]; then
        ctld="slurmctld -D -i -f $dir/slurm.conf"
        node_names="$(hostname -s)"
    else
        ctld="nsenter --net=/run/netns/$(prefix)-ctl unshare --uts sh -c 'hostname ctl; exec slurmctld -D -i -f $dir/slurm.conf'"
        node_names="$(seq -f 'node%g' "$nodes")"
    fi
    for node in $node_names; do
        mkdir -p "$dir/spool/$node"
        local slurmd="slurmd -D -N $node -f $dir/slurm.conf"
        [ "$nodes" = 0 ] || slurmd="nsenter --net=/run/netns/$(node_ns "$node") unshare --uts sh -c 'hostname $node; exec $slurmd'"
        cat >"$dir/node-$node.sh" <<NODE
#!/usr/bin/env bash
# Starts node $node's slurmd; its PID goes to $dir/pids and $dir/slurmd-$node.pids.
$slurmd >>$dir/slurmd-$node.out 2>&1 &
echo \$! | tee -a $dir/pids >>$dir/slurmd-$node.pids
NODE
        chmod +x "$dir/node-$node.sh"
    done
    cat >"$dir/start.sh" <<START
#!/usr/bin/env bash
# Starts the cluster of $dir/slurm.conf; each daemon's PID goes to $dir/pids.
set -euo pipefail
munged -F --force --key-file=$dir/munge.key --socket=$dir/munge.socket \\
    --pid-file=$dir/munged.pid --log-file=$dir/munged.log --seed-file=$dir/munge.seed >>$dir/munged.out 2>&1 &
echo \$! >>$dir/pids
for _ in \$(seq 100); do [ -S $dir/munge.socket ] && break; sleep 0.1; done
$ctld >>$dir/slurmctld.out 2>&1 &
echo \$! >>$dir/pids
$(for node in $node_names; do echo "$dir/node-$node.sh"; done)
START
    chmod +x "$dir/start.sh"
}

client() {
    if multi; then in_ns "$(prefix)-ctl" env SLURM_CONF="$dir/slurm.conf" "$@"; else SLURM_CONF="$dir/slurm.conf" "$@"; fi
}

# Every process in a node's namespace; with `jobs`, only its jobs' (not slurmd, not slurmstepd).
node_pids() {
    local pid
    for pid in $(ip netns pids "$(node_ns "$1")" 2>/dev/null); do
        if [ "${2:-}" = jobs ]; then
            case "$(cat "/proc/$pid/comm" 2>/dev/null)" in slurmd | slurmstepd | "") continue ;; esac
        fi
        echo "$pid"
    done
}

node_fault() {
    local node="${1:-}"
    multi || { echo "cluster.sh: node faults need a multi-node cluster (start --nodes N)" >&2; exit 2; }
    [ -n "$node" ] && [ -e "/run/netns/$(node_ns "$node")" ] || { echo "cluster.sh: no node '$node' in $dir" >&2; exit 2; }
    case "$command" in
    lose) node_pids "$node" | xargs -r kill -KILL ;;
    revive) "$dir/node-$node.sh" ;;
    stall) node_pids "$node" jobs | xargs -r kill -STOP ;;
    wake) node_pids "$node" jobs | xargs -r kill -CONT ;;
    cut) ip -n "$(prefix)-ctl" link set "$(prefix)v${node#node}" down ;;
    reconnect) ip -n "$(prefix)-ctl" link set "$(prefix)v${node#node}" up ;;
    esac
}

stop() {
    local pids=""
    [ -f "$dir/pids" ] && pids="$(tac "$dir/pids")"
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 150); do
        local alive=0
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -f "$dir/pids"
    if multi; then
        local ns
        for ns in $(ip netns list | awk '{ print $1 }' | grep "^$(prefix)-"); do
            ip netns pids "$ns" | xargs -r kill -KILL
            ip netns del "$ns"
        done
        rm -f "$dir/netns"
    fi
}

case "$command" in
start) start "$@" ;;
stop) stop ;;
client) client "$@" ;;
lose | revive | stall | wake | cut | reconnect) node_fault "$@" ;;
*) usage ;;
esac
