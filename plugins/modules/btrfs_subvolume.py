#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: btrfs_subvolume
short_description: Btrfs subvolumes with quotas, compression, ownership, SELinux type and snapshots with retention
version_added: 0.1.0
description:
  - Creates, updates and deletes a Btrfs subvolume given by its absolute path on a mounted Btrfs filesystem, and
    takes read-only snapshots of it with a name pattern, keeping the N newest.
  - Unlike M(community.general.btrfs_subvolume), it manages a qgroup quota limit (enabling quotas on the
    filesystem when needed) and reports the limit and current usage, the C(compression) property, the owner,
    group and mode of the subvolume root and its SELinux type, and creates missing parent directories.
  - It reads the current state first (read-only commands, also in check mode), compares it with the options and
    runs only the commands of the resulting plan. C(changed) is true exactly when the plan is not empty.
  - Bad input is refused before anything changes, for example a path that is not on Btrfs, a quota below the
    current usage, or an unknown compression.
  - Commands run with C(LC_ALL=C); a failing command fails the task with the path, the command, its return code
    and its stderr.
author:
  - poststack contributors (@poststack)
requirements:
  - btrfs-progs (the C(btrfs) command), util-linux (C(findmnt)), coreutils (C(chown), C(chmod), C(chcon)).
extends_documentation_fragment:
  - poststack.core.attributes
attributes:
  check_mode:
    support: full
    details:
      - Returns the plan (with the command of every step) without running it.
  diff_mode:
    support: full
    details:
      - The diff is built from the same comparison that decides C(changed).
options:
  path:
    description:
      - Absolute path of the subvolume, for example C(/var/lib/pgtwin/@postgres-psql1).
      - With O(state=snapshot), the subvolume to snapshot.
    type: path
    required: true
  state:
    description:
      - V(present) creates the subvolume if needed and sets the attributes given.
      - V(absent) deletes it; a path that does not exist is fine, a path that is not a subvolume is an error.
      - V(snapshot) creates a snapshot named by O(snapshot_name) in O(snapshot_dir) unless it exists, then deletes
        the oldest snapshots of this subvolume matching the pattern beyond O(snapshot_keep).
    type: str
    choices: [present, absent, snapshot]
    default: present
  parents:
    description:
      - Create missing parent directories of O(path) (like C(mkdir -p), owned by root, mode from the umask).
      - When V(false), a missing parent is an error.
    type: bool
    default: true
  parents_as_subvolumes:
    description:
      - Create the missing parents as subvolumes instead of directories (only with O(parents=true)).
    type: bool
    default: false
  owner:
    description:
      - Owner of the subvolume root directory, a user name or a numeric UID. A numeric UID (C(999), the
        postgres user of our images) needs no such user on the host.
      - Only with O(state=present).
    type: str
  group:
    description:
      - Group of the subvolume root directory, a group name or a numeric GID.
      - Only with O(state=present).
    type: str
  mode:
    description:
      - Mode of the subvolume root directory as a quoted octal string, for example C('0700').
      - An unquoted YAML number is taken as the integer value of the mode, as M(ansible.builtin.file) does
        (so an unquoted C(0700) works, but C(700) does not mean C(0700)). Symbolic modes are not supported.
      - Only with O(state=present).
    type: raw
  compression:
    description:
      - The C(compression) property of the subvolume root; files created below inherit it.
      - V(none) disables compression even when the filesystem is mounted with C(compress=).
      - V(default) removes the property, so that the mount option decides.
      - Only with O(state=present). Omit it to leave the property alone.
    type: str
    choices: [zstd, lzo, zlib, none, default]
  quota:
    description:
      - Limit of the referenced space of the subvolume's qgroup (C(0/<id>)), in bytes or with a binary unit
        (C(512M), C(10G), C(1.5T)), or V(none) to remove the limit. Omit it to leave the limit alone.
      - Enables quotas on the filesystem (and waits for the rescan) when they are off.
      - A limit below the current usage is refused. When quotas are off the usage is first estimated with
        C(btrfs filesystem du), then checked again against the qgroup right before the limit is set; if that
        check fails, the quotas this task enabled are disabled again.
      - Only with O(state=present).
    type: str
  setype:
    description:
      - SELinux type of the subvolume root, for example C(container_file_t), set with C(chcon -t).
      - Ignored (and reported in RV(selinux)) when SELinux is disabled on the host.
      - Podman's C(:Z) volume option relabels the content below it when a container starts.
      - Only with O(state=present).
    type: str
  recursive:
    description:
      - With O(state=absent), delete nested subvolumes below O(path) first (deepest first). Without it, a
        subvolume that contains subvolumes is an error naming them.
      - Only with O(state=absent).
    type: bool
    default: false
  snapshot_dir:
    description:
      - Directory for snapshots; created when missing. It must be on the same Btrfs filesystem. Default is
        C(.snapshots) beside O(path).
      - Only with O(state=snapshot).
    type: path
  snapshot_name:
    description:
      - Name pattern of the snapshots. C({name}) is the subvolume's name; C(%Y %y %m %d %H %M %S %j %s %%) are
        replaced as by C(strftime) using the current UTC time.
      - A pattern that gives the name of an existing snapshot of O(path) creates nothing, so a pattern with
        C(%Y%m%d) takes at most one snapshot per day.
      - Retention only counts snapshots in O(snapshot_dir) whose names match this pattern and that are snapshots
        of O(path) (their parent UUID is its UUID); other subvolumes are never deleted.
    type: str
    default: '{name}.%Y%m%dT%H%M%SZ'
  snapshot_keep:
    description:
      - Keep this many newest snapshots (in creation order) matching O(snapshot_name), the new one included, and
        delete the older ones. Omit it to keep all.
      - Only with O(state=snapshot).
    type: int
  snapshot_readonly:
    description:
      - Create read-only snapshots.
    type: bool
    default: true
notes:
  - Quota limits apply to the referenced space of the subvolume's level-0 qgroup. Btrfs updates usage at
    transaction commit; the module runs C(btrfs filesystem sync) before it reads usage.
  - Snapshots of a subvolume do not include nested subvolumes (they appear as empty directories).
seealso:
  - module: community.general.btrfs_subvolume
  - module: community.general.btrfs_info
"""

EXAMPLES = r"""
- name: Subvolume for a PostgreSQL node, owned by the postgres UID of the image, 20 GiB quota, zstd
  poststack.core.btrfs_subvolume:
    path: /var/lib/pgtwin/@postgres-psql1
    owner: "999"
    group: "999"
    mode: "0750"
    quota: 20G
    compression: zstd
    setype: container_file_t

- name: Daily read-only snapshot, keep a week
  poststack.core.btrfs_subvolume:
    path: /var/lib/pgtwin/@postgres-psql1
    state: snapshot
    snapshot_dir: /var/lib/pgtwin/.snapshots
    snapshot_name: "{name}.%Y-%m-%d"
    snapshot_keep: 7

- name: Remove the subvolume and the subvolumes nested in it
  poststack.core.btrfs_subvolume:
    path: /var/lib/pgtwin/@postgres-psql1
    state: absent
    recursive: true
"""

RETURN = r"""
path:
  description: The normalised path.
  returned: always
  type: str
  sample: /var/lib/pgtwin/@postgres-psql1
plan:
  description: The steps that ran, or would run in check mode, in order; empty when nothing changes.
  returned: always
  type: list
  elements: dict
  sample:
    - action: create_subvolume
      path: /var/lib/pgtwin/@postgres-psql1
      command: [btrfs, subvolume, create, /var/lib/pgtwin/@postgres-psql1]
      detail: create subvolume
commands:
  description: The changing commands that ran (empty in check mode; see RV(plan)).
  returned: always
  type: list
  elements: list
  sample: [[btrfs, subvolume, create, /var/lib/pgtwin/@postgres-psql1]]
subvolume:
  description: The subvolume as C(btrfs subvolume show) reports it after the change, when it exists.
  returned: when the subvolume exists
  type: dict
  sample: {id: 256, uuid: b71c22c4-e924-0544-b58e-960d5c348e34, parent_uuid: null, readonly: false,
           generation: 7, creation_time: "2026-11-25 12:31:44 +0000"}
quota:
  description:
    - The qgroup limit and usage in bytes (and human-readable), read after a filesystem sync.
    - In check mode, the values before the change.
  returned: when O(quota) is given and the subvolume exists
  type: dict
  sample: {enabled: true, qgroup: 0/256, limit: 104857600, limit_human: 100.00MiB, referenced: 16384,
           referenced_human: 16.00KiB, exclusive: 16384}
snapshot:
  description: Path of the snapshot this run created (or would create, or found already there).
  returned: when O(state=snapshot)
  type: str
  sample: /var/lib/pgtwin/.snapshots/@postgres-psql1.20261125T123144Z
snapshots:
  description: The snapshots of O(path) matching O(snapshot_name) after retention, oldest first.
  returned: when O(state=snapshot)
  type: list
  elements: str
deleted:
  description: Snapshots or subvolumes deleted (or that would be deleted in check mode).
  returned: always
  type: list
  elements: str
selinux:
  description: C(enabled) or C(disabled, setype ignored) when O(setype) is given.
  returned: when O(setype) is given
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.poststack.core.plugins.module_utils.btrfs import (  # noqa: E402
    BtrfsCommandError,
    BtrfsError,
    Runner,
    Wanted,
    apply,
    describe,
    describe_after,
    inspect,
    inspect_path,
    normalize_path,
    parse_mode,
    plan,
    quota_report,
    resolve_id,
    snapshots_after,
)

TOOLS = ("btrfs", "findmnt", "chown", "chmod", "mkdir", "chcon")


def build_wanted(params: dict) -> Wanted:
    path = normalize_path(params["path"])
    return Wanted(
        path=path,
        state=params["state"],
        parents=params["parents"],
        parents_as_subvolumes=params["parents_as_subvolumes"],
        owner=resolve_id(params["owner"], "owner") if params["owner"] is not None else None,
        group=resolve_id(params["group"], "group") if params["group"] is not None else None,
        mode=parse_mode(params["mode"]) if params["mode"] is not None else None,
        compression=params["compression"],
        quota=params["quota"],
        setype=params["setype"],
        recursive=params["recursive"],
        snapshot_dir=normalize_path(params["snapshot_dir"]) if params["snapshot_dir"] else None,
        snapshot_name=params["snapshot_name"],
        snapshot_keep=params["snapshot_keep"],
        snapshot_readonly=params["snapshot_readonly"],
    )


def subvolume_dict(runner: Runner, path: str) -> dict | None:
    state = inspect_path(runner, path)
    if state.info is None:
        return None
    info = state.info
    return {"id": info.id, "uuid": info.uuid, "parent_uuid": info.parent_uuid, "readonly": info.readonly,
            "generation": info.generation, "creation_time": info.creation_time}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "absent", "snapshot"]),
            parents=dict(type="bool", default=True),
            parents_as_subvolumes=dict(type="bool", default=False),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw"),
            compression=dict(type="str", choices=["zstd", "lzo", "zlib", "none", "default"]),
            quota=dict(type="str"),
            setype=dict(type="str"),
            recursive=dict(type="bool", default=False),
            snapshot_dir=dict(type="path"),
            snapshot_name=dict(type="str", default="{name}.%Y%m%dT%H%M%SZ"),
            snapshot_keep=dict(type="int"),
            snapshot_readonly=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    binaries = {tool: module.get_bin_path(tool, required=tool in ("btrfs", "findmnt")) or tool for tool in TOOLS}

    def executor(argv):
        return module.run_command(list(argv), environ_update={"LC_ALL": "C", "LANG": "C"})

    runner = Runner(executor, binaries)
    result: dict = {"changed": False, "plan": [], "commands": [], "deleted": []}
    try:
        wanted = build_wanted(module.params)
        result["path"] = wanted.path
        observed = inspect(runner, wanted)
        operations = plan(observed, wanted)
        result.update(
            changed=bool(operations),
            plan=[op.as_dict() for op in operations],
            deleted=[op.path for op in operations if op.action in ("delete_subvolume", "delete_snapshot")],
        )
        if module._diff:
            result["diff"] = {"before": describe(observed, wanted), "after": describe_after(observed, wanted, operations)}
        if wanted.setype is not None:
            result["selinux"] = "enabled" if observed.selinux_enabled else "disabled, setype ignored"
        if operations and not module.check_mode:
            apply(runner, operations)
        result["commands"] = runner.commands
        if wanted.state == "snapshot":
            result["snapshot"] = "%s/%s" % (wanted.effective_snapshot_dir(), observed.snapshot_name)
            result["snapshots"] = snapshots_after(observed, operations, wanted)
        exists_now = observed.target.is_subvolume if module.check_mode or not operations else wanted.state != "absent"
        if exists_now:
            result["subvolume"] = subvolume_dict(runner, wanted.path)
            if wanted.manages_quota:
                result["quota"] = quota_report(runner, wanted.path)
    except BtrfsCommandError as exc:
        module.fail_json(msg=str(exc), cmd=exc.argv, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr,
                         commands=runner.commands, **{k: v for k, v in result.items() if k not in ("changed", "commands")},
                         changed=bool(runner.commands))
    except BtrfsError as exc:
        message = str(exc)
        if not runner.commands and "nothing was changed" not in message:
            message += "; nothing was changed"  # refused before any changing command ran
        module.fail_json(msg=message, commands=runner.commands, changed=bool(runner.commands))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
