# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: file_in_place
short_description: Whether ansible.builtin.find saw a path with the wanted type, owner, group, mode and content
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - Looks for O(path) in the C(files) list that C(ansible.builtin.find) returned (with C(get_checksum) when
    O(checksum) is given) and returns true when it is there as a O(type) with O(owner), O(group), O(mode) and,
    for files, the SHA-1 O(checksum). Roles use it to skip file, copy and template tasks, two module runs each,
    when one find already shows the result in place.
options:
  _input:
    description: The C(files) list of a registered C(ansible.builtin.find) result.
    type: list
    elements: dict
    required: true
  path:
    description: The path to look for.
    type: str
    required: true
  type:
    description: What it must be.
    type: str
    choices: [file, directory]
    default: file
  owner:
    description: Owner UID.
    type: int
    required: true
  group:
    description: Group GID.
    type: int
    required: true
  mode:
    description: Mode as find reports it, for example V(0600).
    type: str
    required: true
  checksum:
    description: SHA-1 of the wanted content (files only); empty does not compare content.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Write the password file unless one find already shows it in place
  when: found is skipped or not (found.files | poststack.core.file_in_place(path=secret_path, owner=999, group=999,
        mode='0400', checksum=password | hash('sha1')))
  ansible.builtin.copy:
    content: "{{ password }}"
    dest: "{{ secret_path }}"
    owner: "999"
    group: "999"
    mode: "0400"
"""

RETURN = r"""
_value:
  description: True when the path is in place as wanted.
  type: bool
"""


def file_in_place(files, path, owner, group, mode, type="file", checksum=""):  # pylint: disable=redefined-builtin
    kind = "isdir" if type == "directory" else "isreg"
    for entry in files or []:
        if (entry.get("path") == path and entry.get(kind) and entry.get("uid") == int(owner)
                and entry.get("gid") == int(group) and entry.get("mode") == mode
                and (not checksum or entry.get("checksum") == checksum)):
            return True
    return False


class FilterModule:
    def filters(self):
        return {"file_in_place": file_in_place}
