"""Unit tests of the ports_to_check filter: which host ports must be free before project containers run."""
import pytest

from ansible_collections.poststack.core.plugins.filter.ports_to_check import parse_publish, ports_to_check


@pytest.mark.parametrize("spec, expected", [
    ("8080", ("0.0.0.0", "", "tcp")),
    ("8080:80", ("0.0.0.0", "8080", "tcp")),
    ("127.0.0.1:8080:80", ("127.0.0.1", "8080", "tcp")),
    ("127.0.0.1::80", ("127.0.0.1", "", "tcp")),
    ("[::1]:8080:80/tcp", ("::1", "8080", "tcp")),
    ("5353:53/udp", ("0.0.0.0", "5353", "udp")),
    ("8080-8081:80-81", ("0.0.0.0", "8080-8081", "tcp")),
])
def test_parse_publish(spec, expected):
    assert parse_publish(spec) == expected


def test_only_fixed_tcp_host_ports_are_checked():
    entries = [{"name": "web", "ports": ["127.0.0.1:8080:80", "9000", "5353:53/udp", "8100-8101:80-81", "[::]:8443:443"]}]
    assert ports_to_check(entries, "shop") == [
        {"container": "shop-web", "spec": "127.0.0.1:8080:80", "address": "127.0.0.1", "port": 8080,
         "bind": "127.0.0.1:8080"},
        {"container": "shop-web", "spec": "[::]:8443:443", "address": "::", "port": 8443, "bind": "[::]:8443"},
    ]


def test_a_port_the_running_container_holds_is_not_checked():
    entries = [{"name": "web", "ports": ["127.0.0.1:8080:80", "8081:81"]}]
    named = {"shop-web": {"state": "running", "ports": ["127.0.0.1:8080->80/tcp", "0.0.0.0:8081->81/tcp"]}}
    assert ports_to_check(entries, "shop", named) == []
    ipv6 = [{"name": "web", "ports": ["[::]:8443:443"]}]
    assert ports_to_check(ipv6, "shop", {"shop-web": {"state": "running", "ports": [":::8443->443/tcp"]}}) == []


def test_a_stopped_container_or_another_project_holds_nothing():
    entries = [{"name": "web", "ports": ["8080:80"]}]
    stopped = {"shop-web": {"state": "exited", "ports": ["0.0.0.0:8080->80/tcp"]}}
    other = {"other-web": {"state": "running", "ports": ["0.0.0.0:8080->80/tcp"]}}
    assert [p["port"] for p in ports_to_check(entries, "shop", stopped)] == [8080]
    assert [p["port"] for p in ports_to_check(entries, "shop", other)] == [8080]


def test_a_changed_port_is_checked():
    entries = [{"name": "web", "ports": ["127.0.0.1:8090:80"]}]
    named = {"shop-web": {"state": "running", "ports": ["127.0.0.1:8080->80/tcp"]}}
    assert [p["port"] for p in ports_to_check(entries, "shop", named)] == [8090]
