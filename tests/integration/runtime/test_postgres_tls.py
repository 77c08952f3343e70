"""TLS through the postgres role, with certificates as users have them: owned by root, the key mode 0600 (which
UID 999 cannot read). The role installs copies for PostgreSQL; a renewed certificate is `changed` and reaches the
running server by reload (same container, no restart); a bad pair is refused and nothing changes."""
import hashlib
import os
import subprocess

import psycopg
import pytest

from ansible_run import run_playbook
from certs import der_of, issue, make_certs, presented_certificate
from conftest import podman

DOMAIN = "db.example.test"


@pytest.fixture(scope="module", autouse=True)
def images():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


def play():
    return [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"}}]}]


def as_root_keeps_them(certs):
    """Key root:root 0600, certificate root:root 0644 (openssl's output as root, or Let's Encrypt's)."""
    for name, mode in (("fullchain.pem", 0o644), ("privkey.pem", 0o600)):
        path = certs / DOMAIN / name
        os.chown(path, 0, 0)
        path.chmod(mode)


def started(project):
    return project.runtime.cli("inspect", "-f", "{{.Id}} {{.State.StartedAt}}", project.container).stdout.strip()


def checksum(path):
    return hashlib.sha1(open(path, "rb").read()).hexdigest()


def test_tls_from_root_owned_files_renewal_reloads_and_a_bad_pair_changes_nothing(runtime, project, tmp_path):
    certs, ca = make_certs(tmp_path, DOMAIN)
    as_root_keeps_them(certs)
    tls_vars = project.vars(postgres_certificates_path=str(certs), postgres_domain=DOMAIN)

    first = run_playbook(play(), extra_vars=tls_vars)
    assert first.rc == 0, first.stdout[-3000:]
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=project.password, sslmode="verify-full", sslrootcert=str(ca),
                         connect_timeout=5) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    installed = f"/var/lib/poststack/{project.container}/tls"
    assert oct(os.stat(f"{installed}/server.key").st_mode & 0o777) == "0o600"
    assert os.stat(f"{installed}/server.key").st_uid == 999
    again = run_playbook(play(), extra_vars=tls_vars)
    assert again.rc == 0 and again.changed == 0, [t["task"]["name"] for t in again.tasks
                                                  if t["hosts"]["localhost"].get("changed")]

    # Renewal: a new key and certificate in the same place.
    before = started(project)
    key, chain = issue(tmp_path, DOMAIN, name="renewed")[1:]
    (certs / DOMAIN / "fullchain.pem").write_text(chain)
    (certs / DOMAIN / "privkey.pem").write_bytes(key.read_bytes())
    as_root_keeps_them(certs)
    renewed = run_playbook(play(), extra_vars=tls_vars)
    assert renewed.rc == 0 and renewed.changed > 0, renewed.stdout[-3000:]
    assert started(project) == before, "the renewal restarted or re-created the container"
    assert presented_certificate("127.0.0.1", project.port) == der_of(certs / DOMAIN / "fullchain.pem")

    # A key that is not the certificate's: refused before anything is copied; the server keeps its pair.
    good_chain = (certs / DOMAIN / "fullchain.pem").read_text()
    other_key = issue(tmp_path, DOMAIN, name="other")[1]
    (certs / DOMAIN / "privkey.pem").write_bytes(other_key.read_bytes())
    installed_key = checksum(f"{installed}/server.key")
    wrong = run_playbook(play(), extra_vars=tls_vars)
    assert wrong.rc != 0
    assert f"the key in {certs}/{DOMAIN}/privkey.pem is not the key of the certificate" in wrong.stdout
    assert "nothing was changed" in wrong.stdout
    assert checksum(f"{installed}/server.key") == installed_key
    assert started(project) == before
    assert presented_certificate("127.0.0.1", project.port) == der_of(certs / DOMAIN / "fullchain.pem")
    assert other_key.read_text().splitlines()[1] not in wrong.stdout

    # A missing key: one clear error, nothing changed.
    (certs / DOMAIN / "privkey.pem").unlink()
    missing = run_playbook(play(), extra_vars=tls_vars)
    assert missing.rc != 0
    assert f"the key file {certs}/{DOMAIN}/privkey.pem does not exist" in missing.stdout
    assert started(project) == before
    (certs / DOMAIN / "privkey.pem").write_bytes(key.read_bytes())
    assert (certs / DOMAIN / "fullchain.pem").read_text() == good_chain

    # TLS off again: the container is re-created without it and the installed copies go.
    off = run_playbook(play(), extra_vars=project.vars())
    assert off.rc == 0, off.stdout[-3000:]
    assert not os.path.exists(installed)
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=project.password, sslmode="disable", connect_timeout=5) as conn:
        assert conn.execute("SHOW ssl").fetchone() == ("off",)


@pytest.mark.parametrize("tls, message", [
    ({"postgres_ssl": "require"}, "postgres_ssl 'require' needs a certificate"),
    ({"postgres_domain": DOMAIN}, "TLS needs both postgres_certificates_path"),
])
def test_incomplete_tls_settings_are_refused_before_anything_starts(project, tls, message):
    run = run_playbook(play(), extra_vars=project.vars(**tls))
    assert run.rc != 0 and message in run.stdout, run.stdout[-3000:]
    assert podman("container", "exists", project.container, check=False).returncode == 1


def test_a_key_with_a_passphrase_is_refused(project, tmp_path):
    certs, _ca = make_certs(tmp_path, DOMAIN)
    key = certs / DOMAIN / "privkey.pem"
    encrypted = tmp_path / "encrypted.pem"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:secret", "-out", str(encrypted)],
                   check=True, capture_output=True)
    key.write_bytes(encrypted.read_bytes())
    run = run_playbook(play(), extra_vars=project.vars(postgres_certificates_path=str(certs), postgres_domain=DOMAIN))
    assert run.rc != 0 and "is protected by a passphrase" in run.stdout, run.stdout[-3000:]
    assert podman("container", "exists", project.container, check=False).returncode == 1
