"""Azure Bastion: the managed alternative to the self-hosted gateway."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from modules.placement import Placement
from modules.public_ip import PublicIp, PublicIpArgs


@dataclass
class BastionArgs:
    placement: Placement
    subnet_id: pulumi.Input[str]
    sku: str = "Basic"  # Basic | Standard
    zones: Sequence[str] | None = None  # for its public IP: the region's availability zones, None for none


class Bastion(pulumi.ComponentResource):
    bastion_id: pulumi.Output[str]

    def __init__(self, name: str, args: BastionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:Bastion", name, None, opts)
        placement = args.placement
        address = PublicIp(f"{name}-ip", PublicIpArgs(placement, "bastion", zones=args.zones),
                           pulumi.ResourceOptions(parent=self))
        standard = args.sku == "Standard"
        host = network.BastionHost(
            f"{name}-bas",
            bastion_host_name=placement.naming.name("bas"),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            sku={"name": args.sku},
            ip_configurations=[{
                "name": "primary",
                "subnet": {"id": args.subnet_id},
                "public_ip_address": {"id": address.id},
            }],
            # Native-client tunnelling (az network bastion ssh) needs Standard.
            enable_tunneling=standard,
            enable_shareable_link=False,
            enable_file_copy=False,
            disable_copy_paste=False,
            tags=placement.tags_for("bastion"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.bastion_id = host.id
        self.register_outputs({"bastion_id": self.bastion_id})
