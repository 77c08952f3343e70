"""Connection settings and DSN masking (pure)."""
import pytest

from ansible_collections.poststack.core.plugins.module_utils.database import (
    ConnectionSettings, ConnectionSettingsError,
)
from ansible_collections.poststack.core.plugins.module_utils.masking import mask_dsn


@pytest.mark.parametrize("dsn, expected", [
    ("postgresql://app:s3cret@db:5432/app", "postgresql://app:********@db:5432/app"),
    ("postgres://app:p%40ss@db/app?sslmode=require", "postgres://app:********@db/app?sslmode=require"),
    ("postgresql://db/app?user=a&password=s3cret&x=1", "postgresql://db/app?user=a&password=********&x=1"),
    ("host=db password=s3cret user=app", "host=db password=******** user=app"),
    ("host=db password = 'se cr\\'et' dbname=x", "host=db password = ******** dbname=x"),
    ("postgresql://app@db/app", "postgresql://app@db/app"),
    ("postgresql://app:p@ss@db/app", "postgresql://app:********@db/app"),
    ("postgresql://db:5432/app", "postgresql://db:5432/app"),
    ("postgresql://app@db:5432/app", "postgresql://app@db:5432/app"),
    ("", ""),
])
def test_mask_dsn(dsn, expected):
    assert mask_dsn(dsn) == expected


def test_keywords_override_dsn_and_password_not_in_description():
    settings = ConnectionSettings(dsn="postgresql://a@h1:5432/d1", host="h2", password="s3cret", dbname="d2")
    info = settings.conninfo()
    assert "host=h2" in info and "dbname=d2" in info and "s3cret" in info
    assert "s3cret" not in settings.describe()
    assert "********" in settings.describe()


@pytest.mark.parametrize("kwargs, fragment", [
    ({"port": 0}, "port 0 is out of range"),
    ({"port": 70000}, "port 70000 is out of range"),
    ({"sslmode": "sometimes"}, "sslmode 'sometimes' is not one of"),
    ({"connect_timeout": 0}, "connect_timeout must be at least 1"),
    ({"dsn": "postgresql://a:s3cret@h/d?nonsense_option=1"}, "invalid dsn"),
])
def test_invalid_settings(kwargs, fragment):
    with pytest.raises(ConnectionSettingsError) as info:
        ConnectionSettings(**kwargs).conninfo()
    assert fragment in str(info.value)
    assert "s3cret" not in str(info.value)
