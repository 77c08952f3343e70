# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
name: project
short_description: Variables from the project's poststack.yml, for every host
version_added: 0.2.0
author:
  - poststack contributors (@poststack)
description:
  - Loads C(poststack.yml) of the project directory (see the P(poststack.core.project#lookup) lookup, the directory
    ansible-playbook runs in, or C(POSTSTACK_PROJECT_DIR)) as variables of the group C(all), so that a project
    carries its own stack settings (for example C(project_containers_run), C(postgres_settings)) without an
    inventory of its own. C(POSTSTACK_CONFIG_FILE) names another file.
  - The values are templated like inventory variables. They override the inventory's variables of the group
    C(all) (C(group_vars/all), C(all:vars)); host variables, the variables of any other group (for example
    C(group_vars/poststack)), play variables and C(-e) win over them; role defaults lose to them.
  - Enable it in C(ansible.cfg) with C(vars_plugins_enabled = ansible.builtin.host_group_vars, poststack.core.project)
    (the collection's own C(ansible.cfg) does).
  - A file that is not a YAML mapping of variable names is an error naming the file.
"""

import inspect
import os

from ansible.errors import AnsibleParserError
from ansible.inventory.group import Group
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.vars import BaseVarsPlugin

from ansible_collections.poststack.core.plugins.plugin_utils.project import config_file

# ansible-core 2.19+ marks what a file holds as trusted templates; before, it is templated unless marked unsafe.
_TRUSTED_TEMPLATES = "trusted_as_template" in inspect.signature(DataLoader.load_from_file).parameters


class VarsModule(BaseVarsPlugin):
    is_stateless = True

    def get_vars(self, loader, path, entities, cache=True):
        super().get_vars(loader, path, entities)
        if not isinstance(entities, list):
            entities = [entities]
        if not any(isinstance(entity, Group) and entity.name == "all" for entity in entities):
            return {}
        path = config_file()
        if not os.path.isfile(path):
            return {}
        if _TRUSTED_TEMPLATES:
            data = loader.load_from_file(path, cache="all", unsafe=True, trusted_as_template=True)
        else:
            data = loader.load_from_file(path, cache="all", unsafe=False)
        if data is None:
            return {}
        if not isinstance(data, dict) or not all(isinstance(key, str) and key.isidentifier() for key in data):
            raise AnsibleParserError("%s must be a YAML mapping of variable names to values (the project's "
                                     "poststack settings), for example 'postgres_host_port: 5433'" % path)
        return data
