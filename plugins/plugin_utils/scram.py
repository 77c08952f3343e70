# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCRAM-SHA-256 verifiers as PostgreSQL stores them in pg_authid.rolpassword.

Giving PostgreSQL a verifier instead of the password keeps the password itself out of the server (statement
logs, pg_stat_activity). Reusing the salt and iteration count of the stored verifier gives the same string
exactly when the password is unchanged, which is how roles detect a rotation without logging in.
containers/postgres-debian/scripts/scram_verifier.py is the same algorithm for the image, which cannot import
the collection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata
from typing import Optional, Tuple

ITERATIONS = 4096
PREFIX = "SCRAM-SHA-256$"


def saslprep(password: str) -> bytes:
    """RFC 4013 SASLprep as PostgreSQL applies it; on failure the raw UTF-8 bytes, as PostgreSQL does."""
    raw = password.encode("utf-8")
    chars = [" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)]
    normalized = unicodedata.normalize("NFKC", "".join(chars))
    if not normalized:
        return raw
    prohibited = (
        stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
        stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9, stringprep.in_table_a1,
    )
    if any(test(c) for c in normalized for test in prohibited):
        return raw
    if any(stringprep.in_table_d1(c) for c in normalized) and (
            any(stringprep.in_table_d2(c) for c in normalized)
            or not stringprep.in_table_d1(normalized[0]) or not stringprep.in_table_d1(normalized[-1])):
        return raw
    return normalized.encode("utf-8")


def parse(stored: str) -> Optional[Tuple[int, bytes]]:
    """(iterations, salt) of a stored SCRAM-SHA-256 verifier, or None for anything else (md5, empty)."""
    if not stored or not stored.startswith(PREFIX):
        return None
    try:
        iter_text, salt_text = stored[len(PREFIX):].split("$", 1)[0].split(":", 1)
        return int(iter_text), base64.b64decode(salt_text, validate=True)
    except (ValueError, IndexError):
        return None


def verifier(password: str, salt: Optional[bytes] = None, iterations: int = ITERATIONS) -> str:
    if salt is None:
        salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return "%s%d:%s$%s:%s" % (PREFIX, iterations, b64(salt).decode(), b64(stored_key).decode(),
                              b64(server_key).decode())


def verifier_like(password: str, stored: str = "") -> str:
    """The verifier of ``password`` with the salt and iterations of ``stored`` when that is a SCRAM verifier
    (equal to ``stored`` exactly when the password is unchanged), else with a new random salt."""
    known = parse(stored)
    if known is None:
        return verifier(password)
    return verifier(password, known[1], known[0])
