"""Platform services at an address inside the virtual network: private endpoints and their DNS zones.

A VM finds a service by its usual name (``<vault>.vault.azure.net``); Azure's public DNS answers
with a ``privatelink.`` alias, which a private DNS zone linked to the network resolves to the
endpoint's address in the subnet. So every endpoint needs the zones of its sub-resource, and
several endpoints share a zone (Blob storage and Azure Monitor both use the blob zone): the zones
are one component per environment, the endpoints another each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network

from modules.placement import Placement
from modules.private_dns import linked_zone
from modules.private_link_zones import GROUP_ZONES, zones_for

__all__ = ["GROUP_MEMBERS", "GROUP_ZONES", "EndpointSubnet", "PrivateEndpoint", "PrivateEndpointArgs",
           "PrivateLinkZones", "PrivateLinkZonesArgs", "zones_for"]


@dataclass
class PrivateLinkZonesArgs:
    placement: Placement
    zones: Sequence[str]  # privatelink.* zone names (zones_for)
    vnet_id: pulumi.Input[str]


class PrivateLinkZones(pulumi.ComponentResource):
    """The privatelink.* zones, each linked to the environment's network (no auto-registration)."""

    zone_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PrivateLinkZonesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:PrivateLinkZones", name, None, opts)
        placement = args.placement
        tags = placement.tags_for("dns")
        child = pulumi.ResourceOptions(parent=self)
        self.zone_ids = {}
        for zone_name in args.zones:
            label = zone_name.removeprefix("privatelink.").replace(".", "-")
            zone = linked_zone(f"{name}-{label}", f"{name}-{label}-link", zone_name, placement, args.vnet_id,
                               tags, child)
            self.zone_ids[zone_name] = zone.id
        self.register_outputs({"zone_ids": self.zone_ids})


@dataclass
class EndpointSubnet:
    """Where a module puts its private endpoints: the subnet, and the environment's privatelink zones."""

    subnet_id: pulumi.Input[str]
    zone_ids: Mapping[str, pulumi.Input[str]]
    # Fixed addresses by group id. An endpoint without one takes the lowest free address of the
    # subnet, which a VM's fixed address may need later; one with one never can.
    static_ips: Mapping[str, str] = field(default_factory=dict)


# The member each single-member sub-resource's address is given to (a fixed address names it).
GROUP_MEMBERS = {"vault": "default", "blob": "blob"}


@dataclass
class PrivateEndpointArgs:
    placement: Placement
    part: str  # the name part: kv, blob-git, monitor
    component: str  # what the endpoint belongs to, for tags
    subnet_id: pulumi.Input[str]
    target_id: pulumi.Input[str]  # the vault, storage account or private link scope
    group_id: str  # the sub-resource: vault, blob, azuremonitor
    zone_ids: Mapping[str, pulumi.Input[str]]  # PrivateLinkZones.zone_ids (must hold this group's zones)
    private_ip: str | None = None  # a fixed address (single-member groups only: GROUP_MEMBERS)


class PrivateEndpoint(pulumi.ComponentResource):
    """One endpoint in a subnet for one sub-resource, with a zone group so Azure keeps its A records."""

    endpoint_id: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:PrivateEndpoint", name, None, opts)
        placement = args.placement
        naming = placement.naming
        missing = [zone for zone in GROUP_ZONES[args.group_id] if zone not in args.zone_ids]
        if missing:
            raise ValueError(f"private endpoint {args.part!r} ({args.group_id}) needs the DNS zones {missing}")
        child = pulumi.ResourceOptions(parent=self)
        endpoint = network.PrivateEndpoint(
            f"{name}-pep",
            private_endpoint_name=naming.name("pep", args.part),
            custom_network_interface_name=naming.name("nic", f"pep-{args.part}"),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            subnet={"id": args.subnet_id},
            private_link_service_connections=[{
                "name": args.part,
                "private_link_service_id": args.target_id,
                "group_ids": [args.group_id],
            }],
            **({"ip_configurations": [{"name": args.part, "group_id": args.group_id,
                                       "member_name": GROUP_MEMBERS[args.group_id],
                                       "private_ip_address": args.private_ip}]} if args.private_ip else {}),
            tags=placement.tags_for(args.component),
            opts=child,
        )
        network.PrivateDnsZoneGroup(
            f"{name}-zones",
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=placement.resource_group_name,
            private_dns_zone_configs=[
                {"name": zone.replace(".", "-"), "private_dns_zone_id": args.zone_ids[zone]}
                for zone in GROUP_ZONES[args.group_id]
            ],
            opts=child,
        )
        self.endpoint_id = endpoint.id
        self.register_outputs({"endpoint_id": self.endpoint_id})
