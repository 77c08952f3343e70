"""Unit tests of the configuration checks that run before the postgres role changes anything
(module_utils/postgres_config.py). PostgreSQL's own verdicts are exercised for real: the host's postgres binary
parses the same arguments the module passes in the image (tests/integration/runtime/test_postgres_bad_input.py
does it through the role)."""
import os
import subprocess

import pytest

from ansible_collections.poststack.core.plugins.module_utils import postgres_config as pc
from ansible_collections.poststack.core.plugins.module_utils.runtime import CommandResult

POSTGRES = "/usr/lib/postgresql/15/bin/postgres"


@pytest.mark.parametrize("memory, problem", [
    ("", None), ("512m", None), ("2G", None), ("6291456", None), ("6m", None),
    ("lots", "postgres_memory 'lots' is not a size: write a number with an optional unit b, k, m or g"),
    ("1.5g", "is not a size"), ("-1g", "is not a size"), ("5m", "below the 6m"), ("100k", "below the 6m"),
])
def test_memory(memory, problem):
    found = pc.memory_problem(memory)
    assert (found is None) if problem is None else (problem in found)


def test_cidrs_and_names():
    assert pc.cidr_problems(["10.0.0.0/8", "::/0", "192.168.1.7/24", "127.0.0.1"]) == []
    assert pc.cidr_problems(["notacidr", "10.0.0.0/33"]) == [
        "postgres_hba_cidrs entry 'notacidr' is not a network address (for example 10.0.0.0/8, 192.168.1.0/24 or ::/0)",
        "postgres_hba_cidrs entry '10.0.0.0/33' is not a network address (for example 10.0.0.0/8, 192.168.1.0/24 or ::/0)",
    ]
    assert pc.name_problems({"work_mem": 1, "auto_explain.log_min_duration": 5, "bad name": 1, "x=y": 2}) == [
        "setting name 'bad name' is not a PostgreSQL parameter name",
        "setting name 'x=y' is not a PostgreSQL parameter name",
    ]


def test_check_argv_renders_like_the_conf_template():
    argv = pc.check_argv({"work_mem": "8MB", "jit": False, "max_connections": 100, "search_path": "a, 'b'"})
    assert argv == ["--config-file=/dev/null", "-c", "data_directory=/tmp", "-c", "hba_file=/dev/null",
                    "-c", "ident_file=/dev/null", "-C", "server_version",
                    "-c", "jit=off", "-c", "max_connections=100", "-c", "search_path=a, 'b'", "-c", "work_mem=8MB"]


class HostPostgres:
    """Runs the module's `postgres` arguments with the host's PostgreSQL 15 as user postgres, as the image would."""

    name, binary = "podman", "/usr/bin/podman"

    def __init__(self):
        self.history = []

    def run(self, args, check=True, timeout=None):  # pylint: disable=unused-argument
        assert args[:3] == ["exec", "demo-postgres", "postgres"]
        proc = subprocess.run(["runuser", "-u", "postgres", "--", POSTGRES, *args[3:]], capture_output=True,
                              text=True, check=False, cwd="/tmp")
        result = CommandResult(list(args), proc.returncode, proc.stdout, proc.stderr)
        self.history.append(result)
        return result


needs_postgres = pytest.mark.skipif(not os.path.exists(POSTGRES), reason="PostgreSQL 15 is not installed")


@needs_postgres
def test_good_settings_pass_with_the_version():
    checked = pc.check_settings(HostPostgres(), "img", {"work_mem": "8MB", "max_connections": 50, "jit": False},
                                running_container="demo-postgres")
    assert checked["ok"] and checked["problems"] == [] and checked["version"].startswith("15.")


@needs_postgres
def test_every_bad_setting_is_named_with_postgresqls_message():
    runtime = HostPostgres()
    checked = pc.check_settings(runtime, "img", {"work_mem": "notasize", "max_connections": -5,
                                                 "shared_buffers": "128MB", "no_such_setting": 1},
                                running_container="demo-postgres")
    assert not checked["ok"]
    assert checked["problems"] == [
        'max_connections = -5: -5 is outside the valid range for parameter "max_connections" (1 .. 262143)',
        'no_such_setting = 1: unrecognized configuration parameter "no_such_setting"',
        'work_mem = notasize: invalid value for parameter "work_mem": "notasize"',
    ]
    assert len(runtime.history) == 5  # all at once, then each of the four alone


def test_a_check_that_could_not_run_is_not_blamed_on_the_settings():
    class Missing(HostPostgres):
        def run(self, args, check=True, timeout=None):  # pylint: disable=unused-argument
            return CommandResult(list(args), 125, "", "Error: localhost/nope:1: image not known")

    checked = pc.check_settings(Missing(), "localhost/nope:1", {"work_mem": "8MB"})
    assert checked["problems"] == ["the settings could not be checked with localhost/nope:1 (rc=125): "
                                   "Error: localhost/nope:1: image not known"]


def test_where_the_check_runs():
    class Runtime:
        name = "podman"

    assert pc.postgres_command(Runtime(), "img", "demo-postgres") == ["exec", "demo-postgres", "postgres"]
    assert pc.postgres_command(Runtime(), "img", None) == [
        "run", "--rm", "--network", "none", "--no-healthcheck", "--pull=never", "--user", "postgres",
        "--entrypoint", "postgres", "img"]


def test_preload_libraries_are_read_from_every_preload_setting():
    assert pc.preload_libraries({"shared_preload_libraries": "pg_stat_statements, 'auto_explain' ",
                                 "session_preload_libraries": "", "work_mem": "8MB"}) == {
        "shared_preload_libraries": ["pg_stat_statements", "'auto_explain'"]}
    assert pc.preload_libraries({"local_preload_libraries": '"$libdir/plugins/x"'}) == {
        "local_preload_libraries": ["$libdir/plugins/x"]}
    assert not pc.preload_libraries({"shared_preload_libraries": ""})


@needs_postgres
@pytest.mark.parametrize("setting, missing", [
    ("pg_stat_statements", []),
    ("pg_stat_statements,auto_explain.so", []),
    ("$libdir/pg_stat_statements", []),
    ("pg_stat_statements, no_such_lib", ["no_such_lib"]),
    ("/nowhere/lib.so", ["/nowhere/lib.so"]),
])
def test_the_library_script_finds_what_the_postgres_install_lacks(setting, missing):
    """The script against the host's PostgreSQL 15 install (the layout of the image: /usr/lib/postgresql/15)."""
    class Shell(HostPostgres):
        def run(self, args, check=True, timeout=None):  # pylint: disable=unused-argument
            assert args[:3] == ["exec", "demo-postgres", "sh"]
            env = dict(os.environ, PATH=os.path.dirname(POSTGRES) + ":" + os.environ["PATH"])
            proc = subprocess.run(["sh", *args[3:]], capture_output=True, text=True, check=False, env=env)
            return CommandResult(list(args), proc.returncode, proc.stdout, proc.stderr)

    problems = pc.check_libraries(Shell(), "img", {"shared_preload_libraries": setting}, "demo-postgres")
    assert problems == ["shared_preload_libraries = %s: library %s is not in image img, and PostgreSQL would not "
                        "start without it; install it in the image or leave it out" % (setting, lib) for lib in missing]


def test_library_check_command_in_a_throwaway_container():
    class Runtime:
        name = "podman"

    argv = pc.library_command(Runtime(), "img", None, ["a", "b"])
    assert argv[:10] == ["run", "--rm", "--network", "none", "--no-healthcheck", "--pull=never", "--user", "postgres",
                         "--entrypoint", "sh"]
    assert argv[10:13] == ["img", "-c", pc.LIBRARY_SCRIPT] and argv[13:] == ["sh", "a", "b"]
