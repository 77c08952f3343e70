"""Unit tests of runtime detection and helpers."""
import pytest

from ansible_collections.poststack.core.plugins.module_utils import runtime as rt


def which_from(available):
    return lambda name: f"/usr/bin/{name}" if name in available else None


def test_auto_prefers_podman_then_docker():
    assert rt.detect_runtime("auto", which_from({"podman", "docker"})) == "/usr/bin/podman"
    assert rt.detect_runtime("auto", which_from({"docker"})) == "/usr/bin/docker"


def test_missing_runtimes_are_clear_errors():
    with pytest.raises(rt.RuntimeNotFound, match="install podman .preferred. or docker"):
        rt.detect_runtime("auto", which_from(set()))
    with pytest.raises(rt.RuntimeNotFound, match="container runtime 'docker' not found"):
        rt.detect_runtime("docker", which_from({"podman"}))
    with pytest.raises(rt.RuntimeNotFound, match="unknown container runtime 'lxc'"):
        rt.detect_runtime("lxc", which_from({"podman"}))


def test_labels_from_podman_and_docker_inspect():
    assert rt.image_labels({"Labels": {"a": "1"}}) == {"a": "1"}
    assert rt.image_labels({"Config": {"Labels": {"b": "2"}}}) == {"b": "2"}
    assert rt.image_labels(None) == {}


@pytest.mark.parametrize("ref, expected", [
    ("img", "img:latest"),
    ("localhost/a/b", "localhost/a/b:latest"),
    ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
    ("a/b:1.0", "a/b:1.0"),
    ("a/b@sha256:abc", "a/b@sha256:abc"),
])
def test_normalize_ref(ref, expected):
    assert rt.normalize_ref(ref) == expected


def test_runner_records_history_and_raises_with_output(tmp_path):
    runtime = rt.ContainerRuntime("/bin/sh")
    ok = runtime.run(["-c", "echo hi"])
    assert ok.rc == 0 and ok.stdout.strip() == "hi" and ok.argv == ["/bin/sh", "-c", "echo hi"]
    with pytest.raises(rt.RuntimeCommandError, match="rc=3: boom") as err:
        runtime.run(["-c", "echo boom >&2; exit 3"])
    assert err.value.result.rc == 3
    assert len(runtime.history) == 2
    assert runtime.name == "podman"
    assert rt.ContainerRuntime("/usr/local/bin/docker").name == "docker"


@pytest.mark.parametrize("docker_host, where", [("unix:///run/nothing.sock", "at DOCKER_HOST=unix:///run/nothing.sock"),
                                                (None, "at its default socket")])
def test_an_engine_that_does_not_answer_says_where_and_what_to_do(tmp_path, monkeypatch, docker_host, where):
    client = tmp_path / "docker"
    client.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///run/nothing.sock. "
                      "Is the docker daemon running?' >&2\nexit 1\n")
    client.chmod(0o755)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    runtime = rt.ContainerRuntime(str(client), env={"DOCKER_HOST": docker_host} if docker_host else None)
    with pytest.raises(rt.RuntimeCommandError) as err:
        runtime.run(["volume", "ls"])
    message = str(err.value)
    assert message.startswith("the Docker engine does not answer " + where), message
    assert "point DOCKER_HOST at an engine that answers" in message and "POSTSTACK_CONTAINER_RUNTIME=podman" in message
    with pytest.raises(rt.RuntimeCommandError, match="^the Docker engine does not answer"):
        runtime.image_inspect("localhost/x")  # not "there is no such image"
    # podman's own failures keep their text
    assert rt.engine_unreachable("podman", "Cannot connect to the Docker daemon", {}) is None


def test_uptime_parses_runtime_timestamps():
    from datetime import datetime, timezone
    now = datetime(2026, 11, 25, 14, 0, 0, tzinfo=timezone.utc)
    assert rt._uptime("2026-11-25T13:58:30.528263181Z", now) == "1m 30s"
    assert rt._uptime("2026-11-25T11:55:00+00:00", now) == "2h 05m"
    assert rt._uptime("2026-11-23T14:00:00.1-01:00", now) == "1d 23h"
    assert rt._uptime("not a time", now) == ""
    assert rt._uptime("2026-11-25T15:00:00Z", now) == ""


def test_container_summary_from_inspect():
    inspect = {
        "Name": "/demo-postgres",
        "ImageName": "localhost/poststack/postgres-debian:latest",
        "Config": {"Labels": {"io.poststack.project": "demo", "io.poststack.component": "postgres"},
                   "Env": ["POSTGRES_DB=app", "POSTGRES_PASSWORD_FILE=/run/secrets/x", "SECRET=hidden"]},
        "State": {"Status": "exited", "Health": {"Status": "unhealthy"}, "StartedAt": "2026-11-25T13:00:00Z"},
        "NetworkSettings": {"Ports": {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5433"}], "9/udp": None}},
    }
    summary = rt.container_summary(inspect)
    assert summary["name"] == "demo-postgres" and summary["state"] == "exited"
    assert summary["health"] == "unhealthy" and summary["uptime"] == ""
    assert summary["ports"] == ["127.0.0.1:5433->5432/tcp"]
    assert summary["project"] == "demo" and summary["component"] == "postgres" and summary["database"] == "app"
    assert "hidden" not in str(summary)
    podman_style = dict(inspect, State={"Status": "running", "Healthcheck": {"Status": "healthy"}, "StartedAt": ""})
    assert rt.container_summary(podman_style)["health"] == "healthy"


def test_ports_in_use(tmp_path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        busy = sock.getsockname()[1]
        assert rt.ports_in_use([busy], "127.0.0.1") == [busy]
    assert rt.ports_in_use([busy], "127.0.0.1") == []


def test_a_port_whose_server_just_closed_its_connections_is_free():
    """A server that stopped cleanly closes its clients' connections first, which leaves them in TIME_WAIT on its
    port for a minute (Docker's port proxy after a container stop): any server may listen there again at once
    (SO_REUSEADDR), so the port is not in use."""
    import socket
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served = listener.accept()[0]
        served.close()  # the server side closes first: TIME_WAIT on the server's port
        client.close()
    with socket.socket() as plain:  # what made the check call it busy
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    assert rt.ports_in_use([port], "127.0.0.1") == []


def test_binds_unavailable_names_each_with_its_reason():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        busy = sock.getsockname()[1]
        assert rt.binds_unavailable(["127.0.0.1:%d" % busy, "0.0.0.0:%d" % busy]) == [
            {"bind": "127.0.0.1:%d" % busy, "reason": "in use by another process or container"},
            {"bind": "0.0.0.0:%d" % busy, "reason": "in use by another process or container"},
        ]
    assert rt.binds_unavailable(["127.0.0.1:%d" % busy]) == []
    (bad,) = rt.binds_unavailable(["192.0.2.77:8080"])
    assert bad["bind"] == "192.0.2.77:8080" and "192.0.2.77" in bad["reason"]
    assert rt.binds_unavailable(["127.0.0.1:http"]) == [{"bind": "127.0.0.1:http", "reason": "'127.0.0.1:http' is not address:port"}]


def fake_runtime(tmp_path, script):
    binary = tmp_path / "podman"
    binary.write_text("#!/bin/sh\n" + script)
    binary.chmod(0o755)
    return rt.ContainerRuntime(str(binary))


def test_a_container_that_vanished_before_the_inspect_is_left_out(tmp_path):
    """status.yml lists, then inspects: a container removed in between (another project's) is not an error."""
    found = '[{"Name": "a-postgres", "Config": {"Labels": {"io.poststack.project": "a"}}, "State": {"Status": "running"}}]'
    runtime = fake_runtime(tmp_path, "echo '%s'; echo 'Error: inspecting object: no such container b-web' >&2; "
                                     "exit 125\n" % found)
    assert [c["name"] for c in rt._inspect_containers(runtime, ["a-postgres", "b-web"])] == ["a-postgres"]
    gone = fake_runtime(tmp_path, "echo '[]'; echo 'Error: no such container b-web' >&2; exit 125\n")
    assert rt._inspect_containers(gone, ["b-web"]) == []


def test_other_inspect_failures_are_errors(tmp_path):
    runtime = fake_runtime(tmp_path, "echo 'Error: cannot open storage: permission denied' >&2; exit 125\n")
    with pytest.raises(rt.RuntimeCommandError, match="permission denied"):
        rt._inspect_containers(runtime, ["a-postgres"])


FAKE_PODMAN = r"""#!/bin/sh
# Answers the calls find_resources makes, for two networks: ours (labelled) and one made by hand with a user's
# container and one of ours on it.
case "$1 $2" in
  "network ls") printf 'demo-net\nhand-net\npodman\n' ;;
  "network inspect") shift 2; sep='['; for n in "$@"; do
      case $n in
        demo-net) printf '%s{"name":"demo-net","driver":"bridge","dns_enabled":true,' "$sep"
                  printf '"labels":{"io.poststack.project":"demo","io.poststack.component":"postgres"}}' ;;
        hand-net) printf '%s{"name":"hand-net","driver":"bridge","dns_enabled":true}' "$sep" ;;
      esac; sep=','; done; echo ']' ;;
  "ps -a") [ "$4" = "network=hand-net" ] && printf 'mine\ndemo-postgres\n' ;;
  "container inspect") echo '[{"Name":"mine","Config":{"Labels":{}},"State":{"Status":"running"}},
       {"Name":"demo-postgres","Config":{"Labels":{"io.poststack.project":"demo","io.poststack.component":"postgres"}},"State":{"Status":"running"}}]' ;;
  *) echo "unexpected call: $*" >&2; exit 9 ;;
esac
"""


def test_networks_without_poststack_labels_list_the_containers_on_them(tmp_path):
    fake = tmp_path / "podman"
    fake.write_text(FAKE_PODMAN)
    fake.chmod(0o755)
    runtime = rt.ContainerRuntime(str(fake))
    found = rt.find_resources(runtime, "network", ["demo-net", "hand-net", "absent-net"])
    assert sorted(found) == ["demo-net", "hand-net"]
    assert found["demo-net"]["project"] == "demo" and "containers" not in found["demo-net"]
    assert found["hand-net"]["project"] == ""
    assert found["hand-net"]["containers"] == [
        {"name": "demo-postgres", "project": "demo", "component": "postgres"},
        {"name": "mine", "project": "", "component": ""}]
    # the labelled network cost no container lookup
    assert not any("network=demo-net" in " ".join(r.argv) for r in runtime.history)


def test_docker_health_is_run_once_for_a_container_still_starting(tmp_path):
    """Docker has no `healthcheck run`: a container it reports `starting` gets its health command run (exec) and is
    healthy when that passes; one whose check fails stays `starting`; others are not touched."""
    client = tmp_path / "docker"
    client.write_text("""#!/bin/sh
echo "$*" >> %s/calls
case "$*" in
  "inspect --format {{json .Config.Healthcheck.Test}} passes") echo '["CMD","/usr/local/bin/health-check.sh"]' ;;
  "inspect --format {{json .Config.Healthcheck.Test}} fails") echo '["CMD-SHELL","exit 3"]' ;;
  "exec passes /usr/local/bin/health-check.sh") exit 0 ;;
  "exec fails /bin/sh -c exit 3") exit 1 ;;
  *) exit 9 ;;
esac
""" % tmp_path)
    client.chmod(0o755)
    summaries = [{"name": "passes", "state": "running", "health": "starting"},
                 {"name": "fails", "state": "running", "health": "starting"},
                 {"name": "healthy", "state": "running", "health": "healthy"},
                 {"name": "stopped", "state": "exited", "health": "starting"}]
    rt._docker_health_now(rt.ContainerRuntime(str(client)), summaries)
    assert [s["health"] for s in summaries] == ["healthy", "starting", "healthy", "starting"]
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [c for c in calls if c.startswith("exec")] == ["exec passes /usr/local/bin/health-check.sh",
                                                          "exec fails /bin/sh -c exit 3"]
