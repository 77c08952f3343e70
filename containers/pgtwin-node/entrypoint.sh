#!/usr/bin/env bash
# Node entrypoint without systemd: corosync in the foreground (as a child), wait until its ring answers, then
# pacemakerd. SIGTERM stops pacemaker first (so resources stop cleanly), then corosync.
set -euo pipefail

log() { printf '[pgtwin-node] %s\n' "$*" >&2; }

for f in /etc/corosync/corosync.conf /etc/corosync/authkey; do
    waited=0
    until [ -s "$f" ]; do
        [ $waited -eq 0 ] && log "waiting for $f"
        sleep 0.2
        waited=1
    done
done
chmod 0400 /etc/corosync/authkey

# Like a boot: the filesystems of /etc/fstab (container mode's Btrfs on a loop file) come back after a restart.
if grep -qEv '^[[:space:]]*(#|$)' /etc/fstab 2>/dev/null; then
    mount -a || log "mount -a failed"
fi

# A node of container mode on Docker: its engine, as a host's init would start it (the private-engine flags of
# docs/development.md: the node's firewall and routes stay as they are; PostgreSQL runs on the host network).
if [ "${PGTWIN_NODE_DOCKERD:-0}" = 1 ]; then
    dockerd --iptables=false --ip-masq=false >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 100); do
        docker info >/dev/null 2>&1 && break
        sleep 0.2
    done
    docker info >/dev/null 2>&1 || log "dockerd did not answer within 20 s (/var/log/dockerd.log)"
fi

# /run is a fresh tmpfs on every start (a stale /run makes a restarted node believe resources still run).
mkdir -p /run/corosync /run/crm /run/postgresql /var/log/pacemaker /var/log/cluster
chown postgres:postgres /run/postgresql
chown hacluster:haclient /var/log/pacemaker 2>/dev/null || true

corosync -f &
corosync_pid=$!

pacemaker_pid=""
shutdown() {
    log "stopping pacemaker and corosync"
    if [ -n "$pacemaker_pid" ]; then
        kill -TERM "$pacemaker_pid" 2>/dev/null || true
        wait "$pacemaker_pid" 2>/dev/null || true
    fi
    kill -TERM "$corosync_pid" 2>/dev/null || true
    wait "$corosync_pid" 2>/dev/null || true
    exit 0
}
trap shutdown TERM INT
# Any other signal that would end this script (and so the node) is logged and ignored: a stray signal is a bug
# to find (the log says which), never a reason for the node to vanish.
for sig in HUP USR1 USR2 PIPE ALRM; do
    # shellcheck disable=SC2064
    trap "log 'received SIG$sig; ignored'" "$sig"
done

for _ in $(seq 1 100); do
    corosync-cfgtool -s >/dev/null 2>&1 && break
    kill -0 "$corosync_pid" 2>/dev/null || { log "corosync exited"; exit 1; }
    sleep 0.1
done
corosync-cfgtool -s >/dev/null 2>&1 || { log "corosync did not answer within 10 s"; exit 1; }
log "corosync is up; starting pacemakerd"

pacemakerd &
pacemaker_pid=$!
# Either daemon exiting ends the node: a half-running cluster stack is worse than a dead node. A trapped signal
# also ends `wait`: wait again while both still run.
while :; do
    status=0
    wait -n "$corosync_pid" "$pacemaker_pid" || status=$?
    if ! kill -0 "$corosync_pid" 2>/dev/null; then
        log "corosync exited (status $status); stopping the node"
        break
    fi
    if ! kill -0 "$pacemaker_pid" 2>/dev/null; then
        log "pacemakerd exited (status $status; 100 is a fatal error, such as this node learning it was fenced); stopping the node"
        # corosync's and pacemaker's IPC ring buffers live in /dev/shm: once it was full ("No space left on device")
        log "/dev/shm: $(df -h /dev/shm | tail -1); largest: $(du -s /dev/shm/* 2>/dev/null | sort -rn | head -5 | tr '\n' ' ')"
        break
    fi
done
shutdown
