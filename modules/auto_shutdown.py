"""Nightly VM shutdown (Azure's DevTest Labs schedule, the portal's "auto-shutdown")."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import devtestlab

from modules.placement import Placement


@dataclass
class AutoShutdownArgs:
    placement: Placement
    host_name: str
    vm_id: pulumi.Input[str]
    time: str  # HH:MM
    timezone: str  # Windows time zone id


class AutoShutdown(pulumi.ComponentResource):
    def __init__(self, name: str, args: AutoShutdownArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:AutoShutdown", name, None, opts)
        placement = args.placement
        devtestlab.GlobalSchedule(
            f"{name}-schedule",
            # Azure requires exactly this name for a VM's auto-shutdown schedule.
            name=placement.naming.name("shutdown", args.host_name),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            task_type="ComputeVmShutdownTask",
            status="Enabled",
            daily_recurrence={"time": args.time.replace(":", "")},
            time_zone_id=args.timezone,
            target_resource_id=args.vm_id,
            notification_settings={"status": "Disabled"},
            tags=placement.tags_for("auto-shutdown"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
