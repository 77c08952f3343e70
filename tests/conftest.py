"""Shared pytest set-up: make `ansible_collections.poststack.core` importable from this checkout."""
import atexit
import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "poststack", "core")):
    raise RuntimeError("run `make bootstrap` first: .collections/ansible_collections/poststack/core is missing")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

# Tests run in the checkout, where the project is the demo (examples/project: its .env and poststack.yml). A
# test's own playbook is a user's playbook in a project of its own: by default an empty directory, so that the
# demo's settings never reach it. Runs that are the demo (inventories/local) point POSTSTACK_PROJECT_DIR at examples/project themselves.
os.environ["POSTSTACK_PROJECT_DIR"] = tempfile.mkdtemp(prefix="poststack-test-project-")
atexit.register(shutil.rmtree, os.environ["POSTSTACK_PROJECT_DIR"], True)
for _name in ("POSTSTACK_ENV_FILE", "POSTSTACK_CONFIG_FILE"):  # a developer's own would redirect every run
    os.environ.pop(_name, None)


# The integration layer runs on two xdist workers, a file's tests on one of them (--dist loadfile), each next file
# to whichever worker is free, in collection order. Alphabetically the long files (runtime/: containers, images,
# playbooks) came last, and a run ended with one worker on them while the other idled for minutes (session 15:
# the last 4 of 26 minutes at half the CPU). Longest first: directories in this order, the rest after them.
_LONG_FIRST = ("integration/runtime/", "integration/cli/", "integration/bad_input/", "integration/backup/",
               "integration/pgtwin/", "integration/images/", "integration/btrfs/")


def pytest_collection_modifyitems(items):
    def rank(item):
        path = str(item.path)
        return next((index for index, part in enumerate(_LONG_FIRST) if part in path), len(_LONG_FIRST))
    items.sort(key=rank)  # stable: a file's tests keep their order


@pytest.fixture
def opened(monkeypatch):
    """The base names of the files the test's own process opens through open(), in order (stat before read)."""
    seen = []
    real = open

    def spy(path, *args, **kwargs):
        seen.append(os.path.basename(str(path)))
        return real(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    return seen
