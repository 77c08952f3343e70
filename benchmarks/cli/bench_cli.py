"""What the `poststack` command adds to the playbook it runs: `poststack container status` against
`ansible-playbook playbooks/status.yml`, and a no-op `poststack database migrate` against `ansible-playbook
playbooks/migrate.yml`, in interleaved rounds on one throwaway project (so that both see the same machine load).
Issue 15's goal: the front end adds at most 0.3 s. The command is this checkout's (bin/poststack: the same code as
the pip-installed one)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from lab import free_port  # noqa: E402  pylint: disable=wrong-import-position,import-error

GOAL = 0.3


def timed(argv, cwd):
    began = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit("%s failed:\n%s%s" % (" ".join(argv), done.stdout[-2000:], done.stderr[-2000:]))
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    name = "clibench%s" % uuid.uuid4().hex[:4]
    work = tempfile.mkdtemp(prefix="poststack-cli-bench-")
    project = os.path.join(work, name)
    os.makedirs(os.path.join(project, "migrations"))
    with open(os.path.join(project, "migrations", "001_t.sql"), "w", encoding="utf-8") as handle:
        handle.write("CREATE TABLE t (id int);\n")
    with open(os.path.join(project, ".env"), "w", encoding="utf-8") as handle:
        handle.write("POSTSTACK_PROJECT_NAME=%s\nPOSTSTACK_POSTGRES_HOST_PORT=%d\n" % (name, free_port()))
    command = os.path.join(ROOT, "bin", "poststack")
    playbook = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                os.path.join(ROOT, "inventories", "local")]
    pairs = [
        ("container status", [command, "container", "status"], playbook + [os.path.join(ROOT, "playbooks", "status.yml")]),
        ("database migrate (no-op)", [command, "database", "migrate"],
         playbook + [os.path.join(ROOT, "playbooks", "migrate.yml")]),
    ]
    try:
        timed([command, "container", "start"], project)
        times = {label: ([], []) for label, _c, _p in pairs}
        for _round in range(args.rounds):
            for label, cli, direct in pairs:
                times[label][0].append(timed(cli, project))
                times[label][1].append(timed(direct, project))
        print("poststack command vs ansible-playbook, %d interleaved rounds, median seconds (load %s)"
              % (args.rounds, open("/proc/loadavg", encoding="utf-8").read().split()[0]))
        print("%-28s %10s %16s %10s %8s" % ("command", "poststack", "ansible-playbook", "added", "ratio"))
        worst = 0.0
        for label, (cli, direct) in times.items():
            added = statistics.median(cli) - statistics.median(direct)
            worst = max(worst, added)
            ratio = statistics.median(cli) / statistics.median(direct)
            print("%-28s %10.2f %16.2f %+10.2f %8.2f" % (label, statistics.median(cli), statistics.median(direct),
                                                         added, ratio))
        print("goal: the command adds at most %.1f s: %s" % (GOAL, "met" if worst <= GOAL else "NOT met"))
        return 0 if worst <= GOAL else 1
    finally:
        subprocess.run(playbook + [os.path.join(ROOT, "playbooks", "remove.yml"), "-e", "remove_force=true",
                                   "-e", "remove_volumes=true", "-e", "remove_confirm=" + name],
                       cwd=project, capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
