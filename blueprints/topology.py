"""Where every machine of a stack sits: subnets, fixed addresses, exposure.

Pure data derived from a validated stack config. Azure (via the blueprints) and the lab
both read it, which is why the lab's addresses equal Azure's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from blueprints.roles import all_roles, role

# Azure reserves the first four addresses and the last one of every subnet.
FIRST_USABLE_HOST = 4

@dataclass(frozen=True)
class Machine:
    """One VM of the environment (one lab machine)."""

    name: str  # host name and private DNS label: gateway, mirror, git, analytics-1
    role: str  # the role's name (blueprints/<role>/role.py)
    subnet: str  # gateway | services | workloads
    private_ip: str
    vm_size: str
    data_disk_gb: int | None
    internet_egress: bool  # only the mirror fetches from the Internet
    public_entry: bool  # only the self-hosted gateway has a public IP


def subnet_plan(config: dict[str, Any]) -> dict[str, ipaddress.IPv4Network]:
    """Subnet name -> network, for the subnets this stack deploys."""
    return {
        name: ipaddress.ip_network(cidr)
        for name, cidr in config["network"]["subnets"].items()
        if cidr is not None
    }


def _host(network: ipaddress.IPv4Network, index: int) -> str:
    return str(network.network_address + FIRST_USABLE_HOST + index)


def plan_machines(config: dict[str, Any]) -> list[Machine]:
    """Every VM the stack deploys, in a stable order, with its fixed private address.

    Roles come in machine order (blueprints/roles.py): by subnet, then by each role's first address.
    """
    subnets = subnet_plan(config)
    machines: list[Machine] = []
    for declared in all_roles():
        settings = config["roles"].get(declared.name)
        if not settings:
            continue
        for index, name in enumerate(declared.machine_names(settings)):
            machines.append(
                Machine(
                    name=name,
                    role=declared.name,
                    subnet=declared.subnet,
                    private_ip=_host(subnets[declared.subnet], declared.first_host + index),
                    vm_size=settings["vm_size"],
                    data_disk_gb=settings[declared.data_disk_setting] if declared.data_disk_setting else None,
                    internet_egress=declared.internet_egress,
                    public_entry=declared.public_entry,
                )
            )
    return machines


def role_subnet(name: str) -> str:
    """The subnet a role's machines sit in."""
    return role(name).subnet


def private_dns_zone(config: dict[str, Any]) -> str:
    """The internal DNS zone: names like mirror.<zone> resolve on Azure and in the lab."""
    return f"{config['trust']['short_name']}-{config['environment']}.internal"
