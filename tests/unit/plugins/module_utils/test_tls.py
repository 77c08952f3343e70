"""check_pair with real files and the real openssl program (the target's, as the role uses it)."""
import subprocess

import pytest

from ansible_collections.poststack.core.plugins.module_utils.tls import check_pair, sha1_of


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls")
    key, crt = root / "key.pem", root / "crt.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=db.example.test",
            "-keyout", str(key), "-out", str(crt))
    other = root / "other.pem"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(other))
    return root, crt, key, other


def test_a_good_pair_with_checksums_end_date_and_the_commands(pair):
    _root, crt, key, _other = pair
    result = check_pair(str(crt), str(key))
    assert result["problems"] == []
    assert result["key_matches"] is True and result["expired"] is False
    assert result["cert_checksum"] == sha1_of(crt.read_bytes()) and result["key_checksum"] == sha1_of(key.read_bytes())
    assert result["not_after"].endswith("GMT")
    # The key is read by openssl from its file: its path is on the command line, never its content.
    assert ["pkey", "-pubout", "-in", str(key)] in [argv[1:] for argv in result["commands"]]


def test_a_key_of_another_certificate(pair):
    _root, crt, _key, other = pair
    result = check_pair(str(crt), str(other))
    assert result["key_matches"] is False
    assert result["problems"] == ["the key in %s is not the key of the certificate in %s: give the key the "
                                  "certificate was issued for" % (other, crt)]


def test_without_openssl_the_files_are_still_checked(pair):
    _root, crt, _key, other = pair
    result = check_pair(str(crt), str(other), openssl=None)
    assert result["problems"] == [] and result["key_matches"] is None and result["commands"] == []


@pytest.mark.parametrize("cert_text, key_text, expected", [
    ("not a certificate", None, "holds no PEM certificate"),
    (None, "not a key", "holds no PEM private key"),
    (None, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
     "is protected by a passphrase"),
])
def test_files_that_hold_something_else(pair, tmp_path, cert_text, key_text, expected):
    _root, crt, key, _other = pair
    if cert_text is not None:
        crt = tmp_path / "crt.pem"
        crt.write_text(cert_text)
    if key_text is not None:
        key = tmp_path / "key.pem"
        key.write_text(key_text)
    result = check_pair(str(crt), str(key))
    assert len(result["problems"]) == 1 and expected in result["problems"][0]
    assert key_text is None or key_text not in result["problems"][0]


def test_missing_empty_and_a_directory(pair, tmp_path):
    _root, _crt, key, _other = pair
    assert check_pair(str(tmp_path / "none.pem"), "", cert_variable="tls_cert", key_variable="tls_key")[
        "problems"] == ["the certificate file %s does not exist (tls_cert)" % (tmp_path / "none.pem"),
                        "tls_key is empty: name the key file"]
    assert "is not a regular file" in check_pair(str(tmp_path), str(key))["problems"][0]
