"""Backup benchmark: poststack's logical backup and restore vs raw pg_dump/pg_restore, PgBouncer vs direct.

    benchmarks/backup/run [--scale 10] [--repeat 3] [--seconds 15] [--clients 8]

Starts PostgreSQL with the postgres role and PgBouncer with the pgbouncer role (both published on loopback),
fills a pgbench database of --scale, then measures (wall-clock seconds, median of --repeat):

  backup   raw: `podman exec pg_dump -Fc -f <file in the backups volume>`
           poststack_backup: the module's code (run_backup: pg_dump streamed out, sha256, manifest, retention)
           playbook: `ansible-playbook` with the backup role's backup entry point (includes Ansible start-up)
  restore  raw: `createdb` + `pg_restore -j 2` of that file, inside the container
           poststack_backup_restore: checksum + pg_restore --list + new database + pg_restore -j 2 + swap
           playbook: the restore entry point with replace=true
  pgbench  TPS of the TPC-B-like script, of select-only, and of select-only with a new connection per
           transaction (-C), direct to PostgreSQL and through PgBouncer (transaction pooling)

The three ways of each operation run in interleaved rounds. Prints Markdown tables; the ratio column is raw time /
poststack time (>= 0.9 is the goal) or PgBouncer / direct.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_run import run_playbook  # noqa: E402
from ansible_collections.poststack.core.plugins.module_utils import backup as bk  # noqa: E402

PASSWORD = "bench-" + uuid.uuid4().hex


def log(message):
    sys.stderr.write("[bench] %s\n" % message)
    sys.stderr.flush()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sh(argv, env=None, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, **(env or {})), check=False)
    if check and proc.returncode:
        raise SystemExit(f"{' '.join(argv[:6])} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def timed(func):
    start = time.monotonic()
    func()
    return time.monotonic() - start


def interleaved(funcs, repeat):
    """Median seconds of each function, run in rounds (a, b, c, a, b, c, ...) so that cache warm-up and the load
    of a shared machine do not favour whichever runs last."""
    runs = [[] for func in funcs]
    for round_number in range(repeat):
        for index, func in enumerate(funcs):
            runs[index].append(timed(func))
        log(f"round {round_number + 1}: " + " ".join(f"{times[-1]:.2f}" for times in runs))
    return [statistics.median(times) for times in runs]


class Bench:
    def __init__(self, args, root):
        self.args = args
        self.project = f"bench-backup-{uuid.uuid4().hex[:6]}"
        self.container = f"{self.project}-postgres"
        self.pg_port = free_port()
        self.pgb_port = free_port()
        self.root = root
        self.backups = os.path.join(root, "backups")
        self.variables = dict(
            postgres_project_name=self.project, postgres_container_name=self.container,
            postgres_password=PASSWORD, postgres_host_port=self.pg_port, postgres_state_dir=os.path.join(root, "state"),
            postgres_backup_path=self.backups, postgres_shared_buffers="256MB", postgres_max_connections=200,
            poststack_container_runtime="podman", poststack_log_dir=os.path.join(root, "logs"),
            poststack_base_image=os.environ.get("POSTSTACK_BASE_IMAGE", "docker.io/library/debian:bookworm-slim"),
            pgbouncer_config_dir=os.path.join(root, "pgbouncer"), pgbouncer_publish=f"127.0.0.1:{self.pgb_port}",
            pgbouncer_default_pool_size=args.clients, pgbouncer_max_client_conn=500,
            backup_container_name=self.container, backup_runtime="podman", backup_database="poststack",
            backup_keep_count=0, backup_restore_replace=True, backup_scheduler="none",
        )

    def play(self, tasks, **extra):
        run = run_playbook([{"name": "bench", "hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                           extra_vars=dict(self.variables, **extra))
        if run.rc:
            raise SystemExit(f"playbook failed:\n{run.stdout[-4000:]}")
        return run

    @staticmethod
    def role(name, tasks_from="main", **variables):
        include = {"name": f"poststack.core.{name}", "tasks_from": tasks_from}
        return {"name": f"{name} {tasks_from}", "ansible.builtin.include_role": include, "vars": variables}

    def exec(self, *argv):
        return sh(["podman", "exec", "--user", "postgres", self.container, *argv])

    def setup(self):
        log("starting PostgreSQL and PgBouncer with the roles")
        self.play([self.role("postgres"), self.role("pgbouncer")])
        log(f"pgbench -i -s {self.args.scale}")
        self.exec("pgbench", "-q", "-i", "-s", str(self.args.scale), "--host", "/var/run/postgresql", "poststack")
        self.exec("psql", "-XAtq", "-d", "poststack", "-c", "ALTER TABLE pgbench_accounts OWNER TO poststack; "
                  "ALTER TABLE pgbench_branches OWNER TO poststack; ALTER TABLE pgbench_tellers OWNER TO poststack; "
                  "ALTER TABLE pgbench_history OWNER TO poststack")
        self.exec("psql", "-XAtq", "-d", "poststack", "-c", "VACUUM ANALYZE")
        size = self.exec("psql", "-XAtq", "-d", "poststack", "-c", "SELECT pg_size_pretty(pg_database_size('poststack'))")
        return size.strip()

    def teardown(self):
        log("removing the containers")
        run_playbook([{"name": "teardown", "hosts": "localhost", "gather_facts": False, "tasks": [
            self.role("pgbouncer", pgbouncer_state="absent"),
            self.role("postgres", postgres_state="absent", postgres_remove_volumes=True)]}], extra_vars=self.variables)
        sh(["podman", "network", "rm", "-f", f"{self.project}-net"], check=False)

    # --- backup and restore -------------------------------------------------------------------------------------

    def raw_dump(self):
        self.exec("pg_dump", "-Fc", "--host", "/var/run/postgresql", "-f", "/data/postgres/backups/raw.dump", "poststack")

    def raw_restore(self):
        self.exec("dropdb", "--if-exists", "--force", "--host", "/var/run/postgresql", "raw_restore")
        self.exec("createdb", "--host", "/var/run/postgresql", "-O", "poststack", "-T", "template0", "raw_restore")
        self.exec("pg_restore", "--exit-on-error", "-j", "2", "--host", "/var/run/postgresql", "-d", "raw_restore",
                  "/data/postgres/backups/raw.dump")

    def module_dump(self):
        bk.run_backup(bk.DumpSettings(container=self.container, database="poststack", runtime="podman", keep_count=0))

    def module_restore(self):
        bk.run_restore(bk.RestoreSettings(container=self.container, target="module_restore", database="poststack",
                                          runtime="podman", replace=True, jobs=2))

    def playbook_dump(self):
        self.play([self.role("backup", "backup")])

    def playbook_restore(self):
        self.play([self.role("backup", "restore")], backup_restore_target="playbook_restore")

    # --- pgbench ------------------------------------------------------------------------------------------------

    def pgbench(self, port, extra):
        out = sh(["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "poststack", "-c", str(self.args.clients),
                  "-j", "2", "-T", str(self.args.seconds), "-n", *extra, "poststack"], env={"PGPASSWORD": PASSWORD})
        for line in out.splitlines():
            if line.startswith("tps ="):
                return float(line.split()[2])
        raise SystemExit(f"no tps in pgbench output:\n{out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poststack-bench-backup-") as root:
        bench = Bench(args, root)
        try:
            size = bench.setup()
            log("backups")
            raw_dump, module_dump, playbook_dump = interleaved(
                [bench.raw_dump, bench.module_dump, bench.playbook_dump], args.repeat)
            dump_size = os.path.getsize(os.path.join(bench.backups, "raw.dump"))
            log("restores")
            raw_restore, module_restore, playbook_restore = interleaved(
                [bench.raw_restore, bench.module_restore, bench.playbook_restore], args.repeat)
            log("pgbench")
            tps = []
            for label, extra in (("TPC-B-like", []), ("select-only", ["-S"]), ("select-only, connect per transaction", ["-S", "-C"])):
                tps.append((label, bench.pgbench(bench.pg_port, extra), bench.pgbench(bench.pgb_port, extra)))
        finally:
            bench.teardown()
    print(f"\npgbench scale {args.scale} database ({size}; custom-format dump {dump_size / 1e6:.1f} MB), "
          f"median of {args.repeat} runs, seconds\n")
    print("| operation | raw pg_dump / pg_restore | poststack module | ratio | poststack playbook (role) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| backup | {raw_dump:.2f} | {module_dump:.2f} | {raw_dump / module_dump:.2f} | {playbook_dump:.2f} | "
          f"{raw_dump / playbook_dump:.2f} |")
    print(f"| restore | {raw_restore:.2f} | {module_restore:.2f} | {raw_restore / module_restore:.2f} | "
          f"{playbook_restore:.2f} | {raw_restore / playbook_restore:.2f} |")
    print(f"\npgbench, {args.clients} clients, {args.seconds} s each, TPS\n")
    print("| workload | direct | through PgBouncer | ratio |")
    print("|---|---:|---:|---:|")
    for label, direct, pooled in tps:
        print(f"| {label} | {direct:.0f} | {pooled:.0f} | {pooled / direct:.2f} |")


if __name__ == "__main__":
    main()
