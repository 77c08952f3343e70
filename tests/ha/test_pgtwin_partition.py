"""Network partitions of a two-node pgtwin cluster whose fencing device really powers nodes off and on: the
stock fence_docker agent against the lab power switch (power_switch.py), with priority fencing (the node of
the promoted instance fences first, the other waits priority-fencing-delay). Both modes of the agent.

The partition is made with nftables in a node's network namespace; a node that is fenced boots with a new
namespace, so the partition ends with its reboot. Nothing is cleaned up by hand: the fenced node rejoins by
itself. The independent checker proves after each case that no acknowledged row was lost and that there
never were two primaries."""
import time

import pytest

import harness
from conftest import MODES, running_cluster
from harness import assert_no_loss, wait_for

LIMIT = 60.0  # seconds; the measured times are printed, this only catches a stuck cluster


@pytest.fixture(scope="module", params=MODES)
def cluster(request, node_image):  # pylint: disable=unused-argument
    """This module's cluster: fenced by the power switch (the conftest's cluster uses fence_dummy)."""
    yield from running_cluster(request, fencing="switch")


def power_events(cluster, since):
    return cluster.switch.fenced(since)


def test_link_between_the_nodes_cut_the_primary_stays(cluster, load):
    """The link between the nodes cut (corosync and replication, both directions; clients still reach both):
    both nodes want to fence the other; the primary's node fences first and the standby's node is power
    cycled. Writes wait while the standby may still be promotable, then go on on the same primary; the
    standby comes back as sync standby by itself."""
    writer, sampler = load
    primary, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    began = time.monotonic()
    cluster.cut(standby)
    wait_for("the standby's node power cycled", lambda: ("start", standby.container) in power_events(cluster, began),
             LIMIT, 0.2)
    events = power_events(cluster, began)
    assert events[:2] == [("kill", standby.container), ("start", standby.container)], events
    wait_for("a commit on the primary after the standby was fenced",
             lambda: writer.first_ack_after(time.monotonic() - 0.01, primary), LIMIT, 0.05)
    pause = max_gap(writer, primary, began)
    assert cluster.pg_role(primary) == "primary"
    assert wait_for("the fenced standby back in sync", cluster.healthy, 240, 1) == (primary, standby)
    assert power_events(cluster, began) == events, "more fencing after the first"
    verdict = assert_no_loss(cluster, writer, sampler)
    fenced = first_event(cluster, began) - began
    numbers = (cluster.mode, fenced, pause, verdict["acknowledged"], verdict["lost"])
    print("\n%s mode, link cut: the standby's node fenced after %.2f s, longest write pause on the primary "
          "%.2f s; %d rows acknowledged, %d lost" % numbers)


def test_primary_isolated_the_standby_takes_over(cluster, load):
    """The primary's node loses every network (its peer, the clients and the power switch): it cannot fence
    and must not acknowledge a commit the standby does not have; the standby's node fences it after the
    priority delay and promotes; the old primary boots and rejoins as standby (pg_rewind) by itself."""
    writer, sampler = load
    old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    began = time.monotonic()
    cluster.cut(old, isolate=True)
    wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), LIMIT, 0.05)
    seconds = writer.first_ack_after(began, standby) - began
    events = power_events(cluster, began)
    assert events[:1] == [("kill", old.container)], events
    assert ("kill", standby.container) not in events
    assert cluster.pg_role(standby) == "primary"
    assert wait_for("the old primary back as sync standby", cluster.healthy, 240, 1) == (standby, old)
    verdict = assert_no_loss(cluster, writer, sampler)
    print("\n%s mode, primary isolated: fenced after %.2f s, writes resumed on the new primary after %.2f s; "
          "%d rows acknowledged, %d lost" % (cluster.mode, first_event(cluster, began) - began, seconds,
                                             verdict["acknowledged"], verdict["lost"]))


def test_node_killed_is_power_cycled_by_fencing(cluster, load):
    """The primary's node dies (podman kill): the standby's node fences it through the switch, which powers
    it on again (fence_docker's reboot: off unless it is off already, then on), and it rejoins as sync standby with no hand on it.
    The priority delay applies: the dead node ran the promoted instance."""
    writer, sampler = load
    old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    began = time.monotonic()
    harness.podman("kill", old.container)
    wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), LIMIT, 0.05)
    seconds = writer.first_ack_after(began, standby) - began
    # Already off: fence_docker's reboot only powers it on (no kill); the standby's node is never switched.
    assert power_events(cluster, began) == [("start", old.container)], power_events(cluster, began)
    assert wait_for("the old primary back as sync standby", cluster.healthy, 240, 1) == (standby, old)
    assert_no_loss(cluster, writer, sampler)
    print("\n%s mode, primary node killed: fenced and powered on again; writes resumed after %.2f s"
          % (cluster.mode, seconds))


def first_event(cluster, since):
    with cluster.switch.lock:
        return next(at for at, op, _name in cluster.switch.events if at >= since and op != "json")


def max_gap(writer, node, since):
    """The longest time between two commits acknowledged by ``node`` after ``since``."""
    with writer.lock:
        times = [at for _n, at, address, _c in writer.acked if at >= since and address == node.ip]
    return max((later - earlier for earlier, later in zip([since] + times, times)), default=0.0)


def test_power_switch_refuses_other_containers_and_clients(cluster):
    """fence_docker on a node reaches the switch with the client certificate and can switch only the node
    containers; a client without the certificate is refused in the TLS handshake."""
    node = cluster.nodes[0]
    certs = "--tlscert {0}/client.pem --tlskey {0}/client.key --tlscacert {0}/ca.pem".format(harness.FENCE_CERT_DIR)
    status = "fence_docker --ip %s --ipport %d --ssl-secure %%s --plug %%s -o status 2>&1; echo rc=$?" % (
        cluster.switch.address, cluster.switch.port)
    assert "Status: ON" in node.sh(status % (certs, cluster.nodes[1].container))
    assert "rc=0" not in node.sh(status % (certs, "demo-postgres"))
    # A TLS client without a certificate: the switch ends the handshake. With TLS 1.3 the client learns it at its
    # first read (the alert: CERTIFICATE_REQUIRED) or, when the switch has closed the connection by then, already
    # at its first write (EOF in violation of protocol); either way nothing is read (rc=0 would mean it was).
    probe = ("python3 -c \"import socket, ssl; context = ssl.create_default_context(cafile='%s/ca.pem'); "
             "conn = context.wrap_socket(socket.create_connection(('%s', %d)), server_hostname='%s'); "
             "conn.sendall(b'GET /v1.11/containers/json HTTP/1.0\\r\\n\\r\\n'); print(conn.recv(200))\" 2>&1; "
             "echo rc=$?" % (harness.FENCE_CERT_DIR, cluster.switch.address, cluster.switch.port,
                             cluster.switch.address))
    out = node.sh(probe)
    assert "rc=0" not in out and ("CERTIFICATE_REQUIRED" in out.upper() or "SSLEOFError: EOF occurred in "
                                  "violation of protocol" in out), out
