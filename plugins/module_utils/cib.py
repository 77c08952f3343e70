# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgtwin resource in the Pacemaker CIB: a primitive inside a promotable clone, and an optional IPaddr2
VIP colocated with the promoted instance and started after promotion. No Ansible imports.

- model:   ``Wanted`` (from the module options) builds the XML elements with deterministic ids.
- compare: ``canonical`` renders an element so that equal definitions compare equal whatever the order of
           attributes, nvpairs and operations and whatever ids an operator's tool gave nvpairs and ops.
- planner: ``plan`` compares wanted and current CIB sections and returns ``Operation``s (cibadmin create,
           replace or delete, one element each); ``changed = bool(plan)``.
- cluster: ``promoted_nodes`` parses ``crm_mon --output-as=xml``; ``CibClient`` runs cibadmin/crm_resource
           through an injected executor and raises ``CibError`` with the command, rc and stderr.
"""

from __future__ import annotations

import ipaddress
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.poststack.core.plugins.module_utils.command import timed

Executor = Callable[[Sequence[str], Optional[str]], Tuple[int, str, str]]

DEFAULT_OPERATIONS: Tuple[Dict[str, str], ...] = (
    {"name": "start", "interval": "0", "timeout": "120s"},
    {"name": "stop", "interval": "0", "timeout": "60s"},
    {"name": "promote", "interval": "0", "timeout": "60s"},
    {"name": "demote", "interval": "0", "timeout": "60s"},
    {"name": "notify", "interval": "0", "timeout": "20s"},
    {"name": "monitor", "interval": "2s", "timeout": "15s", "role": "Promoted"},
    {"name": "monitor", "interval": "3s", "timeout": "15s", "role": "Unpromoted"},
)
DEFAULT_META = {"migration-threshold": "1", "failure-timeout": "60s"}
CLONE_META = {"promotable": "true", "promoted-max": "1", "promoted-node-max": "1", "clone-max": "2",
              "clone-node-max": "1", "notify": "true"}
# Operators switch these with crm_resource; the module keeps whatever value they have.
OPERATOR_META = ("target-role", "is-managed")
REQUIRED_PARAMS = ("pgdata", "node_list")
NOTHING_CHANGED = "nothing was changed (the CIB was not read)"
# Pacemaker ids and nvpair names (an XML NCName, as the CIB schema requires).
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
OP_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
# Pacemaker durations: a number with an optional unit, or ISO 8601 (PT10S).
DURATION_RE = re.compile(r"^(\d+ *(ms|msec|us|usec|s|sec|m|min|h|hr)?|P(T?\d+[YMWDHS])+)$", re.IGNORECASE)
OP_ROLES = ("Promoted", "Unpromoted", "Started", "Stopped", "Master", "Slave")
SECRET_RE = re.compile(r"pass(word|wd|phrase)|secret|token", re.IGNORECASE)
NIC_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
# What makes the clone pgtwin's: one primary and one standby, never two primaries.
FIXED_CLONE_META = {"promotable": "true", "promoted-max": "1", "promoted-node-max": "1"}


class CibError(Exception):
    """Bad input, or a cibadmin/crm_resource command that failed (with its command line and stderr)."""

    def __init__(self, message: str, argv: Optional[Sequence[str]] = None, rc: int = 0, stdout: str = "",
                 stderr: str = "") -> None:
        super().__init__(message)
        self.argv = list(argv or [])
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def refuse_secret_name(option: str, key: str) -> None:
    """Raise CibError for an attribute name that looks like a secret: the CIB is readable on every node. Also run on
    the controller by the action plugin, so that such a value never reaches the target (nor its syslog, where a
    module logs its arguments)."""
    if SECRET_RE.search(key) and key != "rep_passfile":
        raise CibError("%s.%s looks like a secret: the CIB is readable on every node (cibadmin --query, crm_mon), "
                       "so never put a password there; the pgtwin agent reads the replication password from the "
                       "file that rep_passfile names. The value was not shown or written; %s"
                       % (option, key, NOTHING_CHANGED))


def string_values(option: str, values: Dict[str, object]) -> Dict[str, str]:
    """Attribute values as the CIB stores them (strings). A list, dict or null is refused (str() of it would be
    written to the CIB), and so is a name that looks like a secret: the CIB is readable on every node. The
    value is never quoted in a message."""
    converted: Dict[str, str] = {}
    for key, value in values.items():
        key = str(key)
        if not ID_RE.match(key):
            raise CibError("%s: attribute name %r is not a valid Pacemaker name (a letter or '_', then letters, "
                           "digits, '_', '.', '-'); %s" % (option, key, NOTHING_CHANGED))
        refuse_secret_name(option, key)
        if value is None or isinstance(value, (dict, list, tuple, set)):
            raise CibError("%s.%s is %s, not a string or number: give a scalar value; %s"
                           % (option, key, "empty (null)" if value is None else "a " + type(value).__name__,
                              NOTHING_CHANGED))
        converted[key] = str(value)
    return converted


def secret_values(values: Dict[str, object]) -> List[str]:
    """The values of attributes whose names look like a secret (refused by string_values): the module masks them
    in everything it returns, its invocation included."""
    return [str(value) for key, value in values.items()
            if SECRET_RE.search(str(key)) and str(key) != "rep_passfile" and value not in (None, "")]


def check_request(wanted: "Wanted", state: str, promoted_node: Optional[str], switchover_timeout: int) -> None:
    """Everything that can be refused before Pacemaker is contacted (cibadmin, crm_mon); raises CibError."""
    for option, value in (("name", wanted.name), ("clone_id", wanted.clone_id)):
        if not ID_RE.match(value):
            raise CibError("%s %r is not a valid Pacemaker id: start with a letter or '_', then letters, digits, "
                           "'_', '.', '-'; %s" % (option, value, NOTHING_CHANGED))
    if not ID_RE.match(wanted.provider):
        raise CibError("provider %r is not an OCF provider directory name (letters, digits, '_', '.', '-'); %s"
                       % (wanted.provider, NOTHING_CHANGED))
    for key, fixed in FIXED_CLONE_META.items():
        if key in wanted.clone_meta and wanted.clone_meta[key].lower() != fixed:
            raise CibError("clone_meta %s=%s is refused: a pgtwin clone runs one primary and one standby (%s=%s); "
                           "remove it from clone_meta; %s" % (key, wanted.clone_meta[key], key, fixed, NOTHING_CHANGED))
    seen = set()
    for index, op in enumerate(wanted.operations):
        label = "operations[%d] (%s)" % (index, op.get("name", "?"))
        if not OP_NAME_RE.match(op.get("name", "")):
            raise CibError("%s: name %r is not an action name like monitor or start; %s"
                           % (label, op.get("name", ""), NOTHING_CHANGED))
        for key in ("interval", "timeout"):
            if key in op and not DURATION_RE.match(str(op[key]).strip()):
                raise CibError("%s: %s %r is not a duration: write a number with an optional unit (ms, s, m, h), "
                               "for example 15s; %s" % (label, key, op[key], NOTHING_CHANGED))
        if op.get("role") and op["role"] not in OP_ROLES:
            raise CibError("%s: role %r is not one of %s; %s"
                           % (label, op["role"], ", ".join(OP_ROLES[:4]), NOTHING_CHANGED))
        key = (op.get("name"), str(op.get("interval", "0")), op.get("role", ""))
        if key in seen:
            raise CibError("%s: the operation %s with interval %s%s is given twice; %s"
                           % (label, key[0], key[1], " in role " + key[2] if key[2] else "", NOTHING_CHANGED))
        seen.add(key)
    if wanted.vip is not None:
        check_vip(wanted.vip)
    if switchover_timeout < 1:
        raise CibError("switchover_timeout %d must be 1 second or more; %s" % (switchover_timeout, NOTHING_CHANGED))
    if promoted_node is not None and state != "present":
        raise CibError("promoted_node %s only applies to state=present, not state=%s; %s"
                       % (promoted_node, state, NOTHING_CHANGED))


def check_vip(vip: "Vip") -> None:
    try:
        address = ipaddress.ip_address(vip.ip.strip())
    except ValueError:
        raise CibError("vip.ip %r is not an IP address (for example 10.0.0.10); %s"
                       % (vip.ip, NOTHING_CHANGED)) from None
    if vip.cidr_netmask:
        limit = address.max_prefixlen
        if not vip.cidr_netmask.isdigit() or not 0 < int(vip.cidr_netmask) <= limit:
            raise CibError("vip.cidr_netmask %r is not a prefix length from 1 to %d (for example 24); %s"
                           % (vip.cidr_netmask, limit, NOTHING_CHANGED))
    if vip.nic and not NIC_RE.match(vip.nic):
        raise CibError("vip.nic %r is not a network interface name (ip -br link lists them); %s"
                       % (vip.nic, NOTHING_CHANGED))


@dataclass(frozen=True)
class Vip:
    ip: str
    cidr_netmask: str = ""
    nic: str = ""


@dataclass
class Wanted:
    name: str = "pgtwin"
    clone_id: str = ""
    provider: str = "poststack"
    params: Dict[str, str] = field(default_factory=dict)
    meta: Dict[str, str] = field(default_factory=lambda: dict(DEFAULT_META))
    clone_meta: Dict[str, str] = field(default_factory=dict)
    operations: List[Dict[str, str]] = field(default_factory=lambda: [dict(o) for o in DEFAULT_OPERATIONS])
    vip: Optional[Vip] = None

    def __post_init__(self) -> None:
        self.clone_id = self.clone_id or self.name + "-clone"

    @property
    def vip_id(self) -> str:
        return self.name + "-vip"

    @property
    def colocation_id(self) -> str:
        return self.name + "-vip-with-promoted"

    @property
    def order_id(self) -> str:
        return self.name + "-vip-after-promote"

    def validate(self) -> None:
        missing = [key for key in REQUIRED_PARAMS if not str(self.params.get(key, "")).strip()]
        if missing:
            raise CibError("params must set %s (the pgtwin agent requires them); nothing was changed" % ", ".join(missing))
        for op in self.operations:
            if not op.get("name") or not op.get("timeout"):
                raise CibError("every operation needs a name and a timeout, got %r" % (op,))
        if self.vip is not None and not self.vip.ip:
            raise CibError("vip.ip is required when vip is given")

    # ---- XML -------------------------------------------------------------------------------------------
    def clone_element(self) -> ET.Element:
        clone = ET.Element("clone", {"id": self.clone_id})
        clone.append(_nvset("meta_attributes", self.clone_id + "-meta", dict(CLONE_META, **self.clone_meta)))
        primitive = ET.SubElement(clone, "primitive", {"id": self.name, "class": "ocf", "provider": self.provider,
                                                       "type": "pgtwin"})
        primitive.append(_nvset("instance_attributes", self.name + "-params", self.params))
        if self.meta:
            primitive.append(_nvset("meta_attributes", self.name + "-meta", self.meta))
        operations = ET.SubElement(primitive, "operations")
        for op in self.operations:
            attrs = {"id": "%s-%s-%s%s" % (self.name, op["name"], op.get("interval", "0"),
                                           "-" + op["role"].lower() if op.get("role") else ""),
                     "name": op["name"], "interval": op.get("interval", "0"), "timeout": op["timeout"]}
            if op.get("role"):
                attrs["role"] = op["role"]
            ET.SubElement(operations, "op", attrs)
        return clone

    def vip_element(self) -> Optional[ET.Element]:
        if self.vip is None:
            return None
        params = {"ip": self.vip.ip}
        if self.vip.cidr_netmask:
            params["cidr_netmask"] = self.vip.cidr_netmask
        if self.vip.nic:
            params["nic"] = self.vip.nic
        primitive = ET.Element("primitive", {"id": self.vip_id, "class": "ocf", "provider": "heartbeat",
                                             "type": "IPaddr2"})
        primitive.append(_nvset("instance_attributes", self.vip_id + "-params", params))
        operations = ET.SubElement(primitive, "operations")
        ET.SubElement(operations, "op", {"id": self.vip_id + "-monitor-10s", "name": "monitor", "interval": "10s",
                                         "timeout": "20s"})
        return primitive

    def constraint_elements(self) -> List[ET.Element]:
        if self.vip is None:
            return []
        return [
            ET.Element("rsc_colocation", {"id": self.colocation_id, "rsc": self.vip_id, "with-rsc": self.clone_id,
                                          "with-rsc-role": "Promoted", "score": "INFINITY"}),
            ET.Element("rsc_order", {"id": self.order_id, "first": self.clone_id, "first-action": "promote",
                                     "then": self.vip_id, "then-action": "start", "kind": "Mandatory"}),
        ]


def _nvset(tag: str, set_id: str, values: Dict[str, str]) -> ET.Element:
    element = ET.Element(tag, {"id": set_id})
    for name in sorted(values):
        ET.SubElement(element, "nvpair", {"id": "%s-%s" % (set_id, name), "name": name, "value": str(values[name])})
    return element


# ---- comparison ----------------------------------------------------------------------------------------
_ANONYMOUS = ("nvpair", "op", "meta_attributes", "instance_attributes", "operations")


def canonical(element: Optional[ET.Element], ignore_meta: Sequence[str] = OPERATOR_META) -> str:
    """A stable text form: ids of nvpairs, ops and attribute sets are ignored (tools name them differently),
    children are sorted, and operator-controlled meta attributes are left out."""
    if element is None:
        return ""
    return "\n".join(_canonical_lines(element, 0, tuple(ignore_meta))) + "\n"


def _canonical_lines(element: ET.Element, depth: int, ignore_meta: Tuple[str, ...]) -> List[str]:
    attrs = {k: v for k, v in element.attrib.items() if not (k == "id" and element.tag in _ANONYMOUS)}
    line = "  " * depth + "<%s %s>" % (element.tag, " ".join('%s="%s"' % (k, attrs[k]) for k in sorted(attrs)))
    children = []
    for child in element:
        if child.tag == "nvpair" and element.tag == "meta_attributes" and child.get("name") in ignore_meta:
            continue
        children.append("\n".join(_canonical_lines(child, depth + 1, ignore_meta)))
    return [line.replace(" >", ">")] + sorted(children)


def find(section: Optional[ET.Element], tag: str, element_id: str) -> Optional[ET.Element]:
    if section is None:
        return None
    for element in section.iter(tag):
        if element.get("id") == element_id:
            return element
    return None


def carry_operator_meta(wanted: ET.Element, current: Optional[ET.Element]) -> ET.Element:
    """Keep target-role/is-managed the operator set on the current element when replacing it."""
    if current is None:
        return wanted
    for set_tag in ("meta_attributes",):
        current_set = current.find(set_tag)
        wanted_set = wanted.find(set_tag)
        if current_set is None or wanted_set is None:
            continue
        for nvpair in current_set.findall("nvpair"):
            if nvpair.get("name") in OPERATOR_META:
                ET.SubElement(wanted_set, "nvpair", dict(nvpair.attrib))
    return wanted


@dataclass(frozen=True)
class Operation:
    kind: str  # create | replace | delete
    scope: str  # resources | constraints
    element_id: str
    xml: str

    def argv(self) -> List[str]:
        flag = {"create": "--create", "replace": "--replace", "delete": "--delete"}[self.kind]
        return ["cibadmin", flag, "--scope", self.scope, "--xml-pipe"]

    def as_dict(self) -> Dict[str, str]:
        return {"action": self.kind, "scope": self.scope, "id": self.element_id,
                "command": " ".join(self.argv()) + " < " + self.element_id + ".xml"}


def _to_text(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")


def plan(wanted: Wanted, resources: Optional[ET.Element], constraints: Optional[ET.Element],
         state: str = "present") -> List[Operation]:
    """Operations that make the CIB sections match ``wanted`` (state=present) or drop what this module
    manages (state=absent). Constraints go after the resources they name, and before them on removal."""
    managed = [("resources", "clone", wanted.clone_id, wanted.clone_element() if state == "present" else None),
               ("resources", "primitive", wanted.vip_id, wanted.vip_element() if state == "present" else None)]
    wanted_constraints = {e.get("id"): e for e in wanted.constraint_elements()} if state == "present" else {}
    managed_constraints = [("constraints", "rsc_colocation", wanted.colocation_id,
                            wanted_constraints.get(wanted.colocation_id)),
                           ("constraints", "rsc_order", wanted.order_id, wanted_constraints.get(wanted.order_id))]
    creates: List[Operation] = []
    deletes: List[Operation] = []
    for scope, tag, element_id, element in managed + managed_constraints:
        current = find(resources if scope == "resources" else constraints, tag, element_id)
        if element is None:
            if current is not None:
                deletes.append(Operation("delete", scope, element_id, '<%s id="%s"/>' % (tag, element_id)))
            continue
        if current is None:
            creates.append(Operation("create", scope, element_id, _to_text(element)))
        elif canonical(current) != canonical(element):
            creates.append(Operation("replace", scope, element_id, _to_text(carry_operator_meta(element, current))))
    deletes.sort(key=lambda op: op.scope != "constraints")  # constraints first
    return deletes + creates


def describe(wanted: Wanted, resources: Optional[ET.Element], constraints: Optional[ET.Element]) -> str:
    """The managed elements as canonical text, for diff mode."""
    parts = [canonical(find(resources, "clone", wanted.clone_id)),
             canonical(find(resources, "primitive", wanted.vip_id)),
             canonical(find(constraints, "rsc_colocation", wanted.colocation_id)),
             canonical(find(constraints, "rsc_order", wanted.order_id))]
    return "".join(parts)


def describe_wanted(wanted: Wanted, state: str) -> str:
    if state != "present":
        return ""
    elements = [wanted.clone_element(), wanted.vip_element()] + wanted.constraint_elements()
    return "".join(canonical(e) for e in elements if e is not None)


def promoted_nodes(crm_mon_xml: str, clone_id: str) -> List[str]:
    """Nodes where an instance of ``clone_id`` runs promoted, from ``crm_mon --one-shot --output-as=xml``."""
    root = ET.fromstring(crm_mon_xml)
    nodes: List[str] = []
    for clone in root.iter("clone"):
        if clone.get("id") != clone_id:
            continue
        for resource in clone.iter("resource"):
            if resource.get("role") in ("Promoted", "Master") and resource.get("active") == "true":
                nodes.extend(n.get("name", "") for n in resource.iter("node"))
    return nodes


class CibClient:
    """cibadmin / crm_mon / crm_resource through an executor(argv, stdin) -> (rc, stdout, stderr)."""

    def __init__(self, executor: Executor) -> None:
        self.execute = executor
        self.commands: List[str] = []

    def _run(self, argv: Sequence[str], stdin: Optional[str] = None, record: bool = False) -> str:
        result = timed(argv, lambda: self.execute(argv, stdin))
        if record:
            self.commands.append(" ".join(argv))
        if result.rc != 0:
            raise CibError("`%s` failed with rc=%d: %s" % (" ".join(argv), result.rc,
                                                           (result.stderr or result.stdout).strip() or "no output"),
                           argv, result.rc, result.stdout, result.stderr)
        return result.stdout

    def section(self, scope: str) -> ET.Element:
        return ET.fromstring(self._run(["cibadmin", "--query", "--scope", scope]))

    def apply(self, operations: Sequence[Operation]) -> None:
        for operation in operations:
            self._run(operation.argv(), operation.xml, record=True)

    def promoted(self, clone_id: str) -> List[str]:
        return promoted_nodes(self._run(["crm_mon", "--one-shot", "--output-as=xml"]), clone_id)

    def switchover(self, clone_id: str, node: str, timeout: float, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> float:
        """Move the promoted role to ``node``, wait until it is promoted there (pgtwin's promote returns once
        PostgreSQL accepts writes), then drop the temporary constraint. Returns the seconds it took."""
        began = clock()
        self._run(["crm_resource", "--resource", clone_id, "--move", "--promoted", "--node", node], record=True)
        try:
            while clock() - began < timeout:
                if self.promoted(clone_id) == [node]:
                    return clock() - began
                sleep(0.5)
            raise CibError("%s was not promoted on %s within %d s (see crm_mon and the pgtwin agent log)"
                           % (clone_id, node, timeout))
        finally:
            self._run(["crm_resource", "--resource", clone_id, "--clear"], record=True)
