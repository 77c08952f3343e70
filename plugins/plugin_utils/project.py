# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which project a run is for (seed 003: the directory the user runs poststack in), on the controller.

The project directory is ``POSTSTACK_PROJECT_DIR`` when set (relative to the current directory), else the current
directory (in the collection's own checkout: the demo, ``examples/project``). Its ``.env`` (or
``POSTSTACK_ENV_FILE``) holds its settings; its name is the setting ``project_name``, else the directory's name
made fit for container and image names. What poststack keeps for a project on this
machine (the generated database password) is in a state directory of its own, keyed by the name and the
directory, so that two projects never share a secret and the demo's password never reaches a user's project.
Pure Python, no Ansible imports.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional

from ansible_collections.poststack.core.plugins.plugin_utils.config import ConfigError, default_env_file, lookup_setting, project_dir

CONFIG_NAME = "poststack.yml"
MARKERS = (".env", CONFIG_NAME, "migrations", "containers")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Project:
    dir: str
    dir_source: str
    name: str
    name_source: str
    env_file: str
    config_file: str
    state_dir: str
    is_project: bool  # the directory has a poststack.yml, migrations/, containers/ or a .env of POSTSTACK_ settings

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def name_from_dir(path: str) -> str:
    """``My Project`` -> ``my-project``: lower case, runs of other characters to one ``-``, trimmed; ``poststack``
    when nothing is left."""
    name = re.sub(r"[^a-z0-9_.]+", "-", os.path.basename(path.rstrip(os.sep)).lower())
    name = name.strip("-._")
    return name or "poststack"


def state_home(environ: Mapping[str, str]) -> str:
    home = environ.get("HOME") or os.path.expanduser("~")
    base = environ.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state")
    return os.path.join(base, "poststack", "projects")


def find_project(environ: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None) -> Project:
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    path, dir_source = project_dir(environ, cwd)
    if not os.path.isdir(path):
        raise ConfigError(f"the project directory {path} (from the {dir_source}) is not a directory: point "
                          f"POSTSTACK_PROJECT_DIR at the project (the directory with .env, migrations/, containers/)")
    env_file = os.path.normpath(default_env_file(environ, cwd))
    name, name_source = lookup_setting("project_name", None, environ=environ, dotenv_path=env_file)
    if name is None:
        name, name_source = name_from_dir(path), "the project directory's name"
    elif not _NAME_RE.match(name):
        raise ConfigError(f"project name {name!r} from {name_source} is invalid: use lower case letters, digits, "
                          f"'.', '_' and '-', starting with a letter or digit")
    key = hashlib.sha256(path.encode()).hexdigest()[:12]
    return Project(dir=path, dir_source=dir_source, name=name, name_source=name_source, env_file=env_file,
                   config_file=config_file(environ, cwd),
                   state_dir=os.path.join(state_home(environ), f"{name}-{key}"),
                   is_project=looks_like_project(path))


def looks_like_project(path: str) -> bool:
    """A poststack.yml, migrations/ or containers/, or a .env with a POSTSTACK_ setting (many tools use .env)."""
    if any(os.path.lexists(os.path.join(path, marker)) for marker in MARKERS if marker != ".env"):
        return True
    try:
        with open(os.path.join(path, ".env"), encoding="utf-8", errors="replace") as handle:
            return "POSTSTACK_" in handle.read(1 << 20)
    except OSError:
        return False


def config_file(environ: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None) -> str:
    """The project's variables file: POSTSTACK_CONFIG_FILE (relative to the current directory), else
    ``poststack.yml`` in the project directory."""
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    if environ.get("POSTSTACK_CONFIG_FILE"):
        return os.path.join(cwd, os.path.expanduser(environ["POSTSTACK_CONFIG_FILE"]))
    return os.path.join(project_dir(environ, cwd)[0], CONFIG_NAME)
