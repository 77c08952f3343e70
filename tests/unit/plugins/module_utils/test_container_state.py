"""The plan that brings named containers to stopped or absent: what is there already gets no step."""
import pytest

from ansible_collections.poststack.core.plugins.module_utils import container_state as cs
from ansible_collections.poststack.core.plugins.module_utils.runtime import ContainerRuntime

CURRENT = {"a-running": "running", "b-exited": "exited", "c-missing": None, "d-paused": "paused",
           "e-created": "created"}


def test_stopped_stops_what_has_a_process():
    steps = cs.plan(CURRENT, "stopped")
    assert [(s.name, s.before, s.after, s.stop, s.remove) for s in steps] == [
        ("a-running", "running", "exited", True, False), ("d-paused", "paused", "exited", True, False)]


def test_absent_removes_what_exists_and_stops_it_first():
    steps = cs.plan(CURRENT, "absent")
    assert [(s.name, s.stop, s.remove, s.after) for s in steps] == [
        ("a-running", True, True, None), ("b-exited", False, True, None), ("d-paused", True, True, None),
        ("e-created", False, True, None)]


def test_nothing_to_do_and_a_bad_state():
    assert cs.plan({"x": "exited", "y": None}, "stopped") == [] and cs.plan({"y": None}, "absent") == []
    with pytest.raises(ValueError, match="state must be one of stopped, absent"):
        cs.plan(CURRENT, "started")


def test_the_steps_run_the_same_commands_on_either_runtime(tmp_path):
    log = tmp_path / "calls"
    for name in ("podman", "docker"):
        client = tmp_path / name
        client.write_text('#!/bin/sh\necho "$0 $*" >> %s\n' % log)
        client.chmod(0o755)
        runtime = ContainerRuntime(str(client))
        cs.apply(runtime, cs.Step("web", "running", None, stop=True, remove=True), 7)
    assert log.read_text().splitlines() == ["%s/%s stop -t 7 web" % (tmp_path, n) for n in ("podman",)] + [
        "%s/podman rm -v web" % tmp_path] + ["%s/docker stop -t 7 web" % tmp_path, "%s/docker rm -v web" % tmp_path]
