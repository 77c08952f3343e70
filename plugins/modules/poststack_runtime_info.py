#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_runtime_info
short_description: Find the container runtime, the poststack containers it runs, and whether host ports are free
version_added: 0.1.0
description:
  - Detects podman or docker (V(auto) prefers podman) and fails with a clear message when neither is installed.
  - Lists containers by label (by default every container poststack started, label C(io.poststack.project)), with
    image, state, health, published ports, start time, uptime and labels, so that status reports find running
    PostgreSQL and project containers by themselves. For running poststack PostgreSQL containers it adds the
    database size and the applied schema versions, read inside the container without a password.
  - Optionally checks whether host TCP ports are free, so that roles refuse a port that something else holds
    before they start anything.
  - Optionally reports which of the named volumes and networks exist, with their driver, labels and options, so
    that roles skip creating them on runs where nothing changes.
author:
  - poststack contributors (@poststack)
extends_documentation_fragment:
  - poststack.core.attributes
  - poststack.core.attributes.actiongroup_poststack
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  runtime:
    description: V(auto) prefers podman, then docker.
    type: str
    choices: [auto, podman, docker]
    default: auto
  label_filters:
    description: Only list containers with all these labels (C(key) or C(key=value)).
    type: list
    elements: str
    default: [io.poststack.project]
  list_containers:
    description: List containers. Set to V(false) to only detect the runtime.
    type: bool
    default: true
  database_details:
    description: Read RV(containers[].database_size) and RV(containers[].schema_version) inside each running
      poststack PostgreSQL container (one C(exec) each). Set to V(false) when only names, states and ports matter.
    type: bool
    default: true
  refresh_health:
    description:
      - Run each running container's health check first, so that C(health) is current even on hosts where no
        systemd timer runs the checks (podman's C(healthcheck run)).
      - Docker's daemon runs the checks itself on the image's interval; a container it still reports as
        C(starting) gets its health command run once (C(exec)) and is reported C(healthy) when it passes.
    type: bool
    default: false
  check_ports:
    description:
      - Host TCP ports to test. A port counts as in use when binding it on O(bind_address) fails because something
        holds it.
      - The module fails when O(bind_address) is not an IP address or not one of this host's.
    type: list
    elements: int
    default: []
  bind_address:
    description: Address for O(check_ports).
    type: str
    default: 0.0.0.0
  check_binds:
    description:
      - Host TCP addresses and ports to test, each V(address:port) (V([::1]:8080) for IPv6), for ports on several
        addresses in one call. Those that cannot be bound are returned in RV(binds_unavailable) with the reason;
        unlike O(check_ports), an address that is not this host's is reported there, not a failure.
    type: list
    elements: str
    default: []
  volumes:
    description: Volume names to look up; those that exist are returned in RV(volumes).
    type: list
    elements: str
    default: []
  networks:
    description: Network names to look up; those that exist are returned in RV(networks).
    type: list
    elements: str
    default: []
  containers_named:
    description: Container names to look up whatever their labels; those that exist are returned in
      RV(named_containers), so that roles refuse to replace a container that poststack did not create.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Which runtime, and what runs
  poststack.core.poststack_runtime_info:
  register: runtime

- name: Refuse a port that is taken
  poststack.core.poststack_runtime_info:
    list_containers: false
    check_ports: [5432]
  register: ports

- name: Does the project network exist
  poststack.core.poststack_runtime_info:
    list_containers: false
    networks: [demo-net]
  register: found

- name: Create it only when it is missing
  when: "'demo-net' not in found.networks"
  containers.podman.podman_network:
    name: demo-net
"""

RETURN = r"""
runtime:
  description: Path of the runtime binary.
  returned: always
  type: str
  sample: /usr/bin/podman
runtime_name:
  description: V(podman) or V(docker).
  returned: always
  type: str
version:
  description: Runtime version.
  returned: always
  type: str
containers:
  description: Matching containers.
  returned: when O(list_containers=true)
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    image:
      description: Image name.
      type: str
    image_id:
      description: ID of the image the container was created from.
      type: str
    state:
      description: Container state (running, exited, created, ...).
      type: str
    health:
      description: Health status (healthy, unhealthy, starting), or empty when the image has no health check.
      type: str
    ports:
      description: Published ports as C(host_ip:host_port->container_port/proto).
      type: list
      elements: str
    started_at:
      description: Start time as reported by the runtime.
      type: str
    uptime:
      description: Time since the start, for example V(1h 02m) (empty when not running).
      type: str
    project:
      description: The poststack project (label C(io.poststack.project)), or empty.
      type: str
    component:
      description: V(postgres), V(project) (a project container) or empty (label C(io.poststack.component)).
      type: str
    database:
      description: The database of a poststack PostgreSQL container (its C(POSTGRES_DB)), else empty.
      type: str
    database_size:
      description: Size of that database (running poststack PostgreSQL containers only, with O(database_details)).
      type: str
    schema_version:
      description: Highest applied migration per stream, for example V(core 3, project 2) (PostgreSQL containers only).
      type: str
    labels:
      description: Container labels.
      type: dict
ports_in_use:
  description: The ports of O(check_ports) that could not be bound.
  returned: always
  type: list
  elements: int
binds_unavailable:
  description: The entries of O(check_binds) that could not be bound, each with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{bind: "127.0.0.1:8080", reason: in use by another process or container}]
volumes:
  description:
    - The volumes of O(volumes) that exist, by name (empty when none do or none were asked for), with their driver,
      labels and options, and C(project) and C(component) from the labels C(io.poststack.project) and
      C(io.poststack.component) (empty strings when poststack did not make them).
  returned: always
  type: dict
  sample: {demo-postgres-data: {name: demo-postgres-data, driver: local, labels: {io.poststack.project: demo},
           options: {}, project: demo, component: postgres}}
networks:
  description:
    - The networks of O(networks) that exist, by name, with the same keys as RV(volumes) and C(dns_enabled).
    - C(dns_enabled) is V(false) when containers on that network cannot reach each other by name (a podman
      network made by CNI without the dnsname plugin, or with C(--disable-dns)); Docker's user networks always
      resolve names.
    - A network without the label C(io.poststack.project) also has C(containers), the containers attached to it
      (running or not), each with C(name), C(project) and C(component) (empty when poststack did not make it).
  returned: always
  type: dict
  sample: {demo-net: {name: demo-net, driver: bridge, labels: {io.poststack.project: demo}, options: {isolate: "true"},
           dns_enabled: true, project: demo, component: postgres}}
named_containers:
  description: The containers of O(containers_named) that exist, by name, with the keys of RV(containers)
    (without the database details).
  returned: always
  type: dict
  sample: {demo-postgres: {name: demo-postgres, state: running, labels: {}, project: "", component: ""}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.poststack.core.plugins.module_utils.runtime import (
    ContainerRuntime,
    RuntimeCommandError,
    RuntimeNotFound,
    describe,
    detect_runtime,
    address_problem,
    binds_unavailable,
    ports_in_use,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            runtime=dict(type="str", default="auto", choices=["auto", "podman", "docker"]),
            label_filters=dict(type="list", elements="str", default=["io.poststack.project"]),
            list_containers=dict(type="bool", default=True),
            database_details=dict(type="bool", default=True),
            refresh_health=dict(type="bool", default=False),
            check_ports=dict(type="list", elements="int", default=[]),
            bind_address=dict(type="str", default="0.0.0.0"),
            check_binds=dict(type="list", elements="str", default=[]),
            volumes=dict(type="list", elements="str", default=[]),
            networks=dict(type="list", elements="str", default=[]),
            containers_named=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        runtime = ContainerRuntime(detect_runtime(params["runtime"]))
        bad_address = address_problem(params["bind_address"]) if params["check_ports"] else None
        if bad_address:
            module.fail_json(msg="bind address %s; nothing was changed" % bad_address)
        result = dict(changed=False, runtime=runtime.binary, runtime_name=runtime.name,
                      ports_in_use=ports_in_use(params["check_ports"], params["bind_address"]),
                      binds_unavailable=binds_unavailable(params["check_binds"]))
        result.update(describe(runtime, params["label_filters"] if params["list_containers"] else None,
                               params["volumes"], params["networks"], params["refresh_health"],
                               params["database_details"], params["containers_named"]))
    except RuntimeNotFound as exc:
        module.fail_json(msg=str(exc))
    except RuntimeCommandError as exc:
        module.fail_json(msg=str(exc), rc=exc.result.rc, stderr=exc.result.stderr)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
