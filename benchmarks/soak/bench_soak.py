"""The soak: pgtwin clusters under pgbench load for a long time with no fault injected must never fail over
or fence by themselves (the timing settings that make failover fast must not fire on a loaded machine).

Real two-node clusters (the harness of tests/ha), one per mode given, all up and loaded at the same time (so
they share the machine's cores, a harder test than one at a time), each fenced by the lab power switch
(fence_docker; a fencing would really power a node off, and is counted). pgbench (TPC-B like, synchronous
replication) runs through each cluster's VIP for the whole time; a watcher asks each cluster every 2 s which
node is promoted, which timeline the primary runs, and whether Pacemaker recorded a failed action. At the end:
per mode, TPS, failovers (changes of the promoted node or of the timeline), fencing operations (the switch's
log and the fencer's history), failed actions, and the standby's largest replay lag."""
import argparse
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ha"))

import harness  # noqa: E402  pylint: disable=wrong-import-position,import-error


class Watcher(threading.Thread):
    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.seen = []  # (promoted node, primary's record), each time it changes
        self.reads = 0  # complete observations: one promoted node and its record
        self.failures = set()
        self.lag_max = 0.0
        self.errors = 0
        self.stop_event = threading.Event()

    def run(self):
        sql = "SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0) FROM pg_stat_replication"
        while not self.stop_event.wait(2):
            try:
                status = self.cluster.crm_status()
                promoted = sorted(name for name, role in self.cluster.roles().items() if role == "Promoted")
                record = self.cluster.record(promoted[0]) if len(promoted) == 1 else ""
                # Only complete observations count (one promoted node and its record): a failed read is not
                # a failover. A missing or second promoted node for longer than a read is seen as a change
                # of the promoted node or of its timeline once it is over.
                state = (promoted[0], record) if len(promoted) == 1 and record.startswith("PRIMARY:") else None
                if state is not None:
                    self.reads += 1
                if state is not None and (not self.seen or self.seen[-1] != state):
                    self.seen.append(state)
                for failure in status.iter("failure"):
                    self.failures.add((failure.get("node"), failure.get("task"), failure.get("exitreason")))
                if len(promoted) == 1:
                    out = self.cluster.node(promoted[0]).sh(
                        "psql -XAt -h /run/postgresql -d postgres -c \"%s\"" % sql, user="postgres", check=False)
                    self.lag_max = max(self.lag_max, float(out.strip() or 0))
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError, harness.ET.ParseError):
                self.errors += 1  # the watcher goes on: a slow crm_mon on a loaded machine is not a failover

    def finish(self):
        self.stop_event.set()
        self.join(30)

    @property
    def failovers(self):
        """Changes of the promoted node or of its timeline after the first complete observation."""
        return sum(1 for before, after in zip(self.seen, self.seen[1:]) if before != after)


def load(cluster, seconds, clients, out):
    try:
        out["pgbench"] = harness.pgbench(cluster, cluster.vip, ["-T", str(seconds), "-c", str(clients), "-j", "2"],
                                         timeout=seconds + 600)
    except RuntimeError as exc:
        out["error"] = str(exc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=4, help="pgbench clients per cluster")
    parser.add_argument("--modes", default="host,container", help="comma-separated: host, container")
    args = parser.parse_args()
    modes = [mode for mode in args.modes.split(",") if mode]
    harness.build_image()
    if "container" in modes:
        harness.build_postgres_image()
    clusters = {mode: harness.Cluster(container_mode=mode == "container", fencing="switch") for mode in modes}
    results = {mode: {} for mode in modes}
    seconds = int(args.minutes * 60)
    try:
        for cluster in clusters.values():
            cluster.create()
            harness.wait_for("a primary and a sync standby", cluster.healthy, 180, 1)
            harness.prepare_pgbench(cluster)
        began = time.monotonic()
        watchers = {mode: Watcher(cluster) for mode, cluster in clusters.items()}
        loads = {mode: threading.Thread(target=load, args=(cluster, seconds, args.clients, results[mode]))
                 for mode, cluster in clusters.items()}
        for thread in (*watchers.values(), *loads.values()):
            thread.start()
        for thread in loads.values():
            thread.join()
        for mode, watcher in watchers.items():
            watcher.finish()
            cluster = clusters[mode]
            history = cluster.live_node().sh("stonith_admin --history '*' 2>/dev/null || true")
            results[mode].update(
                watcher=watcher, fenced=cluster.switch.fenced(began),
                history=[line for line in history.splitlines() if re.search(r"(reboot|off|on) of ", line)])
    finally:
        for cluster in clusters.values():
            cluster.destroy()
    print("\nsoak: %.0f min of pgbench (%d clients, sync replication, through the VIP) on %d clusters at once, "
          "no fault injected" % (args.minutes, args.clients, len(modes)))
    print("%-10s %10s %10s %10s %10s %10s %14s" % ("mode", "tps", "failovers", "fencing", "fenced ops",
                                                   "failures", "max lag bytes"))
    bad = False
    for mode in modes:
        result = results[mode]
        watcher = result["watcher"]
        match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.get("pgbench", ""))
        tps = float(match.group(1)) if match else 0.0
        row = (mode, tps, watcher.failovers, len(result["fenced"]), len(result["history"]), len(watcher.failures),
               watcher.lag_max)
        print("%-10s %10.1f %10d %10d %10d %10d %14.0f" % row)
        for line in result["history"] + ["%s %s" % f for f in result["fenced"]] + [str(f) for f in watcher.failures]:
            print("  %s: %s" % (mode, line))
        if result.get("error"):
            print("  %s: pgbench: %s" % (mode, result["error"]))
        print("  %s: %d complete observations every 2 s, %d distinct primaries (node, timeline), %d reads failed"
              % (mode, watcher.reads, len(watcher.seen), watcher.errors))
        bad = bad or not match or not watcher.reads or watcher.failovers or result["fenced"] or result["history"] or watcher.failures
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
