#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_postgres_check
short_description: Check a PostgreSQL container's configuration before it is applied
version_added: 0.2.0
description:
  - Lets PostgreSQL itself parse the server settings (C(postgres -C) with every value as C(-c name=value)), in
    the image that will run them, so that a bad value is refused with PostgreSQL's own message before the running
    server, its configuration files or its container are touched.
  - The check runs inside O(container) when that container runs O(image) (about 0.1 s), else in a throwaway
    container of O(image) without network or volumes.
  - The libraries that C(shared_preload_libraries), C(session_preload_libraries) and C(local_preload_libraries)
    name must exist in the image (C(postgres -C) does not load them; a missing one would stop the next start).
  - Also checks the pg_hba networks (O(hba_cidrs)) and the memory limit (O(memory)) by their syntax.
  - With O(tls_cert) and O(tls_key), checks the server certificate and its key as given (any owner and mode, since the
    module reads them as the user it runs as). Both must be readable PEM files and the key must have no passphrase;
    with the C(openssl) program on the target, the key must be the certificate's, and the end date is returned.
  - Every refused value is named in one run. Changes nothing.
author:
  - poststack contributors (@poststack)
extends_documentation_fragment:
  - poststack.core.attributes
  - poststack.core.attributes.actiongroup_poststack
attributes:
  check_mode:
    support: full
    details: The check changes nothing, so it runs in check mode too.
  diff_mode:
    support: none
options:
  image:
    description: The PostgreSQL image that will run the settings.
    type: str
    required: true
  container:
    description: The PostgreSQL container of this configuration, when it may already run.
    type: str
  runtime:
    description: V(auto) prefers podman, then docker.
    type: str
    choices: [auto, podman, docker]
    default: auto
  settings:
    description: Server settings by name (numbers, strings, booleans), as the postgres role writes them.
    type: dict
    default: {}
  hba_cidrs:
    description: Networks for pg_hba.conf (client connections).
    type: list
    elements: str
    default: []
  replication_cidrs:
    description: Networks for pg_hba.conf replication lines.
    type: list
    elements: str
    default: []
  memory:
    description: Container memory limit (C(<number>[b|k|m|g]), at least C(6m)); empty for none.
    type: str
    default: ""
  tls_cert:
    description: The server certificate file (PEM, the certificate followed by its chain); empty for no TLS.
    type: path
    default: ""
  tls_key:
    description: The key file of O(tls_cert) (PEM, no passphrase). Its content is never returned.
    type: path
    default: ""
"""

EXAMPLES = r"""
- name: Refuse bad settings before anything changes
  poststack.core.poststack_postgres_check:
    image: localhost/poststack/postgres-debian:latest
    container: demo-postgres
    settings:
      max_connections: 200
      work_mem: 8MB
    hba_cidrs: [10.0.0.0/8]
    memory: 2g

- name: Also check a certificate and key before the role installs copies of them
  poststack.core.poststack_postgres_check:
    image: localhost/poststack/postgres-debian:latest
    tls_cert: /etc/letsencrypt/live/db.example.com/fullchain.pem
    tls_key: /etc/letsencrypt/live/db.example.com/privkey.pem
"""

RETURN = r"""
version:
  description: The server version that parsed the settings (empty when they were refused).
  returned: always
  type: str
  sample: 15.20 (Debian 15.20-0+deb12u1)
image_id:
  description: The ID of O(image) (empty when it does not exist), so that a role can tell whether a container
    runs an older build of it.
  returned: always
  type: str
problems:
  description: One sentence per refused value, with PostgreSQL's message for settings.
  returned: always
  type: list
  elements: str
  sample: ['work_mem = notasize: invalid value for parameter "work_mem": "notasize"']
tls:
  description: The checked certificate pair (only with O(tls_cert) or O(tls_key)); C(key_matches) and
    C(expired) are null when the target has no C(openssl) to tell.
  returned: when O(tls_cert) or O(tls_key) is set
  type: dict
  sample:
    cert_checksum: 0b5e4f0c0e8f3c2a7d9b6a1e4c3f2d1b0a9e8d7c
    key_checksum: 5d41402abc4b2a76b9719d911017c592ae1f3b2c
    key_matches: true
    not_after: Dec  4 10:00:00 2026 GMT
    expired: false
commands:
  description: Every runtime and openssl command that ran, in order.
  returned: always
  type: list
  elements: list
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.poststack.core.plugins.module_utils.postgres_config import (
    check_libraries,
    check_settings,
    cidr_problems,
    memory_problem,
    name_problems,
    running_with_image,
)
from ansible_collections.poststack.core.plugins.module_utils.tls import check_pair
from ansible_collections.poststack.core.plugins.module_utils.runtime import (
    ContainerRuntime,
    RuntimeCommandError,
    RuntimeNotFound,
    detect_runtime,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            container=dict(type="str"),
            runtime=dict(type="str", default="auto", choices=["auto", "podman", "docker"]),
            settings=dict(type="dict", default={}),
            hba_cidrs=dict(type="list", elements="str", default=[]),
            replication_cidrs=dict(type="list", elements="str", default=[]),
            memory=dict(type="str", default=""),
            tls_cert=dict(type="path", default=""),
            tls_key=dict(type="path", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        runtime = ContainerRuntime(detect_runtime(params["runtime"]))
    except RuntimeNotFound as exc:
        module.fail_json(msg=str(exc), problems=[str(exc)], version="", commands=[])
    problems = [p for p in [memory_problem(params["memory"])] if p]
    problems += cidr_problems(params["hba_cidrs"]) + cidr_problems(params["replication_cidrs"], "postgres_replication_cidrs")
    problems += name_problems(params["settings"])
    version = ""
    try:
        running = running_with_image(runtime, params["container"], params["image"])
        image = runtime.image_inspect(params["image"])
        image_id = (image or {}).get("Id", "")
        if image is None:
            problems.append("postgres_image '%s' does not exist on this host: build it first (playbooks/images.yml) "
                            "or pull it" % params["image"])
        if not problems:
            checked = check_settings(runtime, params["image"], params["settings"], running)
            problems, version = checked["problems"], checked["version"]
            if not problems:
                problems = check_libraries(runtime, params["image"], params["settings"], running)
    except RuntimeCommandError as exc:  # the runtime could not be asked (an engine that does not answer)
        module.fail_json(msg=str(exc), problems=[str(exc)], version="", commands=[r.argv for r in runtime.history])
    commands = [r.argv for r in runtime.history]
    tls = None
    if params["tls_cert"] or params["tls_key"]:
        pair = check_pair(params["tls_cert"], params["tls_key"], cert_variable="tls_cert", key_variable="tls_key")
        problems = problems + pair.pop("problems")
        commands += pair.pop("commands")
        tls = pair
    result = dict(changed=False, version=version, image_id=image_id, problems=problems, commands=commands)
    if tls is not None:
        result["tls"] = tls
    if problems:
        module.fail_json(msg="Invalid PostgreSQL configuration%s; nothing was changed: %s" % (
            " for %s" % params["container"] if params["container"] else "", "; ".join(problems)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
