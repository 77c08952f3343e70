#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_container_health
short_description: Check that started containers work - healthy, and able to reach their database
version_added: 0.2.0
description:
  - Waits until each container in O(containers) runs and, when its image or its run options define a health
    check, until the check passes. Fails, naming the container and quoting the check's last output, when a
    container is missing or stopped, reports unhealthy after its start period (plus the retries the runtime
    allows), or is not healthy within O(timeout) seconds.
  - With O(database), also starts a throwaway container on the given network that checks that the database host
    resolves and that PostgreSQL answers there (C(pg_isready) from O(database.image); no credentials are used),
    and fails when it does not. This is what a project container on that network sees.
  - On podman, the checks are run by the module (C(podman healthcheck run)), since podman schedules them with
    systemd timers that hosts without systemd do not have; the Docker daemon runs its own, which are read.
  - Changes nothing; in check mode, containers that do not exist yet (they would be created) are not waited for.
author:
  - poststack contributors (@poststack)
extends_documentation_fragment:
  - poststack.core.attributes
  - poststack.core.attributes.actiongroup_poststack
attributes:
  check_mode:
    support: full
    details: Runs the same checks, which change nothing; containers that do not exist yet are skipped.
  diff_mode:
    support: none
options:
  containers:
    description: Names of the containers to check.
    type: list
    elements: str
    required: true
  runtime:
    description: V(auto) prefers podman, then docker.
    type: str
    choices: [auto, podman, docker]
    default: auto
  timeout:
    description: Seconds to wait for each container to become healthy.
    type: int
    default: 60
  database:
    description: The database the containers were given. Omit to check health only.
    type: dict
    suboptions:
      network:
        description: Network the containers are on.
        type: str
        required: true
      host:
        description: Database host name or address as the containers see it.
        type: str
        required: true
      port:
        description: Database port as the containers see it.
        type: int
        default: 5432
      image:
        description: Local image with C(/bin/sh), C(getent) and C(pg_isready) for the probe container.
        type: str
        default: localhost/poststack/postgres-debian:latest
  log_lines:
    description:
      - When a container is stopped, unhealthy or not healthy in time, this many of its last log lines (both
        streams, O(secrets) masked) end the error and are returned in RV(containers[].log). V(0) leaves them out.
    type: int
    default: 20
  secrets:
    description: Values masked (C(********)) wherever a check's output or a container's log is returned, for
      example the database password that a failing application prints.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Check that the web app is healthy and reaches PostgreSQL
  poststack.core.poststack_container_health:
    containers: [demo-web]
    database:
      network: demo-net
      host: demo-postgres
      port: 5432
    secrets: ["{{ postgres_password }}"]
"""

RETURN = r"""
containers:
  description: One report per container, in the order of O(containers).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    ok:
      description: Whether it runs and, with a health check, is healthy.
      type: bool
    state:
      description: The runtime's state (V(running), V(exited), ...), empty when the container does not exist.
      type: str
    health:
      description: V(healthy), V(unhealthy), V(starting), or V(none) without a health check.
      type: str
    output:
      description: Output of the last health check (secrets masked).
      type: str
    seconds:
      description: Seconds waited.
      type: float
    problem:
      description: What is wrong, when not RV(containers[].ok).
      type: str
      returned: when not ok
    log:
      description: The container's last O(log_lines) log lines (secrets masked).
      type: str
      returned: when not ok, the container exists and O(log_lines) is above 0
  sample: [{name: demo-web, ok: true, state: running, health: healthy, output: "", seconds: 0.4}]
database:
  description: The probe of O(database), or null without it.
  returned: always
  type: dict
  contains:
    ok:
      description: Whether PostgreSQL answered (pg_isready exit code 0 or 1).
      type: bool
    output:
      description: What the probe printed.
      type: str
    command:
      description: The command that ran.
      type: list
      elements: str
  sample: {ok: true, network: demo-net, host: demo-postgres, port: 5432, rc: 0,
           output: "demo-postgres:5432 - accepting connections"}
commands:
  description: Every runtime command that ran, in order.
  returned: always
  type: list
  elements: list
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.poststack.core.plugins.module_utils.container_health import check_containers
from ansible_collections.poststack.core.plugins.module_utils.runtime import (
    ContainerRuntime,
    RuntimeCommandError,
    RuntimeNotFound,
    detect_runtime,
    find_containers,
    find_resources,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            containers=dict(type="list", elements="str", required=True),
            runtime=dict(type="str", default="auto", choices=["auto", "podman", "docker"]),
            timeout=dict(type="int", default=60),
            database=dict(type="dict", options=dict(
                network=dict(type="str", required=True),
                host=dict(type="str", required=True),
                port=dict(type="int", default=5432),
                image=dict(type="str", default="localhost/poststack/postgres-debian:latest"),
            )),
            log_lines=dict(type="int", default=20),
            secrets=dict(type="list", elements="str", default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        runtime = ContainerRuntime(detect_runtime(params["runtime"]))
    except RuntimeNotFound as exc:
        module.fail_json(msg=str(exc), containers=[], database=None, commands=[])
    if params["log_lines"] < 0:
        module.fail_json(msg="log_lines must be 0 or more, got %d; nothing was checked" % params["log_lines"],
                         containers=[], database=None, commands=[])
    try:
        report = check(module, runtime, params)
    except RuntimeCommandError as exc:  # the runtime could not be asked (an engine that does not answer)
        module.fail_json(msg=str(exc), containers=[], database=None, commands=[r.argv for r in runtime.history])
    result = dict(changed=False, containers=report["containers"], database=report["database"],
                  commands=[r.argv for r in runtime.history])
    if report["problems"]:
        module.fail_json(msg="; ".join(report["problems"]), **result)
    module.exit_json(**result)


def check(module, runtime, params):
    """The containers' (and the database's) health; in check mode only what exists yet."""
    names = params["containers"]
    if module.check_mode:
        existing = find_containers(runtime, names)
        names = [name for name in names if name in existing]
        network = params["database"]["network"] if params["database"] else None
        if network and not find_resources(runtime, "network", [network]):
            params["database"] = None  # the network would be created: nothing to probe yet
    return check_containers(runtime, names, params["timeout"], params["database"], params["secrets"],
                            params["log_lines"])


if __name__ == "__main__":
    main()
