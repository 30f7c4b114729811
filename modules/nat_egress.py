"""NAT gateway: the environment's one explicit route to the Internet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from modules.placement import Placement
from modules.public_ip import PublicIp, PublicIpArgs


@dataclass
class NatEgressArgs:
    placement: Placement
    idle_timeout_minutes: int = 4
    zones: Sequence[str] | None = None  # for its public IP: the region's availability zones, None for none


class NatEgress(pulumi.ComponentResource):
    nat_gateway_id: pulumi.Output[str]

    def __init__(self, name: str, args: NatEgressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:NatEgress", name, None, opts)
        placement = args.placement
        address = PublicIp(f"{name}-ip", PublicIpArgs(placement, "nat", zones=args.zones),
                           pulumi.ResourceOptions(parent=self))
        gateway = network.NatGateway(
            f"{name}-ng",
            nat_gateway_name=placement.naming.name("ng"),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            sku={"name": "Standard"},
            idle_timeout_in_minutes=args.idle_timeout_minutes,
            public_ip_addresses=[{"id": address.id}],
            tags=placement.tags_for("egress"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.nat_gateway_id = gateway.id
        self.register_outputs({"nat_gateway_id": self.nat_gateway_id})
