"""The agent's PostgreSQL layer against a real PostgreSQL 15 on this host: start as a standby with the enforced
settings, a killed postmaster seen as a stale pid file, stop cleaning up, single-user crash recovery."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from pgtwin_agent import params
from pgtwin_agent.ocf import Logger
from pgtwin_agent.postgres import Postgres
from pgtwin_agent.runner import HostRunner

BINDIR = "/usr/lib/postgresql/15/bin"
pytestmark = pytest.mark.skipif(not os.path.isdir(BINDIR) or os.geteuid() != 0,
                                reason="needs PostgreSQL 15 binaries and root (to switch to the postgres user)")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def pg():
    base = tempfile.mkdtemp(prefix="pgtwin-unit-")
    os.chmod(base, 0o755)
    user = pwd.getpwnam("postgres")
    os.chown(base, user.pw_uid, user.pw_gid)
    pgdata = os.path.join(base, "data")
    subprocess.run(["runuser", "-u", "postgres", "--", BINDIR + "/initdb", "-D", pgdata, "-U", "postgres",
                    "--auth-local=trust"], check=True, capture_output=True)
    loaded = params.load({"OCF_RESKEY_pgdata": pgdata, "OCF_RESKEY_bindir": BINDIR,
                          "OCF_RESKEY_port": str(free_port()), "OCF_RESKEY_socket_dir": base,
                          "OCF_RESKEY_state_dir": base, "OCF_RESKEY_node_list": "a=127.0.0.1 b=127.0.0.2"})
    layer = Postgres(loaded, HostRunner("postgres"), Logger("test"), "a", loaded.peer_of("a"))
    layer.logfile = os.path.join(base, "server.log")
    yield layer
    layer.stop(20)
    shutil.rmtree(base, ignore_errors=True)


def test_standby_start_enforced_settings_and_crash_cleanup(pg):
    assert pg.has_data() and not pg.process().running
    pg.start_standby(time.monotonic() + 60)
    state = pg.process()
    assert state.running
    rows = pg.query("SELECT pg_is_in_recovery(), current_setting('restart_after_crash'), "
                    "current_setting('wal_log_hints'), current_setting('primary_conninfo'), "
                    "current_setting('primary_slot_name')")
    in_recovery, restart_after_crash, wal_log_hints, conninfo, slot = rows[0]
    assert (in_recovery, restart_after_crash, wal_log_hints, slot) == ("t", "off", "on", "pgtwin_a")
    assert "host='127.0.0.2'" in conninfo and "application_name='a'" in conninfo and "password" not in conninfo

    os.kill(state.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pg.process().running and time.monotonic() < deadline:
        time.sleep(0.05)
    crashed = pg.process()
    assert not crashed.running and crashed.stale_pidfile
    assert pg.controldata()["Database cluster state"] == "in archive recovery"

    pg.stop(20)
    assert pg.orphans() == []
    assert pg.process() == type(crashed)(False, 0, False), "stop leaves no stale pid file behind"

    pg.crash_recovery(60)
    assert pg.controldata()["Database cluster state"] == "shut down"
    assert not os.path.exists(os.path.join(pg.p.pgdata, "standby.signal"))


def test_promotion_is_asked_for_then_waited_for_in_short_queries(pg):
    """pg_promote(false), then pg_is_in_recovery() until it says no: no statement waits inside the promotion
    (whose snapshot the replay of a lagging standby's cleanup records would have to cancel)."""
    pg.start_standby(time.monotonic() + 60)
    assert pg.in_recovery() is True
    began = time.monotonic()
    pg.promote(30)
    assert pg.in_recovery() is False and time.monotonic() - began < 30
    assert pg.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_promote%'")[0][0] == "0"
