"""Recovery Services vault with a daily VM backup policy, and protection for one VM."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import recoveryservices

from modules.placement import Placement


@dataclass
class BackupArgs:
    placement: Placement
    daily_at_utc: str = "02:00"
    keep_daily: int = 30
    keep_weekly: int = 12


class Backup(pulumi.ComponentResource):
    vault_name: pulumi.Output[str]
    policy_id: pulumi.Output[str]

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:Backup", name, None, opts)
        placement = args.placement
        self._placement = placement
        tags = placement.tags_for("backup")
        vault = recoveryservices.Vault(
            f"{name}-rsv",
            vault_name=placement.naming.name("rsv"),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            sku={"name": "RS0", "tier": "Standard"},
            identity={"type": "SystemAssigned"},
            properties={
                "public_network_access": "Disabled",
                "security_settings": {"soft_delete_settings": {"soft_delete_state": "Enabled",
                                                               "soft_delete_retention_period_in_days": 14}},
                "redundancy_settings": {"standard_tier_storage_redundancy": "GeoRedundant",
                                        "cross_region_restore": "Enabled"},
            },
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        run_time = f"2025-01-01T{args.daily_at_utc}:00Z"
        policy = recoveryservices.ProtectionPolicy(
            f"{name}-policy",
            policy_name="daily-vm",
            vault_name=vault.name,
            resource_group_name=placement.resource_group_name,
            properties={
                "backup_management_type": "AzureIaasVM",
                "policy_type": "V2",
                "time_zone": "UTC",
                "instant_rp_retention_range_in_days": 2,
                "schedule_policy": {
                    "schedule_policy_type": "SimpleSchedulePolicyV2",
                    "schedule_run_frequency": "Daily",
                    "daily_schedule": {"schedule_run_times": [run_time]},
                },
                "retention_policy": {
                    "retention_policy_type": "LongTermRetentionPolicy",
                    "daily_schedule": {"retention_times": [run_time],
                                       "retention_duration": {"count": args.keep_daily, "duration_type": "Days"}},
                    "weekly_schedule": {"days_of_the_week": ["Sunday"], "retention_times": [run_time],
                                        "retention_duration": {"count": args.keep_weekly, "duration_type": "Weeks"}},
                },
            },
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.vault_name = vault.name
        self.policy_id = policy.id
        self.register_outputs({"vault_name": self.vault_name, "policy_id": self.policy_id})

    def protect(self, name: str, vm_name: str, vm_id: pulumi.Input[str],
                parent: pulumi.Resource) -> recoveryservices.ProtectedItem:
        """Enrol one VM in the daily policy (owned by the component that owns the VM)."""
        group = self._placement.resource_group_name
        return recoveryservices.ProtectedItem(
            name,
            vault_name=self.vault_name,
            resource_group_name=group,
            fabric_name="Azure",
            container_name=pulumi.Output.concat("iaasvmcontainer;iaasvmcontainerv2;", group, ";", vm_name),
            protected_item_name=pulumi.Output.concat("vm;iaasvmcontainerv2;", group, ";", vm_name),
            # A typed args object: plain dicts are not renamed for Azure inside this union type.
            properties=recoveryservices.AzureIaaSComputeVMProtectedItemArgs(
                protected_item_type="Microsoft.Compute/virtualMachines",
                source_resource_id=vm_id,
                policy_id=self.policy_id,
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )
