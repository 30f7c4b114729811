"""Log Analytics workspace and the syslog data-collection rule every VM is associated with."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import monitor, operationalinsights

from modules.placement import Placement

SYSLOG_FACILITIES = ["auth", "authpriv", "cron", "daemon", "kern", "syslog", "user"]


@dataclass
class MonitoringArgs:
    placement: Placement
    retention_days: int = 30
    # A central workspace (a landing zone's) to send to instead of one of the environment's own.
    workspace_id: pulumi.Input[str] | None = None


class Monitoring(pulumi.ComponentResource):
    workspace_id: pulumi.Output[str]
    data_collection_rule_id: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:Monitoring", name, None, opts)
        placement = args.placement
        tags = placement.tags_for("monitoring")
        if args.workspace_id is None:
            workspace_id = operationalinsights.Workspace(
                f"{name}-log",
                workspace_name=placement.naming.name("log"),
                resource_group_name=placement.resource_group_name,
                location=placement.location,
                sku={"name": "PerGB2018"},
                retention_in_days=args.retention_days,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            ).id
        else:
            workspace_id = pulumi.Output.from_input(args.workspace_id)
        rule = monitor.DataCollectionRule(
            f"{name}-dcr",
            data_collection_rule_name=placement.naming.name("dcr", "syslog"),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            kind="Linux",
            description="Syslog from every VM (authentication, daemons, kernel) to Log Analytics",
            data_sources={"syslog": [{
                "name": "syslog",
                "streams": ["Microsoft-Syslog"],
                "facility_names": SYSLOG_FACILITIES,
                "log_levels": ["Info", "Notice", "Warning", "Error", "Critical", "Alert", "Emergency"],
            }]},
            destinations={"log_analytics": [{"name": "workspace", "workspace_resource_id": workspace_id}]},
            data_flows=[{"streams": ["Microsoft-Syslog"], "destinations": ["workspace"]}],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.workspace_id = workspace_id
        self.data_collection_rule_id = rule.id
        self.register_outputs({"workspace_id": self.workspace_id,
                               "data_collection_rule_id": self.data_collection_rule_id})
