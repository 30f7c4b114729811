"""A landing zone hub's firewall stand-in (lab/hub_firewall.py): what it allows, how it reads what a
connection asks for, and the host rules that make it the spoke's only way out."""

from __future__ import annotations

import copy
import ssl
from pathlib import Path

import pytest

from blueprints.landing_zone import firewall_rules
from lab import firewall, hub_firewall
from validation.stack_config import load_stack

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def landing_config():
    return load_stack(REPO / "stacks/landing-zone.yaml")


@pytest.fixture(scope="module")
def state(landing_config):
    return hub_firewall.firewall_state(landing_config)


def client_hello(server_hostname: str | None) -> bytes:
    """The first bytes a real TLS client (Python's OpenSSL) sends, with or without a server name."""
    context = ssl.create_default_context()
    if server_hostname is None:
        context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def test_only_landing_zone_stacks_with_a_mirror_have_one(landing_config):
    assert hub_firewall.wanted(landing_config)
    assert hub_firewall.routed_subnets(landing_config) == ["10.88.4.0/27"]
    assert not hub_firewall.wanted(load_stack(REPO / "stacks/example.yaml"))
    without_mirror = copy.deepcopy(landing_config)
    del without_mirror["roles"]["package_mirror"]
    assert not hub_firewall.wanted(without_mirror)


def test_its_rules_are_the_request_packs_and_only_the_mirror_is_a_source(landing_config, state):
    assert state["address"] == "10.88.0.4"
    assert state["sources"] == ["10.88.4.4"]
    assert [(rule["host"], rule["port"]) for rule in state["rules"]] == [
        (rule.host, rule.port) for rule in firewall_rules(landing_config)]
    assert {"host": "pypi.org", "port": 443} in state["rules"]


@pytest.mark.parametrize(("source", "name", "port", "allowed", "reason"), [
    ("10.88.4.4", "pypi.org", 443, True, "allowed"),
    ("10.88.4.4", "PyPI.org.", 443, True, "allowed"),
    ("10.88.4.4", "deb.debian.org", 80, True, "allowed"),
    ("10.88.4.4", "pypi.org", 80, False, "pypi.org:80 is not an allowed upstream"),
    ("10.88.4.4", "example.com", 443, False, "example.com:443 is not an allowed upstream"),
    ("10.88.4.4", "pypi.org.example.com", 443, False, "is not an allowed upstream"),
    ("10.88.4.4", None, 443, False, "no host name"),
    ("10.88.4.5", "pypi.org", 443, False, "source 10.88.4.5 is not the mirror"),
])
def test_it_allows_the_mirror_to_its_upstreams_by_name_and_port_and_nothing_else(state, source, name, port,
                                                                                allowed, reason):
    decision = hub_firewall.decide(state, source, name, port)
    assert decision.allowed is allowed
    assert reason in decision.reason


def test_it_reads_the_server_name_a_real_tls_client_sends():
    assert hub_firewall.server_name(client_hello("files.pythonhosted.org")) == "files.pythonhosted.org"
    assert hub_firewall.server_name(client_hello(None)) is None


@pytest.mark.parametrize("garbage", [b"", b"\x16\x03\x01", b"GET / HTTP/1.1\r\n\r\n", b"\x16" + b"\xff" * 200])
def test_bytes_that_are_not_a_client_hello_name_nothing(garbage):
    assert hub_firewall.server_name(garbage) is None


def test_a_truncated_client_hello_names_nothing():
    hello = client_hello("pypi.org")
    assert hub_firewall.server_name(hello[: len(hello) // 3]) is None


@pytest.mark.parametrize(("head", "host"), [
    (b"GET /debian/ HTTP/1.1\r\nHost: deb.debian.org\r\nAccept: */*\r\n\r\n", "deb.debian.org"),
    (b"GET / HTTP/1.1\r\nhost: deb.debian.org:80\r\n\r\n", "deb.debian.org"),
    (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", None),
    # Two Host headers could be read differently by the firewall and the server: neither counts.
    (b"GET / HTTP/1.1\r\nHost: deb.debian.org\r\nHost: example.com\r\n\r\n", None),
])
def test_it_reads_the_host_an_http_request_names(head, host):
    assert hub_firewall.host_header(head) == host


def test_inside_its_namespace_only_redirected_web_traffic_comes_in():
    rules = hub_firewall.namespace_ruleset()
    assert "tcp dport { 80, 443 } redirect to :15000" in rules
    assert "policy drop;" in rules
    assert "ct status dnat accept" in rules


def test_the_spoke_reaches_the_internet_only_through_the_firewall(landing_config):
    ruleset, _skipped = firewall.compile_ruleset(landing_config)
    # No masquerade of the spoke's own addresses: only the firewall's connections leave the host.
    assert "ip saddr 10.88.4.0/24 ip daddr != 10.88.4.0/24 oifname != \"tb-*\" masquerade" not in ruleset
    assert f"ip saddr {hub_firewall.NAMESPACE_ADDRESS} oifname != \"tb-*\" masquerade" in ruleset
    assert ("ip saddr 10.88.4.0/24 ip daddr != 10.88.4.0/24 oifname != \"tb-*\" drop comment "
            "\"a spoke reaches the Internet only through the hub firewall\"") in ruleset


def test_a_stack_with_its_own_network_keeps_its_nat_egress():
    ruleset, _skipped = firewall.compile_ruleset(load_stack(REPO / "stacks/example.yaml"))
    assert "masquerade comment \"Internet egress" in ruleset
    assert "only through the hub firewall" not in ruleset


def test_lab_up_refuses_a_hub_firewall_address_the_host_already_routes(landing_config, monkeypatch):
    import json
    import subprocess

    from lab.address_plan import address_plan, host_route_conflicts

    # The host's own network holds the address: the lab's route to the stand-in would take it over.
    routes = [{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"}, {"dst": "10.88.0.0/24", "dev": "eth1"}]
    monkeypatch.setattr(subprocess, "run", lambda argv, **kwargs: subprocess.CompletedProcess(
        argv, 0, stdout=json.dumps(routes), stderr=""))
    plan = address_plan(landing_config)
    assert plan.hub_firewall_ip == "10.88.0.4"
    assert host_route_conflicts(plan) == ["10.88.0.0/24 on eth1 overlaps the lab's 10.88.0.4/32"]
