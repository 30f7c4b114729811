"""The trust network's stand-in (lab/trust_network.py) offline: which addresses it holds, and that the
compiled firewall opens each of them from the analytics subnet on the declared port only."""

from __future__ import annotations

import copy
import ipaddress
import re

from lab.firewall import chain_name, compile_ruleset
from lab.trust_network import TRUST_LINK_NETWORK, server_addresses


def _with_sources(config, sources):
    edited = copy.deepcopy(config)
    edited["roles"]["analytics"]["data_sources"] = sources
    return edited


def test_the_example_stands_in_for_its_warehouse_at_the_declared_address(example_config):
    assert server_addresses(example_config) == ["10.20.1.10"]


def test_a_source_without_an_address_gets_its_ranges_first_host(example_config):
    config = _with_sources(example_config, [
        {"name": "fhir", "kind": "https", "range": "10.20.9.0/24", "port": 443},
        {"name": "audit", "kind": "postgres", "range": "10.20.7.0/28", "server": "10.20.7.5", "port": 5432},
        {"name": "audit-replica", "kind": "postgres", "range": "10.20.7.0/28", "server": "10.20.7.5", "port": 5433},
    ])
    assert server_addresses(config) == ["10.20.9.1", "10.20.7.5"]


def test_no_data_source_means_no_trust_network(example_config):
    assert server_addresses(_with_sources(example_config, [])) == []


def test_the_link_network_is_shared_address_space_never_a_trust_range():
    assert TRUST_LINK_NETWORK.subnet_of(ipaddress.ip_network("100.64.0.0/10"))


def _chain(script, name):
    lines, inside = [], False
    for line in script.splitlines():
        line = line.strip()
        if re.fullmatch(rf"chain {name} \{{", line):
            inside = True
        elif inside and line == "}":
            return lines
        elif inside:
            lines.append(line)
    return lines


def test_the_analytics_outbound_chain_opens_the_warehouse_on_1433_only(example_config):
    script, _ = compile_ruleset(example_config)
    lines = [line for line in _chain(script, chain_name("workloads", "Outbound")) if "10.20." in line]
    assert lines == ['ip saddr { 10.40.3.4/32, 10.40.3.5/32 } ip daddr 10.20.1.10/32 meta l4proto tcp th dport 1433 '
                     'return comment "allow-data-analytics-to-warehouse (2500)"']
    for subnet in ("gateway", "services"):
        chain = _chain(script, chain_name(subnet, "Outbound"))
        assert chain, subnet
        assert not [line for line in chain if "10.20." in line], subnet
