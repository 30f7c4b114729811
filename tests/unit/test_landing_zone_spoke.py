"""A landing zone's spoke created and peered here (stacks/landing-zone-spoke.yaml), planned offline.

The program creates the spoke network and the spoke's half of the peering, routes the mirror's egress to the hub
firewall, puts analytics VMs in the spoke with no public IP, lets SSH in only from the hub's Bastion, and asks the
hub team for the hub's half with the values it must set.
"""

from __future__ import annotations

import pytest

from blueprints.landing_zone import created_spoke_id, creates_spoke, hub_requests
from blueprints.network_flows import active_flows
from blueprints.topology import private_dns_zone
from modules.immutable_properties import replace_on_changes
from reports.costing import estimate
from reports.request_pack import build_context
from tests.conftest import REPO, planned
from validation.policies import evaluate, mandatory_failures
from validation.stack_config import load_stack

STACK = REPO / "stacks" / "landing-zone-spoke.yaml"
EXISTING = REPO / "stacks" / "landing-zone.yaml"


@pytest.fixture(scope="module")
def plan():
    return planned(STACK)


@pytest.fixture(scope="module")
def zone(plan):
    return plan.config["network"]["landing_zone"]


def _of(plan, kind: str):
    return plan.of_type(f"azure-native:{kind}")


def test_the_spoke_network_is_created_with_the_stacks_address_space_and_tagged_as_a_spoke(plan):
    (vnet,) = _of(plan, "network:VirtualNetwork")
    assert vnet.inputs["addressSpace"]["addressPrefixes"] == ["10.88.8.0/24"]
    assert vnet.inputs["tags"]["network-mode"] == "landing-zone"
    assert "dhcpOptions" not in vnet.inputs  # nothing public linked or pointed at
    subnets = _of(plan, "network:Subnet")
    assert sorted(s.inputs["addressPrefix"] for s in subnets) == ["10.88.8.0/27", "10.88.8.64/27"]
    assert all(s.inputs["virtualNetworkName"] == vnet.azure_name and s.inputs["defaultOutboundAccess"] is False
               for s in subnets)


def test_the_spokes_half_of_the_peering_goes_to_the_hub_as_a_spoke_expects(plan, zone):
    (peering,) = _of(plan, "network:VirtualNetworkPeering")
    (vnet,) = _of(plan, "network:VirtualNetwork")
    assert peering.inputs["virtualNetworkName"] == vnet.azure_name
    assert peering.inputs["remoteVirtualNetwork"] == {"id": zone["hub_virtual_network_id"]}
    assert peering.inputs["allowVirtualNetworkAccess"] is True
    assert peering.inputs["allowForwardedTraffic"] is True  # the hub firewall forwards traffic into the spoke
    assert peering.inputs["allowGatewayTransit"] is False  # a spoke offers no gateway
    assert peering.inputs["useRemoteGateways"] is False  # not until the hub's half allows transit
    assert peering.inputs["peerCompleteVnets"] is True


def test_turning_on_the_hubs_gateways_is_an_update_and_a_new_hub_a_replacement(tmp_path):
    text = STACK.read_text().replace("use_hub_gateways: false", "use_hub_gateways: true")
    edited = tmp_path / "landing-zone-spoke.yaml"
    edited.write_text(text)
    (peering,) = planned(edited).of_type("azure-native:network:VirtualNetworkPeering")
    assert peering.inputs["useRemoteGateways"] is True
    replaced = replace_on_changes("azure-native:network:VirtualNetworkPeering")
    assert "remoteVirtualNetwork" in replaced and "peerCompleteVnets" in replaced
    assert "useRemoteGateways" not in replaced and "allowForwardedTraffic" not in replaced


def test_the_hub_network_is_read_never_created_and_nothing_the_hub_provides_is_made(plan):
    for kind in ("network:NatGateway", "network:PublicIPAddress", "network:BastionHost",
                 "operationalinsights:Workspace", "network:VirtualNetworkGateway"):
        assert _of(plan, kind) == [], kind
    assert [z.azure_name for z in _of(plan, "privatedns:PrivateZone")] == ["exacute-prod.internal"]


def test_the_mirror_leaves_through_the_hub_firewall_and_the_analytics_vms_not_at_all(plan, zone):
    (table,) = _of(plan, "network:RouteTable")
    assert table.inputs["routes"][0]["nextHopIpAddress"] == zone["hub_firewall_address"]
    by_range = {s.inputs["addressPrefix"]: s for s in _of(plan, "network:Subnet")}
    assert by_range["10.88.8.0/27"].inputs["routeTable"]["id"] == table.id
    assert "routeTable" not in by_range["10.88.8.64/27"].inputs
    internet = [f for f in active_flows(plan.config) if f.destination == "internet"]
    assert [f.source for f in internet] == ["role:package_mirror"]
    analytics_out = {f.destination for f in active_flows(plan.config) if f.source in ("role:analytics", "role:*")}
    assert analytics_out == {"role:package_mirror", "role:git_server", "endpoint:azure-monitor",
                             "endpoint:key-vault"}


def test_the_analytics_vms_have_no_public_ip_and_ssh_comes_only_from_the_hubs_bastion(plan, zone):
    nics = _of(plan, "network:NetworkInterface")
    assert len(nics) == 4
    assert all("publicIPAddress" not in config for nic in nics for config in nic.inputs["ipConfigurations"])
    (workloads,) = [n for n in _of(plan, "network:NetworkSecurityGroup") if n.azure_name.endswith("-workloads")]
    inbound = [r for r in workloads.inputs["securityRules"] if r["direction"] == "Inbound" and r["access"] == "Allow"]
    assert [(r["name"], r["sourceAddressPrefix"], r["destinationPortRange"]) for r in inbound] == [
        ("allow-ssh-hub-bastion-to-analytics", zone["hub_bastion_range"], "22")]


def test_every_mandatory_policy_passes_and_the_spoke_rules_looked(plan):
    results = evaluate(plan)
    assert mandatory_failures(results) == []
    by_id = {result.rule.id: result for result in results}
    assert by_id["TB-NET-008"].checked >= 4 and by_id["TB-NET-008"].passed
    assert by_id["TB-NET-009"].checked == 1 and by_id["TB-NET-009"].passed


def test_the_request_pack_gives_the_hub_team_the_exact_values_of_the_hubs_half(plan, zone):
    context = build_context(plan)
    assert context["spoke_created"] is True
    (peering,) = [r for r in context["hub"] if r.what.startswith("Peer the hub to the spoke")]
    spoke_id = created_spoke_id(plan.config)
    assert spoke_id.endswith("/resourceGroups/rg-exacute-prod-uks/providers/Microsoft.Network/"
                             "virtualNetworks/vnet-exacute-prod-uks")
    for value in (zone["hub_virtual_network_id"], f"remote_virtual_network {spoke_id}",
                  "allow_virtual_network_access true", "allow_forwarded_traffic true",
                  "allow_gateway_transit true if the hub has a VPN or ExpressRoute gateway",
                  "use_remote_gateways false", "peer_complete_vnets true", "10.88.8.0/24"):
        assert value in peering.detail, value
    rights = next(r for r in context["hub"] if r.what.startswith("Let the deploying identity"))
    assert "Microsoft.Network/virtualNetworks/peer/action on the hub vnet-hub-uksouth" in rights.detail
    access = next(r for r in context["hub"] if r.what.startswith("Remote access"))
    assert zone["hub_bastion_range"] in access.detail


def test_an_existing_spoke_still_asks_for_both_halves_of_the_peering():
    config = load_stack(EXISTING)
    assert not creates_spoke(config)
    (peering,) = [r for r in hub_requests(config, private_dns_zone(config)) if r.what.startswith("Peer")]
    assert "both directions" in peering.what
    assert config["network"]["landing_zone"]["spoke_virtual_network_id"] in peering.detail


def test_the_cost_prices_this_end_of_the_peering_and_nothing_the_hub_pays(plan):
    est = estimate(plan)
    assert est.not_priced == []
    (peering,) = [r for r in est.resources if r.type == "azure-native:network:VirtualNetworkPeering"]
    assert peering.monthly > 0
    assert any("the hub's end of the peering's traffic" in note for note in est.notes)
    assert est.remote_access == [] and est.firewall == []
