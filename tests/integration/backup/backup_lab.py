"""The backup tests' PostgreSQL container (a module of its own, so that tests import it by a name no other
test directory uses: every directory's conftest is called ``conftest``)."""
import os
import subprocess
import time
import uuid

IMAGE = "localhost/poststack/postgres-debian:latest"
PASSWORD = "it-pw'\"$;\\ secret"


def podman(*args, check=True, env=None, stdin=None):
    return cli("podman", *args, check=check, env=env, stdin=stdin)


def cli(runtime, *args, check=True, env=None, stdin=None):
    """podman's or docker's command line (docker: the engine DOCKER_HOST names)."""
    return subprocess.run([runtime, *args], capture_output=True, text=True, check=check, input=stdin,
                          env=dict(os.environ, **(env or {})))


class Lab:
    """The container and its host directories; psql runs inside it as postgres (peer authentication). ``runtime``
    is podman or docker."""

    def __init__(self, root, runtime="podman"):
        self.runtime = runtime
        self.name = f"pstest-backup-{uuid.uuid4().hex[:8]}"
        self.volume = f"{self.name}-data"
        self.root = root
        self.backups = os.path.join(root, "backups")
        self.conf = os.path.join(root, "conf.d")

    def start(self):
        os.makedirs(self.backups)
        os.makedirs(self.conf)
        os.chmod(self.root, 0o755)
        os.chmod(self.conf, 0o755)
        os.chown(self.backups, 999, 999)
        self.cli("run", "-d", "--name", self.name, "-e", "POSTGRES_PASSWORD", "-v", f"{self.volume}:/data/postgres",
                 "-v", f"{self.backups}:/data/postgres/backups", "-v", f"{self.conf}:/etc/postgresql/conf.d:ro", IMAGE,
                 env={"POSTGRES_PASSWORD": PASSWORD})
        deadline = time.monotonic() + 60
        # The health check needs TCP, which only the real server opens (not the entrypoint's temporary one).
        while self.cli("exec", self.name, "/usr/local/bin/health-check.sh", check=False).returncode:
            if time.monotonic() > deadline:
                raise AssertionError(self.cli("logs", self.name, check=False).stderr[-3000:])
            time.sleep(0.3)

    def cli(self, *args, check=True, env=None, stdin=None):
        return cli(self.runtime, *args, check=check, env=env, stdin=stdin)

    def stop(self):
        self.cli("rm", "-f", *(["-t", "0"] if self.runtime == "podman" else []), self.name, check=False)
        self.cli("volume", "rm", "-f", self.volume, check=False)

    def psql(self, database, sql, check=True):
        proc = self.cli("exec", "-i", "--user", "postgres", self.name, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
                        "-d", database, "-f", "-", stdin=sql, check=False)
        if check and proc.returncode:
            raise AssertionError(f"psql failed: {proc.stderr}")
        return proc.stdout.strip()

    def databases(self):
        return set(self.psql("postgres", "SELECT datname FROM pg_database").split())

    def seed(self, database, rows=1000):
        """A database with two tables (one in a schema with an awkward name) and known content."""
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE); CREATE DATABASE "{database}" OWNER poststack;')
        self.psql(database, f"""
            SET ROLE poststack;
            CREATE TABLE items (id int PRIMARY KEY, note text, payload jsonb);
            INSERT INTO items SELECT g, md5(g::text), jsonb_build_object('g', g) FROM generate_series(1, {rows}) AS g;
            CREATE SCHEMA "odd|name";
            CREATE TABLE "odd|name"."Mixed Case" (k text);
            INSERT INTO "odd|name"."Mixed Case" VALUES ('a'), (NULL), ('c');
        """)

    def fingerprint(self, database):
        return self.psql(database, "SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM items")
