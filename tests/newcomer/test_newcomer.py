"""Newcomer test: on a new Debian system (12 "bookworm" and 13 "trixie"), a clean clone of the commit under test and
only `make run` give a working stack: the demo page shows rows that the migrations wrote into PostgreSQL, and a
second `make run` changes nothing. Then a user's own project outside the checkout (a copy of examples/apache-php)
runs the documented way, from its directory with no inventory of its own, beside the demo.

POSTSTACK_NEWCOMER_REF picks another commit to clone (default: HEAD of this checkout), POSTSTACK_NEWCOMER_SUITES
the releases (default: "bookworm trixie").
"""
import os
import subprocess

import pytest

import newcomer

SUITES = os.environ.get("POSTSTACK_NEWCOMER_SUITES", "bookworm trixie").split()
# Each system gets a project name and ports of its own (they live in its own network namespace anyway).
PORTS = {"bookworm": (55433, 58088), "trixie": (55443, 58098)}


def commit_under_test() -> str:
    ref = os.environ.get("POSTSTACK_NEWCOMER_REF", "HEAD")
    return subprocess.run(["git", "-C", newcomer.ROOT, "rev-parse", "--verify", ref + "^{commit}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(params=SUITES)
def system(request):
    suite = request.param
    pg_port, web_port = PORTS.get(suite, (55453, 58108))
    machine = newcomer.Newcomer(suite, env={"POSTSTACK_PROJECT_NAME": "newcomer-" + suite,
                                            "POSTSTACK_POSTGRES_HOST_PORT": str(pg_port),
                                            "POSTSTACK_WEB_PORT": str(web_port)})
    machine.web_port = web_port
    try:
        machine.start(newcomer.bare_image(suite))
        yield machine
    finally:
        machine.destroy()


def test_make_run_on_a_new_debian_system(system):
    commit = commit_under_test()
    cloned = system.sh("git clone -q /src poststack && git -C poststack checkout -q %s" % commit, log="clone")
    assert cloned.returncode == 0, tail(system.log("clone"))

    # Nothing of the toolchain is there before the project installs it.
    bare = system.sh("for c in podman python3 ansible-playbook mmdebstrap; do command -v $c && exit 1; done; true",
                     log="bare")
    assert bare.returncode == 0, "the new system already has %s" % system.log("bare").strip()

    first = system.sh("make run", log="make-run-1", cwd="/root/poststack")
    output = system.log("make-run-1")
    print("%s: first make run %.0f s" % (system.suite, first.seconds))
    assert first.returncode == 0, "make run failed on %s:\n%s" % (system.suite, tail(output))
    assert [row["failed"] for row in newcomer.recap(output)] == [0], tail(output)

    page = newcomer.http_json(system, system.web_port)
    assert page["status"] == 200, "the demo page answers %s" % page
    titles = [note["title"] for note in page["body"]["notes"]]
    assert "Hello from poststack" in titles, page

    second = system.sh("make run", log="make-run-2", cwd="/root/poststack")
    output = system.log("make-run-2")
    print("%s: second make run %.0f s" % (system.suite, second.seconds))
    assert second.returncode == 0, tail(output)
    rows = newcomer.recap(output)
    assert rows and all(row["changed"] == 0 and row["failed"] == 0 for row in rows), tail(output)

    # A user's own project the way docs/projects.md says: a directory outside the checkout (here a copy of seed
    # 003's Apache + PHP example), run from there with the checkout's environment and no inventory of its own. Its
    # settings are its .env's (the system's POSTSTACK_* of the demo are not the user's).
    own = system.sh("unset POSTSTACK_PROJECT_NAME POSTSTACK_POSTGRES_HOST_PORT POSTSTACK_WEB_PORT; "
                    "cp -r /root/poststack/examples/apache-php /root/my-shop && cd /root/my-shop "
                    "&& . /root/poststack/scripts/env.sh && ansible-playbook poststack.core.site",
                    log="user-project")
    output = system.log("user-project")
    print("%s: a user's project %.0f s" % (system.suite, own.seconds))
    assert own.returncode == 0, tail(output)
    page = newcomer.http_json(system, 8089)
    assert page["status"] == 200, page
    assert page["body"]["raw"].strip() == "Hello from PostgreSQL, migrated by poststack", page
    assert newcomer.http_json(system, system.web_port)["status"] == 200, "the demo stopped answering"

    # The poststack command as docs/cli.md installs it: pip into a fresh venv (from the clone), then seed 003's quick
    # start in a project directory of its own, with none of the checkout's environment (podman's settings aside).
    cli_port = PORTS.get(system.suite, (55453, 0))[0] + 1
    command = system.sh(
        "unset POSTSTACK_PROJECT_NAME POSTSTACK_POSTGRES_HOST_PORT POSTSTACK_WEB_PORT; set -e; "
        "export CONTAINERS_CONF=/root/poststack/scripts/podman/containers.conf; "
        # no registry here: the base image make run made locally (docs/cli.md, "Install")
        "export POSTSTACK_BASE_IMAGE=$(cat /root/poststack/.cache/base-image); "
        "python3 -m venv /root/venvs/poststack && /root/venvs/poststack/bin/pip install -q /root/poststack; "
        "export PATH=/root/venvs/poststack/bin:$PATH; mkdir -p /root/quick/migrations && cd /root/quick; "
        "printf 'CREATE TABLE items (id int PRIMARY KEY);\\n' > migrations/001_items.sql; "
        "printf 'DROP TABLE items;\\n' > migrations/001_items.rollback.sql; "
        "poststack container build && poststack container start --postgres-port %d "
        "&& poststack database migration-status && poststack version" % cli_port, log="cli")
    output = system.log("cli")
    print("%s: pip install and the quick start %.0f s" % (system.suite, command.seconds))
    assert command.returncode == 0, tail(output)
    assert "project: version 1, 1 applied, pending []" in output and "site-packages/ansible_collections" in output, \
        tail(output)
