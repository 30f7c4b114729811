"""A route table sending a subnet's Internet-bound traffic to a firewall (a hub's, in a landing zone)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from modules.placement import Placement

DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass
class FirewallRouteArgs:
    placement: Placement
    firewall_address: str  # the firewall's private IPv4 address
    part: str = "egress"  # the name part of the route table


class FirewallRoute(pulumi.ComponentResource):
    """One route table whose default route goes to a virtual appliance instead of the Internet.

    Only the default route is set: traffic to the virtual network, its peers and the trust's
    own networks keeps the routes Azure and the hub already give it.
    """

    route_table_id: pulumi.Output[str]

    def __init__(self, name: str, args: FirewallRouteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:FirewallRoute", name, None, opts)
        placement = args.placement
        table = network.RouteTable(
            f"{name}-rt",
            route_table_name=placement.naming.name("rt", args.part),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            disable_bgp_route_propagation=False,
            routes=[{"name": "default-to-firewall", "address_prefix": DEFAULT_ROUTE,
                     "next_hop_type": "VirtualAppliance", "next_hop_ip_address": args.firewall_address}],
            tags=placement.tags_for("egress"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.route_table_id = table.id
        self.register_outputs({"route_table_id": self.route_table_id})
