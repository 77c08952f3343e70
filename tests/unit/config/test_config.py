"""Unit tests of the settings layer behind the poststack.core.setting lookup and the mask filter."""
import pytest

from ansible_collections.poststack.core.plugins.module_utils import config as cfg


def test_parse_dotenv_forms():
    text = """
# comment
export POSTSTACK_A=1
POSTSTACK_B = "two words"\x20\x20
POSTSTACK_C='single $kept'
POSTSTACK_D=plain # trailing comment
POSTSTACK_E="esc \\"q\\" and \\\\"
POSTSTACK_F=
"""
    assert cfg.parse_dotenv(text) == {
        "POSTSTACK_A": "1", "POSTSTACK_B": "two words", "POSTSTACK_C": "single $kept",
        "POSTSTACK_D": "plain", "POSTSTACK_E": 'esc "q" and \\', "POSTSTACK_F": "",
    }


@pytest.mark.parametrize("text, message", [
    ("POSTSTACK_A=1\nno equals sign", r"my.env line 2: expected KEY=VALUE"),
    ("1BAD=x", r"my.env line 1: '1BAD' is not a valid variable name"),
    ("POSTSTACK_A=\"open", r"my.env line 1: unterminated quote"),
])
def test_parse_dotenv_errors_name_file_and_line(text, message):
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.parse_dotenv(text, "my.env")


def test_precedence_environment_then_dotenv_then_default():
    env = {"POSTSTACK_POSTGRES_HOST_PORT": "5999"}
    dotenv = {"POSTSTACK_POSTGRES_HOST_PORT": "5444", "POSTSTACK_POSTGRES_DB": "app"}
    assert cfg.resolve("postgres_host_port", 5432, "int", env, dotenv).value == 5999
    resolved = cfg.resolve("postgres_db", "poststack", "str", {}, dotenv, "/p/.env")
    assert (resolved.value, resolved.source) == ("app", ".env (/p/.env)")
    assert cfg.resolve("postgres_user", "poststack", "str", {}, {}).source == "default"


@pytest.mark.parametrize("value, kind, expected", [
    ("42", "int", 42), ("yes", "bool", True), ("0", "bool", False), ("a, b,,c", "list", ["a", "b", "c"]),
    ("x", "str", "x"), (7, "int", 7),
])
def test_coerce(value, kind, expected):
    assert cfg.coerce(value, kind, "s", "src") == expected


def test_coerce_errors_name_the_setting_and_source():
    with pytest.raises(cfg.ConfigError, match=r"setting port from env X: 'abc' is not a whole number"):
        cfg.coerce("abc", "int", "port", "env X")
    with pytest.raises(cfg.ConfigError, match=r"is not a boolean"):
        cfg.coerce("maybe", "bool", "flag", "env Y")
    with pytest.raises(cfg.ConfigError, match=r"setting name 'Bad-Name' is invalid"):
        cfg.env_key("Bad-Name")


def test_mask():
    assert cfg.mask("postgres_password", "s3cret") == "********"
    assert cfg.mask("backup_passphrase", "x") == "********"
    assert cfg.mask("database_url", "postgresql://u:p%40ss@h:5432/db") == "postgresql://u:********@h:5432/db"
    assert cfg.mask("database_url", "postgresql://u@h/db") == "postgresql://u@h/db"
    assert cfg.mask("postgres_host_port", 5433) == 5433
    assert cfg.mask("postgres_password", "") == ""
