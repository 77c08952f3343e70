"""Parsers of pg_controldata and crm_mon output, libpq quoting, the server command line."""
from pgtwin_agent import cluster, params, postgres
from pgtwin_agent.ocf import Logger
from pgtwin_agent.runner import HostRunner

CONTROLDATA = """pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7441234567890123456
Database cluster state:               in production
pg_control last modified:             Wed 25 Nov 2026 12:44:08 PM UTC
Latest checkpoint location:           0/3000060
Latest checkpoint's REDO location:    0/3000028
Latest checkpoint's TimeLineID:       2
Latest checkpoint's PrevTimeLineID:   1
wal_log_hints setting:                on
"""

CRM_MON = """<pacemaker-result api-version="2.25" request="crm_mon --one-shot --output-as=xml">
  <nodes>
    <node name="node1" id="1" online="false" standby="false" unclean="true" type="member"/>
    <node name="node2" id="2" online="true" standby="false" unclean="false" type="member"/>
  </nodes>
  <resources>
    <clone id="pgtwin-clone" multi_state="true">
      <resource id="pgtwin" resource_agent="ocf:poststack:pgtwin" role="Promoted" active="true">
        <node name="node2" id="2" cached="true"/>
      </resource>
    </clone>
  </resources>
</pacemaker-result>"""


def test_controldata():
    values = postgres.parse_controldata(CONTROLDATA)
    assert values["Database cluster state"] == "in production"
    assert values["Latest checkpoint's TimeLineID"] == "2"
    assert values["pg_control last modified"] == "Wed 25 Nov 2026 12:44:08 PM UTC"


def test_node_status_ignores_resource_placement_nodes():
    assert cluster.parse_node_status(CRM_MON, "node1") == cluster.NodeStatus(False, True)
    assert cluster.parse_node_status(CRM_MON, "node2") == cluster.NodeStatus(True, False)
    assert cluster.parse_node_status(CRM_MON, "node3") is None


def test_resource_name_strips_clone_instance():
    assert cluster.resource_name("pgtwin:1") == "pgtwin"
    assert cluster.resource_name("pgtwin") == "pgtwin"
    assert cluster.parse_attribute_query("SYNC:3\n") == "SYNC:3"
    assert cluster.parse_attribute_query("\n") is None


def test_conninfo_quoting():
    assert postgres.conninfo({"host": "a b", "user": "o'k"}) == "host='a b' user='o\\'k'"


def test_server_command_line_enforces_settings_and_holds_no_password():
    loaded = params.load({"OCF_RESKEY_pgdata": "/d", "OCF_RESKEY_node_list": "n1=10.0.0.1 n2=10.0.0.2"})
    pg = postgres.Postgres(loaded, HostRunner("postgres"), Logger("test"), "n1", loaded.peer_of("n1"))
    options = pg.server_options()
    settings = dict(options[i + 1].split("=", 1) for i, o in enumerate(options) if o == "-c")
    assert settings["restart_after_crash"] == "off" and settings["wal_log_hints"] == "on"
    assert settings["primary_slot_name"] == "pgtwin_n1"
    conn = settings["primary_conninfo"]
    assert "host='10.0.0.2'" in conn and "application_name='n1'" in conn and "passfile=" in conn
    assert "password" not in " ".join(options).replace("passfile", "")
