"""What a landing zone already has, looked up by id and never changed: the spoke network (or, where the
environment creates its spoke, the hub network it peers to), the hub's private DNS zones and the
central Log Analytics workspace.

Each is read with ``<Resource>.get`` (a read, not a registration): Pulumi keeps it in the state as
read-only, fails a preview where it does not exist, and never updates or deletes it. A read by full
id also works across subscriptions, where a hub's zones and workspace usually live. Under the offline
plan's mocks a read answers from the id the stack file gives (validation/plan_recorder.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network, operationalinsights, privatedns


@dataclass
class ExistingHubArgs:
    spoke_vnet_id: str | None  # the spoke virtual network's resource id; None: the environment creates its own
    zone_ids: Mapping[str, str]  # privatelink zone name -> the hub zone's resource id
    workspace_id: str  # the central Log Analytics workspace's resource id
    hub_vnet_id: str | None = None  # the hub network a created spoke peers to (read, so a wrong id fails early)


class ExistingHub(pulumi.ComponentResource):
    vnet_id: pulumi.Output[str] | None  # None where the spoke is created, not looked up
    vnet_name: pulumi.Output[str] | None
    vnet_resource_group_name: str | None
    zone_ids: dict[str, pulumi.Output[str]]
    workspace_id: pulumi.Output[str]

    def __init__(self, name: str, args: ExistingHubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:ExistingHub", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The reads make a preview fail where an id names nothing. What the environment uses is the id
        # itself: it is the same value, and the environment's resources then depend on nothing that is
        # not theirs (a read resource is no part of the plan; Pulumi never deletes it either way).
        if args.spoke_vnet_id:
            network.VirtualNetwork.get(f"{name}-spoke", args.spoke_vnet_id, opts=child)
        if args.hub_vnet_id:
            network.VirtualNetwork.get(f"{name}-hub-network", args.hub_vnet_id, opts=child)
        for zone, zone_id in args.zone_ids.items():
            privatedns.PrivateZone.get(f"{name}-{zone.removeprefix('privatelink.').replace('.', '-')}", zone_id,
                                       opts=child)
        operationalinsights.Workspace.get(f"{name}-workspace", args.workspace_id, opts=child)
        # /subscriptions/<s>/resourceGroups/<group>/providers/<namespace>/<type>/<name>
        self.vnet_id = self.vnet_name = self.vnet_resource_group_name = None
        if args.spoke_vnet_id:
            parts = args.spoke_vnet_id.split("/")
            self.vnet_id = pulumi.Output.from_input(args.spoke_vnet_id)
            self.vnet_name = pulumi.Output.from_input(parts[-1])
            self.vnet_resource_group_name = parts[4]  # subnets are created in the spoke's own group
        self.zone_ids = {zone: pulumi.Output.from_input(zone_id) for zone, zone_id in args.zone_ids.items()}
        self.workspace_id = pulumi.Output.from_input(args.workspace_id)
        self.register_outputs({"vnet_id": self.vnet_id, "zone_ids": self.zone_ids, "workspace_id": self.workspace_id})
