# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One PostgreSQL connection helper for every poststack module (psycopg 3, no Ansible imports).

Connection settings come either as a libpq DSN (URI or ``key=value`` string) or as separate libpq keywords.
The password may be given as a parameter; when it is not, libpq reads ``PGPASSWORD`` or ``~/.pgpass`` itself,
so a password never has to travel in argv. Everything that ends up in a result or a log goes through
:func:`mask_dsn`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from ansible_collections.poststack.core.plugins.module_utils.masking import mask_dsn

try:
    import psycopg
    from psycopg import conninfo as _conninfo

    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR: Optional[str] = None
except ImportError as exc:  # the module reports missing_required_lib('psycopg')
    psycopg = None
    _conninfo = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = str(exc)

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class ConnectionSettingsError(ValueError):
    """Connection options that cannot work, with a message saying what to change."""


@dataclass
class ConnectionSettings:
    """Where and as whom to connect. ``dsn`` and the keywords may be combined: keywords override the DSN."""

    dsn: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    user: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    dbname: Optional[str] = None
    sslmode: Optional[str] = None
    connect_timeout: int = 10
    application_name: str = "poststack"

    def validate(self) -> None:
        if self.port is not None and not 1 <= int(self.port) <= 65535:
            raise ConnectionSettingsError("port %r is out of range: use 1-65535" % (self.port,))
        if self.sslmode is not None and self.sslmode not in SSL_MODES:
            raise ConnectionSettingsError("sslmode %r is not one of %s" % (self.sslmode, ", ".join(SSL_MODES)))
        if self.connect_timeout is not None and int(self.connect_timeout) < 1:
            raise ConnectionSettingsError("connect_timeout must be at least 1 second, got %r" % (self.connect_timeout,))

    def keywords(self) -> Dict[str, Any]:
        """The libpq keywords set explicitly (without the DSN), password included."""
        values = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "sslmode": self.sslmode,
            "connect_timeout": self.connect_timeout,
            "application_name": self.application_name,
        }
        return {key: value for key, value in values.items() if value not in (None, "")}

    def conninfo(self) -> str:
        """The full libpq connection string (contains the password when one was given: never log it)."""
        self.validate()
        if not HAS_PSYCOPG:
            raise ConnectionSettingsError("the Python library psycopg (version 3) is required")
        try:
            return _conninfo.make_conninfo(self.dsn or "", **self.keywords())
        except psycopg.ProgrammingError as exc:
            raise ConnectionSettingsError("invalid dsn %s: %s" % (mask_dsn(self.dsn or ""), exc))

    def resolved_keywords(self) -> Dict[str, Any]:
        """Every libpq keyword the DSN and the keywords set, merged (the password too, when one was given)."""
        return dict(_conninfo.conninfo_to_dict(self.conninfo()))

    def describe(self) -> str:
        """A masked description safe for results and logs."""
        text = self.conninfo()
        return mask_dsn(text)


def connect(settings: ConnectionSettings, autocommit: bool = True) -> Any:
    """Open a psycopg connection; errors name the masked target, never the password."""
    info = settings.conninfo()
    try:
        return psycopg.connect(info, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        message = mask_dsn(str(exc).strip())
        raise ConnectionSettingsError("cannot connect to %s: %s" % (mask_dsn(info), message))


def connection_argument_spec() -> Dict[str, Dict[str, Any]]:
    """The argument_spec entries documented by the ``poststack.core.postgres`` doc fragment."""
    return {
        "dsn": {"type": "str", "no_log": True},  # may carry a password
        "host": {"type": "str"},
        "port": {"type": "int"},
        "user": {"type": "str"},
        "password": {"type": "str", "no_log": True},
        "dbname": {"type": "str"},
        "sslmode": {"type": "str", "choices": list(SSL_MODES)},
        "connect_timeout": {"type": "int", "default": 10},
    }


def settings_from_params(params: Dict[str, Any], application_name: str) -> ConnectionSettings:
    return ConnectionSettings(
        dsn=params.get("dsn"), host=params.get("host"), port=params.get("port"), user=params.get("user"),
        password=params.get("password"), dbname=params.get("dbname"), sslmode=params.get("sslmode"),
        connect_timeout=params.get("connect_timeout") or 10, application_name=application_name,
    )
