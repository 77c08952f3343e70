#!/usr/bin/env python
"""Print a SCRAM-SHA-256 verifier for the password in $POSTGRES_PASSWORD (never taken from argv).

If a verifier is given on stdin, its salt and iteration count are reused, so that the output equals the
input exactly when the password is unchanged: the entrypoint uses that to skip a needless ALTER ROLE.
The password goes through SASLprep as PostgreSQL does (RFC 4013; on failure the raw bytes are used, also as
PostgreSQL does), so clients and server agree for any Unicode password.
"""
import base64
import hashlib
import hmac
import os
import stringprep
import sys
import unicodedata

ITERATIONS = 4096


def saslprep(password: str) -> bytes:
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
    has_randalcat = any(stringprep.in_table_d1(c) for c in normalized)
    if has_randalcat and (
        any(stringprep.in_table_d2(c) for c in normalized)
        or not stringprep.in_table_d1(normalized[0])
        or not stringprep.in_table_d1(normalized[-1])
    ):
        return raw
    return normalized.encode("utf-8")


def verifier(password: str, salt: bytes, iterations: int) -> str:
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def main() -> int:
    password = os.environ.get("POSTGRES_PASSWORD")
    if not password:
        print("scram_verifier: POSTGRES_PASSWORD is empty", file=sys.stderr)
        return 2
    salt, iterations = os.urandom(16), ITERATIONS
    existing = "" if sys.stdin.isatty() else sys.stdin.read().strip()
    if existing.startswith("SCRAM-SHA-256$"):
        try:
            iter_salt = existing.split("$", 2)[1]
            iter_text, salt_text = iter_salt.split(":", 1)
            salt, iterations = base64.b64decode(salt_text), int(iter_text)
        except (ValueError, IndexError):
            pass
    print(verifier(password, salt, iterations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
