"""Unit tests of the container health rules (module_utils/container_health.py) against a scripted runtime: the
inspect documents are the shapes podman 4 and Docker 20.10 print. The real runtimes are exercised by
tests/integration/runtime/test_container_health.py."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.poststack.core.plugins.module_utils import container_health as ch
from ansible_collections.poststack.core.plugins.module_utils.runtime import CommandResult

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
CHECK = {"Test": ["CMD", "/usr/bin/python3", "-c", "probe()"], "Interval": 10 * ch.NANOSECONDS,
         "Retries": 3, "StartPeriod": 0}


def inspect_doc(status="running", health=None, output="", started_ago=120, check="default", exit_code=0):
    check = CHECK if check == "default" else check
    state = {"Status": status, "ExitCode": exit_code,
             "StartedAt": (NOW - timedelta(seconds=started_ago)).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")}
    if health is not None:
        state["Health"] = {"Status": health, "Log": [{"ExitCode": 0 if health == "healthy" else 1, "Output": output}]}
    return {"Name": "demo-web", "State": state, "Config": {"Healthcheck": check} if check else {}}


class ScriptedRuntime:
    """Answers `container inspect` with the next document of a script (the last one repeats) and records calls."""

    def __init__(self, docs, name="podman", probe=(0, "demo-postgres:5432 - accepting connections")):
        self.docs, self.name, self.binary, self.calls, self.probe = list(docs), name, "/usr/bin/" + name, [], probe
        self.history = []

    def run(self, args, check=True, timeout=None, stdin=None):  # pylint: disable=unused-argument
        self.calls.append(list(args))
        if args[:2] == ["container", "inspect"]:
            doc = self.docs.pop(0) if len(self.docs) > 1 else self.docs[0]
            return CommandResult(args, 0 if doc else 125, json.dumps([doc] if doc else []), "")
        if args[0] == "run":
            return CommandResult(args, self.probe[0], self.probe[1], "")
        if args[0] == "healthcheck":  # fails when the state it leads to is not healthy
            upcoming = self.docs[0] or {}
            status = ((upcoming.get("State") or {}).get("Health") or {}).get("Status")
            return CommandResult(args, 0 if status == "healthy" else 1, "", "")
        return CommandResult(args, 0, "", "")

    def container_inspect(self, name):
        result = self.run(["container", "inspect", name])
        return json.loads(result.stdout)[0] if result.rc == 0 else None


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def wait_clocked(runtime, timeout=60, secrets=()):
    clock = Clock()
    report = ch.wait_healthy(runtime, "demo-web", timeout, secrets, clock=clock, sleep=clock.sleep, now=lambda: NOW)
    return report, clock


def wait(runtime, timeout=60, secrets=()):
    return wait_clocked(runtime, timeout, secrets)[0]


def test_health_settings_of_podman_and_docker_documents():
    assert ch.health_settings(inspect_doc()) == {"command": "/usr/bin/python3 -c probe()", "start_period": 0.0,
                                                 "interval": 10.0, "retries": 3}
    assert ch.health_settings(inspect_doc(check={"Test": ["NONE"]})) is None
    assert ch.health_settings(inspect_doc(check=None)) is None
    shell = ch.health_settings(inspect_doc(check={"Test": ["CMD-SHELL", "curl -f localhost"]}))
    assert shell == {"command": "curl -f localhost", "start_period": 0.0, "interval": 30.0, "retries": 3}


def test_healthy_container_passes_after_one_check_on_podman():
    runtime = ScriptedRuntime([inspect_doc(health="starting"), inspect_doc(health="healthy")])
    report = wait(runtime)
    assert report["ok"] and report["health"] == "healthy"
    assert ["healthcheck", "run", "demo-web"] in runtime.calls


def test_docker_runs_its_own_checks_and_is_only_read():
    docs = [inspect_doc(health="starting")] * 4 + [inspect_doc(health="healthy")]
    runtime = ScriptedRuntime(docs, name="docker")
    report, clock = wait_clocked(runtime)
    assert report["ok"] and clock.now == 4.0  # four polls a second apart saw "starting"
    assert not [c for c in runtime.calls if c[0] == "healthcheck"]


def test_unhealthy_fails_with_the_checks_output_and_masks_secrets():
    runtime = ScriptedRuntime([inspect_doc(health="unhealthy", output="could not connect: password s3cret! wrong")])
    report = wait(runtime, secrets=["s3cret!"])
    assert not report["ok"]
    assert report["problem"] == ("container demo-web is unhealthy (health check: /usr/bin/python3 -c probe()); "
                                 "it said: could not connect: password ******** wrong")
    assert "s3cret!" not in json.dumps(report)


def test_one_failed_check_of_a_long_running_container_is_no_verdict():
    """Podman says unhealthy after one failure when the image sets no retries; a slow check on a busy host must not
    fail the run: it takes as many failures in a row as the runtime allows (3 by default)."""
    docs = [inspect_doc(health="unhealthy"), inspect_doc(health="unhealthy"), inspect_doc(health="healthy")]
    report, clock = wait_clocked(ScriptedRuntime(docs))
    assert report["ok"] and clock.now == 1.0


def test_unhealthy_three_times_in_a_row_is_a_verdict_on_podman():
    runtime = ScriptedRuntime([inspect_doc(health="unhealthy", output="refused")])
    report, clock = wait_clocked(runtime)
    assert not report["ok"] and clock.now == 2.0
    assert len([c for c in runtime.calls if c[0] == "healthcheck"]) == 3


def test_unhealthy_is_not_final_before_the_runtime_could_decide():
    """Just started (5 s ago; 0 s start period + 3 x 10 s): our own quick checks may fail while the app starts."""
    docs = [inspect_doc(health="unhealthy", started_ago=5)] * 3 + [inspect_doc(health="healthy", started_ago=8)]
    report, clock = wait_clocked(ScriptedRuntime(docs))
    assert report["ok"] and clock.now > 0


def test_not_healthy_within_the_timeout():
    report, clock = wait_clocked(ScriptedRuntime([inspect_doc(health="starting", started_ago=0)]), timeout=5)
    assert not report["ok"] and clock.now >= 5
    assert report["problem"].startswith("container demo-web is not healthy after 5 s (status starting")
    assert report["problem"].endswith("it printed nothing")


@pytest.mark.parametrize("doc, problem", [
    (None, "container demo-web does not exist"),
    (inspect_doc(status="exited", exit_code=2),
     "container demo-web is exited (exit code 2; `podman logs demo-web` shows its log)"),
])
def test_missing_or_stopped_containers_fail_at_once(doc, problem):
    report, clock = wait_clocked(ScriptedRuntime([doc]))
    assert not report["ok"] and report["problem"] == problem and clock.now == 0


class LoggingRuntime(ScriptedRuntime):
    """Also answers `logs --tail N`: the app printed its password on stdout and the reason on stderr."""

    def run(self, args, check=True, timeout=None, stdin=None):
        if args[0] == "logs":
            self.calls.append(list(args))
            return CommandResult(args, 0, "connecting with s3cret\n", "FATAL: No space left on device\n")
        return super().run(args, check, timeout, stdin)


def test_a_stopped_container_names_the_end_of_its_log_with_secrets_masked():
    runtime = LoggingRuntime([inspect_doc(status="exited", exit_code=1)])
    report = ch.wait_healthy(runtime, "demo-web", 60, ["s3cret"], log_lines=5)
    assert report["problem"] == ("container demo-web is exited (exit code 1; `podman logs demo-web` shows its log); "
                                 "the end of its log: connecting with ********\nFATAL: No space left on device")
    assert report["log"] == "connecting with ********\nFATAL: No space left on device"
    assert ["logs", "--tail", "5", "demo-web"] in runtime.calls


def test_the_log_is_not_read_when_all_is_well_or_not_asked_for():
    healthy = LoggingRuntime([inspect_doc(health="healthy")])
    assert ch.wait_healthy(healthy, "demo-web", 60, log_lines=5)["ok"]
    stopped = LoggingRuntime([inspect_doc(status="exited")])
    assert "log" not in ch.wait_healthy(stopped, "demo-web", 60)
    assert not [c for c in healthy.calls + stopped.calls if c[0] == "logs"]


def test_container_without_health_check_only_has_to_run():
    runtime = ScriptedRuntime([inspect_doc(check=None)])
    report = wait(runtime)
    assert report["ok"] and report["health"] == "none"
    assert not [c for c in runtime.calls if c[0] == "healthcheck"]


def test_probe_command_uses_pg_isready_after_getent():
    command = ch.probe_command("podman", "demo-net", "demo-postgres", 5432, "localhost/pg:latest")
    assert command[:8] == ["run", "--rm", "--no-healthcheck", "--network", "demo-net", "--entrypoint", "/bin/sh",
                           "--pull=never"]
    assert command[8:] == ["localhost/pg:latest", "-c", ch.PROBE_SCRIPT, "demo-postgres", "5432", "5"]
    assert ch.probe_command("docker", "n", "h", 1, "i")[7:9] == ["--pull", "never"]


@pytest.mark.parametrize("rc, ok", [(0, True), (1, True), (2, False), (3, False)])
def test_probe_verdict_follows_pg_isready(rc, ok):
    runtime = ScriptedRuntime([inspect_doc()], probe=(rc, "the name demo-postgres does not resolve on this network"))
    report = ch.probe_database(runtime, "demo-net", "demo-postgres", 5432, "img")
    assert report["ok"] is ok
    if not ok:
        assert report["problem"] == ("a container on network demo-net cannot reach the database at demo-postgres:5432 "
                                     "(the name demo-postgres does not resolve on this network)")


def test_check_containers_collects_every_problem():
    runtime = ScriptedRuntime([inspect_doc(status="exited", exit_code=1)], probe=(2, "no response"))
    report = ch.check_containers(runtime, ["demo-web"], 1,
                                 {"network": "n", "host": "h", "port": 5432, "image": "i"})
    assert len(report["problems"]) == 2 and report["database"]["ok"] is False
    assert ch.check_containers(ScriptedRuntime([inspect_doc(check=None)]), ["demo-web"], 1)["problems"] == []
