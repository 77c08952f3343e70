# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
name: project
short_description: The poststack project a run is for, found from the current directory
version_added: 0.2.0
author:
  - poststack contributors (@poststack)
description:
  - Returns the project the way the original poststack CLI finds it, as one dictionary.
  - The project directory is C(POSTSTACK_PROJECT_DIR) when set (relative to the current directory), else the
    directory ansible-playbook runs in. Its settings file is C(POSTSTACK_ENV_FILE), else its C(.env).
  - The name is the setting C(project_name) (C(POSTSTACK_PROJECT_NAME) or the C(.env)), else the directory's name
    in lower case with other characters turned into C(-).
  - The state directory is where poststack keeps what it generates for the project on this machine (its database
    password), C($XDG_STATE_HOME/poststack/projects/<name>-<hash of the directory>), by default under
    C(~/.local/state). Two projects never share it.
  - The lookup runs on the controller and creates nothing.
options:
  require:
    description:
      - Fail unless the directory looks like a project (it has a C(poststack.yml), C(migrations/), C(containers/)
        or a C(.env) with C(POSTSTACK_) settings), with an
        error that says where to run from.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Show which project this run is for
  ansible.builtin.debug:
    msg: "{{ project.name }} in {{ project.dir }}"
  vars:
    project: "{{ lookup('poststack.core.project') }}"
"""

RETURN = r"""
_raw:
  description: The project.
  type: list
  elements: dict
  contains:
    dir:
      description: The project directory (absolute, links resolved).
      type: str
    dir_source:
      description: Where the directory came from (C(environment variable POSTSTACK_PROJECT_DIR) or C(current directory)).
      type: str
    name:
      description: The project name.
      type: str
    name_source:
      description: Where the name came from.
      type: str
    env_file:
      description: The project's settings file (it need not exist).
      type: str
    config_file:
      description: The project's variables file, C(poststack.yml) or C(POSTSTACK_CONFIG_FILE) (it need not exist).
      type: str
    state_dir:
      description: Where poststack keeps the project's generated state on this machine.
      type: str
    is_project:
      description: Whether the directory has a C(poststack.yml), C(migrations/), C(containers/) or a C(.env) with C(POSTSTACK_) settings.
      type: bool
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.poststack.core.plugins.plugin_utils.config import ConfigError
from ansible_collections.poststack.core.plugins.plugin_utils.project import MARKERS, find_project


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            project = find_project()
        except ConfigError as exc:
            raise AnsibleLookupError(str(exc)) from exc
        if self.get_option("require") and not project.is_project:
            raise AnsibleLookupError(
                "%s (the %s) is not a poststack project: it has none of %s (a .env counts when it holds POSTSTACK_ "
                "settings). Run from your project's directory, "
                "or set POSTSTACK_PROJECT_DIR to it; `make run` in the poststack checkout runs the demo project "
                "(examples/project)." % (project.dir, project.dir_source, ", ".join(MARKERS)))
        return [project.as_dict()]
