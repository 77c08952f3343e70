"""Failover times of pgtwin on a real two-node Pacemaker cluster (the harness of tests/ha), with a VIP.

Each cycle kills the primary while a writer commits numbered rows, measures the time until the first commit
acknowledged by the new primary, checks that no acknowledged row is missing and that no two primaries were
seen, then brings the old primary back as a sync standby (pg_rewind) before the next cycle.
Faults (``--mode``): ``postgres`` (kill -9 of the postmaster), ``node`` (podman kill of the primary's node
container), ``container`` and ``container-rm`` (podman kill / rm -f of the primary's PostgreSQL container,
container mode), ``isolate`` (every network of the primary's node cut; needs ``--fencing switch``); ``mix``
takes them in turn. ``--cluster-mode container`` runs the agent's container mode (PostgreSQL in podman on the
nodes' Btrfs). ``--fencing switch``: fence_docker with the lab power switch, which really powers the fenced
node off and on (tests/ha/power_switch.py). The independent checker (tests/ha/checker.py) judges the run."""
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


FAULTS = {
    "postgres": "kill -9 postgres (primary)",
    "node": "podman kill (primary node)",
    "container": "podman kill (primary's container)",
    "container-rm": "podman rm -f (primary's container)",
    "isolate": "primary's network cut",
}
CONTAINER_ONLY = ("container", "container-rm")
NEEDS_SWITCH = ("isolate",)


def inject(cluster, node, fault):
    if fault == "postgres":
        cluster.kill_postgres(node)
    elif fault == "node":
        harness.podman("kill", node.container)
    elif fault == "container":
        node.sh("podman kill %s" % cluster.container_name(node))
    elif fault == "container-rm":
        node.sh("podman rm -f -t 0 %s" % cluster.container_name(node))
    elif fault == "isolate":
        cluster.cut(node, isolate=True)


def one_cycle(cluster, writer, fault):
    old, standby = harness.wait_for("a healthy pair", cluster.healthy, 180, 0.5)
    began = time.monotonic()
    inject(cluster, old, fault)
    harness.wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), 120, 0.05)
    seconds = writer.first_ack_after(began, standby) - began
    harness.wait_for("a commit through the VIP", lambda: writer.first_ack_after(began, address=cluster.vip),
                     120, 0.05)
    vip_seconds = writer.first_ack_after(began, address=cluster.vip) - began
    if fault == "node" and cluster.fencing != "switch":
        harness.podman("start", old.container)  # fence_dummy powers nothing on; the power switch does
    cluster.rejoin(300)
    return seconds, vip_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100, help="cycles in all (mix) or per fault")
    parser.add_argument("--mode", choices=(*FAULTS, "both", "mix"), default="both",
                        help="the fault; both = postgres, then node; mix = every fault of the cluster mode in turn")
    parser.add_argument("--cluster-mode", choices=("host", "container"), default="host",
                        help="the agent's mode: PostgreSQL from the nodes' packages or in containers")
    parser.add_argument("--fencing", choices=("dummy", "switch"), default=None,
                        help="fence_dummy, or fence_docker with the lab power switch (default: switch for mix "
                             "and isolate, else dummy)")
    args = parser.parse_args()
    container = args.cluster_mode == "container"
    available = [f for f in FAULTS if container or f not in CONTAINER_ONLY]
    if args.mode == "mix":
        schedule = [available[cycle % len(available)] for cycle in range(args.cycles)]
    else:
        faults = ("postgres", "node") if args.mode == "both" else (args.mode,)
        if not container and any(f in CONTAINER_ONLY for f in faults):
            parser.error("--mode %s needs --cluster-mode container" % args.mode)
        schedule = [f for f in faults for _cycle in range(args.cycles)]
    fencing = args.fencing or ("switch" if any(f in NEEDS_SWITCH for f in schedule) else "dummy")
    if fencing != "switch" and any(f in NEEDS_SWITCH for f in schedule):
        parser.error("a network cut needs --fencing switch (fence_dummy cannot stop the isolated node)")
    harness.build_image()
    if container:
        harness.build_postgres_image()
    cluster = harness.Cluster(container_mode=container, fencing=fencing)
    results = {}
    verdict = {}
    try:
        cluster.create()
        harness.wait_for("a primary and a sync standby", cluster.healthy, 180, 1)
        writer, sampler = harness.Writer(cluster, pause=0), harness.Sampler(cluster)
        writer.start()
        sampler.start()
        try:
            for cycle, fault in enumerate(schedule):
                seconds, vip_seconds = one_cycle(cluster, writer, fault)
                results.setdefault(fault, []).append(seconds)
                results.setdefault(fault + "-vip", []).append(vip_seconds)
                print("%-12s cycle %3d: %.2f s (VIP %.2f s)" % (fault, cycle + 1, seconds, vip_seconds), flush=True)
        except KeyboardInterrupt:  # Ctrl-C: the cycles done so far are still checked and reported
            print("interrupted after %d cycles" % sum(len(t) for f, t in results.items() if not f.endswith("-vip")))
            harness.wait_for("a healthy pair", cluster.healthy, 300, 1)
        writer.stop()
        sampler.stop()
        harness.wait_for("a primary", cluster.primary, 60, 0.2)
        verdict = harness.check(cluster, writer, sampler)
    finally:
        cluster.destroy()
    if not results:
        print("no cycle completed")
        return 1
    print("\nfailover (%s mode, fencing %s): fault injected -> first commit acknowledged by the new primary "
          "(seconds)" % (cluster.mode, fencing))
    print("%-36s %6s %8s %8s %8s %8s" % ("fault", "cycles", "median", "p95", "max", "min"))
    print("(the new primary: the writer's connection to that node's address; the VIP: its connection to the VIP)")
    for fault, times in results.items():
        label = "  same, through the VIP" if fault.endswith("-vip") else FAULTS[fault]
        print("%-36s %6d %8.2f %8.2f %8.2f %8.2f" % (label, len(times), statistics.median(times),
                                                     percentile(times, 0.95), max(times), min(times)))
    every = [t for fault, times in results.items() if not fault.endswith("-vip") for t in times]
    print("%-36s %6d %8.2f %8.2f %8.2f %8.2f" % ("all faults", len(every), statistics.median(every),
                                                 percentile(every, 0.95), max(every), min(every)))
    print("independent checker: acknowledged rows %d, lost %s, duplicates %s; samples %d, with two primaries %d; "
          "problems: %s" % (verdict["acknowledged"], verdict.get("lost"), verdict.get("duplicates"),
                            verdict["samples"], verdict["double_primary_samples"],
                            ", ".join(verdict["problems"]) or "none"))
    return 1 if verdict["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
