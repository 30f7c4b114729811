"""Checks across the fields of a landing-zone stack (``network.landing_zone``) that the schema cannot make.

The schema already refuses a missing or malformed id, naming the field; these checks relate the
section to the rest of the stack: no role that needs a public IP, a firewall the spoke can route
to, and a spoke that is not the hub.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from blueprints.landing_zone import landing_zone, parse_id
from validation.problems import Problem

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
            f"remove roles.gateway; people come in through the hub's Azure Bastion or an application gateway "
            f"the trust runs ({DOCS})"))
    if config["roles"].get("analytics"):
        # Analysts reach JupyterHub only through the gateway's sign-in, which a spoke cannot have.
        problems.append(Problem(
            "roles.analytics", "(set)",
            "is not available with network.landing_zone yet: analytics VMs are published only by the gateway",
            "deploy the package mirror and the Git server for the trust's existing analyst machines "
            "(network.private_client_ranges)"))
    if config["network"]["allowed_client_ranges"]:
        problems.append(Problem(
            "network.allowed_client_ranges", config["network"]["allowed_client_ranges"],
            "must be empty with network.landing_zone: nothing in the spoke is reachable from the Internet",
            "list the trust's own networks in network.private_client_ranges instead"))
    field = "network.landing_zone.hub_firewall_address"
    try:
        firewall = ipaddress.IPv4Address(zone["hub_firewall_address"])
    except ValueError:
        problems.append(Problem(field, zone["hub_firewall_address"],
                                "must be an IPv4 address such as 10.0.0.4 (each part 0-255)"))
    else:
        try:
            space = ipaddress.ip_network(config["network"]["address_space"], strict=False)
        except ValueError:  # reported by the address plan's own check
            space = None
        if not any(firewall in private for private in PRIVATE_RANGES):
            problems.append(Problem(field, zone["hub_firewall_address"],
                                    "must be the firewall's private address in the hub "
                                    "(10/8, 172.16/12 or 192.168/16)"))
        elif space is not None and firewall in space:
            problems.append(Problem(field, zone["hub_firewall_address"],
                                    f"lies inside the spoke's network.address_space {space}; must be the hub "
                                    "firewall's address, in the hub"))
    spoke, hub = (parse_id(zone[key]) for key in ("spoke_virtual_network_id", "hub_virtual_network_id"))
    if spoke.id.lower() == hub.id.lower():
        problems.append(Problem("network.landing_zone.hub_virtual_network_id", hub.id,
                                "is the spoke itself; must be the hub virtual network the spoke is peered to"))
    return problems
