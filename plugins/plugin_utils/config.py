# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""poststack settings from the environment and a project `.env` file (seed 003's configuration model).

A setting `name` is read from `POSTSTACK_<NAME>` in the environment, then from the same key in the `.env` file,
then from the caller's default. Inventory variables sit above all of these: roles take their defaults from the
`poststack.core.setting` lookup, and role defaults are what inventory variables override.
Pure Python, no Ansible imports.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ansible_collections.poststack.core.plugins.module_utils.masking import mask_dsn

ENV_PREFIX = "POSTSTACK_"
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
SECRET_WORDS = ("password", "passwd", "pass", "secret", "token", "key", "passphrase")
TRUE_WORDS = ("1", "true", "yes", "on", "y")
FALSE_WORDS = ("0", "false", "no", "off", "n", "")


class ConfigError(Exception):
    """A setting or the .env file is invalid; the message names the source and what to do."""


@dataclass
class Resolved:
    name: str
    value: Any
    source: str  # "environment", ".env (<path>)", "default"


def env_key(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ConfigError(f"setting name '{name}' is invalid: use lower case letters, digits and underscores")
    return ENV_PREFIX + name.upper()


def _unquote(value: str, source: str, lineno: int, key: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        inner = value[1:-1]
        if value[0] == '"':
            inner = re.sub(r'\\(["\\$`nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), inner)
        return inner
    if value[:1] in ("'", '"'):
        # The value is not shown: it may be a secret.
        raise ConfigError(f"{source} line {lineno}: the value of {key} has an unterminated {value[0]} quote; close it")
    # Unquoted: a ` #` starts a comment, as in shells.
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def parse_dotenv(text: str, source: str = ".env") -> Dict[str, str]:
    """KEY=VALUE lines; `export ` prefixes, comments, blank lines, single and double quotes. Errors name the line."""
    values: Dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        if "=" not in line:
            # The line is not shown: it may be a secret (a password written without its KEY=).
            raise ConfigError(f"{source} line {lineno}: expected KEY=VALUE but the line has no '=' (its text is not "
                              f"shown, it may hold a secret); write it as KEY=VALUE or start it with #")
        key, value = line.split("=", 1)
        key = key.strip()
        if not _KEY_RE.match(key):
            raise ConfigError(f"{source} line {lineno}: {key!r} is not a valid variable name (letters, digits, _)")
        values[key] = _unquote(value.strip(), source, lineno, key)
    return values


def load_dotenv(path: Optional[str]) -> Dict[str, str]:
    """KEY=VALUE pairs of the .env file at `path`; {} when there is none. A .env that exists but cannot be read (a
    directory, no permission, not text) is an error rather than silently ignored settings."""
    if not path or not os.path.lexists(path):
        return {}
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a directory, not a .env file: remove it or point POSTSTACK_ENV_FILE at a file")
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_dotenv(handle.read(), path)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror}): make it readable by the user that runs "
                          f"ansible-playbook, or point POSTSTACK_ENV_FILE at another file") from None


def _shown(name: str, value: str) -> str:
    """How a bad value appears in an error: quoted, unless the setting is a secret."""
    return "its value" if is_secret(name) else repr(value)


def coerce(value: Any, kind: str, name: str, source: str) -> Any:
    """Convert a string from the environment or .env to the type the setting has."""
    if not isinstance(value, str) or kind in ("str", "raw"):
        return value
    text = value.strip()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"setting {name} from {source}: {_shown(name, value)} is not a whole number") from None
    if kind == "bool":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise ConfigError(f"setting {name} from {source}: {_shown(name, value)} is not a boolean "
                          f"(true/false, yes/no, 1/0)")
    if kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    raise ConfigError(f"unknown setting type '{kind}' for {name}: use str, int, bool or list")


def resolve(name: str, default: Any, kind: str, environ: Mapping[str, str], dotenv: Mapping[str, str],
            dotenv_path: str = ".env") -> Resolved:
    key = env_key(name)
    if key in environ:
        return Resolved(name, coerce(environ[key], kind, name, f"environment variable {key}"), "environment")
    if key in dotenv:
        source = f".env ({dotenv_path})"
        return Resolved(name, coerce(dotenv[key], kind, name, source), source)
    return Resolved(name, default, "default")


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered.split("_") or lowered.endswith(word) for word in SECRET_WORDS)


def mask(name: str, value: Any) -> Any:
    if value in (None, ""):
        return value
    if is_secret(name):
        return "********"
    if isinstance(value, str) and "://" in value:
        return mask_dsn(value)
    return value


# The collection's own checkout: run there, the project is the demo in examples/project (the checkout's
# migrations/ and containers/ are the collection's, not a project's).
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_PROJECT = os.path.join(COLLECTION_ROOT, "examples", "project")


def project_dir(environ: Mapping[str, str], cwd: Optional[str] = None) -> Tuple[str, str]:
    """(directory, where it came from): POSTSTACK_PROJECT_DIR (relative to the current directory), else the
    current directory, except that the collection's own checkout means its demo project."""
    cwd = cwd or os.getcwd()
    given = environ.get(ENV_PREFIX + "PROJECT_DIR")
    if given:
        return os.path.realpath(os.path.join(cwd, os.path.expanduser(given))), \
            f"environment variable {ENV_PREFIX}PROJECT_DIR"
    here = os.path.realpath(cwd)
    if here == os.path.realpath(COLLECTION_ROOT) and os.path.isdir(DEMO_PROJECT):
        return os.path.realpath(DEMO_PROJECT), "poststack checkout, whose project is the demo"
    return here, "current directory"


def default_env_file(environ: Mapping[str, str], cwd: Optional[str] = None) -> str:
    """POSTSTACK_ENV_FILE (relative to the current directory), else the project directory's .env."""
    cwd = cwd or os.getcwd()
    if environ.get(ENV_PREFIX + "ENV_FILE"):
        return os.path.join(cwd, os.path.expanduser(environ[ENV_PREFIX + "ENV_FILE"]))
    return os.path.join(project_dir(environ, cwd)[0], ".env")


def lookup_setting(name: str, default: Any = None, kind: str = "str", environ: Optional[Mapping[str, str]] = None,
                   dotenv_path: Optional[str] = None) -> Tuple[Any, str]:
    environ = os.environ if environ is None else environ
    path = dotenv_path or default_env_file(environ)
    resolved = resolve(name, default, kind, environ, load_dotenv(path), path)
    return resolved.value, resolved.source
