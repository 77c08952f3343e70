"""status.yml, stop.yml, remove.yml and clean.yml as a user runs them, against a real project's PostgreSQL, on
podman and on a real Docker engine (the ``runtime`` fixture)."""
import psycopg

from ansible_run import run_playbook


def start(project):
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"}}]}]
    run = run_playbook(play, extra_vars=project.vars())
    assert run.rc == 0, run.stdout[-3000:]


def playbook(name, project, **extra):
    inventory = project.dir / "hosts.yml"
    if not inventory.exists():
        inventory.write_text("all:\n  children:\n    poststack:\n      hosts:\n        localhost:\n"
                             "          ansible_connection: local\n")
    return run_playbook(f"playbooks/{name}.yml", extra_vars=project.vars(**extra), inventory=str(inventory))


def test_status_stop_remove(runtime, project):
    start(project)
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=project.password, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")

    status = playbook("status", project).results("Print the status table")
    row = [line for line in status["msg"].splitlines() if line.startswith(project.container)]
    assert row and "running" in row[0] and "healthy" in row[0] and f"127.0.0.1:{project.port}" in row[0]

    refused = playbook("remove", project)
    assert refused.rc != 0 and f"{project.container}" in refused.stdout and "still running" in refused.stdout
    assert runtime.exists("container", project.container)

    stopped = playbook("stop", project)
    assert stopped.rc == 0 and stopped.changed == 1
    assert playbook("stop", project).changed == 0

    no_confirm = playbook("remove", project, remove_volumes=True)
    assert no_confirm.rc != 0 and f"-e remove_confirm={project.name}" in no_confirm.stdout
    assert runtime.exists("container", project.container)

    kept = playbook("remove", project)
    assert kept.rc == 0 and not runtime.exists("container", project.container)
    assert not runtime.exists("network", f"{project.name}-net")
    assert runtime.exists("volume", f"{project.container}-data")

    start(project)  # same volume: the data is back
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=project.password, connect_timeout=5) as conn:
        assert conn.execute("SELECT x FROM t").fetchone() == (1,)

    gone = playbook("remove", project, remove_force=True, remove_volumes=True, remove_confirm=project.name)
    assert gone.rc == 0, gone.stdout[-3000:]
    assert not runtime.exists("container", project.container)
    assert not runtime.exists("volume", f"{project.container}-data")
    # the whole project went: its network too (what the role made for it)
    assert not runtime.exists("network", f"{project.name}-net")
    assert playbook("remove", project).changed == 0


def test_status_and_clean_keep_to_the_project(runtime, project, other_project):
    """status.yml and clean.yml act on the current project (-e status_all=true lists every project)."""
    start(project)
    start(other_project)
    runtime.cli("stop", "-t", "5", other_project.container)

    own = playbook("status", project).results("Print the status table")["msg"]
    assert project.container in own and other_project.container not in own
    every = playbook("status", project, status_all=True).results("Print the status table")["msg"]
    assert project.container in every and other_project.container in every

    cleaned = playbook("clean", project)
    assert cleaned.rc == 0, cleaned.stdout[-3000:]
    assert runtime.exists("container", other_project.container), \
        "clean.yml of one project removed another project's stopped container"
    # (clean_all=true is not run here: it would remove every stopped poststack container of this machine)
    cleaned = playbook("clean", other_project)
    assert cleaned.rc == 0 and not runtime.exists("container", other_project.container)
    assert runtime.exists("volume", f"{other_project.container}-data")
