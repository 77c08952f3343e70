# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one masker of passwords in connection strings (pure Python, no imports beyond ``re``).

It lives apart from the connection helper (``database.py``, which imports psycopg) because controller-side code
masks too: the project vars plugin and the ``setting`` lookup load on every playbook, and importing psycopg there
cost each run about 0.2 s.
"""

from __future__ import annotations

import re

MASK = "********"
# The password runs to the last "@" of the authority, so that an unencoded "@" in it is masked too.
_URI_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^/@:?#]*:)(?P<secret>[^/?#]*)(?P<tail>@)", re.IGNORECASE)
_URI_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<secret>[^&#]*)", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """Replace the password in a URI or key/value DSN with ``********``."""
    if not dsn:
        return dsn
    if _URI.match(dsn):
        text = _URI_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), dsn)
        return _URI_QUERY_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, dsn)
