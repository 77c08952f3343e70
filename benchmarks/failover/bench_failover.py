"""Failover times of pgtwin on a real two-node Pacemaker cluster (the harness of tests/ha), with a VIP.

Each cycle kills the primary while a writer commits numbered rows, measures the time until the first commit
acknowledged by the new primary, checks that no acknowledged row is missing and that no two primaries were
seen, then brings the old primary back as a sync standby (pg_rewind) before the next cycle.
Modes: ``postgres`` (kill -9 of the postmaster), ``node`` (podman kill of the primary's node container).
``--cluster-mode container`` runs the agent's container mode (PostgreSQL in podman on the nodes' Btrfs)."""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ha"))

import harness  # noqa: E402  pylint: disable=wrong-import-position,import-error


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def one_cycle(cluster, writer, mode):
    old, standby = harness.wait_for("a healthy pair", cluster.healthy, 180, 0.5)
    began = time.monotonic()
    if mode == "postgres":
        cluster.kill_postgres(old)
    else:
        harness.podman("kill", old.container)
    harness.wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), 120, 0.05)
    seconds = writer.first_ack_after(began, standby) - began
    harness.wait_for("a commit through the VIP", lambda: writer.first_ack_after(began, address=cluster.vip),
                     120, 0.05)
    vip_seconds = writer.first_ack_after(began, address=cluster.vip) - began
    if mode == "node":
        harness.podman("start", old.container)
    cluster.rejoin(240)
    return seconds, vip_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--mode", choices=("postgres", "node", "both"), default="both")
    parser.add_argument("--cluster-mode", choices=("host", "container"), default="host",
                        help="the agent's mode: PostgreSQL from the nodes' packages or in containers")
    args = parser.parse_args()
    modes = ("postgres", "node") if args.mode == "both" else (args.mode,)
    harness.build_image()
    if args.cluster_mode == "container":
        harness.build_postgres_image()
    cluster = harness.Cluster(container_mode=args.cluster_mode == "container")
    results = {}
    lost = 0
    try:
        cluster.create()
        harness.wait_for("a primary and a sync standby", cluster.healthy, 180, 1)
        writer, sampler = harness.Writer(cluster), harness.Sampler(cluster)
        writer.start()
        sampler.start()
        for mode in modes:
            results[mode], results[mode + "-vip"] = [], []
            for cycle in range(args.cycles):
                seconds, vip_seconds = one_cycle(cluster, writer, mode)
                results[mode].append(seconds)
                results[mode + "-vip"].append(vip_seconds)
                print("%-8s cycle %3d: %.2f s (VIP %.2f s)" % (mode, cycle + 1, seconds, vip_seconds), flush=True)
        writer.stop()
        sampler.stop()
        primary = harness.wait_for("a primary", cluster.primary, 60, 0.2)
        lost = len(harness.missing_rows(cluster, primary, writer.acked_numbers()))
        doubles = len(sampler.double_primary)
    finally:
        cluster.destroy()
    print("\nfailover (%s mode): primary killed -> first commit acknowledged by the new primary (seconds)"
          % cluster.mode)
    print("%-28s %6s %8s %8s %8s %8s" % ("mode", "cycles", "median", "p95", "max", "min"))
    print("(the new primary: the writer's connection to that node's address; the VIP: its connection to the VIP)")
    labels = {"postgres": "kill -9 postgres (primary)", "node": "podman kill (primary node)",
              "postgres-vip": "  same, through the VIP", "node-vip": "  same, through the VIP"}
    for mode, times in results.items():
        print("%-28s %6d %8.2f %8.2f %8.2f %8.2f" % (labels[mode], len(times), statistics.median(times),
                                                     percentile(times, 0.95), max(times), min(times)))
    print("acknowledged rows: %d, lost: %d; sampler rounds: %d, double primaries: %d"
          % (len(writer.acked), lost, sampler.rounds, doubles))
    return 1 if lost or doubles else 0


if __name__ == "__main__":
    sys.exit(main())
