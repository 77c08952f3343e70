"""pgtwin host mode against container mode, measured side by side in one run (seed 004: container overhead
below 5 % in TPS, comparable failover).

Two real two-node clusters (the harness of tests/ha): one runs PostgreSQL from the nodes' packages, the other
in podman containers on the nodes' Btrfs. Both are up for the whole run, so they share the machine the same
way. Rounds alternate the order (host first, then container first, ...); each round runs pgbench (TPC-B like,
synchronous replication to the standby) against each cluster's primary for the same time while a sampler
reads the standby's replay lag in bytes from pg_stat_replication. Then kill -9 failovers alternate between the
clusters, each timed from the kill to the first commit the new primary acknowledges."""
import argparse
import os
import re
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ha"))

import harness  # noqa: E402  pylint: disable=wrong-import-position,import-error


class LagSampler(threading.Thread):
    """The standby's replay lag in bytes, as the primary sees it, every 0.5 s."""

    def __init__(self, cluster, primary):
        super().__init__(daemon=True)
        self.cluster, self.primary = cluster, primary
        self.samples = []
        self.stop_event = threading.Event()

    def run(self):
        sql = "SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0) FROM pg_stat_replication"
        while not self.stop_event.wait(0.5):
            out = self.primary.sh("psql -XAt -h /run/postgresql -d postgres -c \"%s\"" % sql, user="postgres",
                                  check=False)
            try:
                self.samples.append(float(out.strip()))
            except ValueError:
                pass

    def finish(self):
        self.stop_event.set()
        self.join(10)
        return self.samples


def tps_round(cluster, seconds, clients):
    primary = harness.wait_for("a healthy pair", cluster.healthy, 180, 0.5)[0]
    lag = LagSampler(cluster, primary)
    lag.start()
    out = harness.pgbench(cluster, primary.ip, ["-T", str(seconds), "-c", str(clients), "-j", "2"], timeout=seconds + 300)
    samples = lag.finish()
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if not match:
        raise RuntimeError("no tps in pgbench output: %s" % out[-800:])
    return float(match.group(1)), max(samples or [0.0]), statistics.median(samples or [0.0])


def failover(cluster):
    writer, sampler = harness.Writer(cluster, pause=0), harness.Sampler(cluster)
    writer.start()
    sampler.start()
    try:
        harness.wait_for("the writer's first commit", lambda: writer.acked, 60, 0.1)
        old, standby = harness.wait_for("a healthy pair", cluster.healthy, 180, 0.5)
        began = time.monotonic()
        cluster.kill_postgres(old)
        harness.wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), 120, 0.05)
        seconds = writer.first_ack_after(began, standby) - began
        cluster.rejoin(240)
        harness.wait_for("a primary", cluster.primary, 60, 0.2)
    finally:
        writer.stop()
        sampler.stop()
    verdict = harness.check(cluster, writer, sampler)
    if verdict["problems"]:
        raise RuntimeError("the checker found: %s" % ", ".join(verdict["problems"]))
    return seconds, verdict["lost"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--host-storage", choices=("btrfs", "overlay"), default="btrfs",
                        help="host mode's data on the same Btrfs layout as container mode (default, so that "
                             "only the container differs), or on the node's root filesystem")
    args = parser.parse_args()
    harness.build_image()
    harness.build_postgres_image()
    clusters = {"host": harness.Cluster(container_mode=False, btrfs=args.host_storage == "btrfs", with_vip=False),
                "container": harness.Cluster(container_mode=True, with_vip=False)}
    results = {mode: {"tps": [], "lag_max": [], "lag_median": [], "failover": [], "lost": 0} for mode in clusters}
    try:
        for cluster in clusters.values():
            cluster.create()
            harness.wait_for("a primary and a sync standby", cluster.healthy, 180, 1)
            harness.prepare_pgbench(cluster)
        order = list(clusters)
        for number in range(args.rounds):
            for mode in (order if number % 2 == 0 else order[::-1]):
                tps, lag_max, lag_median = tps_round(clusters[mode], args.seconds, args.clients)
                for key, value in (("tps", tps), ("lag_max", lag_max), ("lag_median", lag_median)):
                    results[mode][key].append(value)
                print("round %d %-9s %8.1f tps, replay lag median %.0f max %.0f bytes"
                      % (number + 1, mode, tps, lag_median, lag_max), flush=True)
        for number in range(args.failovers):
            for mode in (order if number % 2 == 0 else order[::-1]):
                seconds, lost = failover(clusters[mode])
                results[mode]["failover"].append(seconds)
                results[mode]["lost"] += lost
                print("failover %d %-9s %.2f s, %d rows lost" % (number + 1, mode, seconds, lost), flush=True)
    finally:
        for cluster in clusters.values():
            cluster.destroy()
    host, container = results["host"], results["container"]
    print("\npgtwin host mode (data on %s) vs container mode (Btrfs), %d interleaved rounds of %d s pgbench (%d "
          "clients, sync replication), %d kill -9 failovers each"
          % (args.host_storage, args.rounds, args.seconds, args.clients, args.failovers))
    print("%-34s %12s %12s %10s" % ("metric (median over rounds)", "host", "container", "container/host"))
    rows = (("pgbench TPS", "tps", "%.1f"), ("replay lag, median sample (bytes)", "lag_median", "%.0f"),
            ("replay lag, max sample (bytes)", "lag_max", "%.0f"), ("failover (s)", "failover", "%.2f"))
    for label, key, fmt in rows:
        a, b = statistics.median(host[key]), statistics.median(container[key])
        print("%-34s %12s %12s %10s" % (label, fmt % a, fmt % b, ("%.3f" % (b / a)) if a else "-"))
    print("acknowledged rows lost in failovers: host %d, container %d" % (host["lost"], container["lost"]))
    return 1 if host["lost"] or container["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
