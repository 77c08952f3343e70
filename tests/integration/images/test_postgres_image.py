"""The postgres-debian image, run for real: passwords, authentication, TLS, identity, scripts."""
import os
import socket
import subprocess
import time
import uuid

import psycopg
import pytest

from ansible_run import run_playbook
from certs import make_certs

IMAGE = "localhost/poststack/postgres-debian:latest"
HARD_PASSWORD = "q'u\"o;t\\e$ünï€ode 密码 "  # quotes, semicolon, backslash, dollar, unicode, trailing space


def podman(*args, check=True, env=None):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check,
                          env=dict(os.environ, **(env or {})))


@pytest.fixture(scope="module", autouse=True)
def images():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Postgres:
    def __init__(self, tmp_path):
        self.name = f"pstest-{uuid.uuid4().hex[:8]}"
        self.volume = f"{self.name}-data"
        self.port = free_port()
        self.tmp = tmp_path

    def start(self, password=None, extra=(), env=None, wait=True):
        podman("rm", "-f", self.name, check=False)
        args = ["run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:5432",
                "-v", f"{self.volume}:/data/postgres"]
        run_env = dict(env or {})
        if password is not None:
            # By name only: the value travels in the environment, never in argv.
            args += ["-e", "POSTGRES_PASSWORD"]
            run_env["POSTGRES_PASSWORD"] = password
        for key in (env or {}):
            args += ["-e", key]
        podman(*args, *extra, IMAGE, env=run_env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = podman("inspect", "-f", "{{.State.Running}}", self.name).stdout.strip()
            if state != "true":
                raise AssertionError(f"container exited:\n{self.logs()}")
            if podman("exec", self.name, "/usr/local/bin/health-check.sh", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise AssertionError(f"not ready in {timeout}s:\n{self.logs()}")

    def wait_exit(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if podman("inspect", "-f", "{{.State.Running}}", self.name).stdout.strip() != "true":
                return int(podman("inspect", "-f", "{{.State.ExitCode}}", self.name).stdout.strip())
            time.sleep(0.3)
        raise AssertionError("container did not exit")

    def logs(self):
        out = podman("logs", self.name, check=False)
        return out.stdout + out.stderr

    def connect(self, password, **kwargs):
        return psycopg.connect(host="127.0.0.1", port=self.port, user="poststack", dbname="poststack",
                               password=password, connect_timeout=5, **kwargs)

    def cleanup(self):
        podman("rm", "-f", "-t", "0", self.name, check=False)
        podman("volume", "rm", "-f", self.volume, check=False)


@pytest.fixture
def pg(tmp_path):
    server = Postgres(tmp_path)
    yield server
    server.cleanup()


def test_password_with_hard_characters_works_over_tcp_and_never_leaks(pg):
    pg.start(password=HARD_PASSWORD)
    with pg.connect(HARD_PASSWORD) as conn:
        row = conn.execute("SELECT current_user, inet_server_addr() IS NOT NULL").fetchone()
        assert row == ("poststack", True)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg.connect("wrong")
    with pytest.raises(psycopg.OperationalError, match="no password supplied|password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=pg.port, user="poststack", dbname="poststack", password="",
                        connect_timeout=5)
    # Neither the logs nor any process's arguments inside the container show the password.
    assert "密码" not in pg.logs() and "ünï" not in pg.logs()
    ps = podman("exec", pg.name, "ps", "-eo", "args").stdout
    assert "密码" not in ps and "q'u" not in ps
    # The postgres process does not keep the password in its environment.
    environ = podman("exec", pg.name, "cat", "/proc/1/environ").stdout
    assert "POSTGRES_PASSWORD" not in environ


def test_identity_layout_extensions_and_settings(pg):
    pg.start(password="s3cret")
    assert podman("exec", pg.name, "id", "-u").stdout.strip() == "999"
    assert podman("exec", pg.name, "id", "-g").stdout.strip() == "999"
    assert podman("exec", pg.name, "stat", "-c", "%a %u", "/data/postgres/pgdata").stdout.split() == ["700", "999"]
    for path in ("/data/postgres/backups/daily", "/data/postgres/ssl"):
        assert podman("exec", pg.name, "test", "-d", path, check=False).returncode == 0, path
    # PID 1 is postgres itself, so that signals reach it.
    assert "postgres" in podman("exec", pg.name, "cat", "/proc/1/cmdline").stdout
    with pg.connect("s3cret") as conn:
        extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        assert {"uuid-ossp", "pgcrypto", "pg_stat_statements"} <= extensions
        assert conn.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone() == (True,)
        assert conn.execute("SELECT uuid_generate_v4() IS NOT NULL, gen_random_uuid() IS NOT NULL").fetchone() == (True, True)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        assert conn.execute("SHOW jit").fetchone() == ("off",)
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    hba = podman("exec", pg.name, "cat", "/data/postgres/pgdata/pg_hba.conf").stdout
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert not [r for r in rules if r[-1] == "trust"], "no trust rule at all"
    assert all(r[-1] in ("scram-sha-256", "reject") for r in rules if r[0].startswith("host"))


def test_data_survives_restart_and_password_change_applies(pg):
    pg.start(password="first")
    with pg.connect("first") as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    pg.start(password="second")  # a new container on the same volume with another password
    assert "password of poststack changed" in pg.logs()
    with pytest.raises(psycopg.OperationalError):
        pg.connect("first")
    with pg.connect("second") as conn:
        assert conn.execute("SELECT v FROM kept").fetchone() == ("still here",)
    pg.start(password="second")
    assert "password of poststack unchanged" in pg.logs()
    pg.start(password=None)  # no password given: the existing one stays
    with pg.connect("second") as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)


def test_empty_data_without_password_fails_clearly(pg):
    pg.start(password=None, wait=False)
    assert pg.wait_exit() != 0
    assert "no password is set: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" in pg.logs()


def test_password_file(pg, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(HARD_PASSWORD)
    secret.chmod(0o644)
    pg.start(extra=["-v", f"{secret}:/run/secrets/pg:ro,Z"], env={"POSTGRES_PASSWORD_FILE": "/run/secrets/pg"})
    with pg.connect(HARD_PASSWORD) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def root_owned_certs(root, domain):
    """Certificates as they usually arrive: owned by root, the key not world-readable but group-readable
    (certgroup 998)."""
    certs, ca_crt = make_certs(root, domain)
    key = certs / domain / "privkey.pem"
    os.chown(key, 0, 998)
    key.chmod(0o640)
    return certs, ca_crt


def test_tls_with_mounted_certificates(pg, tmp_path):
    certs, ca = root_owned_certs(tmp_path, "db.example.test")
    mount = ["-v", f"{certs}:/data/certificates:ro,Z"]
    pg.start(password="tls-pw", extra=mount, env={"DOMAIN": "db.example.test"})
    with pg.connect("tls-pw", sslmode="verify-full", sslrootcert=str(ca)) as conn:
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row[0] is True and row[1].startswith("TLSv1.")
    # Without TLS still allowed in `auto` mode...
    with pg.connect("tls-pw", sslmode="disable") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # ...and refused in `require` mode.
    pg.start(password="tls-pw", extra=mount, env={"DOMAIN": "db.example.test", "POSTGRES_SSL": "require"})
    with pytest.raises(psycopg.OperationalError, match="no encryption|rejects connection"):
        pg.connect("tls-pw", sslmode="disable")
    with pg.connect("tls-pw", sslmode="require") as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_tls_required_without_certificates_refuses_to_start(pg):
    pg.start(password="x", env={"DOMAIN": "missing.example", "POSTGRES_SSL": "require"}, wait=False)
    assert pg.wait_exit() != 0
    assert "POSTGRES_SSL=require but /data/certificates/missing.example/fullchain.pem" in pg.logs()


def test_refuses_to_run_as_root(pg):
    pg.start(password="x", extra=["--user", "0"], wait=False)
    assert pg.wait_exit() != 0
    assert "refusing to run PostgreSQL as root" in pg.logs()


def test_backup_script_writes_a_verifiable_dump(pg):
    pg.start(password="b")
    with pg.connect("b") as conn:
        conn.execute("CREATE TABLE t AS SELECT generate_series(1, 1000) AS n")
    path = podman("exec", pg.name, "/usr/local/bin/backup.sh").stdout.strip()
    assert path.startswith("/data/postgres/backups/daily/poststack_") and path.endswith(".dump")
    folder, name = os.path.split(path)
    podman("exec", "-w", folder, pg.name, "sha256sum", "-c", name + ".sha256")
    listing = podman("exec", pg.name, "pg_restore", "--list", path).stdout
    assert "TABLE public t" in listing
