"""`poststack`: the command line of seed 003. Each verb runs one of the collection's playbooks (commands.py) for the
project of the current directory (runner.py). Exit codes: 0 success, 1 the run failed, 2 bad usage."""
from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.parse
from typing import List, Optional

from . import commands, completion
from .commands import Plan, UsageError
from .runner import NotFound, Options, find_collection, run

DATABASE_URL_VERBS = ("create-schema", "migrate", "rollback", "drop-schema", "show-schema", "migration-status",
                      "verify-migrations", "unlock-migrations", "baseline", "test-connection")
LOG_LEVELS = ("debug", "info", "warning", "error")
# the verbs whose data --json prints (report.py reads it from the run)
JSON_VERBS = {("container", "status"), ("container", "health"), ("container", "list"), ("database", "migration-status"),
              ("database", "show-schema"), (None, "config-show")}


class Parser(argparse.ArgumentParser):
    """argparse with the usage error as one paragraph and exit code 2."""

    def error(self, message):
        self.exit(2, "poststack: %s\n%s" % (message, self.format_usage()))


def add_verb(verb_parsers, group, name, text, plan, options) -> None:
    sub = verb_parsers.add_parser(name, help=text, description=text)
    for flags, keywords in options:
        sub.add_argument(*flags, **keywords)
    if (group, name) in JSON_VERBS:
        sub.add_argument("--json", action="store_true", help="print the data as JSON instead of a table")
    if group == "database" and name in DATABASE_URL_VERBS:
        sub.add_argument("--url", help="the database (postgresql://user:password@host:port/db; default: "
                         "POSTSTACK_DATABASE_URL, else the project's PostgreSQL)")
    sub.set_defaults(plan=plan, verb=name)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="poststack", description="PostgreSQL in containers, migrations, backups and clusters for "
                    "the project of the current directory (its .env, migrations/, containers/).")
    parser.add_argument("--config-file", metavar="FILE", help="a YAML file of settings (Ansible variables)")
    level = os.environ.get("POSTSTACK_LOG_LEVEL", "info").lower()
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=level if level in LOG_LEVELS else "info",
                        help="debug shows Ansible's own output (default: POSTSTACK_LOG_LEVEL or info)")
    parser.add_argument("--inventory", "-i", metavar="INVENTORY",
                        help="run against these hosts instead of this machine (an Ansible inventory)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="Ansible's own output (-vvv: more)")
    parser.add_argument("--vault-password-file", metavar="FILE", help="for an inventory or --config-file with vaulted "
                        "values (ANSIBLE_VAULT_PASSWORD_FILE works too)")
    parser.add_argument("--ask-vault-pass", action="store_true", help="ask for the vault password")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)
    groups.required = True
    for group, verbs in commands.VERBS.items():
        if group is None:
            verb_parsers = groups
        else:
            group_parser = groups.add_parser(group, help=commands.GROUP_HELP[group],
                                             description=commands.GROUP_HELP[group])
            verb_parsers = group_parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
            verb_parsers.required = True
        for name, text, plan, options in verbs:
            add_verb(verb_parsers, group, name, text, plan, options)
    groups.add_parser("version", help="the versions of poststack, its collection and Ansible").set_defaults(
        plan=None, verb="version")
    shells = groups.add_parser("completion", help="print the shell completion script: eval \"$(poststack completion bash)\"")
    shells.add_argument("shell", choices=["bash"])
    shells.set_defaults(plan=None, verb="completion")
    return parser


def check_url(url: str, name: str = "--url") -> urllib.parse.SplitResult:
    """The database URL's parts; refused (a usage error naming the missing part) when it lacks one the playbooks
    need. The URL itself may hold a password, so only its form is shown."""
    form = "write it as postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port
    except ValueError:
        raise UsageError("%s has a port that is not a number from 1 to 65535: %s" % (name, form)) from None
    if parsed.scheme not in ("postgresql", "postgres"):
        raise UsageError("%s must start with postgresql:// (or postgres://): %s" % (name, form))
    missing = [part for part, value in (("host", parsed.hostname), ("user", parsed.username),
                                        ("database", parsed.path.lstrip("/"))) if not value]
    if missing:
        raise UsageError("%s names no %s: %s" % (name, " and no ".join(missing), form))
    if port == 0:
        raise UsageError("%s has port 0: %s" % (name, form))
    return parsed


def with_url(plan: Plan, args) -> Plan:
    """The database verbs (those with --url) work on --url, else POSTSTACK_DATABASE_URL, when one is given."""
    url = getattr(args, "url", None) or (os.environ.get("POSTSTACK_DATABASE_URL") if hasattr(args, "url") else None)
    if url:
        parsed = check_url(url, "--url" if getattr(args, "url", None) else "POSTSTACK_DATABASE_URL")
        plan.extra_vars["migrations_dsn"] = url
        if parsed.password is not None:
            plan.extra_vars["migrations_db_password"] = urllib.parse.unquote(parsed.password)
    return plan


def version_text() -> str:
    lines = []
    try:
        from importlib.metadata import version  # pylint: disable=import-outside-toplevel
        lines.append("poststack %s" % version("poststack"))
    except Exception:  # pylint: disable=broad-except  # a checkout, not installed
        lines.append("poststack (not installed: a checkout)")
    collection = find_collection()
    with open(os.path.join(collection.root, "galaxy.yml"), encoding="utf-8") as handle:
        found = re.search(r"^version:\s*(\S+)", handle.read(), re.MULTILINE)
    lines.append("poststack.core %s (%s)" % (found.group(1) if found else "?", collection.root))
    try:
        from ansible.release import __version__ as ansible_version  # pylint: disable=import-outside-toplevel
        lines.append("ansible-core %s" % ansible_version)
    except ImportError:
        lines.append("ansible-core: not installed")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.verb == "version":
            print(version_text())
            return 0
        if args.verb == "completion":
            print(completion.bash(parser), end="")
            return 0
        plan = with_url(args.plan(args), args)
        options = Options(inventory=args.inventory, config_file=args.config_file, verbose=args.verbose,
                          log_level=args.log_level, json=getattr(args, "json", False),
                          vault_password_file=args.vault_password_file, ask_vault_pass=args.ask_vault_pass)
        return run(plan, options)
    except UsageError as exc:
        print("poststack: %s" % exc, file=sys.stderr)
        return 2
    except NotFound as exc:
        print("poststack: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("poststack: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print("poststack: %s" % exc, file=sys.stderr)
        return 1
