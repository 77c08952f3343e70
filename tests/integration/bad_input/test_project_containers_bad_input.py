"""Bad input for the project_containers role: refused before an env file is written or a container is replaced,
with a message naming the entry and the bad value; the running project container keeps its id and its env file,
and no value of an env variable (nor the database password) is printed."""
import pytest

from bad_input_lab import APP_IMAGE, PASSWORD, check_case, fill, role_case, run_cases, stack_script

ROLE = "poststack.core.project_containers"
APP = {"name": "app", "image": APP_IMAGE, "command": ["sleep", "infinity"]}
INVALID = "Invalid project_containers_run: project_containers_run[0] (app): "
SECRET_ENV = "bi-env-secret-never-shown-55d1"
# (id, variables, fragments of the message)
CASES = [
    ("entry-without-name", {"project_containers_run": [{"image": APP_IMAGE}]},
     ["project_containers_run[0] has no name: give each container to run a name; nothing was changed."]),
    ("port-not-a-port", {"project_containers_run": [dict(APP, ports=["notaport"])]},
     [INVALID + "ports entry 'notaport' is not [address:][host port:]container port[/tcp|/udp]", "nothing was changed."]),
    ("port-out-of-range", {"project_containers_run": [dict(APP, ports=["127.0.0.1:70000:8080"])]},
     [INVALID + "ports entry '127.0.0.1:70000:8080' is not", "with ports from 1 to 65535"]),
    ("ports-not-a-list", {"project_containers_run": [dict(APP, ports="8080:8080")]},
     [INVALID + "ports must be a list like"]),
    ("image-missing", {"project_containers_run": [dict(APP, image="localhost/{name}/bi-no-such-image:1")]},
     ["{name}-app: image localhost/{name}/bi-no-such-image:1 does not exist on this host",
      "correct the entry's image; nothing was changed."]),
    ("name-not-lower-case", {"project_containers_run": [dict(APP, name="Web App")]},
     ["project_containers_run[0] (Web App): name 'Web App' must be lower case letters, digits, '.', '_' and '-'"]),
    ("name-twice", {"project_containers_run": [APP, APP]},
     ["project_containers_run[1] (app): the name app is listed twice; nothing was changed."]),
    ("unknown-key", {"project_containers_run": [dict(APP, port=8080)]},
     [INVALID + "unknown key 'port' (known: name, image, ports, env, volumes, command, restart_policy, wait_for_port)"]),
    ("env-value-with-a-line-break", {"project_containers_run": [dict(APP, env={"API_KEY": SECRET_ENV + "\nDB_PASS=x"})]},
     [INVALID + "env API_KEY holds a line break (its value is not shown)", "nothing was changed."]),
    ("env-overrides-the-password", {"project_containers_run": [dict(APP, env={"DB_PASS": SECRET_ENV})]},
     [INVALID + "env DB_PASS is set by the role from project_containers_db_* (set those instead)"]),
    ("env-name-not-a-name", {"project_containers_run": [dict(APP, env={"API KEY": "x"})]},
     [INVALID + "env name 'API KEY' is not a variable name"]),
    ("volume-source-missing", {"project_containers_run": [dict(APP, volumes=["/nonexistent/bi-dir:/data"])]},
     [INVALID + "volumes entry '/nonexistent/bi-dir:/data': /nonexistent/bi-dir does not exist (create it first)"]),
    ("volume-not-a-mount", {"project_containers_run": [dict(APP, volumes=["data"])]},
     [INVALID + "volumes entry 'data' is not source:/container/path[:options]"]),
    ("restart-policy-unknown", {"project_containers_run": [dict(APP, restart_policy="sometimes")]},
     [INVALID + "restart_policy 'sometimes' must be no, always, unless-stopped or on-failure[:N]"]),
    ("wait-for-port-not-a-port", {"project_containers_run": [dict(APP, wait_for_port="http")]},
     [INVALID + "wait_for_port 'http' must be a port number from 1 to 65535"]),
    ("network-missing", {"project_containers_network": "{name}-nonet"},
     ["project_containers_network {name}-nonet does not exist: run the postgres role first", "nothing was changed."]),
    ("name-of-the-pgbouncer-container", {"project_containers_run": [dict(APP, name="pgbouncer")]},
     ["A container named {pgbouncer} exists (running", "that poststack did not create for project {name}",
      "They are left alone and nothing was changed."]),
    ("host-port-held-by-another-container", {"project_containers_run": [dict(APP, ports=["127.0.0.1:{port}:8080"])]},
     ["{name}-app: host port 127.0.0.1:{port} (127.0.0.1:{port}:8080): in use by another process or container.",
      "Free the port or change the entry's ports; nothing was changed."]),
    ("unknown-state", {"project_containers_state": "running"},
     ["value of project_containers_state must be one of: started, stopped, absent, got: running"]),
]


@pytest.fixture(scope="module")
def cases(stack):
    names = {"name": stack.name, "pgbouncer": stack.pgbouncer, "port": str(stack.pgbouncer_port)}
    run = run_cases([(case_id, role_case(case_id, ROLE, fill(variables, **names))) for case_id, variables, _f in CASES],
                    stack.vars(), stack_script(stack))
    run.table = {case_id: fill(fragments, **names) for case_id, _v, fragments in CASES}
    return run


@pytest.mark.parametrize("case_id", [case[0] for case in CASES])
def test_bad_project_container_input_is_refused_and_changes_nothing(cases, case_id):
    check_case(cases, case_id, cases.table[case_id], secrets=(SECRET_ENV, PASSWORD))


def test_the_env_file_still_holds_the_stacks_settings(cases, stack):
    with open(f"{stack.env_dir}/app.env", encoding="utf-8") as handle:
        env = handle.read()
    assert f"DB_PASS={stack.password}\n" in env and SECRET_ENV not in env
    assert cases.run.rc == 0
