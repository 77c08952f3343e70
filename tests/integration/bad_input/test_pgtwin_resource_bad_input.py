"""Bad input for pgtwin_resource that is refused before Pacemaker is contacted: this host has no Pacemaker outside
containers, so every case must fail on its own parameters (named, with the value unless it may be a secret), not on
the missing cibadmin, and without running a command."""
import shutil

import pytest

from bad_input_lab import check_case, module_case, run_cases

MODULE = "poststack.core.pgtwin_resource"
PARAMS = {"pgdata": "/var/lib/pgtwin/data", "node_list": "psql1:10.0.0.1 psql2:10.0.0.2"}
SECRET = "bi-replication-secret-never-shown-3e9b"
NOT_CHANGED = "nothing was changed (the CIB was not read)"
# (id, arguments, fragments of the message)
CASES = [
    ("name-not-an-id", {"name": "pg twin", "params": PARAMS},
     ["name 'pg twin' is not a valid Pacemaker id", NOT_CHANGED]),
    ("clone-id-starts-with-a-digit", {"clone_id": "1clone", "params": PARAMS},
     ["clone_id '1clone' is not a valid Pacemaker id", NOT_CHANGED]),
    ("password-in-params", {"params": dict(PARAMS, rep_password=SECRET)},
     ["params.rep_password looks like a secret", "rep_passfile", "The value was not shown or written", NOT_CHANGED]),
    ("secret-in-meta", {"params": PARAMS, "meta": {"api_token": SECRET}},
     ["meta.api_token looks like a secret", "The value was not shown or written", NOT_CHANGED]),
    ("secret-in-params-given-as-a-string",
     {"params": '{"pgdata": "/d", "node_list": "a b", "repl_secret": "%s"}' % SECRET},
     ["params.repl_secret looks like a secret", "The value was not shown or written", NOT_CHANGED]),
    ("param-value-a-list", {"params": dict(PARAMS, node_list=["psql1", "psql2"])},
     ["params.node_list is a list, not a string or number: give a scalar value", NOT_CHANGED]),
    ("param-name-not-a-name", {"params": dict(PARAMS, **{"bad key": "1"})},
     ["params: attribute name 'bad key' is not a valid Pacemaker name", NOT_CHANGED]),
    ("param-missing-node-list", {"params": {"pgdata": "/var/lib/pgtwin/data"}},
     ["params must set node_list (the pgtwin agent requires them); nothing was changed"]),
    ("two-primaries", {"params": PARAMS, "clone_meta": {"promoted-max": "2"}},
     ["clone_meta promoted-max=2 is refused: a pgtwin clone runs one primary and one standby", NOT_CHANGED]),
    ("operation-interval-not-a-duration", {"params": PARAMS, "operations": [
        {"name": "monitor", "interval": "often", "timeout": "15s"}]},
     ["operations[0] (monitor): interval 'often' is not a duration", NOT_CHANGED]),
    ("operation-role-unknown", {"params": PARAMS, "operations": [
        {"name": "monitor", "interval": "2s", "timeout": "15s", "role": "Leader"}]},
     ["operations[0] (monitor): role 'Leader' is not one of Promoted, Unpromoted, Started, Stopped", NOT_CHANGED]),
    ("operation-twice", {"params": PARAMS, "operations": [
        {"name": "start", "timeout": "120s"}, {"name": "start", "timeout": "60s"}]},
     ["operations[1] (start): the operation start with interval 0 is given twice", NOT_CHANGED]),
    ("operation-without-timeout", {"params": PARAMS, "operations": [{"name": "start"}]},
     ["missing required arguments: timeout found in operations"]),
    ("vip-not-an-address", {"params": PARAMS, "vip": {"ip": "10.0.0.300"}},
     ["vip.ip '10.0.0.300' is not an IP address", NOT_CHANGED]),
    ("vip-netmask-too-long", {"params": PARAMS, "vip": {"ip": "10.0.0.10", "cidr_netmask": "33"}},
     ["vip.cidr_netmask '33' is not a prefix length from 1 to 32", NOT_CHANGED]),
    ("switchover-timeout-zero", {"params": PARAMS, "switchover_timeout": 0},
     ["switchover_timeout 0 must be 1 second or more", NOT_CHANGED]),
    ("promoted-node-with-state-absent", {"state": "absent", "promoted_node": "psql2"},
     ["promoted_node psql2 only applies to state=present, not state=absent", NOT_CHANGED]),
    ("unknown-state", {"state": "stopped", "params": PARAMS},
     ["value of state must be one of: present, absent, got: stopped"]),
]


@pytest.fixture(scope="module")
def cases():
    assert shutil.which("cibadmin") is None, "this test is for hosts without Pacemaker (bad input must not reach it)"
    run = run_cases([(case_id, module_case(case_id, MODULE, args)) for case_id, args, _f in CASES], {}, None)
    run.table = {case_id: fragments for case_id, _a, fragments in CASES}
    return run


@pytest.mark.parametrize("case_id", [case[0] for case in CASES])
def test_bad_resource_input_is_refused_before_pacemaker(cases, case_id):
    check_case(cases, case_id, cases.table[case_id], secrets=(SECRET,), snapshots=False)
    result = cases.failures[case_id]
    assert "Failed to find required executable" not in result["msg"] and not result.get("commands"), result


@pytest.mark.parametrize("case_id", ["password-in-params", "secret-in-meta", "secret-in-params-given-as-a-string"])
def test_a_secret_is_refused_on_the_controller_before_the_module_runs(cases, case_id):
    """A module logs its arguments to the target's syslog before it checks them: the action plugin refuses a
    secret-looking attribute first, so no module ran (a module's result would carry its invocation)."""
    result = cases.failures[case_id]
    assert "invocation" not in result and "module_stdout" not in result, result
    assert SECRET not in str(result)


def test_other_bad_input_is_answered_by_the_module(cases):
    """The controller check is only for secrets: every other refusal is the module's, with its invocation."""
    assert "invocation" in cases.failures["param-name-not-a-name"]
