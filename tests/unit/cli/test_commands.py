"""The poststack command's parser and plans (cli/poststack): what each verb runs, and what it refuses before
anything runs."""
import json
import os
import re
import subprocess

import pytest

from poststack import completion, report
from poststack import main as cli
from poststack.commands import Plan, UsageError
from poststack.runner import Collection, Options, argv_for, environment, run


def plan_of(*argv):
    args = cli.build_parser().parse_args(list(argv))
    return cli.with_url(args.plan(args), args)


@pytest.mark.parametrize("argv, playbook, extra_vars", [
    (["container", "start", "--postgres-port", "5433"], "start", {"postgres_host_port": 5433}),
    (["container", "start"], "start", {}),
    (["container", "build", "--image", "base-debian"], "images",
     {"images_postgres": False, "base_image_force": False, "postgres_image_force": False}),
    (["container", "build-project", "--container", "web", "--no-cache"], "containers",
     {"project_containers_force": True, "project_containers_no_cache": True, "project_containers_run": [],
      "project_containers_only": ["web"]}),
    (["container", "stop", "--all"], "stop", {"stop_all": True}),
    (["container", "remove", "--force", "a", "b"], "remove", {"remove_containers": ["a", "b"], "remove_force": True}),
    (["container", "health"], "status", {"status_all": False}),
    (["database", "migrate", "--target-version", "004"], "migrate",
     {"migrations_dry_run": False, "migrations_target_version": 4}),
    (["database", "rollback", "--target-version", "0"], "rollback",
     {"migrations_target_version": 0, "migrations_dry_run": False}),
    (["database", "migrate", "--format", "golang-migrate", "--lint", "error"], "migrate",
     {"migrations_dry_run": False, "migrations_format": "golang-migrate", "migrations_lint": "error"}),
    (["database", "rollback", "--target-version", "2", "--format", "dbmate"], "rollback",
     {"migrations_target_version": 2, "migrations_dry_run": False, "migrations_format": "dbmate"}),
    (["database", "drop-schema", "--yes"], "rollback", {"migrations_target_version": 0}),
    (["database", "verify-migrations"], "migration-admin", {"migrations_admin_state": "verified"}),
    (["database", "unlock-migrations", "--terminate"], "migration-admin",
     {"migrations_admin_state": "unlocked", "migrations_terminate_holder": True}),
    (["database", "baseline", "--version", "012"], "migration-admin",
     {"migrations_admin_state": "baselined", "migrations_dry_run": False, "migrations_baseline_version": 12}),
    (["database", "baseline", "--from", "schema"], "migration-admin",
     {"migrations_admin_state": "baselined", "migrations_dry_run": False, "migrations_baseline_from": "schema"}),
    (["database", "baseline", "--from", "sqitch", "--table", "reg.changes", "--dry-run", "--format", "sqitch"],
     "migration-admin", {"migrations_admin_state": "baselined", "migrations_dry_run": True,
                         "migrations_baseline_from": "sqitch", "migrations_baseline_table": "reg.changes",
                         "migrations_format": "sqitch"}),
    (["database", "restore", "--yes", "--backup", "b1"], "restore",
     {"restore_confirm": True, "backup_restore_replace": False, "backup_restore_backup": "b1"}),
    (["logs", "list", "--category", "container"], "logs", {"logs_category": "containers"}),
    (["logs", "clean", "--days", "3"], "logs", {"logs_clean_days": 3}),
    (["cluster", "switchover", "--to", "node2"], "switchover", {"pgtwin_promoted_node": "node2"}),
    (["config-show"], "config", {}),
])
def test_each_verb_runs_its_playbook_with_its_variables(argv, playbook, extra_vars, monkeypatch):
    monkeypatch.delenv("POSTSTACK_DATABASE_URL", raising=False)
    assert plan_of(*argv) == Plan(playbook, extra_vars)


@pytest.mark.parametrize("argv, message", [
    (["contianer", "start"], "invalid choice: 'contianer'"),
    (["container", "start", "--postgres-port", "0"], "'0' is not a port number from 1 to 65535"),
    (["database", "rollback"], "the following arguments are required: --target-version"),
    (["database", "migrate", "--target-version", "v4"], "'v4' is not a migration version"),
    (["database", "migrate", "--format", "liquibase"], "invalid choice: 'liquibase'"),
    (["logs", "clean", "--days", "0"], "'0' is not a number of days"),
    (["cluster", "switchover"], "the following arguments are required: --to"),
])
def test_usage_errors_exit_2_and_name_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["database", "baseline"], "give --version V (every version up to V) or --from TOOL"),
    (["database", "baseline", "--version", "3", "--from", "dbmate"], "one of the two"),
    (["database", "baseline", "--version", "3", "--table", "public.x"], "--table names the history table of --from"),
    (["database", "baseline", "--from", "schema", "--table", "public.x"], "--table names the history table of --from"),
])
def test_a_baseline_says_what_is_applied_one_way(argv, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        plan_of(*argv)


@pytest.mark.parametrize("argv", [["database", "drop-schema"], ["database", "restore"]])
def test_destructive_verbs_need_yes(argv):
    with pytest.raises(UsageError, match="--yes"):
        plan_of(*argv)


def test_a_url_sets_the_dsn_and_its_password(monkeypatch):
    monkeypatch.delenv("POSTSTACK_DATABASE_URL", raising=False)
    plan = plan_of("database", "migrate", "--url", "postgresql://app:p%40ss%3Aw@db.example:5433/shop")
    assert plan.extra_vars["migrations_dsn"] == "postgresql://app:p%40ss%3Aw@db.example:5433/shop"
    assert plan.extra_vars["migrations_db_password"] == "p@ss:w"
    monkeypatch.setenv("POSTSTACK_DATABASE_URL", "postgresql://app@other:5432/shop")
    assert plan_of("database", "migration-status").extra_vars == {"migrations_dsn": "postgresql://app@other:5432/shop"}
    assert plan_of("container", "status").extra_vars == {"status_all": False}  # only database verbs take it


def test_a_bad_url_is_refused_without_showing_it(monkeypatch):
    monkeypatch.delenv("POSTSTACK_DATABASE_URL", raising=False)
    with pytest.raises(UsageError) as refused:
        plan_of("database", "migrate", "--url", "mysql://root:topsecret@h/db")
    assert "topsecret" not in str(refused.value)


@pytest.mark.parametrize("url, says", [
    ("postgresql://127.0.0.1:5433/poststack", "--url names no user: write it as postgresql://USER[:PASSWORD]@"),
    ("postgresql://app:topsecret@db:5433", "--url names no database: "),
    ("postgresql://app:topsecret@db:5433/", "--url names no database: "),
    ("postgresql:///shop", "--url names no host and no user: "),
    ("postgresql://app:topsecret@db:99999/shop", "--url has a port that is not a number from 1 to 65535"),
    ("postgresql://app:topsecret@db:port/shop", "--url has a port that is not a number"),
    ("http://app:topsecret@db/shop", "--url must start with postgresql://"),
])
def test_a_url_missing_a_part_names_the_part(monkeypatch, url, says):
    monkeypatch.delenv("POSTSTACK_DATABASE_URL", raising=False)
    with pytest.raises(UsageError) as refused:
        plan_of("database", "test-connection", "--url", url)
    assert says in str(refused.value) and "topsecret" not in str(refused.value)
    monkeypatch.setenv("POSTSTACK_DATABASE_URL", url)
    with pytest.raises(UsageError) as refused:
        plan_of("database", "test-connection")
    assert says.replace("--url", "POSTSTACK_DATABASE_URL") in str(refused.value)


def test_variables_go_in_a_file_never_in_the_arguments(tmp_path, monkeypatch):
    monkeypatch.setattr("poststack.runner.ansible_playbook", lambda: "/venv/bin/ansible-playbook")
    collection = Collection(str(tmp_path / "core"), None)
    plan = Plan("migrate", {"migrations_db_password": "hush"}, check=True)
    argv = argv_for(plan, collection, Options(verbose=2), str(tmp_path / "vars.json"))
    assert argv == ["/venv/bin/ansible-playbook", "-i", str(tmp_path / "core" / "inventories" / "local"),
                    str(tmp_path / "core" / "playbooks" / "migrate.yml"), "-e", "@" + str(tmp_path / "vars.json"),
                    "--check", "-vv"]
    argv = argv_for(Plan("status"), collection, Options(inventory="hosts.yml", config_file="c.yml",
                                                        vault_password_file="vp"), "v.json")
    assert argv[1:3] == ["-i", "hosts.yml"]
    # the command's own options are the later -e: they win over the config file
    assert argv[4:8] == ["-e", "@" + os.path.abspath("c.yml"), "-e", "@v.json"]
    assert argv[8:] == ["--vault-password-file", os.path.abspath("vp")]


def test_the_users_ansible_settings_pass_except_those_the_command_owns(monkeypatch, tmp_path):
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", "/secure/vault-pass")
    monkeypatch.setenv("ANSIBLE_REMOTE_USER", "deploy")
    monkeypatch.setenv("ANSIBLE_STDOUT_CALLBACK", "minimal")
    monkeypatch.setenv("ANSIBLE_CONFIG", "/elsewhere/ansible.cfg")
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", "/elsewhere")
    env = environment(Collection(str(tmp_path), None), Options(), str(tmp_path), str(tmp_path / "x.log"))
    assert env["ANSIBLE_VAULT_PASSWORD_FILE"] == "/secure/vault-pass" and env["ANSIBLE_REMOTE_USER"] == "deploy"
    assert "ANSIBLE_STDOUT_CALLBACK" not in env and "ANSIBLE_COLLECTIONS_PATH" not in env
    assert env["ANSIBLE_CONFIG"].endswith("poststack/ansible.cfg")
    as_json = environment(Collection(str(tmp_path), None), Options(json=True, verbose=1), str(tmp_path), "x.log")
    assert as_json["ANSIBLE_VERBOSE_TO_STDERR"] == "1" and "ANSIBLE_LOG_PATH" not in as_json


def test_a_missing_config_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--config-file .*/nope.yml: no such file"):
        run(Plan("status"), Options(config_file=str(tmp_path / "nope.yml")))


def test_bash_completion_knows_every_verb_and_option(tmp_path):
    script = tmp_path / "poststack.bash"
    script.write_text(completion.bash(cli.build_parser()))

    def complete(*words):
        line = " ".join("'%s'" % w for w in words)
        done = subprocess.run(["bash", "-c", 'source "$1"; COMP_WORDS=(%s); COMP_CWORD=%d; _poststack; '
                               'echo "${COMPREPLY[@]}"' % (line, len(words) - 1), "_", str(script)],
                              capture_output=True, text=True, check=True)
        assert done.stderr == ""
        return done.stdout.split()

    assert complete("poststack", "dat") == ["database"]
    assert complete("poststack", "-i", "hosts.yml", "database", "mig") == ["migrate", "migration-status"]
    assert complete("poststack", "container", "build", "--image", "") == [
        "--force", "--help", "--image", "-h", "all", "base-debian", "postgres"]
    assert "--postgres-port" in complete("poststack", "container", "start", "--")


def test_json_report_takes_the_data_of_the_named_task_and_the_failures():
    document = {"plays": [{"tasks": [
        {"task": {"name": "Collect the containers poststack runs"},
         "hosts": {"localhost": {"containers": [{"name": "shop-postgres", "state": "running"}]}}},
        {"task": {"name": "poststack.core.migrations : Read the status of the core schema and of the project's "
                          "migrations"},
         "hosts": {"localhost": {"failed": True, "msg": "cannot connect"}}},
    ]}]}
    data, failed = report.extract("status", json.dumps(document))
    assert data == {"localhost": [{"name": "shop-postgres", "state": "running"}]}
    assert failed == ["poststack.core.migrations : Read the status of the core schema and of the project's "
                      "migrations (localhost): cannot connect"]
    assert report.extract("migration-status", json.dumps(document))[0] == {}
    assert report.extract("config", "not json")[0] is None
