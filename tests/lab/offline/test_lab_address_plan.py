"""The lab's address plan: Azure's addresses for machines, a stand-in Internet that clashes with nothing."""

from __future__ import annotations

import ipaddress

from blueprints.topology import plan_machines
from lab.address_plan import LAB_INTERNET, address_plan
from lab.layout import IFNAME_MAX, bridge_name, machine_link_name
from tests.conftest import REPO

HOST_UPLINK = ipaddress.ip_network("192.0.2.0/24")


def test_machines_keep_their_azure_addresses(example_config):
    plan = address_plan(example_config)
    assert [(m.name, m.private_ip) for m in plan.machines] == [
        (m.name, m.private_ip) for m in plan_machines(example_config)]
    assert plan.subnet_gateways == {"gateway": "10.40.1.1", "services": "10.40.2.1", "workloads": "10.40.3.1"}


def test_client_sits_in_the_first_allowed_range(example_config):
    plan = address_plan(example_config)
    first = ipaddress.ip_network(example_config["network"]["allowed_client_ranges"][0])
    assert ipaddress.ip_address(plan.client_ip) in first


def test_single_address_client_range(example_config):
    config = {**example_config, "network": {**example_config["network"], "allowed_client_ranges": ["198.51.100.7/32"]}}
    assert address_plan(config).client_ip == "198.51.100.7"


def test_stack_without_client_ranges_gets_a_client_that_reaches_nothing():
    from validation.stack_config import load_stack

    plan = address_plan(load_stack(REPO / "stacks" / "shared-services.yaml"))
    assert plan.client_ranges == ()
    assert plan.public_gateway_ip is None and plan.identity_provider_ip is None
    assert not any(ipaddress.ip_address(plan.client_ip) in net for net in plan.subnets.values())


def test_stand_in_internet_clashes_with_nothing(example_config):
    plan = address_plan(example_config)
    assert ipaddress.ip_address(plan.public_gateway_ip) in LAB_INTERNET
    assert not LAB_INTERNET.overlaps(plan.address_space)
    assert not LAB_INTERNET.overlaps(HOST_UPLINK)
    for client_range in example_config["network"]["allowed_client_ranges"]:
        assert not LAB_INTERNET.overlaps(ipaddress.ip_network(client_range))


def test_interface_names_fit_linux_limits(example_config):
    config = {**example_config, "roles": {**example_config["roles"],
                                          "analytics": {**example_config["roles"]["analytics"], "count": 20}}}
    for machine in address_plan(config).machines:
        assert len(machine_link_name(machine.name)) <= IFNAME_MAX
    for subnet in ("gateway", "services", "workloads"):
        assert len(bridge_name(subnet)) <= IFNAME_MAX


def test_routes_that_overlap_the_lab_are_reported(example_config, monkeypatch):
    import json
    import subprocess

    from lab.address_plan import host_route_conflicts

    routes = [{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
              {"dst": "192.0.2.0/24", "dev": "eth0"},
              {"dst": "10.40.2.0/24", "dev": "wg0"},
              {"dst": "10.40.1.0/24", "dev": "tb-sn-gateway"}]

    def fake_run(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 0, stdout=json.dumps(routes), stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    conflicts = host_route_conflicts(address_plan(example_config))
    assert conflicts == ["10.40.2.0/24 on wg0 overlaps the lab's 10.40.0.0/16"]
