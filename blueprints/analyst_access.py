"""Analysts' own SSH accounts on the analytics VMs: who, with which key, from where.

One list says who may use SSH: ``roles.gateway.ssh_users`` (name and public key). With a
self-hosted gateway each name is a jump-host account on the gateway and an account of the same
name on every analytics VM; with ``kind: bastion`` there is no jump host and the analytics VMs
hold the accounts alone. With a self-hosted gateway the name must also be an account of
``roles.gateway.identity.accounts``, so a person's SSH account and their JupyterHub account are
one account (validation/analyst_access.py refuses any other).

Everything here reaches the analytics VMs in their user data (blueprints/vm_settings.py), so
adding or removing an analyst is applied in place: ``analytics-analysts``
(blueprints/analytics/analyst_accounts.py) creates each account without a password or sudo,
and writes the sshd rule that lets each analyst in with their key alone, and only from the
gateway's private address or the Bastion subnet. A removed analyst's key file is deleted and
their name leaves that rule; their account and home stay, with their work.
"""

from __future__ import annotations

from typing import Any

from blueprints.accounts import RESERVED_ACCOUNT_PREFIXES, RESERVED_ACCOUNTS

__all__ = ["KEYS_DIRECTORY", "analyst_settings", "analysts", "ssh_sources"]

# Root-owned key files, one per analyst, named after the account (the gateway uses the same place):
# an analyst cannot add a key of their own to ~/.ssh and bypass the stack.
KEYS_DIRECTORY = "/etc/ssh/trust-blueprints-keys"


def analysts(config: dict[str, Any]) -> list[dict[str, str]]:
    """The stack's SSH users (name and key), in the stack's order."""
    gateway = config["roles"].get("gateway") or {}
    return [{"name": user["name"], "ssh_public_key": user["ssh_public_key"]}
            for user in gateway.get("ssh_users", [])]


def ssh_sources(config: dict[str, Any]) -> list[str]:
    """Where analysts' SSH may come from: the gateway's private address, or the Bastion subnet."""
    gateway = config["roles"].get("gateway") or {}
    if gateway.get("kind") == "bastion":
        subnet = config["network"]["subnets"].get("bastion")
        return [subnet] if subnet else []
    if gateway.get("kind") == "self-hosted":
        from blueprints.topology import plan_machines  # the registry of roles imports this module's callers

        return [machine.private_ip for machine in plan_machines(config) if machine.role == "gateway"]
    return []


def analyst_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What an analytics VM's ``analytics-analysts`` applies (its user data carries it)."""
    return {
        "analysts": [user["name"] for user in analysts(config)],
        "sources": ssh_sources(config),
        "administrator": config["admin"]["username"],
        "reserved": sorted(RESERVED_ACCOUNTS),
        "reserved_prefixes": list(RESERVED_ACCOUNT_PREFIXES),
    }
