"""The remote-access gateway declares itself: the only way in from analysts' networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blueprints.gateway.registration import CLIENT_SECRET, client_id
from blueprints.gateway.settings import SETTINGS_SCHEMA
from blueprints.role import DataDiskLayout, Role, SecretSpec, never, stack_settings

# fail2ban's jail for refused web sign-ins, and the file (written from the VM's user data) that
# holds its ignore list; the custom data's jail file includes it. Named once for both templates.
WEB_JAIL = "trust-blueprints-signin"
WEB_JAIL_IGNORE_FILE = "/etc/trust-blueprints/gateway/fail2ban-web-clients.conf"


def _settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The stack's gateway settings plus the trust's allowed client ranges: the web sign-in jail
    never bans them (one VPN egress address can be the whole trust), and a stack edit reaches
    the running gateway through its user data."""
    settings = stack_settings(config, name)
    if "identity" in settings:  # a registration the program makes has its client id only once created
        settings = {**settings, "identity": {**settings["identity"], "client_id": client_id(config)}}
    return {**settings,
            "trusted_client_ranges": list(config["network"]["allowed_client_ranges"]),
            "web_jail": WEB_JAIL, "web_jail_ignore_file": WEB_JAIL_IGNORE_FILE}


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
    data_disk_setting="data_disk_gb",
    # Each jump user's TOTP secret: a rebuilt gateway keeps every enrolment, so no analyst has to
    # enrol again. Nothing reads them while the step moves them (sshd asks for them at sign-in).
    data_disk=DataDiskLayout(directories=("/var/lib/trust-blueprints/totp",), services=()),
    internet_egress=False,
    public_entry=True,
    secrets=(
        # Issued by Entra ID for the app registration (the lab's stand-in accepts any value); the
        # program stores it itself when it makes the registration (registration.py).
        SecretSpec(CLIENT_SECRET, "token",
                   supplied_by="the trust's Entra ID administrator: a client secret of the gateway's app "
                               "registration (Certificates & secrets)"),
        # Encrypts mod_auth_openidc's session cookies and state.
        SecretSpec("gateway-oidc-crypto-passphrase", "token"),
    ),
    nightly_shutdown=False,
    backed_up=True,  # the TOTP enrolments on its data disk
    requires=(),
    publication=None,
    template_settings=_settings,
    reaches_storage=never,
    deploy="blueprints.gateway.component:deploy",
    folder=Path(__file__).parent,
)
