# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: setting
short_description: Read a poststack setting from POSTSTACK_* environment variables or the project's .env file
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - Returns the value of setting O(_terms[0]) from the environment variable C(POSTSTACK_<NAME>), else from the same
    key in the project's C(.env) file, else O(default).
  - poststack's roles use it in their defaults, so the precedence is inventory (and any other variable) >
    environment > C(.env) > built-in default.
  - Values from the environment and C(.env) are strings; O(type) converts them, and a value that does not convert
    is an error naming the variable and where it came from. So is a malformed C(.env) line.
  - The lookup runs on the controller.
options:
  _terms:
    description: Setting name in lower case, for example V(postgres_host_port) (read from C(POSTSTACK_POSTGRES_HOST_PORT)).
    required: true
    type: list
    elements: str
  default:
    description: Value when neither the environment nor the .env file sets it.
    type: raw
  type:
    description: Type to convert environment and .env values to. V(list) splits on commas.
    type: str
    choices: [str, int, bool, list, raw]
    default: str
  env_file:
    description:
      - The .env file. Default C(POSTSTACK_ENV_FILE) when set, else the C(.env) of the project directory,
        C(POSTSTACK_PROJECT_DIR) when set, else the directory ansible-playbook runs in (as with the original
        poststack CLI). See the P(poststack.core.project#lookup) lookup.
    type: path
  with_source:
    description: Return C({value, source}) instead of the value, where source says where the value came from.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Port from POSTSTACK_POSTGRES_HOST_PORT, the .env file, or 5432
  ansible.builtin.debug:
    msg: "{{ lookup('poststack.core.setting', 'postgres_host_port', default=5432, type='int') }}"

# In role defaults (inventory variables still win):
# postgres_host_port: "{{ lookup('poststack.core.setting', 'postgres_host_port', default=5432, type='int') }}"
"""

RETURN = r"""
_raw:
  description: The setting's value (or a dict with C(value) and C(source) when O(with_source) is true).
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.poststack.core.plugins.plugin_utils.config import ConfigError, lookup_setting


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        results = []
        for term in terms:
            try:
                value, source = lookup_setting(term, self.get_option("default"), self.get_option("type"),
                                               dotenv_path=self.get_option("env_file"))
            except ConfigError as exc:
                raise AnsibleLookupError(str(exc)) from exc
            results.append({"value": value, "source": source} if self.get_option("with_source") else value)
        return results
