"""Every gateway kind gives the analysts it lists a working path, or the stack is refused.

``roles.gateway.ssh_users`` is the one list of analysts with SSH (blueprints/analyst_access.py):
each gets a jump-host account on a self-hosted gateway and an account of the same name on every
analytics VM. What cannot work, and is refused here naming the fields:

- with a self-hosted gateway, an SSH user whose name is not an account of
  ``roles.gateway.identity.accounts``: their SSH account and their JupyterHub account would be
  two different accounts (or the hub would refuse them);
- with ``kind: bastion``, SSH users and no analytics VM to hold their accounts;
- with ``kind: bastion`` and ``bastion_sku: Basic``, SSH users: Basic has no native-client
  tunnel, so they could neither use their own SSH client nor forward their JupyterLab.

With Bastion nobody signs in to JupyterHub (it trusts only the self-hosted gateway's address);
each analyst runs JupyterLab in their own SSH session instead (docs/analysts.md).
"""

from __future__ import annotations

from typing import Any

from validation.problems import Problem

__all__ = ["analyst_access_problems"]


def analyst_access_problems(config: dict[str, Any]) -> list[Problem]:
    gateway = config["roles"].get("gateway")
    if not gateway:
        return []
    users = gateway.get("ssh_users", [])
    names = [user["name"] for user in users]
    problems: list[Problem] = []
    if gateway["kind"] == "self-hosted" and gateway.get("identity"):
        mapped = {entry["account"] for entry in gateway["identity"].get("accounts", [])}
        for index, name in enumerate(names):
            if name not in mapped:
                problems.append(Problem(
                    f"roles.gateway.ssh_users[{index}].name", name,
                    "is not an account of roles.gateway.identity.accounts: this person's SSH account on the "
                    "analytics VMs and their JupyterHub account must be one account",
                    f"add {{upn: <their sign-in name>, account: {name}}} to roles.gateway.identity.accounts, "
                    "or give the SSH user the account their sign-in name already maps to"))
    if gateway["kind"] != "bastion":
        return problems
    if names and "analytics" not in config["roles"]:
        problems.append(Problem(
            "roles.gateway.ssh_users", names,
            "lists analysts' SSH accounts, but with roles.gateway.kind: bastion only the analytics VMs hold "
            "them, and the stack has no roles.analytics",
            "add roles.analytics, or remove ssh_users"))
    if names and gateway.get("bastion_sku", "Basic") == "Basic":
        problems.append(Problem(
            "roles.gateway.bastion_sku", gateway.get("bastion_sku", "Basic"),
            f"is Basic, which offers SSH only in the Azure portal's browser window: the analysts in "
            f"roles.gateway.ssh_users ({', '.join(names)}) could not use their own SSH client or forward "
            f"their JupyterLab",
            "set bastion_sku: Standard (native-client tunnels: az network bastion ssh/tunnel), or remove "
            "ssh_users"))
    return problems
