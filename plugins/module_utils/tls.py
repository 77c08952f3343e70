# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a server certificate and its key as the user gives them (any owner, any mode, PEM files), before the
postgres role installs copies of them for PostgreSQL (UID 999, key mode 0600).

What is checked without any tool: both files exist, are regular files and are readable by this process, the
certificate file holds a PEM certificate, the key file a PEM private key that no passphrase protects (PostgreSQL
could not start with it unattended). With the `openssl` program (Debian's openssl package; optional): the key is
the certificate's key, and when the certificate expires. The key is read by openssl from its file, never passed
on a command line.

Pure Python (no Ansible imports).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from typing import Dict, List, Optional, Sequence

# The collection's command runner (argument lists, no shell, every command recorded in `history`); it runs any
# program, openssl here.
from ansible_collections.poststack.core.plugins.module_utils.runtime import CommandResult, ContainerRuntime

_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")
_KEY_RE = re.compile(r"-----BEGIN ((?:RSA |EC |DSA )?PRIVATE KEY)-----\s+([^-]+)-----END \1-----")
_ENCRYPTED_RE = re.compile(r"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED")


def sha1_of(data: bytes) -> str:
    """The checksum Ansible's find and stat report (so that a role can tell whether its copy is in place)."""
    return hashlib.sha1(data).hexdigest()  # nosec B324 - a file checksum, as Ansible's, not for security


def _read(path: str, what: str, variable: str, problems: List[str]) -> Optional[bytes]:
    if not path:
        problems.append("%s is empty: name the %s file" % (variable, what))
        return None
    if not os.path.lexists(path):
        problems.append("the %s file %s does not exist (%s)" % (what, path, variable))
        return None
    if not os.path.isfile(path):
        problems.append("the %s file %s is not a regular file (%s)" % (what, path, variable))
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        problems.append("the %s file %s cannot be read by the user this runs as (UID %d): %s" % (
            what, path, os.getuid(), exc.strerror or exc))
        return None


def _openssl(runner: ContainerRuntime, args: Sequence[str]) -> CommandResult:
    return runner.run(args, check=False, timeout=30)


def check_pair(cert_path: str, key_path: str, openssl: Optional[str] = "auto", cert_variable: str = "certificate",
               key_variable: str = "key") -> Dict[str, object]:
    """Check a certificate and key pair. Returns problems (sentences naming the file and what to do), the files'
    checksums, whether the key matches (None when openssl is not there to tell), the certificate's end date
    (openssl's notAfter, empty without openssl), whether it has expired, and the openssl commands that ran."""
    problems: List[str] = []
    commands: List[List[str]] = []  # filled from the runner's history at the end
    cert = _read(cert_path, "certificate", cert_variable, problems)
    key = _read(key_path, "key", key_variable, problems)
    result: Dict[str, object] = dict(problems=problems, commands=commands, cert_checksum="", key_checksum="",
                                     key_matches=None, not_after="", expired=None)
    if cert is not None:
        result["cert_checksum"] = sha1_of(cert)
        if not _CERT_RE.search(cert.decode("ascii", "replace")):
            problems.append("the certificate file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----); "
                            "give the server certificate followed by its chain (fullchain.pem)" % cert_path)
            cert = None
    if key is not None:
        result["key_checksum"] = sha1_of(key)
        text = key.decode("ascii", "replace")
        if _ENCRYPTED_RE.search(text):
            problems.append("the key file %s is protected by a passphrase, which PostgreSQL cannot give when it "
                            "starts unattended: write it without one (openssl pkey -in KEY -out NEWKEY) and keep "
                            "that file readable only by root" % key_path)
            key = None
        elif not _KEY_RE.search(text):
            problems.append("the key file %s holds no PEM private key (-----BEGIN PRIVATE KEY-----)" % key_path)
            key = None
    if openssl == "auto":
        openssl = shutil.which("openssl")
    if cert is None or key is None or not openssl:
        return result
    runner = ContainerRuntime(openssl)
    try:
        _compare(runner, cert_path, key_path, result)
    finally:
        commands.extend(command.argv for command in runner.history)
    return result


def _compare(runner: ContainerRuntime, cert_path: str, key_path: str, result: Dict[str, object]) -> None:
    """With openssl: whether the key is the certificate's, and the certificate's end date."""
    problems = result["problems"]
    cert_public = _openssl(runner, ["x509", "-noout", "-pubkey", "-in", cert_path])
    key_public = _openssl(runner, ["pkey", "-pubout", "-in", key_path])
    if cert_public.rc != 0:
        problems.append("openssl cannot read the certificate in %s: %s" % (cert_path, _last_line(cert_public.stderr)))
        return
    if key_public.rc != 0:
        # openssl's message about a key quotes no key material.
        problems.append("openssl cannot read the key in %s: %s" % (key_path, _last_line(key_public.stderr)))
        return
    result["key_matches"] = cert_public.stdout.strip() == key_public.stdout.strip()
    if not result["key_matches"]:
        problems.append("the key in %s is not the key of the certificate in %s: give the key the certificate was "
                        "issued for" % (key_path, cert_path))
    end = _openssl(runner, ["x509", "-noout", "-enddate", "-in", cert_path])
    if end.rc == 0 and "=" in end.stdout:
        result["not_after"] = end.stdout.strip().split("=", 1)[1]
        expired = _openssl(runner, ["x509", "-noout", "-checkend", "0", "-in", cert_path])
        result["expired"] = expired.rc != 0


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"
