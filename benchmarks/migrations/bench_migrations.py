"""Migration benchmark: poststack's engine against `psql -1 -f` (the floor), yoyo-migrations and Sqitch.

    benchmarks/migrations/run [--apply 500] [--noop 1000] [--repeat 3]

Starts its own PostgreSQL 15 (durable settings: fsync and synchronous_commit on) and, for every tool, a fresh
database per measurement. Installs what it needs: yoyo-migrations into a venv under $POSTSTACK_CACHE, Sqitch from
Debian (`sqitch libdbd-pg-perl`, root only). Prints a Markdown table; times are wall-clock seconds of the whole
command (process start included), the median of --repeat runs.

  apply N   : apply N generated migrations (CREATE TABLE + index + INSERT each) to an empty database
  no-op M   : re-run with M migrations already applied (nothing to do)
"""

import argparse
import os
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
PSQL = "/usr/lib/postgresql/15/bin/psql"


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


def ensure_sqitch():
    if shutil.which("sqitch") and subprocess.run(["perl", "-MDBD::Pg", "-e1"], capture_output=True, check=False).returncode == 0:
        return shutil.which("sqitch")
    if os.geteuid() != 0:
        log("sqitch missing and not root: apt-get install sqitch libdbd-pg-perl; skipping Sqitch")
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
    """One source of truth, laid out for every tool."""
    dirs = {name: os.path.join(base, name) for name in ("poststack", "yoyo", "sqitch", "psql")}
    for path in dirs.values():
        os.makedirs(path)
    for sub in ("deploy", "revert", "verify"):
        os.makedirs(os.path.join(dirs["sqitch"], sub))
    plan = ["%syntax-version=1.0.0", "%project=bench", ""]
    everything = []
    for version in range(1, count + 1):
        name = "%04d_table_%d" % (version, version)
        write(os.path.join(dirs["poststack"], name + ".sql"), migration_sql(version))
        write(os.path.join(dirs["poststack"], name + ".rollback.sql"), rollback_sql(version))
        write(os.path.join(dirs["yoyo"], name + ".sql"), migration_sql(version))
        write(os.path.join(dirs["yoyo"], name + ".rollback.sql"), rollback_sql(version))
        change = "table_%d" % version
        write(os.path.join(dirs["sqitch"], "deploy", change + ".sql"), "BEGIN;\n%sCOMMIT;\n" % migration_sql(version))
        write(os.path.join(dirs["sqitch"], "revert", change + ".sql"), "BEGIN;\n%sCOMMIT;\n" % rollback_sql(version))
        write(os.path.join(dirs["sqitch"], "verify", change + ".sql"), "SELECT id FROM bench_t%d WHERE false;\n" % version)
        plan.append("%s 2026-01-01T00:00:00Z bench <bench@example.com> # table %d" % (change, version))
        everything.append(migration_sql(version))
    write(os.path.join(dirs["sqitch"], "sqitch.plan"), "\n".join(plan) + "\n")
    write(os.path.join(dirs["sqitch"], "sqitch.conf"), "[core]\n\tengine = pg\n\tplan_file = sqitch.plan\n\ttop_dir = .\n")
    write(os.path.join(dirs["psql"], "all.sql"), "".join(everything))
    return dirs


class Tools:
    def __init__(self, server, yoyo, sqitch):
        self.server = server
        self.yoyo = yoyo
        self.sqitch = sqitch
        self.env = dict(server.env, PYTHONPATH=os.path.join(ROOT, ".collections"), SQITCH_PASSWORD=server.password)

    def command(self, tool, dirs, db):
        dsn = self.server.dsn(db)
        if tool == "poststack":
            return [sys.executable, "-m", "ansible_collections.poststack.core.plugins.module_utils.migrations", "apply",
                    "--dsn", dsn, "--dir", dirs["poststack"]], None
        if tool == "psql -1 -f":
            return [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", os.path.join(dirs["psql"], "all.sql"), dsn], None
        if tool == "yoyo":
            url = "postgresql+psycopg://%s@%s:%d/%s" % (self.server.user, self.server.host, self.server.port, db)
            return [self.yoyo, "apply", "--batch", "--no-config-file", "--database", url, dirs["yoyo"]], None
        if tool == "sqitch":
            target = "db:pg://%s@%s:%d/%s" % (self.server.user, self.server.host, self.server.port, db)
            return [self.sqitch, "--quiet", "deploy", target], dirs["sqitch"]
        raise ValueError(tool)

    def run(self, tool, dirs, db):
        cmd, cwd = self.command(tool, dirs, db)
        start = time.monotonic()
        proc = subprocess.run(cmd, cwd=cwd, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError("%s failed (rc %d): %s %s" % (tool, proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:]))
        return elapsed

    def noop_floor(self, db):
        """psql has no history: its 'no-op' is a connection plus one query, the least any tool must do."""
        start = time.monotonic()
        subprocess.run([PSQL, "-X", "-tAq", "-c", "SELECT count(*) FROM pg_class", self.server.dsn(db)], env=self.env,
                       check=True, capture_output=True)
        return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apply", type=int, default=500)
    parser.add_argument("--noop", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    tools = ["psql -1 -f", "poststack"]
    yoyo = ensure_yoyo()
    tools.append("yoyo")
    sqitch = ensure_sqitch()
    if sqitch:
        tools.append("sqitch")

    base = tempfile.mkdtemp(prefix="poststack-bench-")
    server = start_server(durable=True)
    runner = Tools(server, yoyo, sqitch)
    results = {tool: {} for tool in tools}
    try:
        apply_dirs = generate(os.path.join(base, "apply"), args.apply)
        noop_dirs = generate(os.path.join(base, "noop"), args.noop)
        for tool in tools:
            times = []
            for attempt in range(args.repeat):
                db = server.create_database()
                log("%s: apply %d (run %d)" % (tool, args.apply, attempt + 1))
                times.append(runner.run(tool, apply_dirs, db))
                server.drop_database(db)
            results[tool]["apply"] = statistics.median(times)
        for tool in tools:
            db = server.create_database()
            log("%s: preparing %d applied migrations" % (tool, args.noop))
            if tool == "psql -1 -f":
                runner.run(tool, noop_dirs, db)
                times = [runner.noop_floor(db) for dummy in range(args.repeat)]
            else:
                runner.run(tool, noop_dirs, db)
                times = [runner.run(tool, noop_dirs, db) for dummy in range(args.repeat)]
            results[tool]["noop"] = statistics.median(times)
            server.drop_database(db)
    finally:
        stop_server(server)
        shutil.rmtree(base, ignore_errors=True)

    floor = results["psql -1 -f"]["apply"]
    print("| tool | apply %d migrations (s) | x psql floor | no-op re-run, %d applied (s) |" % (args.apply, args.noop))
    print("|---|---:|---:|---:|")
    for tool in tools:
        label = tool + (" (floor; no-op = connect + 1 query)" if tool == "psql -1 -f" else "")
        print("| %s | %.2f | %.2f | %.3f |" % (label, results[tool]["apply"], results[tool]["apply"] / floor, results[tool]["noop"]))
    print("\nmedian of %d runs; PostgreSQL 15 with fsync=on, synchronous_commit=on; %d CPU(s); %s"
          % (args.repeat, os.cpu_count() or 0, time.strftime("%Y-%m-%d")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
