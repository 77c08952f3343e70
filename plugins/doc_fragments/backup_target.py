# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Where the backups are: the options poststack_backup, poststack_backup_info and poststack_backup_restore
    share (their argument spec is backup.target_argument_spec)."""

    DOCUMENTATION = r"""
options:
  container:
    description:
      - The PostgreSQL container (C(postgres_container_name) of the postgres role); its backups mount gives the
        default O(backup_dir).
    type: str
  backup_dir:
    description: Host directory of the backups. Default C(logical/) in the backups mount of O(container).
    type: path
  runtime:
    description: Container runtime; V(auto) prefers podman, then docker.
    type: str
    choices: [auto, podman, docker]
    default: auto
"""
