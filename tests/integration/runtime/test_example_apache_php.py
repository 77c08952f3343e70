"""examples/apache-php (seed 003's web application stack) run as its README says: from its directory with
`ansible-playbook poststack.core.site`, under a name and ports of its own. The page shows the migrated row; a second
run changes nothing; the password reaches PHP but no file and no output."""
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import free_port, podman

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def run(cwd, env, *args):
    proc = subprocess.run([PLAYBOOK, *args], cwd=str(cwd), env=env, capture_output=True, text=True, check=False,
                          timeout=1500)
    try:
        return proc, json.loads(proc.stdout)
    except ValueError:
        pytest.fail("ansible-playbook printed no JSON (rc %d):\n%s\n%s"
                    % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return None


def page(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_seed_003s_apache_php_example_serves_a_migrated_row(project, tmp_path):
    example = tmp_path / "apache-php"
    shutil.copytree(os.path.join(ROOT, "examples", "apache-php"), example, ignore=shutil.ignore_patterns("logs"))
    web_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "POSTSTACK_PROJECT_DIR"}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_NOCOLOR="1", POSTSTACK_PROJECT_NAME=project.name,
               POSTSTACK_POSTGRES_HOST_PORT=str(project.port), POSTSTACK_WEB_PORT=str(web_port))

    first, report = run(example, env, "poststack.core.site")
    assert first.returncode == 0, first.stdout[-5000:]
    status, body = page(web_port)
    assert (status, body) == (200, "Hello from PostgreSQL, migrated by poststack\n")

    apache = f"{project.name}-apache"
    assert podman("inspect", "-f", "{{.State.Health.Status}}", apache).stdout.strip() == "healthy"
    password = next((tmp_path / "state" / "poststack" / "projects").glob(f"{project.name}-*/postgres-password")
                    ).read_text().strip()
    # PassEnv: the password is in no configuration file of the container, and in no output of the run.
    configs = podman("exec", apache, "grep", "-rl", password, "/etc/apache2", check=False)
    assert configs.returncode == 1 and configs.stdout == "", configs.stdout
    assert password not in first.stdout + first.stderr

    second, report = run(example, env, "poststack.core.site")
    assert second.returncode == 0, second.stdout[-5000:]
    changed = [task["task"]["name"] for play in report["plays"] for task in play["tasks"]
               if any(result.get("changed") for result in task["hosts"].values())]
    assert changed == [], changed
    assert page(web_port) == (200, "Hello from PostgreSQL, migrated by poststack\n")

    # The project's rollback takes the table away, and the page says so (no password in the message).
    rolled, _report = run(example, env, "poststack.core.rollback", "-e", "migrations_target_version=0")
    assert rolled.returncode == 0, rolled.stdout[-5000:]
    status, body = page(web_port)
    assert status == 503 and 'relation "greetings" does not exist' in body and password not in body
