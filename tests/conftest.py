"""Shared pytest set-up: make `ansible_collections.poststack.core` importable from this checkout."""
import atexit
import os
import shutil
import sys
import tempfile

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
