"""A static Standard-SKU public IP: the only kind Azure still offers.

Zone-redundant where the caller names the region's zones; regional (no zones) where it names none,
as in a region without availability zones (the caller knows its region's facts; modules read none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from modules.placement import Placement


@dataclass
class PublicIpArgs:
    placement: Placement
    purpose: str  # part of the Azure name, e.g. "gateway", "nat", "bastion"
    dns_label: str | None = None
    zones: Sequence[str] | None = None  # the region's availability zones; None or empty: no zones


class PublicIp(pulumi.ComponentResource):
    id: pulumi.Output[str]
    ip_address: pulumi.Output[str | None]

    def __init__(self, name: str, args: PublicIpArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:PublicIp", name, None, opts)
        placement = args.placement
        address = network.PublicIPAddress(
            f"{name}-pip",
            public_ip_address_name=placement.naming.name("pip", args.purpose),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            sku={"name": "Standard", "tier": "Regional"},
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
            **({"zones": list(args.zones)} if args.zones else {}),
            **({"dns_settings": {"domain_name_label": args.dns_label}} if args.dns_label else {}),
            tags=placement.tags_for(args.purpose),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id = address.id
        self.ip_address = address.ip_address
        self.register_outputs({"id": self.id})
