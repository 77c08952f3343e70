# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: mask
short_description: Mask a setting's value when it is a secret, and the password inside database URLs
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - Returns C(********) for settings whose name marks them as secret (password, passphrase, secret, token, key),
    masks the password part of URLs such as C(postgresql://user:pw@host/db), and returns other values unchanged.
options:
  _input:
    description: The value.
    type: raw
    required: true
  name:
    description: The setting's name (decides whether the whole value is secret).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Show a setting safely
  ansible.builtin.debug:
    msg: "{{ postgres_password | poststack.core.mask('postgres_password') }}"
"""

RETURN = r"""
_value:
  description: The value, masked where needed.
  type: raw
"""

from ansible_collections.poststack.core.plugins.plugin_utils.config import mask


def mask_filter(value, name=""):
    return mask(name or "", value)


class FilterModule:
    def filters(self):
        return {"mask": mask_filter}
