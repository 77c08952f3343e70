# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by every poststack module that connects to PostgreSQL."""

    DOCUMENTATION = r"""
options:
  dsn:
    description:
      - libpq connection string, as a URI (C(postgresql://user@host:5432/db)) or C(key=value) pairs.
      - The separate options O(host), O(port), O(user), O(password), O(dbname) and O(sslmode) override the
        matching parts of the DSN.
      - Treated as a secret (C(no_log)) because it may carry a password; results show it rebuilt with the
        password masked (the C(dsn) return value). Prefer O(password), E(PGPASSWORD) or a passfile for the password.
    type: str
  host:
    description:
      - Host name, IP address or Unix socket directory of the server.
      - When neither O(host) nor O(dsn) set it, libpq's default applies (E(PGHOST), then the local socket).
    type: str
  port:
    description: TCP port of the server (libpq default 5432).
    type: int
  user:
    description: Role to connect as (libpq default E(PGUSER), then the OS user).
    type: str
  password:
    description:
      - Password for O(user). Never logged or returned.
      - When unset, libpq reads E(PGPASSWORD) or the passfile (E(PGPASSFILE), C(~/.pgpass)) of the user the
        module runs as.
    type: str
  dbname:
    description: Database to connect to (libpq default E(PGDATABASE), then the user name).
    type: str
  sslmode:
    description: libpq SSL mode.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  connect_timeout:
    description: Seconds to wait for the connection to be established.
    type: int
    default: 10
requirements:
  - psycopg >= 3.1 (the C(psycopg) Python package, version 3) on the host that runs the module
notes:
  - Connection errors name the masked connection target (password replaced by C(********)).
"""
