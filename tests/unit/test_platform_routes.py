"""Every VM reaches each Azure platform service it needs through a declared route, and only so:
private endpoints for Key Vault, Blob storage and Azure Monitor, the host's channel for Azure Backup."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from blueprints import network_flows
from blueprints.network_flows import (
    ENDPOINT_SUBNET,
    FLOWS,
    PLATFORM_SERVICES,
    endpoint_addresses,
    missing_platform_routes,
    nsg_rules,
)
from blueprints.topology import plan_machines
from cli.main import main
from tests.conftest import STACK_FILES
from validation.semantic_checks import semantic_problems
from validation.stack_config import load_stack

# Service tags that reach every tenant's resources of a kind: no flow may use them any more.
TENANT_WIDE_TAGS = {"AzureKeyVault", "Storage", "AzureMonitor"}


@pytest.fixture(params=STACK_FILES, ids=lambda path: path.stem)
def config(request) -> dict:
    return load_stack(request.param)


def test_every_vm_has_a_route_to_every_platform_service_it_needs(config):
    assert missing_platform_routes(config) == []


def test_no_rule_reaches_a_tenant_wide_service_tag(config):
    for subnet, rules in nsg_rules(config).items():
        for rule in rules:
            assert not TENANT_WIDE_TAGS & set(rule.destination_prefixes), (subnet, rule.name)


def test_each_vm_may_reach_the_vaults_endpoint_and_only_on_443(config):
    rules = nsg_rules(config)
    vault = endpoint_addresses(config)["key-vault"]
    for machine in plan_machines(config):
        out = [r for r in rules[machine.subnet] if r.direction == "Outbound" and r.access == "Allow"
               and f"{machine.private_ip}/32" in r.source_prefixes and f"{vault}/32" in r.destination_prefixes]
        assert [r.destination_ports for r in out] == [("443",)], machine.name
    inbound = [r for r in rules[ENDPOINT_SUBNET]
               if r.direction == "Inbound" and f"{vault}/32" in r.destination_prefixes]
    assert {p for r in inbound for p in r.source_prefixes} == {f"{m.private_ip}/32" for m in plan_machines(config)}


def test_fixed_endpoint_addresses_are_the_services_subnets_last_usable_ones(config):
    subnet = ipaddress.ip_network(config["network"]["subnets"][ENDPOINT_SUBNET])
    expected = {"key-vault": str(subnet.broadcast_address - 1), "blob": str(subnet.broadcast_address - 2)}
    if config.get("airlock"):  # the airlock's account has its own fixed address, the next one down
        expected["airlock"] = str(subnet.broadcast_address - 3)
    assert endpoint_addresses(config) == expected
    taken = {machine.private_ip for machine in plan_machines(config)}
    assert not taken & set(endpoint_addresses(config).values())


def test_backup_needs_no_network_route_and_says_why():
    [backup] = [service for service in PLATFORM_SERVICES if service.name == "Azure Backup"]
    assert backup.flow is None and "168.63.129.16" in backup.why
    assert all(service.flow in {flow.name for flow in FLOWS} for service in PLATFORM_SERVICES if service.flow)


def test_a_stack_whose_agents_have_no_route_is_refused_naming_vm_and_service(monkeypatch, capsys):
    config = load_stack("stacks/example.yaml")  # valid with the whole table
    monkeypatch.setattr(network_flows, "FLOWS",
                        tuple(flow for flow in FLOWS if flow.name != "monitor-vms-to-monitor-endpoint"))
    found = [str(problem) for problem in semantic_problems(config)]
    for machine in plan_machines(config):
        assert any(f"leaves VM {machine.name} no route to Azure Monitor" in text for text in found), machine.name
    assert not any("no route to Key Vault" in text for text in found)
    assert main(["validate", "stacks/example.yaml"]) == 2
    err = capsys.readouterr().err
    assert "leaves VM analytics-1 no route to Azure Monitor" in err
    assert "monitor-vms-to-monitor-endpoint is not in the table" in err


def test_a_services_subnet_too_small_for_the_endpoints_is_refused(tmp_path, capsys):
    stack = yaml.safe_load(Path("stacks/shared-services.yaml").read_text(encoding="utf-8"))
    stack["network"]["subnets"]["services"] = "10.72.8.0/29"  # usable .4-.6: the Git server takes .5
    path = tmp_path / "shared-services.yaml"
    path.write_text(yaml.safe_dump(stack), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "network.subnets.services" in err and "blob private endpoint's fixed address" in err


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda path: path.stem)
def test_a_rule_to_a_private_endpoint_never_covers_a_vm(stack_file):
    """An endpoint whose addresses Azure picks (Azure Monitor's) is reached by a rule to its subnet's
    free space: a rule to the whole subnet would open the mirror's and the Git server's 443 to every VM."""
    from blueprints.network_flows import nsg_rules

    config = load_stack(stack_file)
    machines = [ipaddress.ip_address(m.private_ip) for m in plan_machines(config)]
    for rules in nsg_rules(config).values():
        for rule in rules:
            if "endpoint" not in rule.name or rule.access != "Allow":
                continue
            for prefix in rule.destination_prefixes:
                network = ipaddress.ip_network(prefix)
                assert not any(ip in network for ip in machines), f"{rule.name} covers a VM through {prefix}"
