#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_image
short_description: Build a container image with podman or docker, skipping the build when nothing changed
version_added: 0.1.0
description:
  - Builds an image from a build context and a Containerfile or Dockerfile with podman or docker.
  - Idempotent by content. The module hashes the build context (the files the runtime would send, honouring
    C(.containerignore), else C(.dockerignore)), the Containerfile, build args, target, labels and the local IDs
    of the images named in C(FROM) lines, and stores the hash in the image label C(io.poststack.build-hash).
    When an image with the same hash exists, nothing is built and C(changed) is false.
  - Because the IDs of base images are part of the hash, rebuilding a base image makes the images built on it
    rebuild on their next run.
  - The full build output goes to a log file under O(log_dir); a failed build reports the tail of that log.
author:
  - poststack contributors (@poststack)
extends_documentation_fragment:
  - poststack.core.attributes
  - poststack.core.attributes.actiongroup_poststack
attributes:
  check_mode:
    support: full
    details: Computes the hash and reports whether it would build or tag, without running the runtime's build.
  diff_mode:
    support: full
    details: Shows the build hash and image ID before and after.
options:
  name:
    description:
      - Image name with optional tag, for example V(localhost/poststack/postgres-debian:latest).
      - Without a tag, V(latest) is used.
    type: str
    required: true
  additional_tags:
    description: More names (with tags) for the same image.
    type: list
    elements: str
    default: []
  context:
    description: Build context directory.
    type: path
    required: true
  containerfile:
    description:
      - Containerfile or Dockerfile, relative to O(context) or absolute.
      - When omitted, C(Containerfile) then C(Dockerfile) in O(context).
    type: path
  build_args:
    description: Build arguments (C(--build-arg)). They end up in the image history; do not pass secrets.
    type: dict
    default: {}
  target:
    description: Target stage of a multi-stage build.
    type: str
  labels:
    description: Labels to set on the image (the hash label is added to them).
    type: dict
    default: {}
  no_cache:
    description: Do not use the layer cache when a build runs. Does not by itself force a build; see O(force).
    type: bool
    default: false
  force:
    description: Build even when an image with the same build hash exists.
    type: bool
    default: false
  pull:
    description:
      - When to pull the images named in C(FROM).
      - V(never) for local images (for example a base image made with mmdebstrap and C(podman import)).
      - Docker only knows V(always) (C(--pull)) and the default behaviour, which V(missing), V(never) and V(newer)
        map to.
    type: str
    choices: [missing, always, never, newer]
    default: missing
  image_format:
    description:
      - Image format for podman. V(docker) keeps C(HEALTHCHECK) and C(STOPSIGNAL), which the OCI format drops.
      - Ignored by docker.
    type: str
    choices: [docker, oci]
    default: docker
  network:
    description:
      - The network of the build's C(RUN) steps (C(--network) of podman and docker build), for example V(host)
        when the engine does no NAT (a Docker engine started with C(--iptables=false)) and a step downloads.
      - Not part of the build hash; by default the runtime's own.
    type: str
  extra_args:
    description: Further arguments for the runtime's C(build) command, inserted before the context.
    type: list
    elements: str
    default: []
  exclude:
    description:
      - Context paths (ignore-file patterns, for example V(.env), V(logs)) that are neither sent to the build nor
        part of the build hash, whatever the context's ignore file says. Podman gets the context's ignore file
        with these appended through C(--ignorefile).
      - Docker has no C(--ignorefile). While the context holds files that these patterns exclude and its
        C(.dockerignore) does not, the context goes to C(docker build -) as a gzipped tar on stdin with its
        directories, exactly the files and links the build hash covers, owned by root, and the Containerfile
        (one from outside the context as C(.poststack.Containerfile)). The build log names the count.
    type: list
    elements: str
    default: []
  runtime:
    description: Container runtime. V(auto) prefers podman, then docker.
    type: str
    choices: [auto, podman, docker]
    default: auto
  log_dir:
    description:
      - Directory for build logs (created when missing). A relative path is relative to the directory the module
        runs in (the directory C(ansible-playbook) was started from, for local connections).
    type: path
    default: logs/containers
  timeout:
    description: Seconds after which a build is aborted.
    type: int
    default: 3600
notes:
  - Podman reads C(CONTAINERS_CONF) and the other variables of the environment the task runs in.
seealso:
  - module: containers.podman.podman_image
  - module: community.docker.docker_image_build
"""

EXAMPLES = r"""
- name: Build the PostgreSQL image on a local base image, without pulling
  poststack.core.poststack_image:
    name: localhost/poststack/postgres-debian:latest
    context: "{{ playbook_dir }}/../containers/postgres-debian"
    build_args:
      BASE_IMAGE: localhost/poststack/base-debian:latest
      PG_MAJOR: "15"
    pull: never

- name: Build a project container; the context is the project root
  poststack.core.poststack_image:
    name: myproject/apache
    context: /srv/myproject
    containerfile: containers/apache/Dockerfile
    log_dir: /srv/myproject/logs/containers

- name: Rebuild from scratch
  poststack.core.poststack_image:
    name: myproject/worker
    context: /srv/myproject
    containerfile: containers/worker/Dockerfile
    force: true
    no_cache: true
"""

RETURN = r"""
image:
  description: The image name with tag.
  returned: always
  type: str
  sample: localhost/poststack/postgres-debian:latest
image_id:
  description: ID of the image (after the build; the current one in check mode, null if none exists).
  returned: always
  type: str
  sample: d5d3cb8bac15155b79bf2a1bdda28185850439bed09b5fa29c39e2fa8e730540
tags:
  description: All names the image has.
  returned: always
  type: list
  elements: str
size:
  description: Image size in bytes (null when no image exists, as in check mode before a first build).
  returned: always
  type: int
build_hash:
  description: The content hash of the build inputs, stored in the C(io.poststack.build-hash) label.
  returned: always
  type: str
operation:
  description: What was done or, in check mode, would be done, V(none), V(tag) or V(build).
  returned: always
  type: str
  sample: none
reason:
  description: Why the action was chosen.
  returned: always
  type: str
  sample: "up to date: build hash matches"
commands:
  description:
    - The commands that ran or would run, each an argument list (the runtime binary first).
    - The build command for O(force=true) or changed inputs, the tag commands for missing additional tags, none
      when the image is up to date.
  returned: always
  type: list
  elements: list
log_file:
  description: Path of the full build log (null when nothing was built).
  returned: always
  type: str
context_files:
  description: Number of context files that went into the hash.
  returned: always
  type: int
ignore_file:
  description: The ignore file used (V(.containerignore) or V(.dockerignore)), or null.
  returned: always
  type: str
base_images:
  description: Images named in C(FROM) lines and their local IDs (null when not present locally).
  returned: always
  type: dict
runtime:
  description: Path of the runtime binary used.
  returned: always
  type: str
elapsed:
  description: Seconds the module spent, build included.
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.poststack.core.plugins.module_utils.image_job import ImageJob, ImageJobError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            additional_tags=dict(type="list", elements="str", default=[]),
            context=dict(type="path", required=True),
            containerfile=dict(type="path"),
            build_args=dict(type="dict", default={}),
            target=dict(type="str"),
            labels=dict(type="dict", default={}),
            no_cache=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            pull=dict(type="str", default="missing", choices=["missing", "always", "never", "newer"]),
            image_format=dict(type="str", default="docker", choices=["docker", "oci"]),
            extra_args=dict(type="list", elements="str", default=[]),
            network=dict(type="str"),
            exclude=dict(type="list", elements="str", default=[]),
            runtime=dict(type="str", default="auto", choices=["auto", "podman", "docker"]),
            log_dir=dict(type="path", default="logs/containers"),
            timeout=dict(type="int", default=3600),
        ),
        supports_check_mode=True,
    )
    started = time.monotonic()
    try:
        job = ImageJob.prepare(module.params)
    except ImageJobError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    result = job.result(diff=module._diff)
    if job.changes and not module.check_mode:
        try:
            job.run(result, module.params["log_dir"], module.params["timeout"])
        except ImageJobError as exc:
            module.fail_json(msg=str(exc), **exc.details)
    result["elapsed"] = round(time.monotonic() - started, 3)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
