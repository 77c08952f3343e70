"""Unit tests of the content-hash build logic (no runtime needed)."""
import io
import os
import tarfile

import pytest

from ansible_collections.poststack.core.plugins.module_utils import image_build as ib


def write(root, rel, text="x", mode=0o644):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


# --- ignore patterns (Docker's rules) ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "patterns, path, excluded",
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),           # * does not cross directories
        ("**/*.log", "dir/sub/a.log", True),
        ("**/*.log", "a.log", True),
        ("node_modules", "node_modules/x/y.js", True),  # a parent directory match excludes the contents
        ("/build", "build/out", True),           # a leading slash is the context root
        ("docs/*.md", "docs/a.md", True),
        ("docs/*.md", "docs/sub/a.md", False),
        ("*.md\n!README.md", "README.md", False),  # the last matching pattern wins
        ("*.md\n!README.md", "CHANGES.md", True),
        ("!README.md\n*.md", "README.md", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-c]x", "bx", True),
        ("[!a-c]x", "bx", False),
        ("[!a-c]x", "dx", True),
        ("# comment\n\n", "anything", False),
        ("./tmp/../cache", "cache/f", True),    # patterns are cleaned like filepath.Clean
        ("secret\\*", "secret*", True),
        ("secret\\*", "secrets", False),
    ],
)
def test_ignore_patterns(patterns, path, excluded):
    matcher = ib.IgnoreMatcher(ib.parse_ignore(patterns))
    assert matcher.excluded(path) is excluded


def test_unterminated_character_class_is_a_clear_error():
    with pytest.raises(ib.BuildInputError, match=r"unterminated character class"):
        ib.parse_ignore("[abc")


def test_containerignore_wins_over_dockerignore(tmp_path):
    write(tmp_path, ".dockerignore", "a.txt\n")
    write(tmp_path, ".containerignore", "b.txt\n")
    name, matcher = ib.load_ignore(str(tmp_path))
    assert name == ".containerignore"
    assert matcher.excluded("b.txt") and not matcher.excluded("a.txt")


# --- context hashing --------------------------------------------------------------------------------------

def test_context_files_honour_ignore_and_prune(tmp_path):
    write(tmp_path, "Containerfile", "FROM x\n")
    write(tmp_path, "app/main.py")
    write(tmp_path, "node_modules/big/index.js")
    write(tmp_path, "logs/a.log")
    write(tmp_path, ".dockerignore", "node_modules\n*.log\nlogs\n")
    matcher = ib.load_ignore(str(tmp_path))[1]
    assert ib.context_files(str(tmp_path), matcher) == [".dockerignore", "Containerfile", "app/main.py"]


def test_negation_reincludes_inside_excluded_directory(tmp_path):
    write(tmp_path, "vendor/keep.txt")
    write(tmp_path, "vendor/drop.txt")
    write(tmp_path, ".dockerignore", "vendor\n!vendor/keep.txt\n")
    matcher = ib.load_ignore(str(tmp_path))[1]
    assert ib.context_files(str(tmp_path), matcher) == [".dockerignore", "vendor/keep.txt"]


def test_hash_changes_with_content_name_mode_and_not_with_ignored_files(tmp_path):
    write(tmp_path, "a.txt", "one")
    write(tmp_path, ".dockerignore", "*.tmp\n")
    matcher = ib.load_ignore(str(tmp_path))[1]
    first, count = ib.hash_context(str(tmp_path), matcher)
    assert count == 2
    write(tmp_path, "scratch.tmp", "ignored")
    assert ib.hash_context(str(tmp_path), matcher)[0] == first
    write(tmp_path, "a.txt", "two")
    second = ib.hash_context(str(tmp_path), matcher)[0]
    assert second != first
    os.chmod(tmp_path / "a.txt", 0o755)
    third = ib.hash_context(str(tmp_path), matcher)[0]
    assert third != second
    os.rename(tmp_path / "a.txt", tmp_path / "b.txt")
    assert ib.hash_context(str(tmp_path), matcher)[0] != third


def test_symlink_target_is_hashed_not_followed(tmp_path):
    write(tmp_path, "real.txt", "content")
    os.symlink("real.txt", tmp_path / "link")
    matcher = ib.IgnoreMatcher([])
    first = ib.hash_context(str(tmp_path), matcher)[0]
    os.remove(tmp_path / "link")
    os.symlink("elsewhere.txt", tmp_path / "link")
    assert ib.hash_context(str(tmp_path), matcher)[0] != first


# --- Containerfile parsing --------------------------------------------------------------------------------

def test_from_images_substitutes_args_and_skips_stages():
    text = """
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
ARG TAG
FROM ${BASE_IMAGE} AS setup
RUN true
FROM setup AS test
FROM --platform=linux/amd64 registry.example/tools:${TAG:-1.0} AS tools
FROM scratch
# FROM commented/out
FROM \\
  $BASE_IMAGE
"""
    assert ib.from_images(text, {}) == ["docker.io/library/debian:bookworm-slim", "registry.example/tools:1.0"]
    assert ib.from_images(text, {"BASE_IMAGE": "localhost/debian:bookworm-slim", "TAG": "2"}) == [
        "localhost/debian:bookworm-slim",
        "registry.example/tools:2",
    ]


def test_resolve_containerfile_errors_name_the_path(tmp_path):
    with pytest.raises(ib.BuildInputError, match=r"build context '.*nope' does not exist"):
        ib.resolve_containerfile(str(tmp_path / "nope"), None)
    with pytest.raises(ib.BuildInputError, match=r"no Containerfile or Dockerfile in build context"):
        ib.resolve_containerfile(str(tmp_path), None)
    with pytest.raises(ib.BuildInputError, match=r"Containerfile 'sub/Dockerfile' not found"):
        ib.resolve_containerfile(str(tmp_path), "sub/Dockerfile")
    write(tmp_path, "Dockerfile", "FROM x\n")
    assert ib.resolve_containerfile(str(tmp_path), None) == str(tmp_path / "Dockerfile")
    write(tmp_path, "Containerfile", "FROM x\n")
    assert ib.resolve_containerfile(str(tmp_path), None) == str(tmp_path / "Containerfile")


# --- full hash, command, plan -----------------------------------------------------------------------------

def make_spec(tmp_path, **kwargs):
    write(tmp_path, "Containerfile", "ARG BASE_IMAGE=base:1\nFROM ${BASE_IMAGE}\nRUN true\n")
    defaults = dict(context=str(tmp_path), containerfile=str(tmp_path / "Containerfile"), tags=["img:latest"])
    defaults.update(kwargs)
    return ib.BuildSpec(**defaults)


def test_compute_hash_covers_args_labels_target_and_base_image_id(tmp_path):
    ids = {"base:1": "sha-1"}
    spec = make_spec(tmp_path)
    base = ib.compute_hash(spec, ids.get)
    assert base.base_images == {"base:1": "sha-1"}
    assert ib.compute_hash(spec, ids.get).value == base.value
    variants = [
        make_spec(tmp_path, build_args={"X": "1"}),
        make_spec(tmp_path, labels={"team": "db"}),
        make_spec(tmp_path, target="setup"),
        make_spec(tmp_path, image_format="oci"),
    ]
    values = {ib.compute_hash(v, ids.get).value for v in variants}
    assert base.value not in values and len(values) == len(variants)
    ids["base:1"] = "sha-2"  # the base image was rebuilt
    assert ib.compute_hash(spec, ids.get).value != base.value


def test_build_command_podman_and_docker(tmp_path):
    spec = make_spec(tmp_path, tags=["a:1", "a:latest"], build_args={"B": "2", "A": "1"}, target="t",
                     labels={"l": "v"}, pull="never", no_cache=True)
    podman = ib.build_command("podman", spec, "h")
    assert podman == [
        "build", "-f", spec.containerfile, "-t", "a:1", "-t", "a:latest",
        "--build-arg", "A=1", "--build-arg", "B=2",
        "--label", "io.poststack.build-hash=h", "--label", "l=v",
        "--target", "t", "--no-cache", "--pull=never", "--format", "docker", str(tmp_path),
    ]
    docker = ib.build_command("docker", spec, "h")
    assert "--pull=never" not in docker and "--format" not in docker and "--force-rm" in docker
    assert "--force-rm" not in podman
    assert ib.build_command("docker", make_spec(tmp_path, pull="always"), "h")[-2] == "--pull"


def test_the_build_network_is_passed_and_not_hashed(tmp_path):
    """--network host for an engine without NAT: on the command line of both runtimes, and the same image hash
    with or without it (it changes how the build reaches the outside, not what it makes)."""
    hosted = make_spec(tmp_path, network="host")
    for runtime in ("podman", "docker"):
        argv = ib.build_command(runtime, hosted, "h")
        assert argv[argv.index("--network"):argv.index("--network") + 2] == ["--network", "host"]
        assert "--network" not in ib.build_command(runtime, make_spec(tmp_path), "h")
    assert ib.compute_hash(hosted, lambda ref: None).value == ib.compute_hash(make_spec(tmp_path), lambda ref: None).value


@pytest.mark.parametrize(
    "state, force, action",
    [
        (ib.ImageState(None, None, []), False, "build"),
        (ib.ImageState("id", None, ["a:1"]), False, "build"),
        (ib.ImageState("id", "old", ["a:1"]), False, "build"),
        (ib.ImageState("id", "new", ["a:1"]), False, "tag"),
        (ib.ImageState("id", "new", ["a:1", "a:2"]), False, "none"),
        (ib.ImageState("id", "new", ["a:1", "a:2"]), True, "build"),
    ],
)
def test_plan_build(state, force, action):
    plan = ib.plan_build("new", ["a:1", "a:2"], state, force)
    assert plan.action == action
    if action == "tag":
        assert plan.missing_tags == ["a:2"]


def test_log_tail(tmp_path):
    path = write(tmp_path, "build.log", "\n".join(f"line {i}" for i in range(100)))
    assert ib.log_tail(path, 3) == "line 97\nline 98\nline 99"
    assert ib.log_tail(str(tmp_path / "missing.log")) == ""


def test_excluded_paths_leave_the_hash_and_the_build(tmp_path):
    """project_containers excludes .env and logs: a changed log or password does not rebuild, and podman gets the
    context's own ignore file with them appended (--ignorefile); a negation in the ignore file cannot bring them back."""
    write(tmp_path, ".containerignore", "tmp\n!logs/keep\n")
    write(tmp_path, "app.py", "print(1)\n")
    write(tmp_path, ".env", "POSTSTACK_POSTGRES_PASSWORD=one\n")
    (tmp_path / "logs").mkdir()
    write(tmp_path, "logs/keep", "a\n")
    ids = {"base:1": "sha-1"}
    spec = make_spec(tmp_path, exclude=[".env", "logs"])
    first = ib.compute_hash(spec, ids.get)
    write(tmp_path, ".env", "POSTSTACK_POSTGRES_PASSWORD=two\n")
    write(tmp_path, "logs/keep", "b\n")
    assert ib.compute_hash(spec, ids.get).value == first.value
    write(tmp_path, "app.py", "print(2)\n")
    assert ib.compute_hash(spec, ids.get).value != first.value
    # without excludes the same context hashes the .env (and earlier hashes of such specs stay what they were)
    assert ib.compute_hash(make_spec(tmp_path), ids.get).value != ib.compute_hash(spec, ids.get).value
    assert ib.combined_ignore(str(tmp_path), spec.exclude) == "tmp\n!logs/keep\n.env\nlogs\n"
    command = ib.build_command("podman", spec, "h", ignore_file="/tmp/x.ignore")
    assert command[3:5] == ["--ignorefile", "/tmp/x.ignore"]
    assert "--ignorefile" not in ib.build_command("docker", spec, "h", ignore_file="/tmp/x.ignore")


def test_exposed_names_what_docker_would_send(tmp_path):
    write(tmp_path, ".env", "X=1\n")
    assert ib.exposed(str(tmp_path), [".env", "logs"], ib.ignore_files("docker")) == [".env"]  # logs does not exist
    write(tmp_path, ".dockerignore", ".env\n")
    assert ib.exposed(str(tmp_path), [".env", "logs"], ib.ignore_files("docker")) == []


def test_docker_hashes_what_it_sends_by_its_own_ignore_file(tmp_path):
    """podman reads .containerignore first, docker only .dockerignore: each hash covers what that runtime sends."""
    write(tmp_path, "Containerfile", "FROM base:1\nCOPY . /app\n")
    write(tmp_path, "notes.txt", "one\n")
    write(tmp_path, ".containerignore", "notes.txt\n")
    write(tmp_path, ".dockerignore", "\n")
    podman = make_spec(tmp_path)
    docker = make_spec(tmp_path, ignore_files=ib.ignore_files("docker"))
    before = (ib.compute_hash(podman, lambda ref: None).value, ib.compute_hash(docker, lambda ref: None).value)
    write(tmp_path, "notes.txt", "two\n")
    after = (ib.compute_hash(podman, lambda ref: None).value, ib.compute_hash(docker, lambda ref: None).value)
    assert before[0] == after[0], "podman does not send notes.txt (.containerignore)"
    assert before[1] != after[1], "docker sends notes.txt (its .dockerignore lets it through)"


def test_the_streamed_context_holds_what_the_hash_covers_and_the_containerfile(tmp_path):
    """Docker has no --ignorefile: the context goes as a tar of exactly the hashed files (.env and logs left out
    by ``exclude``, *.tmp by .dockerignore), with the Containerfile even where the ignore file names it."""
    write(tmp_path, "Containerfile", "FROM base:1\nCOPY . /app\n")
    write(tmp_path, ".env", "DB_PASS=secret\n")
    write(tmp_path, "logs/build.log", "x\n")
    write(tmp_path, "app/main.py", "print(1)\n")
    write(tmp_path, "notes.tmp", "x\n")
    write(tmp_path, ".dockerignore", "*.tmp\nContainerfile\n")
    spec = make_spec(tmp_path, ignore_files=ib.ignore_files("docker"), exclude=[".env", "logs"])
    stream = io.BytesIO()
    assert ib.context_tar(spec, stream) == ib.compute_hash(spec, {}.get).context_files == 2
    stream.seek(0)
    with tarfile.open(fileobj=stream) as archive:
        assert sorted(archive.getnames()) == [".dockerignore", "Containerfile", "app", "app/main.py"]
        assert {(m.uid, m.gid, m.uname) for m in archive.getmembers()} == {(0, 0, "")}
    command = ib.build_command("docker", spec, "h", streamed=True)
    assert command[:3] == ["build", "-f", "Containerfile"] and command[-1] == "-"


def test_a_containerfile_from_outside_the_context_goes_into_the_stream_under_its_own_name(tmp_path):
    write(tmp_path, "ctx/app.txt", "a\n")
    write(tmp_path, "elsewhere/Containerfile", "FROM base:1\n")
    spec = make_spec(tmp_path / "ctx", containerfile=str(tmp_path / "elsewhere" / "Containerfile"))
    stream = io.BytesIO()
    ib.context_tar(spec, stream)
    stream.seek(0)
    with tarfile.open(fileobj=stream) as archive:
        assert sorted(archive.getnames()) == [ib.STREAMED_CONTAINERFILE, "Containerfile", "app.txt"]  # make_spec's
        assert archive.extractfile(ib.STREAMED_CONTAINERFILE).read() == b"FROM base:1\n"
    assert ib.build_command("docker", spec, "h", streamed=True)[2] == ib.STREAMED_CONTAINERFILE


def test_the_hash_is_the_same_whichever_runtime_reports_the_base_image(tmp_path):
    """Docker writes image IDs with a sha256: prefix, podman without: an image moved from one to the other keeps
    its ID, and what is built on it stays up to date."""
    spec = make_spec(tmp_path)
    podman = ib.compute_hash(spec, {"base:1": "60fef2a4"}.get)
    docker = ib.compute_hash(spec, {"base:1": "sha256:60fef2a4"}.get)
    assert podman.value == docker.value and docker.base_images == {"base:1": "60fef2a4"}
    assert ib.compute_hash(spec, {"base:1": "sha256:70fef2a4"}.get).value != podman.value


def test_the_stream_keeps_empty_directories_follows_a_linked_containerfile_and_leaves_out_fifos(tmp_path):
    write(tmp_path, "shared/Containerfile", "FROM base:1\n")
    os.makedirs(tmp_path / "ctx" / "uploads")
    os.symlink("../shared/Containerfile", tmp_path / "ctx" / "Containerfile")
    os.mkfifo(tmp_path / "ctx" / "pipe")
    write(tmp_path, "ctx/svc/.env", "SECRET=1\n")
    spec = ib.BuildSpec(context=str(tmp_path / "ctx"), containerfile=str(tmp_path / "ctx" / "Containerfile"),
                        tags=["img:latest"], ignore_files=ib.ignore_files("docker"), exclude=["**/.env"])
    assert ib.exposed(spec.context, spec.exclude, spec.ignore_files) == ["svc/.env"]  # a pattern, not a path
    stream = io.BytesIO()
    assert ib.context_tar(spec, stream) == 1
    stream.seek(0)
    with tarfile.open(fileobj=stream) as archive:
        assert sorted(archive.getnames()) == ["Containerfile", "svc", "uploads"]
        assert archive.getmember("Containerfile").isfile() and archive.getmember("uploads").isdir()
        assert archive.extractfile("Containerfile").read() == b"FROM base:1\n"


def test_a_context_file_with_the_streamed_containerfile_name_is_refused(tmp_path):
    write(tmp_path, "ctx/" + ib.STREAMED_CONTAINERFILE, "x\n")
    write(tmp_path, "elsewhere/Containerfile", "FROM base:1\n")
    spec = ib.BuildSpec(context=str(tmp_path / "ctx"), containerfile=str(tmp_path / "elsewhere" / "Containerfile"),
                        tags=["img:latest"])
    with pytest.raises(ib.BuildInputError, match="rename that file"):
        ib.context_tar(spec, io.BytesIO())
