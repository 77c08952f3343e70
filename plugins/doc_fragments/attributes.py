# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The attributes every poststack module documents; a module adds its C(support) and C(details)."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
"""

    # For modules that only read.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
"""

    # For the modules of the action group poststack.core.poststack (meta/runtime.yml).
    ACTIONGROUP_POSTSTACK = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/poststack.core.poststack) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - poststack.core.poststack
"""
