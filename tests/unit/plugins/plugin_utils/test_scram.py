"""SCRAM-SHA-256 verifiers: the same as the image's standalone script (which the container entrypoints use,
tested there against real logins), salt reuse for rotation checks, bad input."""
import base64
import importlib.util
import os

import pytest

from ansible_collections.poststack.core.plugins.filter.scram_verifier import scram_verifier
from ansible_collections.poststack.core.plugins.plugin_utils import scram

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

# Any 16-byte salt; a login with a verifier made here is tested against a real server in
# tests/integration/test_scram_login.py.
PENCIL_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def load_image_script():
    path = os.path.join(ROOT, "containers", "postgres-debian", "scripts", "scram_verifier.py")
    spec = importlib.util.spec_from_file_location("image_scram_verifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("password", ["pencil", "p'a\"s$s;", "ünïcödé 密码", "trailing ", "I\u00adX"])
def test_same_as_the_image_script(password):
    image = load_image_script()
    assert scram.verifier(password, PENCIL_SALT, 4096) == image.verifier(password, PENCIL_SALT, 4096)


def test_reusing_the_stored_salt_detects_an_unchanged_password():
    stored = scram.verifier("old-secret")
    assert scram.verifier_like("old-secret", stored) == stored
    assert scram_verifier("old-secret", stored=stored + "\n") == stored
    changed = scram_verifier("new-secret", stored=stored)
    assert changed != stored and scram.parse(changed) == scram.parse(stored)


def test_new_salt_without_a_scram_verifier():
    first, second = scram_verifier("x"), scram_verifier("x", stored="md5abcdef")
    assert first.startswith("SCRAM-SHA-256$4096:") and first != second
    assert scram.parse("SCRAM-SHA-256$bad") is None and scram.parse("") is None


def test_empty_password_is_refused():
    from ansible.errors import AnsibleFilterError  # pylint: disable=import-outside-toplevel
    with pytest.raises(AnsibleFilterError, match="non-empty"):
        scram_verifier("")
