"""poststack_image through ansible-playbook against real podman (and docker through a podman-backed shim)."""
import os
import subprocess
import uuid

import pytest

from ansible_run import run_playbook

BASE = os.environ.get("POSTSTACK_BASE_IMAGE", "localhost/debian:bookworm-slim")


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def image_name():
    name = f"localhost/poststack-test/img-{uuid.uuid4().hex[:8]}"
    yield name
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={name}", check=False)
    for ref in out.stdout.split():
        podman("rmi", "-f", ref, check=False)


@pytest.fixture
def context(tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "Containerfile").write_text(
        f"ARG BASE_IMAGE={BASE}\nFROM ${{BASE_IMAGE}}\nCOPY app/ /app/\nRUN cat /app/hello.txt\n"
    )
    (ctx / "app" / "hello.txt").write_text("hello\n")
    (ctx / ".containerignore").write_text("*.tmp\n")
    return ctx


def build_play(name, context, log_dir, environment=None, **options):
    task = {"name": "build", "poststack.core.poststack_image": dict(
        name=name, context=str(context), pull="never", log_dir=str(log_dir), **options), "register": "r"}
    if environment:
        task["environment"] = environment
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]


def test_build_is_idempotent_by_content(image_name, context, tmp_path):
    logs = tmp_path / "logs"
    play = build_play(image_name, context, logs)

    check = run_playbook(play, check=True)
    assert check.rc == 0, check.stdout
    planned = check.results("build")
    assert planned["changed"] is True and planned["operation"] == "build"
    assert podman("image", "exists", image_name, check=False).returncode == 1, "check mode must not build"
    assert "diff" not in planned, "the diff is returned in diff mode only"
    with_diff = run_playbook(play, check=True, diff=True).results("build")
    assert with_diff["diff"]["before"] == {"image_id": None, "build_hash": None, "tags": []}
    assert with_diff["diff"]["after"]["image_id"] == "(new)"
    assert with_diff["diff"]["after"]["build_hash"] == planned["build_hash"]

    first = run_playbook(play)
    assert first.rc == 0, first.stdout
    built = first.results("build")
    assert built["changed"] is True and built["operation"] == "build"
    assert built["image_id"] and built["size"] > 0 and f"{image_name}:latest" in built["tags"]
    [build] = built["commands"]
    assert build[0].endswith("podman") and "--pull=never" in build
    assert os.path.isfile(built["log_file"]) and "hello" in open(built["log_file"]).read()
    label = podman("image", "inspect", "--format", '{{ index .Labels "io.poststack.build-hash" }}', image_name)
    assert label.stdout.strip() == built["build_hash"]

    second = run_playbook(play)
    again = second.results("build")
    assert again["changed"] is False and again["operation"] == "none"
    assert again["image_id"] == built["image_id"] and again["log_file"] is None and again["commands"] == []

    (context / "notes.tmp").write_text("ignored by .containerignore\n")
    assert run_playbook(play).results("build")["changed"] is False

    (context / "app" / "hello.txt").write_text("hello again\n")
    rebuilt = run_playbook(play).results("build")
    assert rebuilt["changed"] is True and rebuilt["image_id"] != built["image_id"]
    assert rebuilt["reason"].startswith("build inputs changed")
    assert run_playbook(play).results("build")["changed"] is False


def test_additional_tag_and_build_args(image_name, context, tmp_path):
    play = build_play(image_name, context, tmp_path, build_args={"BASE_IMAGE": BASE})
    assert run_playbook(play).results("build")["operation"] == "build"
    tagged = build_play(image_name, context, tmp_path, build_args={"BASE_IMAGE": BASE},
                        additional_tags=[f"{image_name}:v1"])
    result = run_playbook(tagged).results("build")
    assert result["changed"] is True and result["operation"] == "tag"
    assert podman("image", "exists", f"{image_name}:v1", check=False).returncode == 0
    assert run_playbook(tagged).results("build")["changed"] is False


def test_base_image_rebuild_triggers_rebuild(image_name, context, tmp_path):
    base = f"{image_name}-base"
    base_ctx = tmp_path / "base"
    base_ctx.mkdir()
    (base_ctx / "Containerfile").write_text(f"FROM {BASE}\nRUN echo one > /base.txt\n")
    child_ctx = tmp_path / "child"
    child_ctx.mkdir()
    (child_ctx / "Containerfile").write_text(f"FROM {base}:latest\nRUN cat /base.txt\n")
    try:
        assert run_playbook(build_play(base, base_ctx, tmp_path)).results("build")["changed"]
        child = build_play(image_name, child_ctx, tmp_path)
        assert run_playbook(child).results("build")["changed"]
        assert run_playbook(child).results("build")["changed"] is False
        (base_ctx / "Containerfile").write_text(f"FROM {BASE}\nRUN echo two > /base.txt\n")
        assert run_playbook(build_play(base, base_ctx, tmp_path)).results("build")["changed"]
        result = run_playbook(child).results("build")
        assert result["changed"] is True and "base image" in result["reason"]
    finally:
        podman("rmi", "-f", f"{base}:latest", check=False)


def test_errors_are_clear_and_build_nothing(image_name, context, tmp_path):
    missing = run_playbook(build_play(image_name, tmp_path / "nope", tmp_path)).results("build")
    assert missing["failed"] and "build context" in missing["msg"] and "does not exist" in missing["msg"]

    no_file = run_playbook(build_play(image_name, context, tmp_path, containerfile="Other")).results("build")
    assert no_file["failed"] and "Containerfile 'Other' not found" in no_file["msg"]

    (context / "Containerfile").write_text(f"FROM {BASE}\nRUN echo about-to-fail && exit 7\n")
    failed = run_playbook(build_play(image_name, context, tmp_path)).results("build")
    assert failed["failed"] and "building" in failed["msg"] and "about-to-fail" in failed["msg"]
    assert os.path.isfile(failed["log_file"])
    assert podman("image", "exists", image_name, check=False).returncode == 1

    no_runtime = run_playbook(build_play(image_name, context, tmp_path, environment={"PATH": "/nonexistent"}))
    no_runtime = no_runtime.results("build")
    assert no_runtime["failed"] and "install podman (preferred) or docker" in no_runtime["msg"]


def test_docker_runtime_through_a_podman_backed_shim(image_name, context, tmp_path):
    """No Docker engine runs here: a `docker` executable that forwards to podman stands in for it, so that the
    docker code path (command line, inspect parsing) is exercised end to end."""
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    calls = tmp_path / "docker-calls.log"
    shim = shim_dir / "docker"
    shim.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec podman "$@"\n')
    shim.chmod(0o755)
    env = {"PATH": f"{shim_dir}:{os.environ['PATH']}"}
    play = build_play(image_name, context, tmp_path, runtime="docker")
    first = run_playbook(play, env=env).results("build")
    assert first["changed"] and first["runtime"] == str(shim)
    [build] = first["commands"]
    assert "--format" not in build and "--pull=never" not in build
    assert run_playbook(play, env=env).results("build")["changed"] is False
    assert "build -f" in calls.read_text()
