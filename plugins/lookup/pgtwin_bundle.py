# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: pgtwin_bundle
short_description: Build the pgtwin OCF agent as one executable file and return its path on the controller
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - Builds the pgtwin agent from a source directory holding the C(pgtwin) sh entry and the C(pgtwin_agent)
    Python package (the pgtwin role's C(files) directory) into one file, the entry followed by a zip of the package,
    which Pacemaker runs like any OCF agent. Returns the path of that file in the controller's cache.
  - The content depends only on the sources (sorted, uncompressed, fixed timestamps), so copying it to the nodes
    changes nothing when the agent did not change, and an update replaces the single file atomically.
  - The lookup runs on the controller and writes only its cache directory.
options:
  _terms:
    description: The source directory (the pgtwin role's C(files) directory).
    required: true
    type: list
    elements: path
  cache_dir:
    description: Where the built file goes. Default C($XDG_CACHE_HOME/poststack), else C(~/.cache/poststack).
    type: path
"""

EXAMPLES = r"""
- name: Deploy the agent
  ansible.builtin.copy:
    src: "{{ lookup('poststack.core.pgtwin_bundle', role_path ~ '/files') }}"
    dest: /usr/lib/ocf/resource.d/poststack/pgtwin
    mode: "0755"
"""

RETURN = r"""
_raw:
  description: The path of the built agent file on the controller.
  type: list
  elements: path
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.poststack.core.plugins.plugin_utils.bundle import default_cache_dir
from ansible_collections.poststack.core.plugins.plugin_utils.pgtwin_bundle import BundleError, write


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        cache_dir = self.get_option("cache_dir") or default_cache_dir()
        results = []
        for term in terms:
            try:
                results.append(write(term, cache_dir)[0])
            except (BundleError, OSError) as exc:
                raise AnsibleLookupError("pgtwin_bundle: %s" % exc) from exc
        return results
