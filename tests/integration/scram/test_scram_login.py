"""A role whose password was set as a verifier from poststack.core.scram_verifier logs in with the password
over TCP (scram-sha-256) on a real PostgreSQL 15, and the server stores exactly that verifier."""
import psycopg
import pytest

from ansible_collections.poststack.core.plugins.filter.scram_verifier import scram_verifier


@pytest.mark.parametrize("password", ["pencil", "p'a\"s$s;:\\", "ünïcödé 密码", "trailing "])
def test_login_with_a_verifier_made_here(pg_server, password):
    made = scram_verifier(password)
    with pg_server.connect() as conn:
        conn.execute("DROP ROLE IF EXISTS scram_probe")
        conn.execute("CREATE ROLE scram_probe LOGIN PASSWORD '%s'" % made.replace("'", "''"))
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'").fetchone()[0]
    assert stored == made
    assert scram_verifier(password, stored=stored) == stored, "an unchanged password is detected as unchanged"
    with psycopg.connect(host=pg_server.host, port=pg_server.port, dbname="postgres", user="scram_probe",
                         password=password) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "scram_probe"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=pg_server.host, port=pg_server.port, dbname="postgres", user="scram_probe",
                        password=password + "x")
