"""Private DNS zone linked to the VNet, with one A record per internal name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import privatedns

from modules.placement import Placement


def linked_zone(zone_resource: str, link_resource: str, zone_name: str, placement: Placement,
                vnet_id: pulumi.Input[str], tags: Mapping[str, str],
                opts: pulumi.ResourceOptions) -> privatedns.PrivateZone:
    """A private DNS zone and its link to the VNet (no auto-registration); returns the zone."""
    zone = privatedns.PrivateZone(
        zone_resource,
        private_zone_name=zone_name,
        resource_group_name=placement.resource_group_name,
        location="global",
        tags=tags,
        opts=opts,
    )
    privatedns.VirtualNetworkLink(
        link_resource,
        virtual_network_link_name=f"link-{placement.naming.name('vnet')}",
        private_zone_name=zone.name,
        resource_group_name=placement.resource_group_name,
        location="global",
        virtual_network={"id": vnet_id},
        registration_enabled=False,
        tags=tags,
        opts=opts,
    )
    return zone


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
        zone = linked_zone(f"{name}-zone", f"{name}-link", args.zone_name, placement, args.vnet_id, tags,
                           pulumi.ResourceOptions(parent=self))
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
