"""The remote-access gateway declares itself: the only way in from analysts' networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blueprints.gateway.settings import SETTINGS_SCHEMA
from blueprints.role import Role, SecretSpec, never, stack_settings


def _self_hosted(settings: dict[str, Any]) -> bool:
    """Azure Bastion is a managed service, not a VM of ours: only the self-hosted kind has a machine."""
    return settings["kind"] == "self-hosted"


ROLE = Role(
    name="gateway",
    summary="How analysts reach the environment",
    component="remote-gateway",
    settings_schema=SETTINGS_SCHEMA,
    subnet="gateway",
    first_host=0,
    host_name="gateway",
    numbered=False,
    has_machines=_self_hosted,
    data_disk_setting=None,
    data_disk=None,
    internet_egress=False,
    public_entry=True,
    secrets=(
        # Issued by Entra ID for the app registration (the lab's stand-in accepts any value).
        SecretSpec("gateway-oidc-client-secret", "token",
                   supplied_by="the trust's Entra ID administrator: a client secret of the gateway's app "
                               "registration (Certificates & secrets)"),
        # Encrypts mod_auth_openidc's session cookies and state.
        SecretSpec("gateway-oidc-crypto-passphrase", "token"),
    ),
    nightly_shutdown=False,
    backed_up=False,
    requires=(),
    publication=None,
    template_settings=stack_settings,
    reaches_storage=never,
    deploy="blueprints.gateway.component:deploy",
    folder=Path(__file__).parent,
)
