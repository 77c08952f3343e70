"""Bad input for the pgbouncer role: refused before pgbouncer.ini, userlist.txt or the container are touched, with a
message naming the variable and its value; the running PgBouncer keeps its container id, its port and its files."""
import subprocess

import pytest

from bad_input_lab import check_case, fill, role_case, run_cases, stack_script

ROLE = "poststack.core.pgbouncer"
INVALID = "Invalid PgBouncer settings: "
# (id, variables, fragments of the message)
CASES = [
    ("unknown-pool-mode", {"pgbouncer_pool_mode": "fast"},
     ["value of pgbouncer_pool_mode must be one of: session, transaction, statement, got: fast"]),
    ("no-users", {"pgbouncer_users": []},
     [INVALID + "pgbouncer_users is empty: list the roles that log in through PgBouncer; nothing was changed."]),
    ("port-out-of-range", {"pgbouncer_publish": "127.0.0.1:99999"},
     [INVALID + "pgbouncer_publish '127.0.0.1:99999' must be empty or address:port with a port from 1 to 65535",
      "nothing was changed."]),
    ("publish-without-port", {"pgbouncer_publish": "127.0.0.1"},
     [INVALID + "pgbouncer_publish '127.0.0.1' must be empty or address:port", "nothing was changed."]),
    ("publish-address-not-an-ip", {"pgbouncer_publish": "999.1.1.1:6432"},
     ["bind address '999.1.1.1' is not an IP address", "nothing was changed"]),
    ("port-held-by-postgres", {"pgbouncer_publish": "127.0.0.1:{postgres_port}"},
     ["pgbouncer_publish 127.0.0.1:{postgres_port} is already in use", "choose a free port for {pgbouncer}",
      "nothing was changed."]),
    ("role-without-scram-password", {"pgbouncer_users": ["bi_no_such_role"]},
     ["cannot pass these roles through with scram-sha-256: bi_no_such_role", "nothing was changed."]),
    ("no-such-postgres-container", {"pgbouncer_postgres_container": "{name}-nope"},
     ["pgbouncer_postgres_container {name}-nope does not exist: start PostgreSQL first", "nothing was changed."]),
    ("no-such-network", {"pgbouncer_network": "{name}-nonet"},
     ["pgbouncer_network {name}-nonet does not exist: set it to PostgreSQL's network", "nothing was changed."]),
    ("setting-overrides-authentication", {"pgbouncer_settings": {"auth_type": "trust"}},
     [INVALID + "pgbouncer_settings.auth_type is set by the role (authentication, listener, auth file): remove it",
      "nothing was changed."]),
    ("setting-with-a-line-break", {"pgbouncer_settings": {"query_wait_timeout": "60\nauth_type = trust"}},
     [INVALID + "pgbouncer_settings.query_wait_timeout holds a line break", "nothing was changed."]),
    ("setting-name-not-a-name", {"pgbouncer_settings": {"Query Wait": 5}},
     [INVALID + "pgbouncer_settings key 'Query Wait' is not a PgBouncer setting name", "nothing was changed."]),
    ("pool-size-zero", {"pgbouncer_default_pool_size": 0},
     [INVALID + "pgbouncer_default_pool_size 0 must be 1 or more; nothing was changed."]),
    ("pool-size-not-a-number", {"pgbouncer_default_pool_size": "lots"},
     ["argument 'pgbouncer_default_pool_size' is of type str and we were unable to convert to int",
      "unable to convert to int: \"'lots'\" cannot be converted to an int"]),
    ("database-with-a-line-break", {"pgbouncer_databases": {"reports": "host=x dbname=r\n* = host=evil"}},
     [INVALID + "pgbouncer_databases.reports holds a line break: a connection string is one line",
      "nothing was changed."]),
    ("missing-image-without-build", {"pgbouncer_image_build": False, "pgbouncer_image_tag": "bi-no-such-tag"},
     ["Image localhost/poststack/pgbouncer:bi-no-such-tag (pgbouncer_image_name:pgbouncer_image_tag) does not exist",
      "build it (pgbouncer_image_build: true) or correct the name; nothing was changed."]),
    ("container-name-of-a-project-container", {"pgbouncer_container_name": "{app}"},
     ["A container named {app} exists (running", "that poststack did not create for PgBouncer",
      "It is left alone and nothing was changed."]),
    ("container-name-invalid", {"pgbouncer_container_name": "{name} pgbouncer"},
     [INVALID + "pgbouncer_container_name '{name} pgbouncer' must start with a letter or digit"]),
]


@pytest.fixture(scope="module")
def cases(stack):
    names = {"name": stack.name, "app": stack.app, "pgbouncer": stack.pgbouncer, "postgres_port": stack.port}
    # The images are current: building is a no-op, so only the cases' own tasks run.
    play_vars = stack.vars(pgbouncer_image_build_base=False)
    run = run_cases([(case_id, role_case(case_id, ROLE, fill(variables, **names))) for case_id, variables, _f in CASES],
                    play_vars, stack_script(stack))
    run.table = {case_id: fill(fragments, **names) for case_id, _v, fragments in CASES}
    return run


@pytest.mark.parametrize("case_id", [case[0] for case in CASES])
def test_bad_pgbouncer_input_is_refused_and_changes_nothing(cases, case_id):
    check_case(cases, case_id, cases.table[case_id])


def test_pgbouncer_still_serves_after_the_bad_runs(cases, stack):
    """Its container is the one of before (the snapshots say so) and it still answers on its port."""
    assert f"{stack.pgbouncer} " in cases.snapshots["before"]
    ready = subprocess.run(["podman", "exec", stack.pgbouncer, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/6432"],
                           capture_output=True, text=True, check=False)
    assert ready.returncode == 0, ready.stderr
    assert "SCRAM-SHA-256$" not in cases.run.stdout
