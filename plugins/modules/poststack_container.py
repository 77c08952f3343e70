#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_container
short_description: Stop or remove named containers, with podman or docker
version_added: 0.1.0
description:
  - Brings each named container to O(state) with the same commands on podman and on Docker (C(stop), then
    C(rm -v)); the lifecycle playbooks (C(stop.yml), C(remove.yml), C(clean.yml)) use it, whichever runtime runs
    the project.
  - A container that is already in that state, or does not exist, is left alone and not reported as changed.
  - It never creates or starts a container; the C(postgres) and C(project_containers) roles do.
author:
  - poststack contributors (@poststack)
extends_documentation_fragment:
  - poststack.core.attributes
  - poststack.core.attributes.actiongroup_poststack
attributes:
  check_mode:
    support: full
    details: Reports what it would stop or remove, from the containers' current states.
  diff_mode:
    support: full
    details: The containers' states before and after.
options:
  names:
    description: The containers.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(stopped) stops each running container (its data and the container stay).
      - V(absent) removes each container (stopped first) with its anonymous volumes; named volumes stay.
    type: str
    choices: [stopped, absent]
    required: true
  runtime:
    description: V(auto) prefers podman, then docker; or the path of the runtime's executable.
    type: str
    default: auto
  stop_timeout:
    description: Seconds a container gets to stop cleanly before the runtime kills it; by default the container's
      own stop timeout (podman and Docker default to 10 seconds).
    type: int
"""

EXAMPLES = r"""
- name: Stop the project's containers
  poststack.core.poststack_container:
    names: [shop-postgres, shop-web]
    state: stopped

- name: Remove a stopped container with Docker
  poststack.core.poststack_container:
    names: [shop-web]
    state: absent
    runtime: docker
"""

RETURN = r"""
containers:
  description: Each container that was (or would be) changed, with its state before and after (V(null) when it
    does not exist).
  returned: always
  type: list
  elements: dict
  sample: [{name: shop-postgres, before: running, after: exited}]
commands:
  description: The runtime commands that ran, the inspects included (in check mode only those).
  returned: always
  type: list
  elements: list
  sample: [[/usr/bin/podman, container, inspect, shop-postgres], [/usr/bin/podman, stop, -t, "10", shop-postgres]]
runtime:
  description: The runtime's executable.
  returned: success
  type: str
  sample: /usr/bin/podman
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.poststack.core.plugins.module_utils.container_state import (
    apply,
    current_states,
    plan,
)
from ansible_collections.poststack.core.plugins.module_utils.runtime import (
    ContainerRuntime,
    RuntimeCommandError,
    RuntimeNotFound,
    detect_runtime,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            state=dict(type="str", required=True, choices=["stopped", "absent"]),
            runtime=dict(type="str", default="auto"),
            stop_timeout=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["stop_timeout"] is not None and params["stop_timeout"] < 0:
        module.fail_json(msg="stop_timeout must be 0 or more, got %d; nothing was changed" % params["stop_timeout"],
                         containers=[], commands=[])
    try:
        runtime = ContainerRuntime(detect_runtime(params["runtime"]))
    except RuntimeNotFound as exc:
        module.fail_json(msg=str(exc), containers=[], commands=[])
    done = []
    try:
        steps = plan(current_states(runtime, params["names"]), params["state"])
        for step in steps:
            if not module.check_mode:
                apply(runtime, step, params["stop_timeout"])
            done.append(dict(name=step.name, before=step.before, after=step.after))
    except RuntimeCommandError as exc:
        module.fail_json(msg="%s; done before it: %s" % (exc, ", ".join(c["name"] for c in done) or "nothing"),
                         containers=done, commands=[r.argv for r in runtime.history])
    result = dict(changed=bool(done), containers=done, runtime=runtime.binary,
                  commands=[r.argv for r in runtime.history])
    if module._diff:
        result["diff"] = dict(before={c["name"]: c["before"] for c in done},
                              after={c["name"]: c["after"] for c in done})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
