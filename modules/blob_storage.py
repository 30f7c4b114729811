"""A storage account holding one private Blob container, reached only through a private endpoint in
the environment's network and only with Entra ID identities: HTTPS and TLS 1.2 only, no public
blobs, no shared keys, geo-redundant, deleted blobs and containers kept for a while. Writers are
granted on the container alone. Given a Log Analytics workspace, every read, write and delete of a
blob is recorded there with the caller's identity (Azure's StorageBlobLogs table).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, monitor, storage

from modules.placement import Placement
from modules.private_endpoint import EndpointSubnet, PrivateEndpoint, PrivateEndpointArgs
from modules.role_assignment import assignment_name

# Built-in role definition ids (learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
# The blob service's resource-log categories (learn.microsoft.com/azure/azure-monitor/reference/
# supported-logs/microsoft-storage-storageaccounts-blobservices-logs), named one by one: each
# request's operation, time and caller (Entra object id, UPN, IP address) goes to StorageBlobLogs.
BLOB_LOG_CATEGORIES = ("StorageRead", "StorageWrite", "StorageDelete")
BLOB_ACCESS_LOG = "blob-access-to-log-analytics"  # the diagnostic setting's name


@dataclass
class BlobStorageArgs:
    placement: Placement
    account_name: str  # Naming.name("st", ...): globally unique, lowercase letters and digits
    container_name: str
    component: str  # what the data belongs to, for tags
    endpoints: EndpointSubnet  # the account's Blob private endpoint goes here
    # Deleted or overwritten blobs (and deleted containers) stay recoverable this long.
    soft_delete_days: int = 14
    # Geo-redundant: a second copy in the paired UK region (UK South <-> UK West).
    sku: str = "Standard_GRS"
    # The Log Analytics workspace that records every blob access; None: no access log.
    log_workspace_id: pulumi.Input[str] | None = None


class BlobStorage(pulumi.ComponentResource):
    account_id: pulumi.Output[str]
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: BlobStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:BlobStorage", name, None, opts)
        placement = args.placement
        child = pulumi.ResourceOptions(parent=self)
        account = storage.StorageAccount(
            f"{name}-st",
            account_name=args.account_name,
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            kind="StorageV2",
            sku={"name": args.sku},
            access_tier="Hot",
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            # Entra ID sign-in only: every request names an identity that RBAC scopes and logs record.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            allowed_copy_scope="AAD",
            is_local_user_enabled=False,
            is_sftp_enabled=False,
            encryption={"require_infrastructure_encryption": True, "key_source": "Microsoft.Storage",
                        "services": {"blob": {"enabled": True, "key_type": "Account"}}},
            # Only the private endpoint: the Storage service tag would reach every tenant's accounts.
            public_network_access="Disabled",
            network_rule_set={"default_action": "Deny", "bypass": "AzureServices"},
            tags=placement.tags_for(args.component),
            opts=child,
        )
        blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=account.name,
            resource_group_name=placement.resource_group_name,
            blob_services_name="default",
            delete_retention_policy={"enabled": True, "days": args.soft_delete_days},
            container_delete_retention_policy={"enabled": True, "days": args.soft_delete_days},
            opts=child,
        )
        if args.log_workspace_id is not None:
            monitor.DiagnosticSetting(
                f"{name}-blob-access-log",
                name=BLOB_ACCESS_LOG,
                resource_uri=pulumi.Output.concat(account.id, "/blobServices/default"),
                workspace_id=args.log_workspace_id,
                logs=[{"category": category, "enabled": True} for category in BLOB_LOG_CATEGORIES],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[blob_service]),
            )
        PrivateEndpoint(f"{name}-endpoint", PrivateEndpointArgs(
            placement, f"blob-{args.component}", args.component, args.endpoints.subnet_id, account.id, "blob",
            args.endpoints.zone_ids,
            args.endpoints.static_ips.get("blob"),
        ), child)
        container = storage.BlobContainer(
            f"{name}-container",
            account_name=account.name,
            resource_group_name=placement.resource_group_name,
            container_name=args.container_name,
            public_access="None",
            opts=child,
        )
        self.account_id = account.id
        self.account_name = account.name
        self.container_id = container.id
        self._resource_group_name = placement.resource_group_name
        self.register_outputs({"account_id": self.account_id, "container_id": self.container_id})

    def add_container(self, name: str, container_name: str) -> pulumi.Output[str]:
        """Another private container in the same account (its grants go through ``grant(..., container_id=)``)."""
        return storage.BlobContainer(
            name,
            account_name=self.account_name,
            resource_group_name=self._resource_group_name,
            container_name=container_name,
            public_access="None",
            opts=pulumi.ResourceOptions(parent=self),
        ).id

    def grant_blob_write(self, name: str, principal_id: pulumi.Input[str], subscription_id: pulumi.Input[str],
                         parent: pulumi.Resource) -> authorization.RoleAssignment:
        """Let one identity read, write and delete blobs in the container (and nowhere else)."""
        return self.grant(name, principal_id, subscription_id, parent, STORAGE_BLOB_DATA_CONTRIBUTOR,
                          "ServicePrincipal", "write backups to one container")

    def grant(self, name: str, principal_id: pulumi.Input[str], subscription_id: pulumi.Input[str],
              parent: pulumi.Resource, role_definition: str, principal_type: str,
              description: str, container_id: pulumi.Input[str] | None = None) -> authorization.RoleAssignment:
        """One built-in role for one principal (a VM identity or an Entra group), on one container alone
        (the first unless ``container_id`` names another)."""
        scope = container_id if container_id is not None else self.container_id
        role = pulumi.Output.concat(
            "/subscriptions/", subscription_id,
            "/providers/Microsoft.Authorization/roleDefinitions/", role_definition,
        )
        return authorization.RoleAssignment(
            name,
            role_assignment_name=assignment_name(scope, principal_id, role),
            scope=scope,
            principal_id=principal_id,
            principal_type=principal_type,
            role_definition_id=role,
            description=description,
            opts=pulumi.ResourceOptions(parent=parent),
        )
