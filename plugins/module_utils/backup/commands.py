# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The commands a backup or restore runs (pg_dump, pg_restore, psql, age, openssl through `<runtime> exec`), and the
executor that runs them and records what ran."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Callable, Dict, IO, List, Optional, Sequence, Tuple

from ansible_collections.poststack.core.plugins.module_utils.command import CommandResult, run_command
from ansible_collections.poststack.core.plugins.module_utils.postgres_exec import LOCAL_SOCKET_LOGIN
from ansible_collections.poststack.core.plugins.module_utils.runtime import RuntimeNotFound, detect_runtime
from ansible_collections.poststack.core.plugins.module_utils.backup.manifest import (
    BackupError, CHUNK, CONTAINER_BACKUP_ROOT, NOTHING_CHANGED, OPENSSL_ITERATIONS, PASSPHRASE_ENV,
)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def pg_dump_argv(database: str, fmt: str, compression: int, jobs: int, output: Optional[str]) -> List[str]:
    argv = ["pg_dump", *LOCAL_SOCKET_LOGIN,
            f"--format={'c' if fmt == 'custom' else 'd'}", f"--compress={compression}"]
    if fmt == "directory":
        argv += [f"--jobs={jobs}", "--file", output or ""]
    argv += ["--dbname", database]
    return argv


def pg_restore_argv(database: str, jobs: int, path: Optional[str]) -> List[str]:
    """pg_restore into an existing database; from `path` inside the container, or stdin when None."""
    argv = ["pg_restore", *LOCAL_SOCKET_LOGIN,
            "--exit-on-error", "--dbname", database]
    if path is not None:
        argv += [f"--jobs={max(1, jobs)}", path]
    return argv


def encrypt_argv(encryption: str, recipients: Sequence[str]) -> Optional[List[str]]:
    if encryption == "age":
        if not recipients:
            raise BackupError("encryption=age needs at least one recipient (an age public key, age1...)")
        argv = ["age"]
        for recipient in recipients:
            argv += ["-r", recipient]
        return argv
    if encryption == "openssl":
        return ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", str(OPENSSL_ITERATIONS), "-salt", "-pass",
                f"env:{PASSPHRASE_ENV}"]
    return None


def decrypt_argv(encryption: str, identity_file: Optional[str]) -> Optional[List[str]]:
    if encryption == "age":
        if not identity_file:
            raise BackupError("the backup is encrypted with age: give the identity (the secret key) to decrypt it")
        return ["age", "--decrypt", "-i", identity_file]
    if encryption == "openssl":
        return ["openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", str(OPENSSL_ITERATIONS), "-pass",
                f"env:{PASSPHRASE_ENV}"]
    return None


class Executor:
    """Runs argument lists (never a shell, through command.run_command) and pipelines; keeps what ran in
    `commands` (argv never holds a secret: the passphrase goes through the environment)."""

    def __init__(self, env: Optional[Dict[str, str]] = None) -> None:
        self.env = dict(os.environ, LC_ALL="C")
        self.env.update(env or {})
        self.commands: List[CommandResult] = []

    def run(self, argv: Sequence[str], input_text: Optional[str] = None, check: bool = True) -> str:
        try:
            result = run_command(argv, stdin=input_text, env=self.env)
        except OSError as exc:
            raise BackupError(f"cannot run {argv[0]}: {exc}") from exc
        self.commands.append(result)
        if check and result.rc != 0:
            raise BackupError(f"{' '.join(argv[:2])} ... {argv[-1]} failed (rc={result.rc}): "
                              f"{(result.stderr or result.stdout).strip()[-2000:]}")
        return result.stdout

    def pipeline_to_file(self, stages: Sequence[Sequence[str]], path: str) -> Tuple[int, str]:
        """Run stages connected by pipes, write the last one's stdout to `path`; returns (size, sha256)."""
        digest = hashlib.sha256()
        size = 0
        start = time.monotonic()
        procs, errs = self._spawn(stages, stdin=None)
        try:
            with open(path, "wb") as out:
                os.chmod(path, 0o600)
                for block in iter(lambda: procs[-1].stdout.read(CHUNK), b""):  # type: ignore[union-attr]
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
        finally:
            self._finish(procs, errs, start, stages)
        return size, digest.hexdigest()

    def pipeline_from_file(self, path: str, stages: Sequence[Sequence[str]]) -> str:
        """Feed `path` into stages connected by pipes; returns the last stage's stdout (text)."""
        start = time.monotonic()
        with open(path, "rb") as source:
            procs, errs = self._spawn(stages, stdin=source)
            try:
                output = procs[-1].stdout.read()  # type: ignore[union-attr]
            finally:
                self._finish(procs, errs, start, stages)
        return output.decode("utf-8", "replace")

    def _spawn(self, stages, stdin) -> Tuple[List[subprocess.Popen], List[IO[bytes]]]:
        procs: List[subprocess.Popen] = []
        errs: List[IO[bytes]] = []
        upstream = stdin
        for argv in stages:
            err = tempfile.TemporaryFile()
            try:
                proc = subprocess.Popen(list(argv), stdin=upstream, stdout=subprocess.PIPE, stderr=err, env=self.env)
            except OSError as exc:
                for started in procs:
                    started.kill()
                raise BackupError(f"cannot run {argv[0]}: {exc}") from exc
            if procs:
                procs[-1].stdout.close()  # type: ignore[union-attr]  # the next stage owns the pipe now
            procs.append(proc)
            errs.append(err)
            upstream = proc.stdout
        return procs, errs

    def _finish(self, procs, errs, start, stages) -> None:
        failures = []
        for proc, err, argv in zip(procs, errs, stages):
            rc = proc.wait()
            err.seek(0)
            text = err.read().decode("utf-8", "replace").strip()[-2000:]
            err.close()
            self.commands.append(CommandResult(list(argv), rc, "", text, round(time.monotonic() - start, 3)))
            if rc != 0:
                failures.append(f"{argv[0]} {' '.join(argv[1:3])} ... failed (rc={rc}): {text}")
        if failures:
            raise BackupError("; ".join(failures))


def resolve_runtime(preference: str = "auto", which: Callable[[str], Optional[str]] = shutil.which) -> str:
    """runtime.detect_runtime, failing with a BackupError."""
    try:
        return detect_runtime(preference, which)
    except RuntimeNotFound as exc:
        raise BackupError(str(exc)) from exc


def container_mount_source(executor: Executor, runtime: str, container: str, destination: str) -> Optional[str]:
    """The host path mounted at `destination` in the container (bind mount or named volume), or None."""
    out = executor.run([runtime, "inspect", "--format", "{{json .Mounts}}", container], check=False)
    if executor.commands[-1].rc != 0:
        raise BackupError(f"container '{container}' not found or not inspectable with {runtime}: "
                          f"{executor.commands[-1].stderr.strip()} — start PostgreSQL first (role poststack.core.postgres) or "
                          f"correct the container name; {NOTHING_CHANGED}")
    try:
        mounts = json.loads(out or "[]") or []
    except ValueError:
        mounts = []
    for mount in mounts:
        if mount.get("Destination", "").rstrip("/") == destination.rstrip("/"):
            return mount.get("Source") or None
    return None


def container_path(host_path: str, host_root: Optional[str], container_root: str = CONTAINER_BACKUP_ROOT) -> Optional[str]:
    """Where host_path is seen inside the container when it lies under the mounted host_root, else None."""
    if not host_root:
        return None
    relative = os.path.relpath(os.path.realpath(host_path), os.path.realpath(host_root))
    if relative == ".":
        return container_root
    if relative.startswith(".."):
        return None
    return container_root.rstrip("/") + "/" + relative
