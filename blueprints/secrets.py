"""Which secret files each machine gets, and their names in Key Vault: one table for Azure and the lab.

A machine finds its secrets as files in /etc/trust-blueprints/secrets/. On Azure the shared boot
steps (templates/base.yaml.j2) fetch each file from the environment's Key Vault by name with
the VM's managed identity; the lab (lab/secrets.py) generates the same files before first boot.

Every machine gets ``ca.crt`` (the environment's internal CA) and its own ``tls.crt`` and
``tls.key``. Role secrets are declared by each role (``secrets`` in blueprints/<role>/role.py); a
name means one value for the whole environment (one Key Vault secret), so roles that declare the
same name share it.
"""

from __future__ import annotations

import re
from typing import Any

from blueprints.analytics.origins import wildcard_names
from blueprints.role import SECRET_KINDS, SecretSpec
from blueprints.roles import role
from blueprints.topology import Machine, private_dns_zone
from modules.naming import Naming

__all__ = ["MACHINE_FILES", "SECRET_KINDS", "SHARED_FILES", "VAULT_NAME_TAG", "SecretSpec", "certificate_names",
           "key_vault_name", "role_secrets", "secret_files", "stack_secrets", "vault_name"]


SHARED_FILES = ("ca.crt",)
MACHINE_FILES = ("tls.crt", "tls.key")


def key_vault_name(file_name: str, machine: Machine | None = None) -> str:
    """The Key Vault secret holding a file: dots become hyphens; per-machine files get the machine's name."""
    name = re.sub(r"[^0-9A-Za-z-]", "-", file_name)
    return f"{machine.name}-{name}" if machine is not None else name


def secret_files(machine: Machine) -> list[tuple[str, str]]:
    """(file name, Key Vault secret name) for every secret file of a machine."""
    files = [(f, key_vault_name(f)) for f in SHARED_FILES]
    files += [(f, key_vault_name(f, machine)) for f in MACHINE_FILES]
    for spec in role_secrets(machine.role):
        files.append((spec.name, key_vault_name(spec.name)))
        if spec.kind == "ssh-ed25519":
            files.append((f"{spec.name}.pub", key_vault_name(f"{spec.name}.pub")))
    return files


def role_secrets(role_name: str) -> tuple[SecretSpec, ...]:
    """The secrets a role's machines read besides ca.crt, tls.crt and tls.key."""
    return role(role_name).secrets


def certificate_names(config: dict[str, Any], machine: Machine) -> list[str]:
    """The DNS names a machine's TLS certificate covers: its internal name; the public host name and
    the analysts' hosts on the machine with a public entry (the gateway); and the analysts' hosts on
    an analytics VM, which the gateway names when it forwards to them (blueprints/analytics/origins.py).
    None of them depends on how many VMs or analysts there are."""
    names = [f"{machine.name}.{private_dns_zone(config)}"]
    if machine.public_entry:
        names.append(config["roles"]["gateway"]["hostname"])
        names += wildcard_names(config)
    elif machine.role == "analytics":
        names += wildcard_names(config)
    return names


def stack_secrets(machines: list[Machine]) -> list[SecretSpec]:
    """Every role secret the stack's machines read, once per name, in machine order."""
    seen: dict[str, SecretSpec] = {}
    for machine in machines:
        for spec in role_secrets(machine.role):
            seen.setdefault(spec.name, spec)
    return list(seen.values())


# Every VM carries the vault's name in this tag (modules/linux_vm.py), read at boot from the instance
# metadata service: the name depends on the subscription, which the rendered cloud-init cannot know.
VAULT_NAME_TAG = "trust-blueprints-key-vault"


def vault_name(config: dict[str, Any], subscription_id: str) -> str:
    """The environment's Key Vault, where every machine fetches its secrets.

    Globally unique, so it depends on the subscription the stack is deployed to (modules/naming.py);
    raises ValueError when ``subscription_id`` is not a GUID."""
    naming = Naming(config["trust"]["short_name"], config["environment"], config["location"], subscription_id)
    return naming.name("kv")
