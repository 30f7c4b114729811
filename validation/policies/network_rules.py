"""Rules on the network edge: what the Internet can reach and how subnets are guarded."""

from __future__ import annotations

import ipaddress
from typing import Any

from blueprints.roles import all_roles
from validation.plan_recorder import Plan, PlannedResource
from validation.policies.rule import Rule, Violation, dig, violation

NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
SUBNET = "azure-native:network:Subnet"
VNET = "azure-native:network:VirtualNetwork"
NIC = "azure-native:network:NetworkInterface"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
ROUTE_TABLE = "azure-native:network:RouteTable"
BASTION = "azure-native:network:BastionHost"
NAT_GATEWAY = "azure-native:network:NatGateway"
# The tag every resource of a landing zone's spoke carries (blueprints/reference_environment.py): the
# policy pack sees resources, not the stack file, so the mode travels with them.
MODE_TAG, LANDING_ZONE_MODE = "network-mode", "landing-zone"

# SSH, RDP, WinRM and the Azure serial/remote-management ports.
MANAGEMENT_PORTS = (22, 3389, 5985, 5986)
# Sources that mean "anyone on the Internet" in an NSG rule.
ANY_SOURCE = {"*", "internet", "any", "0.0.0.0/0", "0.0.0.0", "::/0"}  # noqa: S104 (matched, not bound)
WIDEST_NAMED_RANGE = 8  # a range wider than /8 is the Internet in practice
# Subnets Azure manages itself and that refuse an NSG.
SUBNETS_WITHOUT_NSG = {"GatewaySubnet", "AzureFirewallSubnet", "AzureFirewallManagementSubnet",
                       "RouteServerSubnet"}


def _sources(rule: dict[str, Any]) -> list[str]:
    single = rule.get("sourceAddressPrefix")
    return ([single] if single else []) + list(rule.get("sourceAddressPrefixes") or [])


def _ports(rule: dict[str, Any]) -> list[str]:
    single = rule.get("destinationPortRange")
    return ([single] if single else []) + list(rule.get("destinationPortRanges") or [])


def _from_internet(source: str) -> bool:
    if source.lower() in ANY_SOURCE:
        return True
    try:
        network = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False  # a service tag such as VirtualNetwork or AzureLoadBalancer
    return network.prefixlen < WIDEST_NAMED_RANGE and not network.is_private


def _covers(port_range: str, port: int) -> bool:
    if port_range == "*":
        return True
    low, _, high = port_range.partition("-")
    try:
        return int(low) <= port <= int(high or low)
    except ValueError:
        return False


def _inbound_allows(resource: PlannedResource) -> list[tuple[str, dict[str, Any]]]:
    """(field path, rule) for every inbound Allow rule of an NSG or a standalone security rule."""
    if resource.type == SECURITY_RULE:
        rules = [("", resource.inputs)]
    else:
        rules = [(f"securityRules[{i}].", rule) for i, rule in enumerate(resource.inputs.get("securityRules") or [])]
    return [(path, rule) for path, rule in rules
            if str(rule.get("direction", "")).lower() == "inbound" and str(rule.get("access", "")).lower() == "allow"]


def _no_management_from_internet(resource: PlannedResource, plan: Plan) -> list[Violation]:
    found = []
    for path, rule in _inbound_allows(resource):
        open_sources = [s for s in _sources(rule) if _from_internet(s)]
        ports = sorted({p for p in MANAGEMENT_PORTS for r in _ports(rule) if _covers(str(r), p)})
        if open_sources and ports:
            found.append(violation(resource, f"{path}sourceAddressPrefix",
                                   f"allows {', '.join(open_sources)} to reach management port(s) "
                                   f"{', '.join(map(str, ports))} (rule {rule.get('name')!r}); allowed: "
                                   "the trust's named client ranges or private addresses only"))
    return found


def _no_all_ports_from_internet(resource: PlannedResource, plan: Plan) -> list[Violation]:
    found = []
    for path, rule in _inbound_allows(resource):
        open_sources = [s for s in _sources(rule) if _from_internet(s)]
        if open_sources and any(str(p) in ("*", "0-65535", "1-65535") for p in _ports(rule)):
            found.append(violation(resource, f"{path}destinationPortRange",
                                   f"opens every port to {', '.join(open_sources)} (rule {rule.get('name')!r}); "
                                   "allowed: named ports from named ranges"))
    return found


def _subnet_has_nsg(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if resource.type == VNET:
        found = []
        for index, subnet in enumerate(resource.inputs.get("subnets") or []):
            name = subnet.get("name", "")
            if name not in SUBNETS_WITHOUT_NSG and not dig(subnet, "networkSecurityGroup.id"):
                found.append(violation(resource, f"subnets[{index}].networkSecurityGroup",
                                       f"is missing for subnet {name!r}; every subnet needs its own NSG"))
        return found
    if resource.azure_name in SUBNETS_WITHOUT_NSG or dig(resource.inputs, "networkSecurityGroup.id"):
        return []
    return [violation(resource, "networkSecurityGroup", "is missing; every subnet needs its own NSG")]


def _no_public_ip_on_nic(resource: PlannedResource, plan: Plan) -> list[Violation]:
    public_entry = {declared.component for declared in all_roles() if declared.public_entry}
    if (resource.inputs.get("tags") or {}).get("component") in public_entry:
        return []
    return [violation(resource, f"ipConfigurations[{index}].publicIPAddress",
                      "is set; only the interface of a role with a public entry (the remote gateway) may "
                      "have a public IP")
            for index, config in enumerate(resource.inputs.get("ipConfigurations") or [])
            if config.get("publicIPAddress")]


def _no_ip_forwarding(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if resource.inputs.get("enableIPForwarding") is True:
        return [violation(resource, "enableIPForwarding", "is true; must be false (no VM routes traffic)")]
    return []


def _no_default_outbound(resource: PlannedResource, plan: Plan) -> list[Violation]:
    value = resource.inputs.get("defaultOutboundAccess")
    if value is not False:
        return [violation(resource, "defaultOutboundAccess",
                          f"is {value!r}; must be false so Internet egress goes only through the NAT gateway "
                          "or the hub firewall")]
    return []


def _in_landing_zone(resource: PlannedResource, plan: Plan) -> bool:
    if (plan.config.get("network") or {}).get("landing_zone"):
        return True
    return (resource.inputs.get("tags") or {}).get(MODE_TAG) == LANDING_ZONE_MODE


def _no_public_ip_in_spoke(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if not _in_landing_zone(resource, plan):
        return []
    if resource.type == NIC:
        return [violation(resource, f"ipConfigurations[{index}].publicIPAddress",
                          "is set; a landing zone's spoke has no public IP (people come in through the hub)")
                for index, config in enumerate(resource.inputs.get("ipConfigurations") or [])
                if config.get("publicIPAddress")]
    why = {PUBLIC_IP: "is a public IP", BASTION: "needs a public IP", NAT_GATEWAY: "needs a public IP"}[resource.type]
    return [violation(resource, "(resource)", f"{why}; a landing zone's spoke has none: egress goes through the hub "
                                              "firewall and people come in through the hub's Bastion or gateway")]


def _default_route_to_firewall(resource: PlannedResource, plan: Plan) -> list[Violation]:
    return [violation(resource, f"routes[{index}].nextHopType",
                      f"is {route.get('nextHopType')!r} for {route.get('addressPrefix')}; the default route must go "
                      "to a firewall (VirtualAppliance with its private address)")
            for index, route in enumerate(resource.inputs.get("routes") or [])
            if route.get("addressPrefix") == "0.0.0.0/0"
            and (route.get("nextHopType") != "VirtualAppliance" or not route.get("nextHopIpAddress"))]


def _standard_public_ip(resource: PlannedResource, plan: Plan) -> list[Violation]:
    sku = dig(resource.inputs, "sku.name")
    if sku != "Standard":
        return [violation(resource, "sku.name", f"is {sku!r}; must be 'Standard' (closed until an NSG allows)")]
    return []


RULES: tuple[Rule, ...] = (
    Rule(
        id="TB-NET-001",
        title="No management ports open to the Internet",
        severity="mandatory",
        reason="SSH and RDP reachable from anywhere are scanned and brute-forced within minutes of deployment; "
               "administrators come in through the gateway from named ranges instead.",
        reference="MCSB NS-1 (network segmentation); NCSC Cloud Security Principle 11 (external interface "
                  "protection)",
        resource_types=(NSG, SECURITY_RULE),
        check=_no_management_from_internet,
    ),
    Rule(
        id="TB-NET-002",
        title="No inbound rule opens every port to the Internet",
        severity="mandatory",
        reason="An allow-all rule undoes every other rule of the NSG; each opening names its port.",
        reference="MCSB NS-1 (network segmentation); NCSC Cloud Security Principle 11 (external interface "
                  "protection)",
        resource_types=(NSG, SECURITY_RULE),
        check=_no_all_ports_from_internet,
    ),
    Rule(
        id="TB-NET-003",
        title="Every subnet has a network security group",
        severity="mandatory",
        reason="A subnet without an NSG accepts anything its neighbours send; one NSG per subnet keeps each "
               "tier's traffic to the flows the design lists.",
        reference="MCSB NS-1 (network segmentation); NCSC Cloud Security Principle 3 (separation)",
        resource_types=(SUBNET, VNET),
        check=_subnet_has_nsg,
    ),
    Rule(
        id="TB-NET-004",
        title="No public IP on network interfaces except the gateway",
        severity="mandatory",
        reason="Every public address is an attack surface; only the remote gateway faces analysts' networks, "
               "and everything else is reached through it.",
        reference="MCSB NS-2 (secure cloud services with network controls); NCSC Cloud Security Principle 11 "
                  "(external interface protection)",
        resource_types=(NIC,),
        check=_no_public_ip_on_nic,
    ),
    Rule(
        id="TB-NET-005",
        title="No IP forwarding on network interfaces",
        severity="mandatory",
        reason="A VM that forwards packets can route around the NSGs; no machine in these blueprints is a router.",
        reference="MCSB NS-1 (network segmentation)",
        resource_types=(NIC,),
        check=_no_ip_forwarding,
    ),
    Rule(
        id="TB-NET-006",
        title="No implicit outbound Internet access from subnets",
        severity="mandatory",
        reason="Azure's default outbound access gives every VM unmanaged Internet egress; egress here goes "
               "only through the NAT gateway (or a landing zone's hub firewall), from the subnets that need it.",
        reference="MCSB NS-3 (deploy firewall at the edge); NCSC Cloud Security Principle 11 (external "
                  "interface protection)",
        resource_types=(SUBNET,),
        check=_no_default_outbound,
    ),
    Rule(
        id="TB-NET-007",
        title="Public IPs use the Standard SKU",
        severity="mandatory",
        reason="Standard public IPs are closed until an NSG opens them and are zone-redundant; Basic IPs are "
               "open by default and retired by Azure.",
        reference="MCSB NS-2 (secure cloud services with network controls)",
        resource_types=(PUBLIC_IP,),
        check=_standard_public_ip,
    ),
    Rule(
        id="TB-NET-008",
        title="No public IP in a landing zone's spoke",
        severity="mandatory",
        reason="A landing zone keeps every entry and exit at the hub, where the trust's firewall and Bastion are; "
               "a public IP in a spoke would bypass both, and the trust's own Azure Policy usually forbids it.",
        reference="MCSB NS-1 and NS-2; NCSC Cloud Security Principle 11 (external interface protection); "
                  "Azure landing zone policy 'Deny-PublicIP' (Corp)",
        resource_types=(PUBLIC_IP, NIC, BASTION, NAT_GATEWAY),
        check=_no_public_ip_in_spoke,
    ),
    Rule(
        id="TB-NET-009",
        title="Default routes go to a firewall",
        severity="mandatory",
        reason="A route table that sends 0.0.0.0/0 anywhere but a firewall's address gives the subnet "
               "Internet egress that no one inspects.",
        reference="MCSB NS-3 (deploy firewall at the edge of enterprise network)",
        resource_types=(ROUTE_TABLE,),
        check=_default_route_to_firewall,
    ),
)
