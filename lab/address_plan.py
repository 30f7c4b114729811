"""The lab's addresses: the stack's own subnets plus a small stand-in for the Internet side.

Machines sit at exactly their Azure private addresses. The host holds each subnet's ``.1``
(Azure's default gateway address). An "Internet" bridge carries the client namespace (an
analyst at home, inside the stack's first allowed client range) and the stand-in for the
gateway's public IP address, or for Azure Bastion's (whose instance sits in the Bastion subnet).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass
from typing import Any

from blueprints.topology import Machine, plan_machines, subnet_plan
from lab.bastion import BASTION_SUBNET, instance_address
from lab.bastion import wanted as bastion_wanted
from lab.layout import PREFIX

# Shared address space (RFC 6598): never a trust's VNet, never this host's uplink.
LAB_INTERNET = ipaddress.ip_network("100.64.77.0/24")
# The client when a stack allows no client range (TEST-NET-2, documentation use only).
INTERNET_STRANGER = ipaddress.ip_address("198.51.100.1")


@dataclass(frozen=True)
class AddressPlan:
    address_space: ipaddress.IPv4Network
    subnets: dict[str, ipaddress.IPv4Network]  # subnets that have machines
    subnet_gateways: dict[str, str]  # subnet -> the host's address on its bridge (.1)
    machines: tuple[Machine, ...]
    internet: ipaddress.IPv4Network
    internet_gateway: str  # the host on the Internet bridge
    public_gateway_ip: str | None  # stand-in for the gateway's public IP (None: no self-hosted gateway)
    client_ip: str  # the analyst at home, inside the first allowed client range
    client_ranges: tuple[str, ...]
    # Stand-in for Entra ID (the AzureActiveDirectory service tag); None without a self-hosted gateway.
    identity_provider_ip: str | None = None
    # With Azure Bastion (gateway kind bastion): its public IP stand-in on the Internet bridge, and the
    # address in the Bastion subnet its instance connects from (lab/bastion.py); None otherwise.
    public_bastion_ip: str | None = None
    bastion_ip: str | None = None
    # A landing zone's hub firewall (lab/hub_firewall.py), where the mirror's subnet routes the Internet.
    hub_firewall_ip: str | None = None


def address_plan(config: dict[str, Any]) -> AddressPlan:
    machines = tuple(plan_machines(config))
    bastion = bastion_wanted(config)
    # The Bastion subnet has no VM, but its instance is a host of the lab (lab/bastion.py).
    used = {m.subnet for m in machines} | ({BASTION_SUBNET} if bastion else set())
    subnets = {name: net for name, net in subnet_plan(config).items() if name in used}
    allowed = config["network"].get("allowed_client_ranges") or []
    if allowed:
        first_range = ipaddress.ip_network(allowed[0])
        client = first_range.network_address + (1 if first_range.num_addresses > 2 else 0)
    else:
        # No public entry point to allow: the client is simply someone on the Internet, and the
        # lab shows they reach nothing.
        client = INTERNET_STRANGER
    gateway = any(m.public_entry for m in machines)
    return AddressPlan(
        address_space=ipaddress.ip_network(config["network"]["address_space"]),
        subnets=subnets,
        subnet_gateways={name: str(net.network_address + 1) for name, net in subnets.items()},
        machines=machines,
        internet=LAB_INTERNET,
        internet_gateway=str(LAB_INTERNET.network_address + 1),
        public_gateway_ip=str(LAB_INTERNET.network_address + 10) if gateway else None,
        client_ip=str(client),
        client_ranges=tuple(allowed),
        identity_provider_ip=str(LAB_INTERNET.network_address + 20) if gateway else None,
        public_bastion_ip=str(LAB_INTERNET.network_address + 11) if bastion else None,
        bastion_ip=instance_address(config) if bastion else None,
        hub_firewall_ip=(config["network"]["landing_zone"]["hub_firewall_address"]
                         if config["network"].get("landing_zone") and any(m.internet_egress for m in machines)
                         else None),
    )


def host_route_conflicts(plan: AddressPlan) -> list[str]:
    """Host routes (other than the lab's own) that overlap the lab's networks: the lab would break them."""
    result = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                            capture_output=True, text=True, check=True)
    lab_networks = [plan.address_space, plan.internet, ipaddress.ip_network(f"{plan.client_ip}/32"),
                    *([ipaddress.ip_network(f"{plan.hub_firewall_ip}/32")] if plan.hub_firewall_ip else [])]
    conflicts = []
    for route in json.loads(result.stdout or "[]"):
        destination = route.get("dst", "")
        device = route.get("dev", "")
        if destination in ("default", "") or device.startswith(PREFIX) or route.get("type") in (
                "local", "broadcast", "multicast"):
            continue
        try:
            network = ipaddress.ip_network(destination, strict=False)
        except ValueError:
            continue
        if network.prefixlen == 0:
            continue
        for lab_network in lab_networks:
            if network.overlaps(lab_network):
                conflicts.append(f"{destination} on {device or '?'} overlaps the lab's {lab_network}")
    return conflicts
