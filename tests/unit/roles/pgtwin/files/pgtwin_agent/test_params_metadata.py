"""Parameters, meta-data and the entry script's OCF behaviour."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pgtwin_agent import ocf, params
from pgtwin_agent.metadata import metadata_xml
from pgtwin_agent.ocf import AgentError

ENTRY = os.path.join(os.path.dirname(params.__file__), "..", "pgtwin")
BINDIR = "/usr/lib/postgresql/15/bin"

# Every parameter issue 7 asks the meta-data to document.
ISSUE_PARAMETERS = ("pgdata", "bindir", "port", "user", "rep_user", "rep_passfile", "node_list", "rep_mode",
                    "sync_strict", "use_slots", "slot_prefix", "max_promotion_lag", "container_mode",
                    "container_image", "container_runtime")


def env(**values):
    base = {"OCF_RESKEY_pgdata": "/var/lib/pgtwin/data", "OCF_RESKEY_node_list": "node1 node2"}
    base.update({"OCF_RESKEY_" + k: v for k, v in values.items()})
    return base


def test_defaults():
    loaded = params.load(env())
    assert loaded.port == 5432 and loaded.rep_mode == "sync" and not loaded.sync_strict
    assert [n.address for n in loaded.nodes] == ["node1", "node2"]
    assert loaded.slot_name("node-2.x") == "pgtwin_node_2_x"


def test_container_parameters_and_node_placeholders():
    loaded = params.load(env(container_mode="yes", pgdata="/var/lib/pgtwin/@postgres-{node}/data",
                             config_dir="/var/lib/pgtwin/@postgres-{node}/config/",
                             container_mounts="/srv/{node}/archive:/archive:ro,Z /x:/y"))
    assert loaded.container_mode and loaded.container_runtime == "auto" and not loaded.container_pull
    assert loaded.container_image == "localhost/poststack/postgres-debian:15"
    mine = loaded.for_node("node2")
    assert mine.pgdata == "/var/lib/pgtwin/@postgres-node2/data"
    assert mine.config_dir == "/var/lib/pgtwin/@postgres-node2/config"
    assert mine.container_name == "pgtwin-postgres-node2"
    assert mine.container_mounts == (("/srv/node2/archive", "/archive", "ro,Z"), ("/x", "/y", "Z"))
    assert params.load(env(container_name="pg-{node}")).for_node("a").container_name == "pg-a"


def test_container_mode_default_from_the_environment():
    assert params.load(dict(env(), PGTWIN_CONTAINER_MODE="true")).container_mode
    assert not params.load(dict(env(container_mode="false"), PGTWIN_CONTAINER_MODE="true")).container_mode
    assert not params.load(env()).container_mode


def test_node_addresses_and_peer():
    loaded = params.load(env(node_list="a=10.0.0.1 b=10.0.0.2"))
    assert loaded.peer_of("a").address == "10.0.0.2"
    with pytest.raises(AgentError, match="must name this node"):
        loaded.peer_of("c")


@pytest.mark.parametrize("values,message", [
    ({"pgdata": ""}, "pgdata is required"),
    ({"pgdata": "relative/dir"}, "absolute path"),
    ({"node_list": "only-one"}, "exactly two"),
    ({"node_list": "a a"}, "exactly two"),
    ({"node_list": "a= b"}, "empty address"),
    ({"rep_mode": "quorum"}, "sync or async"),
    ({"sync_strict": "maybe"}, "not a boolean"),
    ({"port": "x"}, "not an integer"),
    ({"port": "0"}, ">= 1"),
    ({"container_mode": "maybe"}, "container_mode.*not a boolean"),
    ({"container_mode": "true", "container_image": " "}, "needs container_image"),
    ({"container_runtime": "lxc"}, "container_runtime='lxc' must be podman, docker, auto"),
    ({"container_name": "bad name"}, "container_name='bad name'"),
    ({"container_mounts": "relative:/x"}, "container_mounts entry 'relative:/x'"),
    ({"container_mounts": "/a:/b:exec"}, "options may be ro, rw, z and Z"),
    ({"config_dir": "conf"}, "config_dir='conf' must be an absolute path"),
    ({"slot_prefix": "Bad-"}, "slot_prefix"),
])
def test_bad_parameters_name_the_parameter(values, message):
    with pytest.raises(AgentError, match=message) as caught:
        params.load(env(**values))
    assert caught.value.rc == ocf.OCF_ERR_CONFIGURED


def test_metadata_documents_every_parameter():
    root = ET.fromstring(metadata_xml())
    assert [child.tag for child in root] == ["version", "longdesc", "shortdesc", "parameters", "actions"]
    documented = {p.get("name"): p for p in root.iter("parameter")}
    assert set(ISSUE_PARAMETERS) <= set(documented)
    assert set(documented) == {spec.name for spec in params.SPECS}
    for name, element in documented.items():
        assert element.find("longdesc").text and element.find("shortdesc").text, name
        assert element.find("content").get("type") in ("string", "integer", "boolean"), name
    assert documented["pgdata"].get("required") == "1"
    actions = {(a.get("name"), a.get("role")) for a in root.iter("action")}
    for name in ("start", "stop", "promote", "demote", "notify", "meta-data", "validate-all"):
        assert (name, None) in actions
    assert ("monitor", "Promoted") in actions and ("monitor", "Unpromoted") in actions


def run_entry(*args, extra_env=None):
    environment = {"PATH": os.environ["PATH"]}
    environment.update(extra_env or {})
    environment["PGTWIN_PYTHON"] = sys.executable
    return subprocess.run([ENTRY, *args], capture_output=True, text=True, env=environment, check=False,
                          timeout=60)


def test_entry_meta_data_and_usage_codes():
    result = run_entry("meta-data")
    assert result.returncode == ocf.OCF_SUCCESS and "<resource-agent" in result.stdout
    assert run_entry().returncode == ocf.OCF_ERR_ARGS
    assert run_entry("migrate_to").returncode == ocf.OCF_ERR_UNIMPLEMENTED


def test_entry_validate_reports_configuration_errors():
    result = run_entry("validate-all", extra_env={"OCF_RESKEY_node_list": "a b"})
    assert result.returncode == ocf.OCF_ERR_CONFIGURED
    assert "pgdata is required" in result.stderr


@pytest.mark.parametrize("kind,operation,promoted,on_node,runs_python", [
    ("pre", "promote", "node2", "node1", False),
    ("pre", "demote", "", "node2", False),
    ("post", "stop", "", "node2", False),
    ("post", "promote", "node2", "node2", False),          # the promoted node itself: nothing to do
    ("post", "promote", "node2", "node1", True),           # the other node resets its stuck counter
    ("post", "promote", "node10", "node1", True),          # no substring match on node names
])
def test_entry_answers_notifications_without_python_unless_needed(kind, operation, promoted, on_node, runs_python):
    # PGTWIN_PYTHON=false: a notification that starts Python fails, one answered by the sh entry succeeds.
    environment = {"PATH": os.environ["PATH"], "PGTWIN_PYTHON": "/bin/false",
                   "OCF_RESKEY_CRM_meta_notify_type": kind, "OCF_RESKEY_CRM_meta_notify_operation": operation,
                   "OCF_RESKEY_CRM_meta_notify_promote_uname": promoted, "OCF_RESKEY_CRM_meta_on_node": on_node}
    result = subprocess.run([ENTRY, "notify"], capture_output=True, text=True, env=environment, check=False,
                            timeout=60)
    assert result.returncode == (1 if runs_python else 0)
    # Other actions always reach Python.
    environment.pop("OCF_RESKEY_CRM_meta_notify_type")
    assert subprocess.run([ENTRY, "monitor"], env=environment, check=False, timeout=60).returncode == 1


def test_entry_stop_succeeds_when_misconfigured():
    # A failed stop gets a node fenced: with nothing configured, nothing can be running.
    assert run_entry("stop").returncode == ocf.OCF_SUCCESS


@pytest.mark.skipif(not os.path.isdir(BINDIR) or os.geteuid() != 0, reason="needs PostgreSQL 15 and root")
def test_entry_validate_checks_passfile(tmp_path):
    import pwd  # pylint: disable=import-outside-toplevel
    user = pwd.getpwnam("postgres")
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:replicator:secret\n")
    os.chown(passfile, user.pw_uid, user.pw_gid)
    passfile.chmod(0o600)
    agent_env = {"OCF_RESKEY_pgdata": str(tmp_path / "data"), "OCF_RESKEY_node_list": "a b",
                 "OCF_RESKEY_CRM_meta_on_node": "a", "OCF_RESKEY_rep_passfile": str(passfile),
                 "OCF_RESKEY_bindir": BINDIR}
    assert run_entry("validate-all", extra_env=agent_env).returncode == ocf.OCF_SUCCESS
    passfile.chmod(0o644)
    result = run_entry("validate-all", extra_env=agent_env)
    assert result.returncode == ocf.OCF_ERR_PERM and "mode 0600" in result.stderr
    result = run_entry("validate-all", extra_env=dict(agent_env, OCF_RESKEY_bindir=str(tmp_path)))
    assert result.returncode == ocf.OCF_ERR_INSTALLED
