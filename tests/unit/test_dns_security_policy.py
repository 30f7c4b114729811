"""The DNS security policy in every stack's plan: the allow-list first, then a block of every name."""

from __future__ import annotations

import pytest

from blueprints.dns_allowlist import allowed_names
from tests.conftest import REPO, STACK_FILES, planned
from validation.plan_model import Plan
from validation.stack_config import load_stack

POLICY = "azure-native:dnsresolver:DnsResolverPolicy"
LIST = "azure-native:dnsresolver:DnsResolverDomainList"
RULE = "azure-native:dnsresolver:DnsSecurityRule"
LINK = "azure-native:dnsresolver:DnsResolverPolicyVirtualNetworkLink"


def _own_network(path) -> bool:
    return not load_stack(path)["network"].get("landing_zone")


@pytest.fixture(scope="module", params=[path for path in STACK_FILES if _own_network(path)],
                ids=lambda path: path.stem)
def plan(request) -> Plan:
    return planned(request.param)


def _rules(plan: Plan) -> dict[str, dict]:
    return {rule.azure_name: rule.inputs for rule in plan.of_type(RULE)}


def _lists(plan: Plan) -> dict[str, list[str]]:
    return {resource.id: resource.inputs["domains"] for resource in plan.of_type(LIST)}


def test_listed_names_are_allowed_before_every_other_name_is_blocked(plan):
    rules, lists = _rules(plan), _lists(plan)
    allow, block = rules["allow-listed"], rules["block-everything-else"]
    assert allow["action"]["actionType"] == "Allow" and block["action"]["actionType"] == "Block"
    assert allow["priority"] < block["priority"]
    assert [lists[ref["id"]] for ref in block["dnsResolverDomainLists"]] == [["."]]
    assert all(rule["dnsSecurityRuleState"] == "Enabled" for rule in rules.values())


def test_the_allow_list_is_the_stacks_list_and_holds_no_catch_all(plan):
    lists = _lists(plan)
    (allow,) = [lists[ref["id"]] for ref in _rules(plan)["allow-listed"]["dnsResolverDomainLists"]]
    assert "." not in allow and all(domain.endswith(".") for domain in allow)
    vault = plan.of_type("azure-native:keyvault:Vault")[0].azure_name
    accounts = [account.azure_name for account in plan.of_type("azure-native:storage:StorageAccount")] or ["none"]
    # The Git server's backup account and the airlock's, whichever the stack makes (either may be absent).
    assert any(sorted(entry.name + "." for entry in allowed_names(plan.config, vault, backup, airlock)) == allow
               for backup in accounts for airlock in accounts), allow


def test_the_policy_is_linked_to_the_environments_network_after_its_rules(plan):
    (link,) = plan.of_type(LINK)
    (network,) = plan.of_type("azure-native:network:VirtualNetwork")
    assert link.inputs["virtualNetwork"]["id"] == network.id
    rules = {rule.urn for rule in plan.of_type(RULE)}
    assert rules <= set(link.dependencies)
    assert len(plan.of_type(POLICY)) == 1


def test_a_landing_zone_spoke_gets_no_policy():
    spokes = [path for path in STACK_FILES if not _own_network(path)]
    if not spokes:
        pytest.skip(f"no landing-zone stack in {REPO / 'stacks'}")
    for path in spokes:
        assert not planned(path).of_type(POLICY), path.name
