"""What loads with what: controller plugins that run on every playbook stay free of psycopg (its import cost each
run of any playbook about 0.2 s), and the migrate module loads the schema baseline (and the backup package behind
it) only for a baseline. Each case imports in a fresh interpreter and lists the modules that came with it."""
import json
import os
import subprocess
import sys

import pytest

PREFIX = "ansible_collections.poststack.core.plugins."
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".collections"))


def loaded_with(module):
    code = "import importlib, json, sys; importlib.import_module(%r); print(json.dumps(sorted(sys.modules)))" % module
    env = dict(os.environ, PYTHONPATH=COLLECTIONS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("plugin", ["vars.project", "lookup.setting", "lookup.project", "filter.mask",
                                    "action.poststack_migrate", "action.poststack_migrate_info"])
def test_controller_plugins_do_not_import_psycopg(plugin):
    modules = loaded_with(PREFIX + plugin)
    assert PREFIX + plugin in modules
    assert not [name for name in modules if name.split(".")[0] == "psycopg"]


def test_the_migrate_module_loads_the_schema_baseline_only_for_a_baseline():
    modules = loaded_with(PREFIX + "modules.poststack_migrate")
    assert PREFIX + "module_utils.migrations.engine" in modules
    assert PREFIX + "module_utils.migrations.schema_baseline" not in modules
    assert not [name for name in modules if name.startswith(PREFIX + "module_utils.backup")]
