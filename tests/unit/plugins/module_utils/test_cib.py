"""CIB model, comparison and planner of pgtwin_resource, against a resources section recorded from the
two-node test cluster (created by hand with other nvpair/op ids than the module's)."""
import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.poststack.core.plugins.module_utils import cib

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
PARAMS = {"pgdata": "/var/lib/pgtwin/data", "node_list": "node1=10.213.242.11 node2=10.213.242.12",
          "rep_mode": "sync", "sync_strict": "false", "rep_passfile": "/var/lib/pgtwin/pgpass",
          "agent_log": "/var/lib/pgtwin/agent.log", "socket_dir": "/run/postgresql"}
EMPTY_CONSTRAINTS = ET.fromstring("<constraints/>")


def recorded():
    with open(os.path.join(FIXTURES, "cib-resources.xml"), encoding="utf-8") as handle:
        return ET.fromstring(handle.read())


def apply_locally(resources, constraints, operations):
    """What cibadmin does with our operations, on the parsed sections (to check convergence)."""
    for op in operations:
        section = resources if op.scope == "resources" else constraints
        element = ET.fromstring(op.xml)
        for parent in section.iter():
            for child in list(parent):
                if child.get("id") == op.element_id and op.kind in ("replace", "delete"):
                    parent.remove(child)
        if op.kind in ("create", "replace"):
            section.append(element)


def test_recorded_cluster_matches_the_module_definition():
    assert cib.plan(cib.Wanted(params=PARAMS), recorded(), EMPTY_CONSTRAINTS) == []


def test_empty_cib_creates_the_clone_then_converges():
    resources, constraints = ET.fromstring("<resources/>"), ET.fromstring("<constraints/>")
    wanted = cib.Wanted(params=PARAMS, vip=cib.Vip("10.0.0.10", "24"))
    operations = cib.plan(wanted, resources, constraints)
    assert [(o.kind, o.element_id) for o in operations] == [
        ("create", "pgtwin-clone"), ("create", "pgtwin-vip"), ("create", "pgtwin-vip-with-promoted"),
        ("create", "pgtwin-vip-after-promote")]
    assert operations[0].argv() == ["cibadmin", "--create", "--scope", "resources", "--xml-pipe"]
    apply_locally(resources, constraints, operations)
    assert cib.plan(wanted, resources, constraints) == []


def test_changed_parameter_replaces_only_the_clone_and_keeps_target_role():
    resources = recorded()
    meta = cib.find(resources, "clone", "pgtwin-clone").find("meta_attributes")
    ET.SubElement(meta, "nvpair", {"id": "x-target-role", "name": "target-role", "value": "Stopped"})
    operations = cib.plan(cib.Wanted(params=dict(PARAMS, sync_strict="true")), resources, EMPTY_CONSTRAINTS)
    assert [(o.kind, o.element_id) for o in operations] == [("replace", "pgtwin-clone")]
    assert 'name="target-role" value="Stopped"' in operations[0].xml
    assert 'name="sync_strict" value="true"' in operations[0].xml


def test_operator_meta_alone_is_no_change():
    resources = recorded()
    meta = cib.find(resources, "clone", "pgtwin-clone").find("meta_attributes")
    ET.SubElement(meta, "nvpair", {"id": "x-managed", "name": "is-managed", "value": "false"})
    assert cib.plan(cib.Wanted(params=PARAMS), resources, EMPTY_CONSTRAINTS) == []


def test_dropping_the_vip_deletes_constraints_first():
    resources, constraints = ET.fromstring("<resources/>"), ET.fromstring("<constraints/>")
    with_vip = cib.Wanted(params=PARAMS, vip=cib.Vip("10.0.0.10"))
    apply_locally(resources, constraints, cib.plan(with_vip, resources, constraints))
    operations = cib.plan(cib.Wanted(params=PARAMS), resources, constraints)
    assert [(o.kind, o.scope) for o in operations] == [
        ("delete", "constraints"), ("delete", "constraints"), ("delete", "resources")]


def test_absent_removes_everything_managed_and_nothing_else():
    operations = cib.plan(cib.Wanted(), recorded(), EMPTY_CONSTRAINTS, state="absent")
    assert [(o.kind, o.element_id, o.xml) for o in operations] == [
        ("delete", "pgtwin-clone", '<clone id="pgtwin-clone"/>')]
    assert cib.plan(cib.Wanted(), ET.fromstring("<resources/>"), EMPTY_CONSTRAINTS, state="absent") == []


def test_vip_constraints_follow_the_promoted_instance():
    colocation, order = cib.Wanted(params=PARAMS, vip=cib.Vip("10.0.0.10")).constraint_elements()
    assert colocation.attrib == {"id": "pgtwin-vip-with-promoted", "rsc": "pgtwin-vip", "with-rsc": "pgtwin-clone",
                                 "with-rsc-role": "Promoted", "score": "INFINITY"}
    assert order.get("first") == "pgtwin-clone" and order.get("first-action") == "promote"
    assert order.get("then") == "pgtwin-vip"


@pytest.mark.parametrize("wanted,message", [
    (cib.Wanted(params={"pgdata": "/d"}), "node_list"),
    (cib.Wanted(params=PARAMS, operations=[{"name": "monitor"}]), "timeout"),
    (cib.Wanted(params=PARAMS, vip=cib.Vip("")), "vip.ip"),
])
def test_validation_names_the_problem(wanted, message):
    with pytest.raises(cib.CibError, match=message):
        wanted.validate()


CRM_MON = """<pacemaker-result api-version="2.25" request="crm_mon">
  <resources>
    <clone id="pgtwin-clone" multi_state="true">
      <resource id="pgtwin" resource_agent="ocf:poststack:pgtwin" role="Promoted" active="true">
        <node name="node2" id="2" cached="true"/>
      </resource>
      <resource id="pgtwin" resource_agent="ocf:poststack:pgtwin" role="Unpromoted" active="true">
        <node name="node1" id="1" cached="true"/>
      </resource>
    </clone>
  </resources>
</pacemaker-result>"""


def test_promoted_nodes():
    assert cib.promoted_nodes(CRM_MON, "pgtwin-clone") == ["node2"]
    assert cib.promoted_nodes(CRM_MON, "other") == []


def test_switchover_waits_and_always_clears():
    calls = []
    states = iter([["node1"], ["node1"], ["node2"]])

    def executor(argv, stdin):
        calls.append(argv)
        if argv[0] == "crm_mon":
            promoted = next(states)
            return 0, CRM_MON.replace("node2", promoted[0]).replace("node1", "other"), ""
        return 0, "", ""

    client = cib.CibClient(executor)
    clock = iter(range(100))
    seconds = client.switchover("pgtwin-clone", "node2", 60, sleep=lambda s: None, clock=lambda: next(clock))
    assert seconds > 0
    assert calls[0][:4] == ["crm_resource", "--resource", "pgtwin-clone", "--move"]
    assert calls[-1] == ["crm_resource", "--resource", "pgtwin-clone", "--clear"]
    assert client.commands[-1] == "crm_resource --resource pgtwin-clone --clear"


def test_failed_command_raises_with_stderr():
    client = cib.CibClient(lambda argv, stdin: (105, "", "Call failed: No such device or address"))
    with pytest.raises(cib.CibError, match="No such device") as caught:
        client.section("resources")
    assert caught.value.rc == 105 and caught.value.argv[0] == "cibadmin"


# ---- the cib_canonical filter (the pacemaker role compares its fencing device with it) --------------------
def test_cib_canonical_filter_ignores_ids_order_and_meta():
    from ansible_collections.poststack.core.plugins.filter.cib_canonical import (  # pylint: disable=import-outside-toplevel
        FilterModule)
    canon = FilterModule().filters()["cib_canonical"]
    ours = ('<primitive id="fencing" class="stonith" type="fence_dummy"><instance_attributes id="fencing-params">'
            '<nvpair id="fencing-a" name="a" value="1"/><nvpair id="fencing-b" name="b" value="2"/>'
            '</instance_attributes><operations><op id="m" name="monitor" interval="60s"/></operations></primitive>')
    theirs = ('<primitive class="stonith" id="fencing" type="fence_dummy">\n  <meta_attributes id="x">'
              '<nvpair id="y" name="target-role" value="Stopped"/></meta_attributes>\n'
              '  <operations><op id="fencing-monitor-interval-60s" interval="60s" name="monitor"/></operations>\n'
              '  <instance_attributes id="other"><nvpair id="p2" name="b" value="2"/>'
              '<nvpair id="p1" name="a" value="1"/></instance_attributes>\n</primitive>\n')
    assert canon(ours) == canon(theirs) != ""
    assert canon(ours) != canon(ours.replace('value="2"', 'value="3"'))
    assert canon(ours) != canon(ours.replace("fence_dummy", "fence_ipmilan"))
    assert canon(theirs, meta=True) != canon(ours, meta=True)
    assert canon("") == "" and canon("Call failed: No such device or address") == ""


@pytest.mark.parametrize("changes, request_args, message", [
    ({"name": "pg twin"}, {}, "name 'pg twin' is not a valid Pacemaker id"),
    ({"clone_id": "9x"}, {}, "clone_id '9x' is not a valid Pacemaker id"),
    ({"clone_meta": {"promotable": "false"}}, {}, "clone_meta promotable=false is refused"),
    ({"operations": [{"name": "monitor", "interval": "soon", "timeout": "15s"}]}, {}, "interval 'soon' is not a duration"),
    ({"operations": [{"name": "monitor", "interval": "2s", "timeout": "15s", "role": "Boss"}]}, {}, "role 'Boss'"),
    ({"operations": [{"name": "stop", "timeout": "1s"}, {"name": "stop", "timeout": "2s"}]}, {}, "is given twice"),
    ({"vip": cib.Vip("10.0.0.256")}, {}, "vip.ip '10.0.0.256' is not an IP address"),
    ({"vip": cib.Vip("fd00::1", cidr_netmask="129")}, {}, "from 1 to 128"),
    ({"vip": cib.Vip("10.0.0.1", nic="eth0 eth1")}, {}, "vip.nic 'eth0 eth1'"),
    ({}, {"switchover_timeout": 0}, "switchover_timeout 0 must be 1 second or more"),
    ({}, {"state": "absent", "promoted_node": "n1"}, "promoted_node n1 only applies to state=present"),
])
def test_requests_refused_before_pacemaker_name_the_problem(changes, request_args, message):
    wanted = cib.Wanted(params=PARAMS, **changes)
    arguments = dict({"state": "present", "promoted_node": None, "switchover_timeout": 120}, **request_args)
    with pytest.raises(cib.CibError) as info:
        cib.check_request(wanted, arguments["state"], arguments["promoted_node"], arguments["switchover_timeout"])
    assert message in str(info.value) and "nothing was changed" in str(info.value)


def test_the_default_request_passes():
    cib.check_request(cib.Wanted(params=PARAMS, vip=cib.Vip("10.0.0.10", "24")), "present", "node1", 120)


@pytest.mark.parametrize("values, message", [
    ({"replication_password": "s3cret"}, "params.replication_password looks like a secret"),
    ({"node_list": ["a", "b"]}, "params.node_list is a list"),
    ({"port": None}, "params.port is empty (null)"),
    ({"bad key": "1"}, "attribute name 'bad key'"),
])
def test_attribute_values_must_be_scalars_and_never_secrets(values, message):
    with pytest.raises(cib.CibError) as info:
        cib.string_values("params", values)
    assert message in str(info.value) and "s3cret" not in str(info.value)
    assert cib.secret_values(values) == (["s3cret"] if "replication_password" in values else [])


def test_attribute_values_become_strings_and_the_passfile_is_no_secret():
    assert cib.string_values("params", {"port": 5432, "rep_passfile": "/p"}) == {"port": "5432", "rep_passfile": "/p"}
    assert cib.secret_values({"rep_passfile": "/p"}) == []
