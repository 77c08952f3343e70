#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pgtwin_resource
short_description: The pgtwin PostgreSQL resource (promotable clone) and its optional VIP in the Pacemaker CIB
version_added: 0.1.0
description:
  - Bad parameters (ids, attribute names and values, operation durations and roles, the VIP's address, prefix and
    interface, O(switchover_timeout), O(promoted_node) with O(state=absent)) are refused before Pacemaker is
    contacted, with a message naming the parameter and ending "nothing was changed (the CIB was not read)".
  - Creates, updates or removes the C(ocf:poststack:pgtwin) primitive inside a promotable clone, and optionally
    an C(ocf:heartbeat:IPaddr2) virtual IP colocated with the promoted instance and started after promotion.
  - Works on the CIB with C(cibadmin) only (no crmsh or pcs). It reads the resources and constraints sections,
    compares them with the wanted definition (attribute, nvpair and operation order and nvpair/op ids do not
    matter; C(target-role) and C(is-managed) set by an operator are kept), and creates, replaces or deletes only
    the elements that differ. C(changed) is true exactly when that plan is not empty.
  - O(promoted_node) performs a planned switchover with C(crm_resource --move --promoted), waits until the
    instance is promoted on that node (the pgtwin agent's promote returns once PostgreSQL accepts writes), then
    clears the temporary constraint.
  - Run it on one cluster node (C(run_once)); the CIB is replicated by Pacemaker.
author:
  - poststack contributors (@poststack)
requirements:
  - Pacemaker command line tools (C(cibadmin), C(crm_mon), C(crm_resource)) on the target node.
  - The pgtwin agent installed in C(/usr/lib/ocf/resource.d/<provider>/) on every node.
extends_documentation_fragment:
  - poststack.core.attributes
attributes:
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    details:
      - The action plugin refuses secret-looking attribute names before the module reaches the target.
  check_mode:
    support: full
    details:
      - Returns the operations (and the switchover) that would run, without running them.
  diff_mode:
    support: full
    details:
      - The managed CIB elements in a canonical text form, before and after, from the comparison that decides C(changed).
options:
  name:
    description: Id of the pgtwin primitive; also the prefix of the ids of the VIP and its constraints.
    type: str
    default: pgtwin
  clone_id:
    description: Id of the promotable clone. Defaults to O(name) followed by C(-clone).
    type: str
  state:
    description:
      - V(present) creates or updates the clone (and the VIP when O(vip) is given, or removes a VIP this module
        created when O(vip) is not given).
      - V(absent) removes the constraints, the VIP and the clone. Pacemaker stops what is removed.
    type: str
    choices: [present, absent]
    default: present
  provider:
    description: OCF provider directory the agent is installed under.
    type: str
    default: poststack
  params:
    description:
      - Agent parameters (instance attributes), see C(pgtwin meta-data). C(pgdata) and C(node_list) are required
        to create the resource. Values are converted to strings; a list, a dict or null is refused. Never put a
        password here; the agent reads the replication password from C(rep_passfile). A name that looks like a
        secret (C(password), C(passwd), C(passphrase), C(secret), C(token)) is refused on the controller, in
        O(params), O(meta) and O(clone_meta), before the module is sent to the target, so its value is never shown,
        written, or logged by the target (a module logs its arguments to the target's syslog).
      - Left empty while the clone exists, the definition in the CIB is kept as it is (for O(promoted_node) or
        O(state=absent) alone).
    type: dict
    default: {}
  meta:
    description: Meta attributes of the primitive.
    type: dict
    default:
      migration-threshold: "1"
      failure-timeout: 60s
  clone_meta:
    description:
      - Extra meta attributes of the clone, merged over C(promotable=true), C(promoted-max=1),
        C(promoted-node-max=1), C(clone-max=2), C(clone-node-max=1), C(notify=true).
      - C(promotable), C(promoted-max) and C(promoted-node-max) cannot be changed (one primary, one standby).
    type: dict
    default: {}
  operations:
    description:
      - Operations of the primitive. The default is start 120s, stop, promote and demote 60s, notify 20s, monitor
        every 2s in role Promoted and every 3s in role Unpromoted (timeout 15s).
    type: list
    elements: dict
    suboptions:
      name:
        description: Action name.
        type: str
        required: true
      interval:
        description: Interval (C(0) for one-shot actions).
        type: str
        default: "0"
      timeout:
        description: Timeout.
        type: str
        required: true
      role:
        description: Role for a monitor, C(Promoted) or C(Unpromoted).
        type: str
  vip:
    description: A virtual IP for clients, following the primary (requires C(NET_ADMIN) on the nodes).
    type: dict
    suboptions:
      ip:
        description: The address.
        type: str
        required: true
      cidr_netmask:
        description: Prefix length.
        type: str
      nic:
        description: Interface.
        type: str
  promoted_node:
    description: Node that must run the primary; a switchover happens when another node is promoted.
    type: str
  switchover_timeout:
    description: Seconds to wait for the promotion on O(promoted_node).
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: PostgreSQL HA resource with a VIP
  poststack.core.pgtwin_resource:
    params:
      pgdata: /var/lib/pgtwin/data
      node_list: "node1=10.0.0.11 node2=10.0.0.12"
      rep_mode: sync
      rep_passfile: /var/lib/pgtwin/pgpass
    vip:
      ip: 10.0.0.10
      cidr_netmask: "24"
  run_once: true

- name: Planned switchover to node2
  poststack.core.pgtwin_resource:
    params:
      pgdata: /var/lib/pgtwin/data
      node_list: "node1=10.0.0.11 node2=10.0.0.12"
    promoted_node: node2
  run_once: true

- name: Remove the resource
  poststack.core.pgtwin_resource:
    state: absent
  run_once: true
"""

RETURN = r"""
operations:
  description: CIB operations run (or, in check mode, that would run), in order.
  returned: always
  type: list
  elements: dict
  sample: [{"action": "create", "scope": "resources", "id": "pgtwin-clone",
            "command": "cibadmin --create --scope resources --xml-pipe < pgtwin-clone.xml"}]
commands:
  description: Commands that ran (cibadmin, crm_resource); empty in check mode.
  returned: always
  type: list
  elements: str
promoted:
  description: Nodes running the promoted instance after the task (before it, in check mode).
  returned: always
  type: list
  elements: str
switchover_seconds:
  description: Time the switchover took, when one ran.
  returned: when a switchover ran
  type: float
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.poststack.core.plugins.module_utils.cib import (  # noqa: E402
    CibClient,
    CibError,
    Vip,
    Wanted,
    check_request,
    describe,
    describe_wanted,
    find,
    plan,
    secret_values,
    string_values,
)


def build_wanted(params: dict) -> Wanted:
    wanted = Wanted(
        name=params["name"],
        clone_id=params["clone_id"] or "",
        provider=params["provider"],
        params=string_values("params", params["params"]),
        meta=string_values("meta", params["meta"]),
        clone_meta=string_values("clone_meta", params["clone_meta"]),
        vip=Vip(**{k: v or "" for k, v in params["vip"].items()}) if params["vip"] else None,
    )
    if params["operations"]:
        wanted.operations = [{k: v for k, v in op.items() if v is not None} for op in params["operations"]]
    return wanted


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", default="pgtwin"),
            clone_id=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            provider=dict(type="str", default="poststack"),
            params=dict(type="dict", default={}),
            meta=dict(type="dict", default={"migration-threshold": "1", "failure-timeout": "60s"}),
            clone_meta=dict(type="dict", default={}),
            operations=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                interval=dict(type="str", default="0"),
                timeout=dict(type="str", required=True),
                role=dict(type="str"),
            )),
            vip=dict(type="dict", options=dict(
                ip=dict(type="str", required=True),
                cidr_netmask=dict(type="str"),
                nic=dict(type="str"),
            )),
            promoted_node=dict(type="str"),
            switchover_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    for option in ("params", "meta", "clone_meta"):
        module.no_log_values.update(secret_values(module.params[option]))  # masked in the result and its invocation
    state = module.params["state"]
    # Bad input is refused before Pacemaker is contacted (or even looked for).
    try:
        wanted = build_wanted(module.params)
        check_request(wanted, state, module.params["promoted_node"], module.params["switchover_timeout"])
        if state == "present" and wanted.params:
            wanted.validate()
    except CibError as exc:
        module.fail_json(msg=str(exc), changed=False)
    for binary in ("cibadmin", "crm_mon", "crm_resource"):
        module.get_bin_path(binary, required=True)

    def executor(argv, stdin):
        return module.run_command(list(argv), data=stdin, binary_data=False,
                                  environ_update={"LC_ALL": "C", "LANG": "C"})

    client = CibClient(executor)
    try:
        resources, constraints = client.section("resources"), client.section("constraints")
        keep_definition = state == "present" and not wanted.params and find(resources, "clone", wanted.clone_id) is not None
        if state == "present" and not keep_definition:
            wanted.validate()
        operations = [] if keep_definition else plan(wanted, resources, constraints, state)
        result = dict(changed=bool(operations), operations=[op.as_dict() for op in operations],
                      commands=client.commands)
        if module._diff and not keep_definition:
            result["diff"] = {"before": describe(wanted, resources, constraints),
                              "after": describe_wanted(wanted, state)}
        if not module.check_mode:
            client.apply(operations)
        promoted = client.promoted(wanted.clone_id) if state == "present" else []
        target = module.params["promoted_node"]
        if state == "present" and target and promoted != [target]:
            result["changed"] = True
            result["operations"].append({"action": "switchover", "scope": "status", "id": wanted.clone_id,
                                         "command": "crm_resource --resource %s --move --promoted --node %s"
                                                    % (wanted.clone_id, target)})
            if not module.check_mode:
                result["switchover_seconds"] = round(
                    client.switchover(wanted.clone_id, target, module.params["switchover_timeout"]), 2)
                promoted = client.promoted(wanted.clone_id)
        result["promoted"] = promoted
    except CibError as exc:
        module.fail_json(msg=str(exc), cmd=exc.argv, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr,
                         commands=client.commands, changed=bool(client.commands))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
