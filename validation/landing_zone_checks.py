"""Checks across the fields of a landing-zone stack (``network.landing_zone``) that the schema cannot make.

The schema already refuses a missing or malformed id, naming the field; these checks relate the
section to the rest of the stack: no role that needs a public IP, a firewall and a Bastion range in
the hub, not the spoke, a spoke that is not the hub, and settings that only one form of the section
(an existing spoke by id, or a spoke created and peered here) can use.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from blueprints.landing_zone import existing_spoke_id, landing_zone, parse_id, spoke_form
from validation.problems import MISSING, Problem

DOCS = "docs/landing-zone.md"
# RFC 1918 (Python's is_private also counts documentation and link-local ranges, which no hub uses).
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def landing_zone_problems(config: dict[str, Any]) -> list[Problem]:
    zone = landing_zone(config)
    if zone is None:
        return []
    problems: list[Problem] = []
    gateway = config["roles"].get("gateway")
    if gateway:
        # Both gateway kinds face the Internet: the self-hosted VM and Azure Bastion each need a public IP.
        problems.append(Problem(
            "roles.gateway.kind", gateway["kind"],
            "needs a public IP, and network.landing_zone allows none in the spoke: no gateway kind is allowed",
            "remove roles.gateway and use the hub's own Azure Bastion instead: give its subnet's range as "
            f"network.landing_zone.hub_bastion_range ({DOCS})"))
    if config["roles"].get("analytics") and not zone.get("hub_bastion_range"):
        # With no gateway in the spoke, the hub's Bastion is the only way to an analytics VM.
        problems.append(Problem(
            "network.landing_zone.hub_bastion_range", MISSING,
            "is required by roles.analytics in a landing zone: the analytics VMs are reached only over SSH "
            "from the hub's Azure Bastion",
            "the range of the hub's AzureBastionSubnet, such as 10.88.0.64/26"))
    if config["network"]["allowed_client_ranges"]:
        problems.append(Problem(
            "network.allowed_client_ranges", config["network"]["allowed_client_ranges"],
            "must be empty with network.landing_zone: nothing in the spoke is reachable from the Internet",
            "list the trust's own networks in network.private_client_ranges instead"))
    field = "network.landing_zone.hub_firewall_address"
    space: ipaddress.IPv4Network | None
    try:
        space = ipaddress.IPv4Network(config["network"]["address_space"], strict=False)
    except ValueError:  # reported by the address plan's own check
        space = None
    try:
        firewall = ipaddress.IPv4Address(zone["hub_firewall_address"])
    except ValueError:
        problems.append(Problem(field, zone["hub_firewall_address"],
                                "must be an IPv4 address such as 10.0.0.4 (each part 0-255)"))
    else:
        if not any(firewall in private for private in PRIVATE_RANGES):
            problems.append(Problem(field, zone["hub_firewall_address"],
                                    "must be the firewall's private address in the hub "
                                    "(10/8, 172.16/12 or 192.168/16)"))
        elif space is not None and firewall in space:
            problems.append(Problem(field, zone["hub_firewall_address"],
                                    f"lies inside the spoke's network.address_space {space}; must be the hub "
                                    "firewall's address, in the hub"))
    problems += _hub_bastion_range(zone, space)
    hub = parse_id(zone["hub_virtual_network_id"])
    spoke_id = existing_spoke_id(config)
    if spoke_id and spoke_id.lower() == hub.id.lower():
        problems.append(Problem("network.landing_zone.hub_virtual_network_id", hub.id,
                                "is the spoke itself; must be the hub virtual network the spoke is peered to"))
    if spoke_id and zone["use_hub_gateways"]:
        # The peerings of a spoke the platform team made are theirs, both halves.
        problems.append(Problem("network.landing_zone.use_hub_gateways", True,
                                f"applies only to a spoke this program creates, and here {spoke_form(config)}",
                                "remove it (the hub team sets the existing spoke's peering), or remove "
                                "spoke_virtual_network_id to have the spoke created"))
    return problems


def _hub_bastion_range(zone: dict[str, Any], space: ipaddress.IPv4Network | None) -> list[Problem]:
    given = zone.get("hub_bastion_range")
    if not given:
        return []
    field = "network.landing_zone.hub_bastion_range"
    try:
        bastion = ipaddress.IPv4Network(given)
    except ValueError:
        return [Problem(field, given, "must be an IPv4 range with no host bits set, such as 10.88.0.64/26")]
    if not any(bastion.subnet_of(private) for private in PRIVATE_RANGES):
        return [Problem(field, given, "must be the hub's private AzureBastionSubnet range (inside 10/8, 172.16/12 "
                                      "or 192.168/16)")]
    if space is not None and bastion.overlaps(space):
        return [Problem(field, given, f"overlaps the spoke's network.address_space {space}; must be the hub's "
                                      "AzureBastionSubnet, in the hub")]
    return []
