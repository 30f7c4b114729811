"""Where every machine of a stack sits: subnets, fixed addresses, exposure.

Pure data derived from a validated stack config. Azure (via the blueprints) and the lab
both read it, which is why the lab's addresses equal Azure's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

# Azure reserves the first four addresses and the last one of every subnet.
FIRST_USABLE_HOST = 4

ROLE_SUBNET = {
    "gateway": "gateway",
    "package_mirror": "services",
    "git_server": "services",
    "analytics": "workloads",
}


@dataclass(frozen=True)
class Machine:
    """One VM of the environment (one lab machine)."""

    name: str  # host name and private DNS label: gateway, mirror, git, analytics-1
    role: str  # gateway | package_mirror | git_server | analytics
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
    """Every VM the stack deploys, in a stable order, with its fixed private address."""
    roles = config["roles"]
    subnets = subnet_plan(config)
    machines: list[Machine] = []

    gateway = roles.get("gateway")
    if gateway and gateway["kind"] == "self-hosted":
        machines.append(
            Machine(
                name="gateway",
                role="gateway",
                subnet="gateway",
                private_ip=_host(subnets["gateway"], 0),
                vm_size=gateway["vm_size"],
                data_disk_gb=None,
                internet_egress=False,
                public_entry=True,
            )
        )
    mirror = roles.get("package_mirror")
    if mirror:
        machines.append(
            Machine(
                name="mirror",
                role="package_mirror",
                subnet="services",
                private_ip=_host(subnets["services"], 0),
                vm_size=mirror["vm_size"],
                data_disk_gb=mirror["cache_disk_gb"],
                internet_egress=True,
                public_entry=False,
            )
        )
    git = roles.get("git_server")
    if git:
        machines.append(
            Machine(
                name="git",
                role="git_server",
                subnet="services",
                private_ip=_host(subnets["services"], 1),
                vm_size=git["vm_size"],
                data_disk_gb=git["data_disk_gb"],
                internet_egress=False,
                public_entry=False,
            )
        )
    analytics = roles.get("analytics")
    if analytics:
        for index in range(analytics["count"]):
            machines.append(
                Machine(
                    name=f"analytics-{index + 1}",
                    role="analytics",
                    subnet="workloads",
                    private_ip=_host(subnets["workloads"], index),
                    vm_size=analytics["vm_size"],
                    data_disk_gb=analytics["data_disk_gb"],
                    internet_egress=False,
                    public_entry=False,
                )
            )
    return machines


def private_dns_zone(config: dict[str, Any]) -> str:
    """The internal DNS zone: names like mirror.<zone> resolve on Azure and in the lab."""
    return f"{config['trust']['short_name']}-{config['environment']}.internal"
