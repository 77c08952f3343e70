"""Unit tests of the settings layer behind the poststack.core.setting lookup and the mask filter."""
import pytest

from ansible_collections.poststack.core.plugins.plugin_utils import config as cfg


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
    ("POSTSTACK_A=1\nno equals sign", r"my.env line 2: expected KEY=VALUE but the line has no '='"),
    ("1BAD=x", r"my.env line 1: '1BAD' is not a valid variable name"),
    ("POSTSTACK_A=\"open", r"my.env line 1: the value of POSTSTACK_A has an unterminated \" quote"),
])
def test_parse_dotenv_errors_name_file_and_line(text, message):
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.parse_dotenv(text, "my.env")


@pytest.mark.parametrize("text", [
    "POSTSTACK_POSTGRES_PASSWORD s3cr3t-Value",   # '=' forgotten
    "POSTSTACK_POSTGRES_PASSWORD='s3cr3t-Value",  # quote not closed
    "POSTSTACK_POSTGRES_PASSWORD=\"s3cr3t-Value",
])
def test_dotenv_errors_never_show_the_value(text):
    with pytest.raises(cfg.ConfigError) as err:
        cfg.parse_dotenv(text, "my.env")
    assert "s3cr3t" not in str(err.value)


def test_unreadable_dotenv_is_an_error_not_ignored(tmp_path):
    assert cfg.load_dotenv(str(tmp_path / "missing.env")) == {}
    with pytest.raises(cfg.ConfigError, match=r"is a directory, not a .env file"):
        cfg.load_dotenv(str(tmp_path))
    binary = tmp_path / "latin1.env"
    binary.write_bytes(b"POSTSTACK_A=caf\xe9\n")
    with pytest.raises(cfg.ConfigError, match=r"latin1.env is not UTF-8 text \(byte 15\): save it as UTF-8"):
        cfg.load_dotenv(str(binary))
    dangling = tmp_path / "dangling.env"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(cfg.ConfigError, match=r"dangling.env cannot be read \(No such file or directory\)"):
        cfg.load_dotenv(str(dangling))


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
    with pytest.raises(cfg.ConfigError, match=r"setting api_token from env Z: its value is not a whole number"):
        cfg.coerce("s3cr3t", "int", "api_token", "env Z")
    with pytest.raises(cfg.ConfigError, match=r"setting name 'Bad-Name' is invalid"):
        cfg.env_key("Bad-Name")


def test_mask():
    assert cfg.mask("postgres_password", "s3cret") == "********"
    assert cfg.mask("backup_passphrase", "x") == "********"
    assert cfg.mask("database_url", "postgresql://u:p%40ss@h:5432/db") == "postgresql://u:********@h:5432/db"
    assert cfg.mask("database_url", "postgresql://u@h/db") == "postgresql://u@h/db"
    assert cfg.mask("postgres_host_port", 5433) == 5433
    assert cfg.mask("postgres_password", "") == ""
