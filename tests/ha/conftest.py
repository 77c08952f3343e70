"""Fixtures for the two-node pgtwin cluster tests (real podman, corosync, pacemaker, PostgreSQL)."""
import os
import time

import pytest

import harness

# Both modes of the agent run every test (PGTWIN_HA_MODES=host or =container for one).
MODES = [mode for mode in os.environ.get("PGTWIN_HA_MODES", "host,container").split(",") if mode]


_CONFIG = {}


def pytest_configure(config):
    _CONFIG["config"] = config


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    seen = item.__dict__.setdefault("_ha_phases", [])
    seen.append("%s %.0f s%s" % (call.when, call.duration, "" if report.passed else " " + report.outcome.upper()))
    if call.when == "call" and report.failed:
        # The cluster's state at the failure, on the failure's first line too: a CI run's short summary
        # shows only that line, and the cluster is gone by the time anyone reads it.
        for value in list(item.funcargs.values()):
            if isinstance(value, harness.Cluster):
                try:
                    state = value.summary()
                except Exception as exc:  # pylint: disable=broad-except  # the report must not break
                    state = "no summary: %r" % exc
                report.sections.append(("cluster state after the failure", state.replace(" | ", "\n")))
                crash = getattr(report.longrepr, "reprcrash", None)
                if crash is not None:
                    first, newline, rest = crash.message.partition("\n")
                    crash.message = "%s [cluster: %s]%s%s" % (first, state, newline, rest)
    if call.when == "teardown":
        report.ha_phases = ", ".join(seen)  # a plain string: it travels from the xdist worker with the report


def pytest_runtest_logreport(report):
    """One line per test as it ends: the clock time and how long its set-up (a cluster's bring-up), run and
    teardown took, so that the log of a run that was cut short still says where the time went."""
    config = _CONFIG.get("config")
    reporter = config.pluginmanager.getplugin("terminalreporter") if config else None
    if reporter is not None and report.when == "teardown" and not hasattr(config, "workerinput"):
        reporter.write_line("%s %s: %s" % (time.strftime("%H:%M:%S"), report.nodeid,
                                           getattr(report, "ha_phases", "")))


def pytest_runtest_call(item):
    """A test starts with every node of its cluster running. A node that stopped during an earlier test (a
    cluster daemon exited, say) fails the module's later tests at once, saying why, instead of each waiting
    minutes for a healthy pair."""
    for value in list(item.funcargs.values()):
        if isinstance(value, harness.Cluster):
            down = [text for text in (node.down() for node in value.nodes) if text]
            if down:
                pytest.fail("a node of this module's cluster stopped before this test: " + "\n".join(down),
                            pytrace=False)


@pytest.fixture(scope="session")
def node_image():
    harness.build_image()
    return harness.IMAGE


@pytest.fixture(scope="session")
def postgres_image():
    """poststack's PostgreSQL image, which the nodes' podman runs in container mode (built when missing)."""
    return harness.build_postgres_image()


def running_cluster(request, **options):
    """A created, healthy cluster in the mode of ``request.param`` (host or container) for a module's tests;
    its logs are saved and it is destroyed afterwards."""
    if request.param == "container":
        request.getfixturevalue("postgres_image")
    lab = harness.Cluster(container_mode=request.param == "container", **options)
    with harness.created(lab, request.module.__name__.replace("test_pgtwin_", "")):
        yield lab


@pytest.fixture(scope="module", params=MODES)
def cluster(request, node_image):  # pylint: disable=unused-argument
    yield from running_cluster(request)


@pytest.fixture()
def load(cluster):  # pylint: disable=redefined-outer-name
    """A writer committing numbered rows and a sampler watching for two primaries, for one test."""
    with harness.running_load(cluster) as running:
        yield running
