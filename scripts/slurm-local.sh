#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for flowline's tests of `--executor slurm`:
#   scripts/slurm-local.sh start DIR   # writes DIR/slurm.conf, starts munged, slurmctld, slurmd
#   scripts/slurm-local.sh stop DIR    # stops what start started
# Use it with SLURM_CONF=DIR/slurm.conf. Needs root and Debian's slurmctld, slurmd,
# slurm-client and munge (`apt-get install --no-install-recommends ...`). No systemd: the
# daemons are started directly and write pid files under DIR. Its own ports (16817/16818),
# so that it does not meet a cluster already running here.
set -euo pipefail
action="${1:?start or stop}"
dir="$(mkdir -p "${2:?a folder for the cluster}" && cd "$2" && pwd)"
conf="$dir/slurm.conf"
export SLURM_CONF="$conf"

case "$action" in
start)
    for cmd in munged slurmctld slurmd sbatch; do
        command -v "$cmd" >/dev/null || { echo "slurm-local: $cmd is not installed" >&2; exit 3; }
    done
    [ "$(id -u)" = 0 ] || { echo "slurm-local: slurmd must run as root" >&2; exit 3; }
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
    host="$(hostname -s)"
    cpus="$(nproc)"
    mem="$(awk '/MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)"
    cat > "$conf" <<CONF
ClusterName=flowline-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    # munged wants its socket folder 755 and its key readable by it alone.
    if ! munge -n >/dev/null 2>&1; then
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chmod 755 /run/munge
        chown -R munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
        if [ ! -s /etc/munge/munge.key ]; then
            (mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none)
            chown munge:munge /etc/munge/munge.key 2>/dev/null || true
            chmod 400 /etc/munge/munge.key
        fi
        if id munge >/dev/null 2>&1 && command -v runuser >/dev/null; then
            runuser -u munge -- munged 2>/dev/null || munged --force
        else
            munged --force
        fi
    fi
    slurmctld
    slurmd
    # Ready when the node answers idle.
    for _ in $(seq 1 60); do
        if sinfo -h -o "%T" 2>/dev/null | grep -q idle; then
            echo "slurm-local: up, SLURM_CONF=$conf"
            exit 0
        fi
        sleep 0.5
    done
    echo "slurm-local: the node did not come up; see $dir/log" >&2
    exit 1
    ;;
stop)
    pids=""
    for daemon in slurmd slurmctld; do
        pidfile="$dir/run/$daemon.pid"
        [ -s "$pidfile" ] && pids="$pids $(cat "$pidfile")"
    done
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
    # The daemons remove their pid files as they start to exit: wait on the processes.
    for _ in $(seq 1 40); do
        alive=0
        for pid in $pids; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && exit 0
        sleep 0.25
    done
    echo "slurm-local: still running: $pids" >&2
    exit 1
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
