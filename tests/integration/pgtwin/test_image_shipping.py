"""pgtwin_image_from_controller (roles/pgtwin/tasks/image.yml) with two "nodes" that are this host with a podman
store each (a wrapper per node: its own --root and --runroot): the image is saved once on the controller, only
the node without it gets the archive and loads it (the first node already has it: the condition of a run_once
task is read on the first host only, so that order is the one that matters), the node's image ID is the
controller's, a second run changes nothing, and check mode changes no node."""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import uuid

import pytest

from ansible_run import ROOT, run_playbook

TASKS = os.path.join(ROOT, "roles", "pgtwin", "tasks", "image.yml")


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def lab(tmp_path):
    image = "localhost/pgtwin-test/tiny:%s" % uuid.uuid4().hex[:8]
    content = tmp_path / "content"
    content.mkdir()
    (content / "hello").write_text("a tiny image for the shipping test\n")
    subprocess.run(["tar", "-C", str(content), "-cf", str(tmp_path / "tiny.tar"), "."], check=True)
    podman("import", str(tmp_path / "tiny.tar"), image)
    nodes = {}
    runroots = tempfile.mkdtemp(prefix="pgship-", dir="/tmp")  # podman: a runroot of at most 50 characters
    for name in ("nodea", "nodeb"):
        store = tmp_path / name
        wrapper = store / "podman"
        store.mkdir()
        wrapper.write_text('#!/bin/sh\nexec podman --root "%s/root" --runroot "%s/%s" --storage-driver vfs "$@"\n'
                           % (store, runroots, name))
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        nodes[name] = str(wrapper)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {
        name: {"ansible_connection": "local", "pgtwin_container_runtime": wrapper} for name, wrapper in nodes.items()}}}))
    try:
        yield {"image": image, "nodes": nodes, "inventory": str(inventory), "cache": str(tmp_path / "cache"),
               "tmp": tmp_path}
    finally:
        # Only the images of the node stores (never `podman system reset`: it removes every network of the
        # host, whose configuration is not under --root).
        for wrapper in nodes.values():
            subprocess.run([wrapper, "rmi", "--all", "--force"], capture_output=True, check=False)
        podman("rmi", "-f", image, check=False)
        shutil.rmtree(runroots, ignore_errors=True)


def node_image(lab, name):
    proc = subprocess.run([lab["nodes"][name], "image", "inspect", "--format", "{{.Id}}", lab["image"]],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ship(lab, check=False):
    plays = [{"hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Look for the PostgreSQL image", "ansible.builtin.command": {
            "argv": ["{{ pgtwin_container_runtime }}", "image", "inspect", "--format", "{{ '{{' }}.Id{{ '}}' }}",
                     "{{ pgtwin_container_image }}"]},
         "register": "__pgtwin_image", "changed_when": False, "failed_when": False, "check_mode": False},
        {"name": "Ship", "ansible.builtin.include_tasks": TASKS}]}]
    return run_playbook(plays, inventory=lab["inventory"], check=check, extra_vars={
        "pgtwin_container_image": lab["image"], "pgtwin_controller_runtime": "podman",
        "pgtwin_image_cache_dir": lab["cache"]})


def changed_on(run, task, host):
    found = [t["hosts"][host] for t in run.tasks if t["task"]["name"] == task and host in t["hosts"]]
    return bool(found) and bool(found[-1].get("changed")) and not found[-1].get("skipped")


def test_ships_once_to_the_node_that_lacks_the_image(lab):
    controller = podman("image", "inspect", "--format", "{{.Id}}", lab["image"]).stdout.strip()
    archive = lab["tmp"] / "preload.tar"
    podman("save", "--format", "docker-archive", "-o", str(archive), lab["image"])
    subprocess.run([lab["nodes"]["nodea"], "load", "-i", str(archive)], capture_output=True, check=True)
    assert node_image(lab, "nodea") == controller and node_image(lab, "nodeb") is None

    dry = ship(lab, check=True)
    assert dry.rc == 0 and dry.failed == 0, dry.stdout[-3000:]
    assert changed_on(dry, "Copy the image archive to the node", "nodeb")
    assert node_image(lab, "nodeb") is None, "check mode loaded the image"

    first = ship(lab)
    assert first.rc == 0 and first.failed == 0, first.stdout[-3000:]
    assert changed_on(first, "Load the image on the node", "nodeb")
    assert not changed_on(first, "Load the image on the node", "nodea")
    assert node_image(lab, "nodeb") == controller
    assert os.listdir(lab["cache"]) == [controller + ".tar"]
    assert not [f for f in os.listdir("/var/tmp") if f.startswith("pgtwin-image-" + controller[:12])], "archive left"

    second = ship(lab)
    assert second.rc == 0 and second.changed == 0, second.stdout[-3000:]


def test_refuses_when_the_controller_lacks_the_image(lab):
    podman("rmi", "-f", lab["image"])
    run = ship(lab)
    assert run.rc != 0 and run.changed == 0
    failed = [h for t in run.tasks for h in t["hosts"].values() if h.get("failed")]
    assert failed and "is not in the controller's podman" in failed[0]["msg"], failed
    assert "build it there first" in failed[0]["msg"]
