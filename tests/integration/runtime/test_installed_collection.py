"""The collection as a user gets it: built with ansible-galaxy, installed into an empty path, and its roles used
from a playbook of the user's own, outside this checkout and without its ansible.cfg, inventory or environment
(only the host's container settings). postgres_image, postgres, migrations, backup and project_containers
compose: the migrations, the backup and the project's container find the server through what the postgres role
publishes; a second run changes nothing."""
import glob
import os
import subprocess
import sys
import urllib.request

import psycopg
import yaml

from conftest import free_port, podman

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def dependency_paths():
    """Where the collections we depend on are (the ansible package's, as a user who ran `pip install ansible` has
    them): the toolchain links them into this checkout's .collections; their real root is used, not ours."""
    roots = set()
    for namespace in ("ansible", "community", "containers"):
        base = os.path.join(ROOT, ".collections", "ansible_collections", namespace)
        for name in os.listdir(base):
            real = os.path.realpath(os.path.join(base, name))
            roots.add(os.path.dirname(os.path.dirname(os.path.dirname(real))))
    return sorted(roots)


def clean_env(collections):
    """A user's shell: none of the checkout's ANSIBLE_* settings; the host's container settings stay (this host's
    podman needs CONTAINERS_CONF, and no registry is reachable, so the base image is the local one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "POSTSTACK_PROJECT_DIR"}
    env.update(ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(collections)] + dependency_paths()), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    return env


def test_roles_of_the_installed_collection_compose_in_a_users_playbook(project, tmp_path):
    built = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path",
                            str(tmp_path / "dist"), ROOT], capture_output=True, text=True, check=False, cwd=ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = glob.glob(str(tmp_path / "dist" / "poststack-core-*.tar.gz"))
    assert len(tarball) == 1
    collections = tmp_path / "collections"
    installed = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "-p",
                                str(collections), tarball[0]], capture_output=True, text=True, check=False,
                               cwd=str(tmp_path), env=clean_env(collections))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert os.path.isfile(collections / "ansible_collections" / "poststack" / "core" / "roles" / "postgres" / "tasks"
                          / "main.yml")

    user = tmp_path / "shop"
    (user / "migrations").mkdir(parents=True)
    (user / "migrations" / "001_orders.sql").write_text("CREATE TABLE orders (id int PRIMARY KEY, total numeric);\n")
    (user / "migrations" / "001_orders.rollback.sql").write_text("DROP TABLE orders;\n")
    # A container of the user's project, built on the base image that postgres_image made.
    (user / "containers" / "web").mkdir(parents=True)
    (user / "containers" / "web" / "Containerfile").write_text(
        "ARG BASE_IMAGE=localhost/poststack/base-debian:latest\nFROM ${BASE_IMAGE}\n"
        "WORKDIR /srv\nRUN echo shop > index.html\nCMD [\"python3\", \"-m\", \"http.server\", \"8080\"]\n")
    web_port = free_port()
    playbook = [{
        "name": "The shop's database", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable, "poststack_project_name": project.name,
                 "postgres_host_port": project.port, "postgres_password": project.password,
                 "migrations_path": str(user / "migrations"), "backup_dir": str(tmp_path / "backups"),
                 "project_containers_run": [{"name": "web", "ports": [f"127.0.0.1:{web_port}:8080"],
                                             "wait_for_port": web_port}]},
        "roles": ["poststack.core.postgres_image", "poststack.core.postgres", "poststack.core.migrations",
                  "poststack.core.project_containers"],
        "tasks": [{"name": "Back up",
                   "ansible.builtin.include_role": {"name": "poststack.core.backup", "tasks_from": "backup"}}],
    }]
    (user / "site.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))

    def run():
        proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "site.yml"], cwd=str(user),
                              env=clean_env(collections), capture_output=True, text=True, check=False, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
        return proc

    first = run()
    # The tasks ran from the installed copy, never from this checkout.
    assert str(collections / "ansible_collections" / "poststack" / "core" / "roles" / "postgres") in first.stdout
    assert os.path.join(ROOT, "roles") not in first.stdout and os.path.join(ROOT, ".collections") not in first.stdout
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=project.password, connect_timeout=5) as conn:
        assert conn.execute("SELECT to_regclass('orders') IS NOT NULL").fetchone() == (True,)
        versions = conn.execute("SELECT stream, max(version) FROM poststack.schema_migrations GROUP BY stream"
                                " ORDER BY stream").fetchall()
    assert ("project", 1) in versions
    assert podman("inspect", "-f", "{{.State.Status}}", project.container).stdout.strip() == "running"
    assert [name for _base, _dirs, names in os.walk(tmp_path / "backups") for name in names], "no backup written"
    # The project's container runs on the database's network with the database's settings from the fact.
    web = f"{project.name}-web"
    assert podman("inspect", "-f", "{{.State.Status}}", web).stdout.strip() == "running"
    assert urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=5).read() == b"shop\n"
    environment = podman("exec", web, "env").stdout.splitlines()
    assert f"DB_HOST={project.container}" in environment and "DB_NAME=poststack" in environment
    second = run()
    report = yaml.safe_load(second.stdout)
    changed = {host: stats.get("changed", 0) for host, stats in report["stats"].items()}
    # The backup task takes a new backup each run by design; nothing else may change.
    changed_tasks = [task["task"]["name"] for play in report["plays"] for task in play["tasks"]
                     if any(result.get("changed") for result in task["hosts"].values())]
    assert all("backup" in name.lower() for name in changed_tasks), (changed, changed_tasks)
    assert project.password not in first.stdout + second.stdout
