"""The verbs of seed 003, each as the collection playbook it runs and the variables it passes.

A verb is a function of the parsed arguments that returns a Plan; the parser (main.py) is built from VERBS, so the
table here is the one place that says what each command does."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Tuple


@dataclass
class Plan:
    playbook: str  # the collection's playbook, without .yml
    extra_vars: Dict[str, Any] = field(default_factory=dict)
    check: bool = False


class UsageError(Exception):
    """Bad arguments the parser could not see (exit code 2)."""


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError("%r is not a port number from 1 to 65535" % text)
    return int(text)


def _version(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError("%r is not a migration version (a number such as 004)" % text)
    return int(text)


def _days(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("%r is not a number of days (1 or more)" % text)
    return int(text)


# --- container ------------------------------------------------------------------------------------------------

def container_build(args) -> Plan:
    # postgres-debian is built on base-debian, so postgres and all build both; base-debian alone skips postgres.
    return Plan("images", {"images_postgres": args.image != "base-debian", "base_image_force": args.force,
                           "postgres_image_force": args.force})


def container_build_project(args) -> Plan:
    # build only (seed 003): `container start` runs what project_containers_run lists
    values: Dict[str, Any] = {"project_containers_force": True, "project_containers_no_cache": args.no_cache,
                              "project_containers_run": []}
    if args.container:
        values["project_containers_only"] = [args.container]
    return Plan("containers", values)


def container_start(args) -> Plan:
    return Plan("start", {"postgres_host_port": args.postgres_port} if args.postgres_port else {})


def container_stop(args) -> Plan:
    values: Dict[str, Any] = {"stop_all": args.all}
    if args.names:
        values["stop_containers"] = args.names
    return Plan("stop", values)


def container_remove(args) -> Plan:
    return Plan("remove", {"remove_containers": args.names, "remove_force": args.force})


def container_status(args) -> Plan:
    return Plan("status", {"status_all": args.all})


def container_clean(args) -> Plan:
    return Plan("clean", {"clean_all": args.all})


# --- database -------------------------------------------------------------------------------------------------

FORMAT_OPTION = (("--format",), dict(choices=["auto", "poststack", "golang-migrate", "dbmate", "flyway", "sqitch"],
                                     help="how the migration files are laid out (default auto)"))


def _files(args, values: Dict[str, Any]) -> Dict[str, Any]:
    """--format and --lint, when given (the role's defaults otherwise)."""
    if getattr(args, "format", None):
        values["migrations_format"] = args.format
    if getattr(args, "lint", None):
        values["migrations_lint"] = args.lint
    return values


def database_migrate(args) -> Plan:
    values: Dict[str, Any] = {"migrations_dry_run": args.dry_run}
    if args.target_version is not None:
        values["migrations_target_version"] = args.target_version
    return Plan("migrate", _files(args, values))


def database_rollback(args) -> Plan:
    return Plan("rollback", _files(args, {"migrations_target_version": args.target_version,
                                          "migrations_dry_run": args.dry_run}))


def database_baseline(args) -> Plan:
    if (args.version is None) == (args.from_tool is None):
        raise UsageError("baseline records migrations as applied without running them: give --version V (every "
                         "version up to V) or --from TOOL (what that tool's history table says; --from schema: the "
                         "live schema as the first migration), one of the two")
    if args.table and args.from_tool in (None, "schema"):
        raise UsageError("--table names the history table of --from TOOL: give --from golang-migrate, dbmate, "
                         "flyway or sqitch too")
    values: Dict[str, Any] = {"migrations_admin_state": "baselined", "migrations_dry_run": args.dry_run}
    if args.version is not None:
        values["migrations_baseline_version"] = args.version
    else:
        values["migrations_baseline_from"] = args.from_tool
    if args.table:
        values["migrations_baseline_table"] = args.table
    return Plan("migration-admin", _files(args, values))


def database_drop_schema(args) -> Plan:
    if not args.yes:
        raise UsageError("drop-schema runs every rollback of the project's migrations (its tables and data go): "
                         "add --yes to confirm")
    return Plan("rollback", {"migrations_target_version": 0})


def database_backup(_args) -> Plan:
    return Plan("backup")


def database_restore(args) -> Plan:
    if not args.yes:
        raise UsageError("restore replaces data: add --yes to confirm")
    values: Dict[str, Any] = {"restore_confirm": True, "backup_restore_replace": args.replace}
    if args.backup:
        values["backup_restore_backup"] = args.backup
    if args.target:
        values["backup_restore_target"] = args.target
    return Plan("restore", values)


# --- config and logs ------------------------------------------------------------------------------------------

def logs_list(args) -> Plan:
    # seed 003 says container, the log directory is containers/
    return Plan("logs", {"logs_category": {"container": "containers"}.get(args.category, args.category)})


def logs_clean(args) -> Plan:
    return Plan("logs", {"logs_clean_days": args.days})


def cluster_switchover(args) -> Plan:
    return Plan("switchover", {"pgtwin_promoted_node": args.to})


Option = Tuple[Tuple[str, ...], Dict[str, Any]]
Verb = Tuple[str, str, Callable[[Any], Plan], List[Option]]

# group -> [(verb, help, plan, [(flags, add_argument keywords)])]; a group of None holds top-level verbs.
VERBS: Dict[Any, List[Verb]] = {
    "container": [
        ("build", "build the poststack images (base-debian, postgres-debian); unchanged images are not rebuilt",
         container_build,
         [(("--image",), dict(choices=["postgres", "base-debian", "all"], default="all", help="which image (default: all)")),
          (("--force",), dict(action="store_true", help="rebuild even when unchanged"))]),
        ("build-project", "build the project's containers (containers/*/Dockerfile)", container_build_project,
         [(("--container",), dict(metavar="NAME", help="only this container")),
          (("--no-cache",), dict(action="store_true", help="build without the layer cache"))]),
        ("start", "start PostgreSQL for this project, apply its migrations, start its containers", container_start,
         [(("--postgres-port",), dict(type=_port, metavar="PORT", help="host port (default: .env or 5432)"))]),
        ("stop", "stop this project's containers", container_stop,
         [(("--all",), dict(action="store_true", help="every poststack container on the host")),
          (("names",), dict(nargs="*", metavar="NAME", help="only these containers"))]),
        ("remove", "remove containers (volumes stay)", container_remove,
         [(("--force",), dict(action="store_true", help="also running ones")),
          (("names",), dict(nargs="+", metavar="NAME", help="the containers to remove"))]),
        ("status", "the project's containers: state, health, ports, database size and schema", container_status,
         [(("--all",), dict(action="store_true", help="every poststack project on the host"))]),
        ("health", "the same as status (health checks run)", container_status,
         [(("--all",), dict(action="store_true", help="every poststack project on the host"))]),
        ("list", "the same as status", container_status,
         [(("--all",), dict(action="store_true", help="every poststack project on the host"))]),
        ("clean", "remove the project's stopped containers, dangling images and old logs", container_clean,
         [(("--all",), dict(action="store_true", help="every project's"))]),
    ],
    "database": [
        ("create-schema", "apply the core schema and the project's migrations", database_migrate,
         [(("--target-version",), dict(type=_version, default=None, help=argparse.SUPPRESS)),
          (("--dry-run",), dict(action="store_true", help=argparse.SUPPRESS))]),
        ("migrate", "apply pending migrations", database_migrate,
         [(("--target-version",), dict(type=_version, metavar="V", help="stop at this version")),
          (("--dry-run",), dict(action="store_true", help="run them in a transaction that is rolled back")),
          FORMAT_OPTION,
          (("--lint",), dict(choices=["error", "warn", "off"],
                             help="the safe-DDL lint: warn (default), error (refuse unsafe DDL), off"))]),
        ("rollback", "roll back to a version (its rollback scripts, newest first)", database_rollback,
         [(("--target-version",), dict(type=_version, metavar="V", required=True, help="the version to keep")),
          (("--dry-run",), dict(action="store_true", help="run them in a transaction that is rolled back")),
          FORMAT_OPTION]),
        ("drop-schema", "roll back every migration of the project", database_drop_schema,
         [(("--yes",), dict(action="store_true", help="confirm that the project's tables and data go"))]),
        ("show-schema", "the applied and pending migrations", lambda _a: Plan("migration-status"), []),
        ("migration-status", "the applied and pending migrations", lambda _a: Plan("migration-status"), []),
        ("verify-migrations", "compare applied migrations with their files and run their verify scripts",
         lambda _a: Plan("migration-admin", {"migrations_admin_state": "verified"}), []),
        ("unlock-migrations", "show, or end (--terminate), the session holding the migration lock",
         lambda a: Plan("migration-admin", {"migrations_admin_state": "unlocked",
                                            "migrations_terminate_holder": a.terminate}),
         [(("--terminate",), dict(action="store_true", help="terminate the session that holds the lock"))]),
        ("baseline", "adopt a database that was there before poststack: record migrations as applied without "
                     "running them", database_baseline,
         [(("--version",), dict(type=_version, metavar="V", help="every version up to V is applied")),
          (("--from",), dict(dest="from_tool", choices=["golang-migrate", "dbmate", "flyway", "sqitch", "schema"],
                             help="what that tool's history table says is applied; schema: the live schema "
                                  "(pg_dump --schema-only) written as the first migration, 001_baseline.sql")),
          (("--table",), dict(metavar="SCHEMA.TABLE", help="that tool's history table, when not at its default place")),
          (("--dry-run",), dict(action="store_true", help="show what would be recorded, record nothing")),
          FORMAT_OPTION]),
        ("test-connection", "log in to the project's PostgreSQL (changes nothing)",
         lambda _a: Plan("test-connection"), []),
        ("backup", "take a backup of the project's database", database_backup, []),
        ("restore", "restore a backup into a new database, then swap it in (the newest good one unless --backup)",
         database_restore,
         [(("--backup",), dict(metavar="NAME", help="the backup to restore")),
          (("--target",), dict(metavar="DB", help="the database to restore into (default: the project's)")),
          (("--replace",), dict(action="store_true", help="replace the target when it exists")),
          (("--yes",), dict(action="store_true", help="confirm that data is replaced"))]),
    ],
    "logs": [
        ("list", "the log files", logs_list,
         [(("--category",), dict(choices=["all", "main", "container", "database"], default="all",
                                 help="which logs (default: all)"))]),
        ("clean", "remove log files older than N days", logs_clean,
         [(("--days",), dict(type=_days, default=7, metavar="N", help="default 7"))]),
        ("size", "the size of the logs", lambda _a: Plan("logs"), []),
    ],
    "cluster": [
        ("status", "the pgtwin cluster: mode, roles, replication", lambda _a: Plan("cluster-status"), []),
        ("switchover", "move the primary to the other node", cluster_switchover,
         [(("--to",), dict(metavar="NODE", required=True, help="the node to promote"))]),
    ],
    None: [
        ("config-show", "the settings a run would use and where each comes from (secrets masked)",
         lambda _a: Plan("config"), []),
        ("config-validate", "check the settings without changing anything", lambda _a: Plan("config"), []),
    ],
}

GROUP_HELP = {
    "container": "images, PostgreSQL and the project's containers",
    "database": "migrations, backups, connection",
    "logs": "the project's log files",
    "cluster": "pgtwin clusters (with --inventory)",
}
