"""The resources of roles.gateway.identity.registration (what and why: registration.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from blueprints.cloud_init import render_user_data
from blueprints.gateway.registration import CLIENT_SECRET, redirect_uri, registration, with_client_id
from blueprints.secrets import key_vault_name
from blueprints.topology import Machine
from modules.entra_application import EntraApplication, EntraApplicationArgs
from modules.key_vault import KeyVault


@dataclass
class GatewayRegistrationArgs:
    config: dict[str, Any]
    key_vault: KeyVault
    tags: dict[str, str]


class GatewayRegistration(pulumi.ComponentResource):
    """The app registration, its service principal and client secret, and that secret in Key Vault."""

    client_id: pulumi.Output[str]
    stored_secret_name: str
    stored_secret: pulumi.Resource  # the Key Vault secret: grants to read it wait for it

    def __init__(self, name: str, args: GatewayRegistrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:GatewayRegistration", name, None, opts)
        config = args.config
        settings = registration(config)
        if settings is None:
            raise ValueError("the stack has no roles.gateway.identity.registration")
        label = f"{config['trust']['short_name']}-{config['environment']}"
        app = EntraApplication(f"{name}-entra", EntraApplicationArgs(
            display_name=f"{label} analytics gateway",
            redirect_uris=[redirect_uri(config)],
            secret_days=settings["client_secret_days"],
            notes=f"Single sign-on for {config['trust']['name']}'s {config['environment']} analytics environment "
                  f"(trust-blueprints, gateway {config['roles']['gateway']['hostname']}).",
            tags=args.tags,
        ), pulumi.ResourceOptions(parent=self))
        self.client_id = app.client_id
        self.stored_secret_name = key_vault_name(CLIENT_SECRET)
        self.stored_secret = args.key_vault.add_secret(
            f"{name}-client-secret", self.stored_secret_name, app.client_secret, parent=self,
            expires=app.secret_expires)
        self.register_outputs({"client_id": self.client_id})

    def user_data(self, config: dict[str, Any], machine: Machine) -> pulumi.Output[bytes]:
        """The gateway's cloud-init, rendered with the client id Entra ID assigned."""
        return self.client_id.apply(lambda value: render_user_data(with_client_id(config, value), machine))
