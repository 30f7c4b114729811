"""The spoke's half of a hub-and-spoke peering: the environment's own network peered to a trust's hub.

A peering has two halves, one in each network, and traffic flows only once both exist. This one is
the spoke's, created in the environment's own virtual network; the hub's half is made by whoever
owns the hub (the request pack gives them its exact values), because this program never changes
what it did not create.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from modules.immutable_properties import replace_on_changes
from modules.placement import Placement

PEERING_TYPE = "azure-native:network:VirtualNetworkPeering"


@dataclass
class HubPeeringArgs:
    placement: Placement
    vnet_name: pulumi.Input[str]  # the spoke: a network this program created, in placement's group
    hub_vnet_id: str  # the hub virtual network's resource id
    # The hub's VPN or ExpressRoute gateway carries the spoke's traffic to and from the trust's network.
    # Azure accepts this only once the hub's half exists with gateway transit allowed.
    use_hub_gateways: bool = False


class HubPeering(pulumi.ComponentResource):
    peering_id: pulumi.Output[str]

    def __init__(self, name: str, args: HubPeeringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:HubPeering", name, None, opts)
        placement = args.placement
        peering = network.VirtualNetworkPeering(
            f"{name}-peering",
            virtual_network_peering_name=placement.naming.name("peer", "hub"),
            resource_group_name=placement.resource_group_name,
            virtual_network_name=args.vnet_name,
            remote_virtual_network={"id": args.hub_vnet_id},
            allow_virtual_network_access=True,
            # The hub firewall forwards traffic from the trust's network (and back to the mirror): a
            # packet whose source is not the hub's own address is "forwarded" and dropped without this.
            allow_forwarded_traffic=True,
            # A spoke has no gateway to offer; only the hub's half may allow transit.
            allow_gateway_transit=False,
            use_remote_gateways=args.use_hub_gateways,
            # The whole networks, not chosen subnets: Azure fixes the kind at creation.
            peer_complete_vnets=True,
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=replace_on_changes(PEERING_TYPE)),
        )
        self.peering_id = peering.id
        self.register_outputs({"peering_id": self.peering_id})
