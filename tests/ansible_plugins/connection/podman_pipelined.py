# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tests' way into their node containers: containers.podman.podman with Ansible's pipelining.

containers.podman.podman runs six podman commands for each task on each host (mount, the remote home, mkdir, put,
chmod, the module, rm), because it does not pipeline: ``podman exec`` without ``-i`` passes no standard input.
This one passes the module on ``podman exec -i``'s standard input, as SSH does with ``pipelining = true``
(ansible.cfg), so a task is one exec. Files (copy, template) still go through the container's mount, made when a
task first puts or fetches one (measured under load: a podman command costs about 0.3 s).
Used by tests/ha (harness.py) and the molecule scenarios with node containers; not part of the collection.
"""

from __future__ import annotations

DOCUMENTATION = """
    name: podman_pipelined
    short_description: containers.podman.podman with pipelining (poststack's tests)
    description:
        - Run commands in an existing podman container, the module on C(podman exec -i)'s standard input.
    options:
      remote_addr:
        description: The container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: The user the commands run as in the container.
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments of the podman command line.
        default: ''
        vars:
          - name: ansible_podman_extra_args
      podman_executable:
        description: The podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
      pipelining:
        description: Pass the module on standard input (always, here).
        type: boolean
        default: true
"""

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    transport = "podman_pipelined"
    has_pipelining = True

    def _connect(self):
        self._connected = True  # the mount waits for the first file put or fetched

    def _mount(self):
        if self._mount_point is None:
            PodmanConnection._connect(self)  # podman mount (None when it fails: podman cp then)

    def put_file(self, in_path, out_path):
        self._mount()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._mount()
        super().fetch_file(in_path, out_path)

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        if in_data is None:
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec", "-i"] + (["--user", self.user] if self.user else [])
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
