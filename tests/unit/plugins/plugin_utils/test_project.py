"""Unit tests of how a run finds its project (plugin_utils/project.py, config.project_dir): the directory the user
runs in or POSTSTACK_PROJECT_DIR, its .env and poststack.yml, its name, and a state directory of its own."""
import os

import pytest

from ansible_collections.poststack.core.plugins.plugin_utils import config as cfg
from ansible_collections.poststack.core.plugins.plugin_utils import project as prj


def make_project(path, env_text=None, migrations=True):
    path.mkdir(parents=True, exist_ok=True)
    if env_text is not None:
        (path / ".env").write_text(env_text)
    if migrations:
        (path / "migrations").mkdir(exist_ok=True)
    return path


def test_the_current_directory_is_the_project(tmp_path):
    shop = make_project(tmp_path / "Shop Front", "POSTSTACK_POSTGRES_HOST_PORT=5491\n")
    found = prj.find_project({"HOME": str(tmp_path)}, cwd=str(shop))
    assert found.dir == str(shop) and found.dir_source == "current directory"
    assert found.name == "shop-front" and found.name_source == "the project directory's name"
    assert found.env_file == str(shop / ".env") and found.config_file == str(shop / "poststack.yml")
    assert found.is_project
    assert found.state_dir.startswith(str(tmp_path / ".local" / "state" / "poststack" / "projects" / "shop-front-"))
    # the settings of the project's .env are what the setting lookup reads from there
    assert cfg.lookup_setting("postgres_host_port", 5432, "int", environ={}, dotenv_path=found.env_file) == \
        (5491, ".env (%s)" % (shop / ".env"))


def test_poststack_project_dir_relative_to_the_current_directory(tmp_path):
    shop = make_project(tmp_path / "shop", "POSTSTACK_PROJECT_NAME=webshop\n")
    found = prj.find_project({"POSTSTACK_PROJECT_DIR": "shop", "XDG_STATE_HOME": str(tmp_path / "st")},
                             cwd=str(tmp_path))
    assert found.dir == str(shop) and found.dir_source == "environment variable POSTSTACK_PROJECT_DIR"
    assert found.name == "webshop" and found.name_source.startswith(".env (")
    assert found.state_dir.startswith(str(tmp_path / "st" / "poststack" / "projects" / "webshop-"))
    assert cfg.default_env_file({"POSTSTACK_PROJECT_DIR": "shop"}, cwd=str(tmp_path)) == str(shop / ".env")


def test_the_environment_names_the_project_over_the_env_file(tmp_path):
    shop = make_project(tmp_path / "shop", "POSTSTACK_PROJECT_NAME=fromfile\n")
    found = prj.find_project({"POSTSTACK_PROJECT_NAME": "fromenv"}, cwd=str(shop))
    assert (found.name, found.name_source) == ("fromenv", "environment")


def test_same_name_in_two_directories_never_shares_state(tmp_path):
    one = make_project(tmp_path / "a" / "app")
    two = make_project(tmp_path / "b" / "app")
    first, second = prj.find_project({}, cwd=str(one)), prj.find_project({}, cwd=str(two))
    assert first.name == second.name == "app"
    assert first.state_dir != second.state_dir


def test_a_directory_without_project_files_is_not_a_project(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not prj.find_project({}, cwd=str(empty)).is_project
    (empty / ".env").write_text("NODE_ENV=production\n")  # another tool's .env
    assert not prj.find_project({}, cwd=str(empty)).is_project
    (empty / ".env").write_text("NODE_ENV=production\nPOSTSTACK_POSTGRES_HOST_PORT=5499\n")
    assert prj.find_project({}, cwd=str(empty)).is_project
    (empty / ".env").unlink()
    (empty / "poststack.yml").write_text("---\n")
    assert prj.find_project({}, cwd=str(empty)).is_project


@pytest.mark.parametrize("bad", ["Upper", "-dash", "sp ace", "ünï"])
def test_an_invalid_project_name_is_refused_naming_its_source(tmp_path, bad):
    shop = make_project(tmp_path / "shop", "POSTSTACK_PROJECT_NAME=%s\n" % bad)
    with pytest.raises(cfg.ConfigError, match=r"project name .* from \.env \(.*shop/\.env\) is invalid"):
        prj.find_project({}, cwd=str(shop))


def test_a_project_dir_that_is_not_a_directory_is_refused(tmp_path):
    with pytest.raises(cfg.ConfigError, match="POSTSTACK_PROJECT_DIR"):
        prj.find_project({"POSTSTACK_PROJECT_DIR": "nowhere"}, cwd=str(tmp_path))


@pytest.mark.parametrize("dirname, name", [("My Project", "my-project"), ("api_v2", "api_v2"), ("--x--", "x"),
                                           ("...", "poststack"), ("Ünïcode", "n-code")])
def test_name_from_dir(dirname, name):
    assert prj.name_from_dir("/srv/" + dirname) == name


def test_the_checkout_itself_means_the_demo():
    found = prj.find_project({}, cwd=cfg.COLLECTION_ROOT)
    assert found.dir == os.path.realpath(cfg.DEMO_PROJECT)
    assert found.name == "demo"  # from examples/project/.env (bootstrap makes it from example.env)
    assert prj.find_project({"POSTSTACK_PROJECT_DIR": cfg.COLLECTION_ROOT}).dir == os.path.realpath(cfg.COLLECTION_ROOT)


def test_config_file_from_the_environment(tmp_path):
    assert prj.config_file({"POSTSTACK_CONFIG_FILE": "conf/stack.yml"}, cwd=str(tmp_path)) == \
        str(tmp_path / "conf" / "stack.yml")
