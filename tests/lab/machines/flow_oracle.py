"""What the flow table says about a connection between two machines, read straight from FLOWS.

The lab enforces rules compiled from ``nsg_rules``; these tests judge them against the flow
table itself, so a compilation mistake shows up as a disagreement.
"""

from __future__ import annotations

from typing import Any

from blueprints.network_flows import active_flows
from blueprints.topology import Machine

# A port no flow ever opens: every machine-to-machine connection to it must be dropped.
NEVER_ALLOWED_PORT = 18080


def _is(endpoint: str, machine: Machine) -> bool:
    kind, _, value = endpoint.partition(":")
    if kind == "role":
        return machine.role == value
    if kind == "subnet":
        return value in ("*", machine.subnet)
    return False


def allowed(config: dict[str, Any], source: Machine, destination: Machine, port: int) -> bool:
    return any(
        flow.protocol == "Tcp" and port in flow.ports
        and _is(flow.source, source) and _is(flow.destination, destination)
        for flow in active_flows(config)
    )


def flow_ports(config: dict[str, Any]) -> list[int]:
    ports = {port for flow in active_flows(config) if flow.protocol == "Tcp" for port in flow.ports}
    return sorted(ports | {NEVER_ALLOWED_PORT})


def allowed_to_internet(config: dict[str, Any], source: Machine, port: int) -> bool:
    return any(flow.destination == "internet" and port in flow.ports and _is(flow.source, source)
               for flow in active_flows(config))


def allowed_from_subnet(config: dict[str, Any], subnet: str, destination: Machine, port: int) -> bool:
    """The same question for a source with no VM of the stack: Azure Bastion's instances in its subnet."""
    return any(flow.protocol == "Tcp" and port in flow.ports and flow.source == f"subnet:{subnet}"
               and _is(flow.destination, destination) for flow in active_flows(config))
