"""The gateway's Entra ID app registration made by the program (roles.gateway.identity.registration).

Off unless the stack asks: in many trusts another team owns the directory, and then the manual
steps in this folder's README apply. When asked, the program creates the registration with the
gateway's redirect URI and the groups claim, a client secret that expires, and stores that secret
in the environment's Key Vault under the name the gateway already reads, so the VM's path is the
same either way. The allowed group stays an existing group named by object id: who belongs to it
is the directory team's business, not a deployment's.

Entra ID chooses the client id when the registration is created, so the gateway's cloud-init is
rendered with it once known. Offline (the plan, the lab, ``blueprints render``) that id is
``PLANNED_CLIENT_ID``; the plan's mocks answer with the same value, so the offline plan carries the
bytes the lab boots. The resources themselves are made by app_registration.py; this file holds
what the lab and the validator read too, free of Pulumi.
"""

from __future__ import annotations

import copy
from typing import Any

# Where mod_auth_openidc receives the authorisation code (OIDCRedirectURI in cloud-init.yaml.j2;
# tests/render check the two agree).
REDIRECT_PATH = "/oidc/callback"
# The gateway's secret the registration's client secret goes into (its declaration in role.py);
# a name without dots, so also its Key Vault name (blueprints/secrets.py).
CLIENT_SECRET = "gateway-oidc-client-secret"  # noqa: S105 (a secret's name, not a value)
# The client id offline, until Entra ID assigns the real one.
PLANNED_CLIENT_ID = "00000000-0000-4000-8000-0000000c1d00"
# Entra ID's own name for the claim listing group object ids: the only one a registration it
# makes here can send.
ENTRA_GROUPS_CLAIM = "groups"


def registration(config: dict[str, Any]) -> dict[str, Any] | None:
    """The stack's registration settings, or None when a person registers the application."""
    gateway = config["roles"].get("gateway") or {}
    if gateway.get("kind") != "self-hosted":
        return None
    return (gateway.get("identity") or {}).get("registration")


def redirect_uri(config: dict[str, Any]) -> str:
    return f"https://{config['roles']['gateway']['hostname']}{REDIRECT_PATH}"


def client_id(config: dict[str, Any]) -> str:
    """The client id the gateway's cloud-init is rendered with offline."""
    identity = config["roles"]["gateway"]["identity"]
    return identity.get("client_id") or PLANNED_CLIENT_ID


def with_client_id(config: dict[str, Any], value: str) -> dict[str, Any]:
    """A copy of the stack with the client id Entra ID assigned."""
    changed = copy.deepcopy(config)
    changed["roles"]["gateway"]["identity"]["client_id"] = value
    return changed


def secret_supplied_by_person(config: dict[str, Any], secret: str) -> bool:
    """False for the client secret when the program makes the registration (and so the secret)."""
    return not (secret == CLIENT_SECRET and registration(config) is not None)


def registration_problems(config: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """(field, value, what is wrong, hint) for identity settings that contradict each other."""
    gateway = config["roles"].get("gateway") or {}
    identity = gateway.get("identity")
    if not identity:
        return []
    base = "roles.gateway.identity"
    given = identity.get("registration")
    problems: list[tuple[str, Any, str, str]] = []
    if given is None and "client_id" not in identity:
        problems.append((f"{base}.client_id", None, "is required unless registration is given",
                         "copy the Application (client) ID of the gateway's app registration, or add "
                         "registration: {} to have the program create it (blueprints/gateway/README.md)"))
    if given is not None and "client_id" in identity:
        problems.append((f"{base}.client_id", identity["client_id"],
                         "is set, but registration creates a new app registration whose id Entra ID chooses",
                         "remove client_id to let the program register the gateway, or remove registration "
                         "to use the registration this client id names"))
    if given is not None and gateway.get("kind") == "bastion":
        problems.append((f"{base}.registration", given, "has nothing to sign in to with roles.gateway.kind: bastion",
                         "remove registration: only the self-hosted gateway signs people in with Entra ID"))
    if given is not None and identity.get("groups_claim", ENTRA_GROUPS_CLAIM) != ENTRA_GROUPS_CLAIM:
        problems.append((f"{base}.groups_claim", identity["groups_claim"],
                         f"must be {ENTRA_GROUPS_CLAIM!r} with registration: the registration the program "
                         f"creates sends group ids in Entra ID's {ENTRA_GROUPS_CLAIM!r} claim",
                         f"remove groups_claim, or set it to {ENTRA_GROUPS_CLAIM}"))
    return problems

