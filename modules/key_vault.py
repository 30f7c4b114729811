"""Key Vault for the environment's secrets: RBAC only, purge protection, network-restricted,
with per-secret read grants so each VM identity reads only what it needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, keyvault

from modules.placement import Placement

KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


@dataclass
class KeyVaultArgs:
    placement: Placement
    tenant_id: pulumi.Input[str]
    allowed_subnet_ids: Sequence[pulumi.Input[str]]
    soft_delete_days: int = 90


class KeyVault(pulumi.ComponentResource):
    vault_id: pulumi.Output[str]
    vault_name: pulumi.Output[str]
    vault_uri: pulumi.Output[str]

    def __init__(self, name: str, args: KeyVaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:KeyVault", name, None, opts)
        placement = args.placement
        vault = keyvault.Vault(
            f"{name}-kv",
            vault_name=placement.naming.name("kv"),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            properties={
                "tenant_id": args.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "enable_rbac_authorization": True,
                "enable_purge_protection": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": args.soft_delete_days,
                "public_network_access": "Enabled",
                "network_acls": {
                    "default_action": "Deny",
                    "bypass": "AzureServices",
                    "virtual_network_rules": [{"id": subnet} for subnet in args.allowed_subnet_ids],
                },
            },
            tags=placement.tags_for("key-vault"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.vault_id = vault.id
        self.vault_name = vault.name
        self.vault_uri = vault.properties.apply(lambda props: props.vault_uri or "")
        self.register_outputs({"vault_id": self.vault_id, "vault_uri": self.vault_uri})

    def grant_secret_read(
        self,
        name: str,
        secret: str,
        principal_id: pulumi.Input[str],
        subscription_id: pulumi.Input[str],
        parent: pulumi.Resource,
    ) -> authorization.RoleAssignment:
        """Let one identity read one secret (scope is the secret, not the vault)."""
        return authorization.RoleAssignment(
            name,
            role_assignment_name=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{secret}")),
            scope=pulumi.Output.concat(self.vault_id, "/secrets/", secret),
            principal_id=principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=pulumi.Output.concat(
                "/subscriptions/", subscription_id,
                "/providers/Microsoft.Authorization/roleDefinitions/", KEY_VAULT_SECRETS_USER,
            ),
            description=f"read {secret}",
            opts=pulumi.ResourceOptions(parent=parent),
        )
