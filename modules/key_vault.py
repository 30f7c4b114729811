"""Key Vault for the environment's secrets: RBAC only, purge protection, no public network access
(VMs reach it through a private endpoint in the environment's network), with per-secret read
grants so each VM identity reads only what it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pulumi
from pulumi_azure_native import authorization, keyvault

from modules.placement import Placement
from modules.private_endpoint import EndpointSubnet, PrivateEndpoint, PrivateEndpointArgs
from modules.role_assignment import assignment_name

KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
# The tag carrying a secret's expiry (RFC 3339) where it has one.
EXPIRES_TAG = "expires"


def _epoch_seconds(moment: str) -> int:
    """Key Vault's ``expires`` attribute: whole seconds since 1970, UTC."""
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp())


@dataclass
class KeyVaultArgs:
    placement: Placement
    tenant_id: pulumi.Input[str]
    endpoints: EndpointSubnet  # the vault's private endpoint goes here
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
                # Only the private endpoint: a service endpoint or the AzureKeyVault service tag
                # would also reach every other tenant's vaults, a path out for stolen data.
                "public_network_access": "Disabled",
                "network_acls": {"default_action": "Deny", "bypass": "AzureServices"},
            },
            tags=placement.tags_for("key-vault"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        PrivateEndpoint(f"{name}-endpoint", PrivateEndpointArgs(
            placement, "kv", "key-vault", args.endpoints.subnet_id, vault.id, "vault", args.endpoints.zone_ids,
            args.endpoints.static_ips.get("vault"),
        ), pulumi.ResourceOptions(parent=self))
        self.vault_id = vault.id
        self.vault_name = vault.name
        self._resource_group_name = placement.resource_group_name
        self._tags = placement.tags_for("key-vault")
        self.vault_uri = vault.properties.apply(lambda props: props.vault_uri or "")
        self.register_outputs({"vault_id": self.vault_id, "vault_uri": self.vault_uri})

    def add_secret(self, name: str, secret: str, value: pulumi.Input[str],
                   parent: pulumi.Resource, expires: pulumi.Input[str] | None = None) -> keyvault.Secret:
        """Store a value the program made as a secret (through Azure Resource Manager, so the vault's
        firewall does not stand in the way); Pulumi keeps the value encrypted in its state.

        ``expires`` (RFC 3339) marks a value that stops working then, such as a client secret Entra
        ID issued: Key Vault shows it and raises an event before it. It is also the secret's
        ``expires`` tag, which a plan can read (the properties holding the value are secret)."""
        properties: dict[str, object] = {"value": pulumi.Output.secret(value), "content_type": "text/plain"}
        tags: dict[str, pulumi.Input[str]] = dict(self._tags)
        if expires is not None:
            properties["attributes"] = {"expires": pulumi.Output.from_input(expires).apply(_epoch_seconds)}
            tags[EXPIRES_TAG] = expires
        return keyvault.Secret(
            name,
            secret_name=secret,
            vault_name=self.vault_name,
            resource_group_name=self._resource_group_name,
            properties=properties,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=parent),
        )

    def grant_secret_read(
        self,
        name: str,
        secret: str,
        principal_id: pulumi.Input[str],
        subscription_id: pulumi.Input[str],
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> authorization.RoleAssignment:
        """Let one identity read one secret (scope is the secret, not the vault).

        The assignment's name is derived from what Azure makes unique (the scope, the principal
        and the role), so two environments, or a VM replaced by one with a new identity, never
        ask for a name that another assignment already holds."""
        scope = pulumi.Output.concat(self.vault_id, "/secrets/", secret)
        role = pulumi.Output.concat(
            "/subscriptions/", subscription_id,
            "/providers/Microsoft.Authorization/roleDefinitions/", KEY_VAULT_SECRETS_USER,
        )
        return authorization.RoleAssignment(
            name,
            role_assignment_name=assignment_name(scope, principal_id, role),
            scope=scope,
            principal_id=principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role,
            description=f"read {secret}",
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )

