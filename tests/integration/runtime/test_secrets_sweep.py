"""The secrets sweep: a user's project brought up with site.yml, its password rotated, and a backup taken, all at
-vvv, with passwords that hold quotes, a backslash, `$`, `:`, `%`, `/`, `@` and spaces. Neither password (nor the
form POSTSTACK_DATABASE_URL spells it in) may appear in anything a user or another local user can read: the
output, the project's log files, the server's log, the PostgreSQL container's inspect document, or the process
list sampled every 0.1 s while the runs go on."""
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse

import psycopg
import pytest

from conftest import free_port, podman

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
PASSWORDS = ["it's a \"pa ss\" \\w$HOME:%2F@x", "$(id) `x` ; p@ss:w/rd \\\\n 100%"]


def spellings(password):
    """Every form a password takes on its way: as given, and URL-encoded the way the project containers get it."""
    return {password, urllib.parse.quote(password, safe=""), urllib.parse.quote(password)}


class ProcessSampler(threading.Thread):
    """Reads every process's command line (what `ps` shows any local user) until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lines = set()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as handle:
                            self.lines.add(handle.read().replace(b"\0", b" ").decode("utf-8", "replace"))
                    except OSError:
                        pass
            self.stop.wait(0.1)


@pytest.fixture
def user_project(project):
    """examples/project copied into the test's project directory, with its own name and ports."""
    shutil.copytree(os.path.join(ROOT, "examples", "project"), str(project.dir), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("logs", ".env"))
    (project.dir / ".env").write_text("POSTSTACK_PROJECT_NAME=%s\nPOSTSTACK_POSTGRES_HOST_PORT=%d\nPOSTSTACK_WEB_PORT=%d\n"
                                      % (project.name, project.port, free_port()))
    return project


def run_vvv(project, state, password, playbook, *args):
    env = dict(os.environ, POSTSTACK_PROJECT_DIR=str(project.dir), XDG_STATE_HOME=str(state),
               POSTSTACK_POSTGRES_PASSWORD=password, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    proc = subprocess.run([PLAYBOOK, "-vvv", playbook, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def readable_files(directory):
    texts = {}
    for base, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(base, name)
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    texts[path] = handle.read().decode("utf-8", "replace")
    return texts


def test_no_password_in_output_logs_inspect_or_process_list_at_vvv(user_project, tmp_path):
    project = user_project
    state = tmp_path / "state"
    schedule = tmp_path / "schedule"
    for kind in ("cron", "script", "config", "log"):
        (schedule / kind).mkdir(parents=True)
    sampler = ProcessSampler()
    sampler.start()
    outputs = {}
    try:
        outputs["site.yml"] = run_vvv(project, state, PASSWORDS[0], "playbooks/site.yml")
        outputs["site.yml, password rotated"] = run_vvv(project, state, PASSWORDS[1], "playbooks/site.yml")
        # The schedule (cron file, its JSON configuration, the script, its log) goes under the test's directory,
        # not the host's /etc, and is swept too.
        outputs["backup.yml"] = run_vvv(project, state, PASSWORDS[1], "playbooks/backup.yml", "-e", json.dumps({
            "backup_scheduler": "cron", **{"backup_%s_dir" % kind: str(schedule / kind)
                                           for kind in ("cron", "script", "config", "log")}}))
    finally:
        sampler.stop.set()
        sampler.join(5)
    # The runs did what they say: the second password is the one that logs in now, the first no longer does.
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=PASSWORDS[1], connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                        password=PASSWORDS[0], connect_timeout=5).close()
    assert "-vvv" in " ".join(sampler.lines) and len(sampler.lines) > 20  # the sampler saw the runs

    places = dict(outputs)
    places.update(readable_files(str(project.dir / "logs")))
    places.update(readable_files(str(schedule)))
    assert any(name.endswith(".json") for name in places), sorted(places)  # the schedule's configuration
    places["server log"] = podman("logs", project.container).stdout + podman("logs", project.container).stderr
    places["inspect of " + project.container] = podman("inspect", project.container).stdout
    places["process list"] = "\n".join(sampler.lines)
    assert any(name.endswith("migrations.log") for name in places), sorted(places)
    leaks = sorted((where, secret) for where, text in places.items()
                   for password in PASSWORDS for secret in spellings(password) if secret in text)
    assert not leaks, leaks
