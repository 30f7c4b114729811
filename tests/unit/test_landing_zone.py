"""Landing-zone mode planned offline: the worked stack (stacks/landing-zone.yaml) deploys into the hub's world.

It creates no network, NAT gateway, public IP, private-link zone or workspace of its own; the mirror's subnet
routes to the hub firewall; private endpoints register in the hub's zones; logs go to the central workspace; every
mandatory policy passes; the request pack and the cost report follow the mode.
"""

from __future__ import annotations

import pytest

from blueprints.landing_zone import firewall_rules, hub_zones, parse_id
from reports.costing import estimate
from reports.request_pack import build_context
from tests.conftest import EXAMPLE, REPO, planned
from validation.plan_recorder import record_plan
from validation.policies import RULES, evaluate, mandatory_failures
from validation.policies.rule import check_rule

STACK = REPO / "stacks" / "landing-zone.yaml"
RULE = {rule.id: rule for rule in RULES}


@pytest.fixture(scope="module")
def plan():
    return planned(STACK)


@pytest.fixture(scope="module")
def zone(plan):
    return plan.config["network"]["landing_zone"]


def _of(plan, kind: str):
    return plan.of_type(f"azure-native:{kind}")


def test_nothing_the_hub_provides_is_created(plan):
    for kind in ("network:VirtualNetwork", "network:NatGateway", "network:PublicIPAddress", "network:BastionHost",
                 "operationalinsights:Workspace"):
        assert _of(plan, kind) == [], kind
    # The one zone of its own is the internal names' zone; every privatelink zone is the hub's.
    assert [z.azure_name for z in _of(plan, "privatedns:PrivateZone")] == ["exacute-prod.internal"]
    assert all("publicIPAddress" not in config for nic in _of(plan, "network:NetworkInterface")
               for config in nic.inputs["ipConfigurations"])


def test_the_subnets_are_created_in_the_existing_spoke(plan, zone):
    spoke = parse_id(zone["spoke_virtual_network_id"])
    subnets = _of(plan, "network:Subnet")
    assert [s.inputs["addressPrefix"] for s in subnets] == ["10.88.4.0/27"]
    for subnet in subnets:
        assert (subnet.inputs["resourceGroupName"], subnet.inputs["virtualNetworkName"]) == \
            (spoke.resource_group, spoke.name)
        assert subnet.inputs["defaultOutboundAccess"] is False
        assert subnet.inputs["networkSecurityGroup"]["id"]
    # The internal zone is linked to the spoke by its id from the stack file.
    links = _of(plan, "privatedns:VirtualNetworkLink")
    assert [link.inputs["virtualNetwork"]["id"] for link in links] == [zone["spoke_virtual_network_id"]]


def test_the_mirror_subnet_routes_the_internet_to_the_hub_firewall(plan, zone):
    (table,) = _of(plan, "network:RouteTable")
    assert table.inputs["routes"] == [{"addressPrefix": "0.0.0.0/0", "name": "default-to-firewall",
                                       "nextHopIpAddress": zone["hub_firewall_address"],
                                       "nextHopType": "VirtualAppliance"}]
    (subnet,) = _of(plan, "network:Subnet")
    assert subnet.inputs["routeTable"]["id"] == table.id
    assert "natGateway" not in subnet.inputs


def test_private_endpoints_register_in_the_hub_zones(plan, zone):
    hub_ids = set(zone["private_dns_zone_ids"].values())
    groups = _of(plan, "network:PrivateDnsZoneGroup")
    assert len(groups) == len(_of(plan, "network:PrivateEndpoint")) == 3
    used = {config["privateDnsZoneId"] for group in groups for config in group.inputs["privateDnsZoneConfigs"]}
    assert used == hub_ids
    assert set(zone["private_dns_zone_ids"]) == set(hub_zones())


def test_logs_go_to_the_central_workspace(plan, zone):
    (rule,) = _of(plan, "monitor:DataCollectionRule")
    destinations = rule.inputs["destinations"]["logAnalytics"]
    assert [d["workspaceResourceId"] for d in destinations] == [zone["log_analytics_workspace_id"]]
    linked = {r.inputs["linkedResourceId"] for r in _of(plan, "monitor:PrivateLinkScopedResource")}
    assert zone["log_analytics_workspace_id"] in linked


def test_every_resource_says_it_is_in_a_landing_zone(plan):
    tagged = [r for r in plan.custom_resources() if "tags" in r.inputs]
    assert tagged and all(r.inputs["tags"].get("network-mode") == "landing-zone" for r in tagged)


def test_every_mandatory_policy_passes_and_the_public_ip_rule_looked(plan):
    results = evaluate(plan)
    assert mandatory_failures(results) == []
    by_id = {result.rule.id: result for result in results}
    assert by_id["TB-NET-008"].checked >= 2 and by_id["TB-NET-009"].checked == 1


def test_the_public_ip_rule_applies_only_in_a_landing_zone():
    # The example's gateway and NAT gateway keep their public IPs: the rule leaves a stack of its own network alone.
    result = check_rule(RULE["TB-NET-008"], planned(EXAMPLE))
    assert result.checked > 0 and result.passed


def test_the_request_pack_lists_what_the_hub_team_must_allow(plan, zone):
    context = build_context(plan)
    allowed = {(rule.host, rule.port) for rule in context["firewall_rules"]}
    assert allowed == {("deb.debian.org", 80), ("security.debian.org", 80), ("pypi.org", 443),
                       ("files.pythonhosted.org", 443), ("registry.npmjs.org", 443), ("cloud.r-project.org", 443)}
    text = " ".join(f"{r.what} {r.detail}" for r in context["hub"])
    assert zone["hub_virtual_network_id"] in text and zone["spoke_virtual_network_id"] in text
    assert all(name in text for name in zone["private_dns_zone_ids"])
    assert "10.88.4.4" in text  # the mirror's address, the only source the firewall lets out


def test_a_stack_of_its_own_network_asks_nothing_of_a_hub():
    context = build_context(planned(EXAMPLE))
    assert context["hub"] == [] and context["firewall_rules"] == []


def test_the_firewall_rules_follow_the_mirror_upstreams(plan):
    config = {**plan.config, "roles": {"package_mirror": {
        **plan.config["roles"]["package_mirror"],
        "upstreams": {**plan.config["roles"]["package_mirror"]["upstreams"],
                      "cran": "https://cran.ma.imperial.ac.uk:8443"}}}}
    hosts = {(rule.host, rule.port) for rule in firewall_rules(config)}
    assert ("cran.ma.imperial.ac.uk", 8443) in hosts and ("cloud.r-project.org", 443) not in hosts


def test_the_cost_has_no_nat_gateway_public_ip_or_workspace_and_prices_everything(plan):
    est = estimate(plan)
    assert est.not_priced == []
    priced = {resource.type for resource in est.resources}
    assert not priced & {"azure-native:network:NatGateway", "azure-native:network:PublicIPAddress",
                         "azure-native:operationalinsights:Workspace"}


def test_the_plan_runs_in_the_spoke_subscription_and_refuses_another(plan, zone):
    spoke_subscription = parse_id(zone["spoke_virtual_network_id"]).subscription_id
    assert all(spoke_subscription in r.id for r in _of(plan, "network:RouteTable"))
    with pytest.raises(ValueError, match="spoke_virtual_network_id is in subscription"):
        record_plan(STACK, subscription_id="11111111-1111-4111-8111-111111111111")
