"""poststack_image through ansible-playbook against real podman and a real Docker engine (the private one of
scripts/docker-engine.sh, or the one DOCKER_HOST names): every test runs on both runtimes."""
import os
import uuid

import pytest

import docker_engine
from ansible_run import run_playbook
from lab import Runtime

BASE = os.environ.get("POSTSTACK_BASE_IMAGE", "localhost/debian:bookworm-slim")


@pytest.fixture(scope="module")
def docker_env():
    with docker_engine.running([BASE]) as host:
        yield host


@pytest.fixture(params=["podman", "docker"])
def engine(request):
    if request.param == "docker":
        request.getfixturevalue("docker_env")  # DOCKER_HOST for the module's runs, the base image in Docker's store
    return Runtime(request.param)


@pytest.fixture
def image_name(engine):
    name = f"localhost/poststack-test/img-{uuid.uuid4().hex[:8]}"
    yield name
    listed = engine.cli("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={name}*",
                        check=False).stdout.split()
    for ref in listed + [name]:
        engine.cli("rmi", "-f", ref, check=False)


@pytest.fixture
def context(tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "Containerfile").write_text(
        f"ARG BASE_IMAGE={BASE}\nFROM ${{BASE_IMAGE}}\nCOPY app/ /app/\nRUN cat /app/hello.txt\n"
    )
    (ctx / "app" / "hello.txt").write_text("hello\n")
    (ctx / ".containerignore").write_text("*.tmp\n")
    (ctx / ".dockerignore").write_text("*.tmp\n")
    return ctx


def build_play(name, context, log_dir, environment=None, engine=None, **options):
    if engine:
        options.setdefault("runtime", engine.name)
    task = {"name": "build", "poststack.core.poststack_image": dict(
        name=name, context=str(context), pull="never", log_dir=str(log_dir), **options), "register": "r"}
    if environment:
        task["environment"] = environment
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]


def test_build_is_idempotent_by_content(engine, image_name, context, tmp_path):
    logs = tmp_path / "logs"
    play = build_play(image_name, context, logs, engine=engine)

    check = run_playbook(play, check=True)
    assert check.rc == 0, check.stdout
    planned = check.results("build")
    assert planned["changed"] is True and planned["operation"] == "build"
    assert not engine.exists("image", image_name), "check mode must not build"
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
    assert os.path.basename(build[0]) == engine.name
    # podman is told never to pull; docker pulls only with --pull (and never a FROM it has)
    assert ("--pull=never" in build) == (engine.name == "podman") and "--pull" not in build
    assert os.path.isfile(built["log_file"]) and "hello" in open(built["log_file"]).read()
    label = engine.cli("image", "inspect", "--format", '{{ index .Config.Labels "io.poststack.build-hash" }}', image_name)
    assert label.stdout.strip() == built["build_hash"]

    second = run_playbook(play)
    again = second.results("build")
    assert again["changed"] is False and again["operation"] == "none"
    assert again["image_id"] == built["image_id"] and again["log_file"] is None and again["commands"] == []

    (context / "notes.tmp").write_text("ignored by .containerignore and .dockerignore\n")
    assert run_playbook(play).results("build")["changed"] is False

    (context / "app" / "hello.txt").write_text("hello again\n")
    rebuilt = run_playbook(play).results("build")
    assert rebuilt["changed"] is True and rebuilt["image_id"] != built["image_id"]
    assert rebuilt["reason"].startswith("build inputs changed")
    assert run_playbook(play).results("build")["changed"] is False


def test_additional_tag_and_build_args(engine, image_name, context, tmp_path):
    play = build_play(image_name, context, tmp_path, engine=engine, build_args={"BASE_IMAGE": BASE})
    assert run_playbook(play).results("build")["operation"] == "build"
    tagged = build_play(image_name, context, tmp_path, engine=engine, build_args={"BASE_IMAGE": BASE},
                        additional_tags=[f"{image_name}:v1"])
    result = run_playbook(tagged).results("build")
    assert result["changed"] is True and result["operation"] == "tag"
    assert engine.exists("image", f"{image_name}:v1")
    assert run_playbook(tagged).results("build")["changed"] is False


def test_base_image_rebuild_triggers_rebuild(engine, image_name, context, tmp_path):
    base = f"{image_name}-base"
    base_ctx = tmp_path / "base"
    base_ctx.mkdir()
    (base_ctx / "Containerfile").write_text(f"FROM {BASE}\nRUN echo one > /base.txt\n")
    child_ctx = tmp_path / "child"
    child_ctx.mkdir()
    (child_ctx / "Containerfile").write_text(f"FROM {base}:latest\nRUN cat /base.txt\n")
    try:
        assert run_playbook(build_play(base, base_ctx, tmp_path, engine=engine)).results("build")["changed"]
        child = build_play(image_name, child_ctx, tmp_path, engine=engine)
        assert run_playbook(child).results("build")["changed"]
        assert run_playbook(child).results("build")["changed"] is False
        (base_ctx / "Containerfile").write_text(f"FROM {BASE}\nRUN echo two > /base.txt\n")
        assert run_playbook(build_play(base, base_ctx, tmp_path, engine=engine)).results("build")["changed"]
        result = run_playbook(child).results("build")
        assert result["changed"] is True and "base image" in result["reason"]
    finally:
        engine.cli("rmi", "-f", f"{base}:latest", check=False)


def test_errors_are_clear_and_build_nothing(engine, image_name, context, tmp_path):
    def build(**options):
        return run_playbook(build_play(image_name, options.pop("ctx", context), tmp_path, engine=engine, **options)).results("build")

    missing = build(ctx=tmp_path / "nope")
    assert missing["failed"] and "build context" in missing["msg"] and "does not exist" in missing["msg"]

    no_file = build(containerfile="Other")
    assert no_file["failed"] and "Containerfile 'Other' not found" in no_file["msg"]

    (context / "Containerfile").write_text(f"FROM {BASE}\nRUN echo about-to-fail && exit 7\n")
    failed = build()
    assert failed["failed"] and "building" in failed["msg"] and "about-to-fail" in failed["msg"]
    assert os.path.isfile(failed["log_file"])
    assert not engine.exists("image", image_name)
    # nor a container of the failed step (Docker's builder keeps it unless told with --force-rm)
    left = engine.cli("ps", "-a", "--no-trunc", "--filter", "status=exited", "--format", "{{.Command}}").stdout
    assert "about-to-fail" not in left, left

    no_runtime = build(runtime="auto", environment={"PATH": "/nonexistent"})
    assert no_runtime["failed"] and "install podman (preferred) or docker" in no_runtime["msg"]

    if engine.name == "docker":
        away = run_playbook(build_play(image_name, context, tmp_path, engine=engine),
                            env={"DOCKER_HOST": "unix://%s/no-engine.sock" % tmp_path}).results("build")
        assert away["failed"], away
        assert away["msg"].startswith("the Docker engine does not answer at DOCKER_HOST=unix://%s/no-engine.sock"
                                      % tmp_path), away["msg"]


def test_a_build_that_downloads(engine, image_name, tmp_path):
    """A RUN step that fetches Debian's package lists: podman's default build network reaches the mirror; the
    test's Docker engine does no NAT (--iptables=false), so its builds take network=host (the image roles'
    *_build_network, POSTSTACK_BUILD_NETWORK)."""
    ctx = tmp_path / "apt"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        f"FROM {BASE}\nRUN apt-get update -q -o Acquire::Retries=0 && ls /var/lib/apt/lists | grep -q _Packages\n")
    options = {"network": "host"} if engine.name == "docker" else {}
    built = run_playbook(build_play(image_name, ctx, tmp_path, engine=engine, **options)).results("build")
    assert built["changed"] and not built.get("failed"), built.get("msg")
    [command] = built["commands"]
    assert ("--network" in command) == (engine.name == "docker")


def test_an_excluded_env_file_never_reaches_the_build(engine, image_name, tmp_path):
    """A project's .env in the build context, no ignore file: ``exclude`` keeps it out of the build on both
    runtimes (podman through --ignorefile, Docker through a tar of the context on stdin), the build sees the rest
    of the context, and a second run changes nothing."""
    ctx = tmp_path / "project"
    (ctx / "containers" / "web").mkdir(parents=True)
    (ctx / ".env").write_text("POSTSTACK_POSTGRES_PASSWORD=never-in-an-image\n")
    (ctx / "index.html").write_text("shop\n")
    (ctx / "containers" / "web" / "Containerfile").write_text(
        f"ARG BASE_IMAGE={BASE}\nFROM ${{BASE_IMAGE}}\nCOPY . /ctx/\n"
        "RUN test ! -e /ctx/.env && test -f /ctx/index.html && test -f /ctx/containers/web/Containerfile\n")
    play = build_play(image_name, ctx, tmp_path / "logs", engine=engine, containerfile="containers/web/Containerfile",
                      exclude=[".env"])
    first = run_playbook(play)
    assert first.rc == 0, first.stdout[-3000:]
    built = first.results("build")
    assert built["changed"] is True and built["context_files"] == 2
    assert built["commands"][0][-1] == ("-" if engine.name == "docker" else str(ctx))
    listed = engine.cli("run", "--rm", image_name, "ls", "-A", "/ctx").stdout.split()
    assert listed == ["containers", "index.html"]
    assert "never-in-an-image" not in open(built["log_file"]).read()
    assert run_playbook(play).results("build")["changed"] is False
