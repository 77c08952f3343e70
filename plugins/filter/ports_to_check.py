# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: ports_to_check
short_description: The TCP host ports that project containers publish and that must be free before they run
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - Reads the C(ports) of each entry of C(project_containers_run) (V([address:][host port:]container port[/protocol]))
    and returns each fixed TCP host port that the entry's own running container does not already hold (all of them
    when O(named) is not given), as V(address:port) for O(poststack.core.poststack_runtime_info#module:check_binds).
  - Ports without a host port (chosen by the runtime), port ranges and UDP or SCTP ports are not returned.
options:
  _input:
    description: The entries of C(project_containers_run).
    type: list
    elements: dict
    required: true
  project:
    description: The project name; a container is named C(<project>-<entry name>).
    type: str
    required: true
  named:
    description: >-
      The existing containers by name, as C(poststack_runtime_info) returns them in C(named_containers) (C(state)
      and C(ports) like V(127.0.0.1:8080->8080/tcp)).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Find which of the host ports the containers publish cannot be bound now
  poststack.core.poststack_runtime_info:
    check_binds: "{{ project_containers_run | poststack.core.ports_to_check('shop') | map(attribute='bind') | list }}"
  register: info
"""

RETURN = r"""
_value:
  description: One item per port to check.
  type: list
  elements: dict
  contains:
    container:
      description: The container's name.
      type: str
    spec:
      description: The ports entry as given.
      type: str
    address:
      description: The host address it binds (V(0.0.0.0) when none is given).
      type: str
    port:
      description: The host port.
      type: int
    bind:
      description: V(address:port) as O(poststack.core.poststack_runtime_info#module:check_binds) takes it.
      type: str
"""


def parse_publish(spec):
    """'127.0.0.1:8080:80/tcp' -> ('127.0.0.1', '8080', 'tcp'); the host port is '' when the runtime picks it."""
    text, protocol = (str(spec).split("/", 1) + ["tcp"])[:2]
    address = "0.0.0.0"
    if text.startswith("[") and "]:" in text:
        address, text = text[1:].split("]:", 1)
    elif text.count(":") == 2:
        address, text = text.split(":", 1)
    host_port = text.rsplit(":", 1)[0] if ":" in text else ""
    return address or "0.0.0.0", host_port, protocol or "tcp"


def ports_to_check(entries, project, named=None):
    named = named or {}
    result = []
    for entry in entries or []:
        name = "%s-%s" % (project, entry.get("name"))
        held = named.get(name) or {}
        held_ports = held.get("ports", []) if held.get("state") == "running" else []
        for spec in entry.get("ports") or []:
            address, port, protocol = parse_publish(spec)
            if protocol != "tcp" or not port.isdigit():
                continue
            # the runtime's summary prints host_ip:host_port->container_port/proto, IPv6 without brackets
            if any(p.startswith("%s:%s->" % (address, port)) for p in held_ports):
                continue
            bind_address = "[%s]" % address if ":" in address else address
            result.append({"container": name, "spec": str(spec), "address": address, "port": int(port),
                           "bind": "%s:%s" % (bind_address, port)})
    return result


class FilterModule:
    def filters(self):
        return {"ports_to_check": ports_to_check}
