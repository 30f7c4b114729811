"""One NSG rule, as plain data: the flow table builds these, the network module and the lab read them.

Apart from modules/network.py so that reading the rule table needs no Pulumi SDK.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecurityRule:
    """One NSG rule, in Azure's terms."""

    name: str
    priority: int
    direction: str  # Inbound | Outbound
    access: str  # Allow | Deny
    protocol: str  # Tcp | Udp | *
    source_prefixes: tuple[str, ...]
    destination_prefixes: tuple[str, ...]
    destination_ports: tuple[str, ...]
    description: str
