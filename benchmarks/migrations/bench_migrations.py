"""Migration benchmark: poststack (its engine, and through Ansible as users run it) against `psql -1 -f` (the floor),
dbmate, yoyo-migrations and Sqitch, in one run on one PostgreSQL 15 (fsync and synchronous_commit on).

    benchmarks/migrations/run [--apply 500] [--noop 1000] [--rounds 10] [--peer-rounds 3] [--no-ansible]

  apply N      N generated migrations (CREATE TABLE + index + INSERT each) applied to an empty database
  no-op M      the same command again with M migrations applied (nothing to do)
  rollback N   every one of N applied migrations rolled back (dbmate rolls back one per command: N commands)

Rounds are interleaved: each round runs every tool once, in a shuffled order, on a fresh database of its own, so
that a slow moment of the machine falls on all of them. poststack's engine and the floor run in every round
(--rounds), their ratio is taken per round, and the table gives its median and 90th percentile; the peers run in
the first --peer-rounds rounds (dbmate's rollback in one: it takes minutes). Times are wall-clock seconds of the
whole command, the process's start included. The goals are issue 18's: engine apply <= 1.5x the floor at the 90th
percentile, rollback of 500 <= 1 s (engine) and <= 2.5 s (through Ansible), no-op at 1,000 files <= 1.5 s through
playbooks/migrate.yml.

Installs what it needs: yoyo-migrations into a venv and dbmate from npm under $POSTSTACK_CACHE, Sqitch from Debian
(root only); a peer that cannot be installed is left out and named.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from pg_server import start_server, stop_server  # noqa: E402

CACHE = os.environ.get("POSTSTACK_CACHE", os.path.expanduser("~/.cache/poststack"))
YOYO_VENV = os.path.join(CACHE, "bench-yoyo-venv")
YOYO_VERSION = "9.0.0"
DBMATE_PREFIX = os.path.join(CACHE, "bench-dbmate")
DBMATE_VERSION = "2.36.0"
PSQL = "/usr/lib/postgresql/15/bin/psql"
FLOOR, ENGINE, ANSIBLE = "psql -1 -f", "poststack engine", "poststack through Ansible"
ENGINE_CLI = "ansible_collections.poststack.core.plugins.module_utils.migrations"


def log(message):
    sys.stderr.write("[bench] %s\n" % message)
    sys.stderr.flush()


def ensure_yoyo():
    yoyo = os.path.join(YOYO_VENV, "bin", "yoyo")
    if not os.path.exists(yoyo):
        log("installing yoyo-migrations %s into %s" % (YOYO_VERSION, YOYO_VENV))
        subprocess.run([sys.executable, "-m", "venv", YOYO_VENV], check=True)
        subprocess.run([os.path.join(YOYO_VENV, "bin", "pip"), "install", "-q", "yoyo-migrations==%s" % YOYO_VERSION,
                        "psycopg[binary]>=3.1"], check=True)
    return yoyo


def ensure_dbmate():
    dbmate = os.path.join(DBMATE_PREFIX, "node_modules", ".bin", "dbmate")
    if not os.path.exists(dbmate):
        if not shutil.which("npm"):
            log("npm missing: dbmate left out")
            return None
        log("installing dbmate %s from npm into %s" % (DBMATE_VERSION, DBMATE_PREFIX))
        if subprocess.run(["npm", "install", "--prefix", DBMATE_PREFIX, "dbmate@%s" % DBMATE_VERSION],
                          capture_output=True, check=False).returncode != 0:
            log("npm install dbmate failed: dbmate left out")
            return None
    return dbmate


def ensure_sqitch():
    if shutil.which("sqitch") and subprocess.run(["perl", "-MDBD::Pg", "-e1"], capture_output=True, check=False).returncode == 0:
        return shutil.which("sqitch")
    if os.geteuid() != 0:
        log("sqitch missing and not root: apt-get install sqitch libdbd-pg-perl; Sqitch left out")
        return None
    log("installing sqitch and libdbd-pg-perl from Debian")
    subprocess.run(["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "--no-install-recommends",
                    "sqitch", "libdbd-pg-perl"], check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                   stdout=subprocess.DEVNULL)
    return shutil.which("sqitch")


def migration_sql(version):
    return ("CREATE TABLE bench_t%d (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());\n"
            "CREATE INDEX bench_t%d_name_idx ON bench_t%d (name);\n"
            "INSERT INTO bench_t%d (id, name) VALUES (1, 'row %d');\n" % (version, version, version, version, version))


def rollback_sql(version):
    return "DROP TABLE bench_t%d;\n" % version


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def generate(base, count):
    """One set of migrations, laid out for every tool."""
    dirs = {name: os.path.join(base, name) for name in ("poststack", "yoyo", "sqitch", "psql", "dbmate")}
    for path in dirs.values():
        os.makedirs(path)
    for sub in ("deploy", "revert", "verify"):
        os.makedirs(os.path.join(dirs["sqitch"], sub))
    plan = ["%syntax-version=1.0.0", "%project=bench", ""]
    for version in range(1, count + 1):
        name = "%04d_table_%d" % (version, version)
        for tool in ("poststack", "yoyo"):
            write(os.path.join(dirs[tool], name + ".sql"), migration_sql(version))
            write(os.path.join(dirs[tool], name + ".rollback.sql"), rollback_sql(version))
        write(os.path.join(dirs["dbmate"], name + ".sql"),
              "-- migrate:up\n%s\n-- migrate:down\n%s" % (migration_sql(version), rollback_sql(version)))
        change = "table_%d" % version
        write(os.path.join(dirs["sqitch"], "deploy", change + ".sql"), "BEGIN;\n%sCOMMIT;\n" % migration_sql(version))
        write(os.path.join(dirs["sqitch"], "revert", change + ".sql"), "BEGIN;\n%sCOMMIT;\n" % rollback_sql(version))
        write(os.path.join(dirs["sqitch"], "verify", change + ".sql"), "SELECT id FROM bench_t%d WHERE false;\n" % version)
        plan.append("%s 2026-01-01T00:00:00Z bench <bench@example.com> # table %d" % (change, version))
    write(os.path.join(dirs["sqitch"], "sqitch.plan"), "\n".join(plan) + "\n")
    write(os.path.join(dirs["sqitch"], "sqitch.conf"), "[core]\n\tengine = pg\n\tplan_file = sqitch.plan\n\ttop_dir = .\n")
    write(os.path.join(dirs["psql"], "up.sql"), "".join(migration_sql(v) for v in range(1, count + 1)))
    write(os.path.join(dirs["psql"], "down.sql"), "".join(rollback_sql(v) for v in range(count, 0, -1)))
    return dirs


class Tools:
    """The command of each tool for each operation, run against one database."""

    def __init__(self, server, peers, work):
        self.server = server
        self.peers = peers
        self.work = work
        project = os.path.join(work, "project")  # an empty project: the checkout's demo settings stay out
        os.makedirs(project, exist_ok=True)
        self.env = dict(server.env, PYTHONPATH=os.path.join(ROOT, ".collections"), SQITCH_PASSWORD=server.password,
                        POSTSTACK_PROJECT_DIR=project, ANSIBLE_LOCALHOST_WARNING="false")
        inventory = os.path.join(work, "inventory.ini")
        write(inventory, "localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
        self.inventory = inventory

    def url(self, db, scheme="postgres", password=False):
        """The database's URL; with ``password`` for dbmate, which takes it from DATABASE_URL in its environment
        (never in an argument list: yoyo's URL has none, libpq reads PGPASSWORD)."""
        return "%s://%s%s@%s:%d/%s?sslmode=disable" % (scheme, self.server.user,
                                                       ":" + self.server.password if password else "",
                                                       self.server.host, self.server.port, db)

    def ansible(self, playbook, dirs, db, **extra):
        variables = dict(migrations_path=dirs["poststack"], migrations_db_host=self.server.host,
                         migrations_db_port=self.server.port, migrations_db_name=db,
                         migrations_db_user=self.server.user, **extra)
        vars_file = os.path.join(self.work, "vars-%s.json" % db)
        write(vars_file, json.dumps(variables))
        return [["ansible-playbook", "-i", self.inventory, "-e", "@" + vars_file,
                 os.path.join(ROOT, "playbooks", playbook)]]

    def commands(self, tool, operation, dirs, db, count):
        """The commands (run one after another, timed together), their working directory and environment."""
        dsn = self.server.dsn(db)
        engine = [sys.executable, "-m", ENGINE_CLI]
        sqitch_target = "db:pg://%s@%s:%d/%s" % (self.server.user, self.server.host, self.server.port, db)
        dbmate = [self.peers.get("dbmate") or "dbmate", "--migrations-dir", dirs["dbmate"], "--no-dump-schema"]
        table = {
            (FLOOR, "apply"): [[PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f",
                                os.path.join(dirs["psql"], "up.sql"), dsn]],
            (FLOOR, "noop"): [[PSQL, "-X", "-tAq", "-c", "SELECT count(*) FROM pg_class", dsn]],
            (FLOOR, "rollback"): [[PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f",
                                   os.path.join(dirs["psql"], "down.sql"), dsn]],
            (ENGINE, "apply"): [engine + ["apply", "--dsn", dsn, "--dir", dirs["poststack"]]],
            (ENGINE, "rollback"): [engine + ["rollback", "--target", "0", "--dsn", dsn, "--dir", dirs["poststack"]]],
            ("dbmate", "apply"): [dbmate + ["up"]],
            ("dbmate", "rollback"): [dbmate + ["rollback"]] * count,
            ("yoyo", "apply"): [[self.peers.get("yoyo") or "yoyo", "apply", "--batch", "--no-config-file",
                                 "--database", self.url(db, "postgresql+psycopg"), dirs["yoyo"]]],
            ("yoyo", "rollback"): [[self.peers.get("yoyo") or "yoyo", "rollback", "--batch", "--all", "--no-config-file",
                                    "--database", self.url(db, "postgresql+psycopg"), dirs["yoyo"]]],
            ("sqitch", "apply"): [[self.peers.get("sqitch") or "sqitch", "--quiet", "deploy", sqitch_target]],
            ("sqitch", "rollback"): [[self.peers.get("sqitch") or "sqitch", "--quiet", "revert", "-y", sqitch_target]],
        }
        if tool == ANSIBLE:
            if operation == "rollback":
                return self.ansible("rollback.yml", dirs, db, migrations_target_version=0), None, self.env
            return self.ansible("migrate.yml", dirs, db), None, self.env
        if operation == "noop" and tool != FLOOR:
            operation = "apply"
        env = dict(self.env, DATABASE_URL=self.url(db, password=True)) if tool == "dbmate" else self.env
        return table[(tool, operation)], dirs["sqitch"] if tool == "sqitch" else None, env

    def run(self, tool, operation, dirs, db, count):
        argvs, cwd, env = self.commands(tool, operation, dirs, db, count)
        start = time.monotonic()
        for argv in argvs:
            proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError("%s %s failed (rc %d): %s %s"
                                   % (tool, operation, proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:]))
        return time.monotonic() - start


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(server, runner, tools, operation, dirs, count, rounds, peer_rounds, rng, prepared):
    """{tool: [seconds per round]} for one operation, rounds interleaved; ``prepared`` databases for the no-op."""
    times = {tool: [] for tool in tools}
    for number in range(rounds):
        order = [tool for tool in tools if tool in (FLOOR, ENGINE) or number < peer_rounds.get(tool, 0)]
        rng.shuffle(order)
        for tool in order:
            if operation == "noop":
                times[tool].append(runner.run(tool, operation, dirs, prepared[tool], count))
                continue
            db = server.create_database()
            try:
                if operation == "rollback":
                    runner.run(FLOOR if tool == FLOOR else (ENGINE if tool == ANSIBLE else tool), "apply", dirs, db,
                               count)
                times[tool].append(runner.run(tool, operation, dirs, db, count))
            finally:
                server.drop_database(db)
        log("%s round %d/%d: %s" % (operation, number + 1, rounds,
                                    ", ".join("%s %.2f s" % (t, times[t][-1]) for t in order)))
    return times


def row(tool, times, floor_times):
    if not times:
        return "| %s | - | - | - | 0 |" % tool
    paired = [mine / floor for mine, floor in zip(times, floor_times)]
    return "| %s | %.3f | %.2f | %.2f | %d |" % (tool, statistics.median(times), statistics.median(paired),
                                                 percentile(paired, 0.9), len(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apply", type=int, default=500)
    parser.add_argument("--noop", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the engine and the floor")
    parser.add_argument("--peer-rounds", type=int, default=3, help="rounds of the peers and of Ansible")
    parser.add_argument("--no-ansible", action="store_true", help="leave out the rows through Ansible")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()

    peers = {"dbmate": ensure_dbmate(), "yoyo": ensure_yoyo(), "sqitch": ensure_sqitch()}
    peers = {name: path for name, path in peers.items() if path}
    tools = [FLOOR, ENGINE] + ([] if args.no_ansible else [ANSIBLE]) + sorted(peers)
    peer_rounds = {tool: min(args.peer_rounds, args.rounds) for tool in tools}
    rollback_rounds = dict(peer_rounds, dbmate=1)
    rng = random.Random(args.seed)

    work = tempfile.mkdtemp(prefix="poststack-bench-")
    server = start_server(durable=True)
    runner = Tools(server, peers, work)
    try:
        apply_dirs = generate(os.path.join(work, "apply"), args.apply)
        noop_dirs = generate(os.path.join(work, "noop"), args.noop)
        applied = measure(server, runner, tools, "apply", apply_dirs, args.apply, args.rounds, peer_rounds, rng, {})
        prepared = {}
        for tool in tools:
            prepared[tool] = server.create_database()
            log("%s: %d migrations applied for the no-op" % (tool, args.noop))
            runner.run(tool, "apply", noop_dirs, prepared[tool], args.noop)
        noop = measure(server, runner, tools, "noop", noop_dirs, args.noop, args.rounds, peer_rounds, rng, prepared)
        rolled = measure(server, runner, tools, "rollback", apply_dirs, args.apply, args.rounds, rollback_rounds, rng, {})
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)

    for title, times in (("apply %d migrations" % args.apply, applied), ("no-op, %d applied" % args.noop, noop),
                         ("rollback of %d" % args.apply, rolled)):
        print("\n%s: seconds (median), and x the floor in the same round (median, 90th percentile)\n" % title)
        print("| tool | seconds | x floor (median) | x floor (p90) | rounds |")
        print("|---|---:|---:|---:|---:|")
        for tool in tools:
            label = {FLOOR: "psql -1 -f (the floor%s)" % ("; no-op: connect + 1 query" if times is noop else ""),
                     ANSIBLE: "poststack, %s" % ("rollback.yml" if times is rolled else "migrate.yml")}.get(tool, tool)
            print(row(label, times[tool], times[FLOOR]))
    engine_p90 = percentile([e / f for e, f in zip(applied[ENGINE], applied[FLOOR])], 0.9)
    goals = [("engine apply, p90 of x floor", engine_p90, 1.5),
             ("engine rollback of %d, s" % args.apply, statistics.median(rolled[ENGINE]), 1.0)]
    if not args.no_ansible:
        goals += [("migrate.yml no-op at %d, s" % args.noop, statistics.median(noop[ANSIBLE]), 1.5),
                  ("rollback.yml of %d, s" % args.apply, statistics.median(rolled[ANSIBLE]), 2.5)]
    print("\n| goal (issue 18) | measured | goal | met |\n|---|---:|---:|---|")
    for name, value, goal in goals:
        print("| %s | %.2f | %.2f | %s |" % (name, value, goal, "yes" if value <= goal else "NO"))
    print("\nPostgreSQL 15, fsync=on, synchronous_commit=on; %d CPU(s); load %.1f; %s; peers: %s"
          % (os.cpu_count() or 0, os.getloadavg()[0], time.strftime("%Y-%m-%d"),
             ", ".join(sorted(peers)) or "none installed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
