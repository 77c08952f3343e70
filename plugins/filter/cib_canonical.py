# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: cib_canonical
short_description: A Pacemaker CIB element in a canonical text form, for comparing definitions
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - Parses the XML of one CIB element (for example a C(primitive) printed by C(cibadmin --query --xpath)) and
    returns a stable text form in which the ids of nvpairs, operations and attribute sets and the order of
    children do not matter, so that two definitions compare equal when Pacemaker would treat them alike.
  - Meta attribute sets are left out unless O(meta=true), because operators set C(target-role) or C(is-managed) there.
  - Empty or unparsable input gives an empty string.
options:
  _input:
    description: The element's XML text.
    type: str
    required: true
  meta:
    description: Include meta attribute sets.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Replace the fencing device only when its definition differs
  ansible.builtin.command:
    argv: [cibadmin, --replace, --scope, resources, --xml-pipe]
    stdin: "{{ wanted_xml }}"
  when: (current.stdout | poststack.core.cib_canonical) != (wanted_xml | poststack.core.cib_canonical)
  changed_when: true
"""

RETURN = r"""
_value:
  description: The canonical form, one line per element.
  type: str
"""

import xml.etree.ElementTree as ET

from ansible_collections.poststack.core.plugins.module_utils.cib import canonical


def cib_canonical(value, meta=False):
    try:
        element = ET.fromstring((value or "").strip())
    except ET.ParseError:
        return ""
    if not meta:
        for meta_set in element.findall("meta_attributes"):
            element.remove(meta_set)
    return canonical(element)


class FilterModule:
    def filters(self):
        return {"cib_canonical": cib_canonical}
