"""Azure Monitor reached privately: a data collection endpoint and an Azure Monitor Private Link Scope.

The Azure Monitor Agent on a VM fetches its configuration and sends its data through a data
collection endpoint (DCE) in the VM's region; the Private Link Scope (AMPLS) puts that endpoint and
the Log Analytics workspace behind one private endpoint in the virtual network. With the scope's
ingestion mode ``PrivateOnly`` the network sends to no Azure Monitor resource outside the scope,
so no VM needs the AzureMonitor service tag (which reaches every tenant's workspaces), nor the
Internet. Queries stay ``Open``: administrators read logs from the portal, outside the network,
and a query carries nothing from the VMs out.

Source: "Enable network isolation for Azure Monitor Agent by using Private Link" and "Configure
your private link" (learn.microsoft.com/azure/azure-monitor/agents/azure-monitor-agent-private-link,
learn.microsoft.com/azure/azure-monitor/logs/private-link-configure), checked 2026-12-02.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import monitor

from modules.placement import Placement


@dataclass
class MonitorPrivateLinkArgs:
    placement: Placement
    workspace_id: pulumi.Input[str]


class MonitorPrivateLink(pulumi.ComponentResource):
    scope_id: pulumi.Output[str]
    data_collection_endpoint_id: pulumi.Output[str]

    def __init__(self, name: str, args: MonitorPrivateLinkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:MonitorPrivateLink", name, None, opts)
        placement = args.placement
        naming = placement.naming
        tags = placement.tags_for("monitoring")
        child = pulumi.ResourceOptions(parent=self)
        endpoint = monitor.DataCollectionEndpoint(
            f"{name}-dce",
            data_collection_endpoint_name=naming.name("dce"),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            kind="Linux",
            description="Where every VM's Azure Monitor Agent gets its configuration and sends its data",
            network_acls={"public_network_access": "Disabled"},
            tags=tags,
            opts=child,
        )
        scope = monitor.PrivateLinkScope(
            f"{name}-ampls",
            scope_name=naming.name("ampls"),
            resource_group_name=placement.resource_group_name,
            location="global",
            access_mode_settings={"ingestion_access_mode": "PrivateOnly", "query_access_mode": "Open",
                                  "exclusions": []},
            tags=tags,
            opts=child,
        )
        for part, linked in (("workspace", args.workspace_id), ("dce", endpoint.id)):
            monitor.PrivateLinkScopedResource(
                f"{name}-scoped-{part}",
                name=f"{part}-{naming.name('ampls')}",
                scope_name=scope.name,
                resource_group_name=placement.resource_group_name,
                linked_resource_id=linked,
                opts=child,
            )
        self.scope_id = scope.id
        self.data_collection_endpoint_id = endpoint.id
        self.register_outputs({"scope_id": self.scope_id,
                               "data_collection_endpoint_id": self.data_collection_endpoint_id})
