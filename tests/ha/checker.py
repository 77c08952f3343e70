"""The independent checker of the HA fault cases: a process of its own that trusts neither the writer nor the
test, only what they wrote down and what the databases answer.

Input (JSON on stdin, so that the password is in no process list): ``{"dsns": {"node1": "...", ...},
"acks": "<file with one acknowledged row number per line>", "samples": "<file with one JSON list of the
nodes that answered as primary per line>"}``. It finds the one writable primary among the nodes, reads the
ledger there and proves:

* every acknowledged row is present (no acknowledged commit was lost);
* no row number is there twice (the ledger's primary key guarantees it on one server, so this only catches a
  corrupt index; rows written on two servers at once are what the next check is for);
* at no sampled instant did two nodes answer as primary (the sampler's file has at least one sample);
* there is exactly one writable primary now.

Prints a JSON verdict and exits 0 when every check holds, 1 otherwise."""
from __future__ import annotations

import json
import sys
from typing import Dict, List

import psycopg


def writable(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").fetchone()
            return row == (False, "off")
    except psycopg.Error:
        return False


def check(dsns: Dict[str, str], acks_file: str, samples_file: str) -> Dict[str, object]:
    with open(acks_file, encoding="ascii") as handle:
        acked = [int(line) for line in handle if line.strip()]
    with open(samples_file, encoding="ascii") as handle:
        samples: List[List[str]] = [json.loads(line) for line in handle if line.strip()]
    primaries = [name for name, dsn in sorted(dsns.items()) if writable(dsn)]
    verdict: Dict[str, object] = {
        "acknowledged": len(acked), "samples": len(samples), "primaries": primaries,
        "double_primary_samples": sum(1 for sample in samples if len(sample) > 1)}
    problems = []
    if len(primaries) != 1:
        problems.append("%d writable primaries" % len(primaries))
    else:
        with psycopg.connect(dsns[primaries[0]], autocommit=True) as conn:
            rows, distinct = conn.execute("SELECT count(*), count(DISTINCT n) FROM ledger").fetchone()
            present = {row[0] for row in conn.execute("SELECT n FROM ledger")}
        lost = sorted(set(acked) - present)
        verdict.update(rows=rows, lost=len(lost), lost_first=lost[:20], duplicates=rows - distinct)
        if lost:
            problems.append("%d acknowledged rows lost" % len(lost))
        if rows != distinct:  # the ledger's primary key forbids it: only a corrupt index would show it
            problems.append("%d duplicate rows" % (rows - distinct))
    if not acked:
        problems.append("nothing was acknowledged")
    if not samples:
        problems.append("no samples")
    if verdict["double_primary_samples"]:
        problems.append("two primaries in %d samples" % verdict["double_primary_samples"])
    verdict["problems"] = problems
    return verdict


def main() -> int:
    request = json.load(sys.stdin)
    verdict = check(request["dsns"], request["acks"], request["samples"])
    print(json.dumps(verdict))
    return 1 if verdict["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
