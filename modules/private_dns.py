"""Private DNS zone linked to the VNet, with one A record per internal name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import privatedns

from modules.placement import Placement


@dataclass
class PrivateDnsArgs:
    placement: Placement
    zone_name: str
    vnet_id: pulumi.Input[str]
    records: Mapping[str, str]  # label -> private IPv4 address
    ttl: int = 300


class PrivateDns(pulumi.ComponentResource):
    zone_name: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateDnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:PrivateDns", name, None, opts)
        placement = args.placement
        tags = placement.tags_for("dns")
        zone = privatedns.PrivateZone(
            f"{name}-zone",
            private_zone_name=args.zone_name,
            resource_group_name=placement.resource_group_name,
            location="global",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        privatedns.VirtualNetworkLink(
            f"{name}-link",
            virtual_network_link_name=f"link-{placement.naming.name('vnet')}",
            private_zone_name=zone.name,
            resource_group_name=placement.resource_group_name,
            location="global",
            virtual_network={"id": args.vnet_id},
            registration_enabled=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        for label, address in args.records.items():
            privatedns.PrivateRecordSet(
                f"{name}-a-{label}",
                relative_record_set_name=label,
                private_zone_name=zone.name,
                resource_group_name=placement.resource_group_name,
                record_type="A",
                ttl=args.ttl,
                a_records=[{"ipv4_address": address}],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.zone_name = zone.name
        self.register_outputs({"zone_name": self.zone_name})
