"""The one-file agent the pgtwin role deploys: deterministic bytes, runs as the OCF agent, the notify fast path
still answers without Python, bad sources are named."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from ansible.errors import AnsibleLookupError
from ansible_collections.poststack.core.plugins.lookup.pgtwin_bundle import LookupModule
from ansible_collections.poststack.core.plugins.plugin_utils import pgtwin_bundle

FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "roles", "pgtwin", "files")
FILES = os.path.normpath(FILES)


def test_same_sources_give_the_same_bytes(tmp_path):
    copy = tmp_path / "files"
    shutil.copytree(FILES, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*.py"):
        os.utime(path, (1, 1))  # other mtimes, as in another clone
    assert pgtwin_bundle.build(FILES) == pgtwin_bundle.build(str(copy))
    (copy / "pgtwin_agent" / "rules.py").write_text((copy / "pgtwin_agent" / "rules.py").read_text() + "\n# x\n")
    assert pgtwin_bundle.build(FILES) != pgtwin_bundle.build(str(copy))


def test_bundle_holds_every_module_and_runs(tmp_path):
    path, written = pgtwin_bundle.write(FILES, str(tmp_path))
    assert written and pgtwin_bundle.write(FILES, str(tmp_path)) == (path, False)
    assert os.stat(path).st_mode & 0o777 == 0o755
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    sources = {"pgtwin_agent/" + n for n in os.listdir(os.path.join(FILES, "pgtwin_agent")) if n.endswith(".py")}
    assert names == sources | {"__main__.py"}
    env = {"PATH": os.environ["PATH"], "PGTWIN_PYTHON": sys.executable}
    meta = subprocess.run([path, "meta-data"], capture_output=True, text=True, env=env, check=False, timeout=60)
    assert meta.returncode == 0 and "<resource-agent name=\"pgtwin\"" in meta.stdout
    bad = subprocess.run([path, "validate-all"], capture_output=True, text=True, env=env, check=False, timeout=60)
    assert bad.returncode == 6 and "pgdata is required" in bad.stderr  # OCF_ERR_CONFIGURED
    # Notifications other than post-promote on the other node never start Python.
    quick = dict(env, PGTWIN_PYTHON="/bin/false", OCF_RESKEY_CRM_meta_notify_type="pre",
                 OCF_RESKEY_CRM_meta_notify_operation="promote")
    assert subprocess.run([path, "notify"], env=quick, check=False, timeout=60).returncode == 0


def lookup():
    """The lookup with its options taken as given (Ansible's loader, which reads them from DOCUMENTATION, is
    exercised by every run of the pgtwin role: molecule cluster, tests/ha)."""
    module = LookupModule()
    given = {}
    module.set_options = lambda var_options=None, direct=None: given.update(direct or {})
    module.get_option = given.get
    return module


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(pgtwin_bundle.BundleError, match="cannot read the pgtwin entry script"):
        pgtwin_bundle.build(str(tmp_path))
    (tmp_path / "pgtwin").write_text("#!/bin/sh\nexec true\n")
    with pytest.raises(pgtwin_bundle.BundleError, match="bundled=no"):
        pgtwin_bundle.build(str(tmp_path))
    with pytest.raises(AnsibleLookupError, match="pgtwin_bundle: .*entry script"):
        lookup().run([str(tmp_path / "missing")], variables={}, cache_dir=str(tmp_path / "cache"))


def test_lookup_returns_the_cached_file(tmp_path):
    path = lookup().run([FILES], variables={}, cache_dir=str(tmp_path))[0]
    assert os.path.dirname(path) == str(tmp_path)
    with open(path, "rb") as handle:
        assert handle.read() == pgtwin_bundle.build(FILES)
