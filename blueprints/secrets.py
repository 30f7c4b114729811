"""Which secret files each machine gets, and their names in Key Vault: one table for Azure and the lab.

A machine finds its secrets as files in /etc/trust-blueprints/secrets/. On Azure the shared boot
steps (templates/base.yaml.j2) fetch each file from the environment's Key Vault by name with
the VM's managed identity; the lab (lab/secrets.py) generates the same files before first boot.

Every machine gets ``ca.crt`` (the environment's internal CA) and its own ``tls.crt`` and
``tls.key``. Role secrets are declared in ``ROLE_SECRETS``; a name means one value for the whole
environment (one Key Vault secret), so roles that declare the same name share it.
Key Vault names allow only letters, digits and hyphens: use hyphenated names for role secrets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from blueprints.topology import Machine


@dataclass(frozen=True)
class SecretSpec:
    """One file in a machine's secrets directory.

    kind:
      ``token``        a random URL-safe string (256 bits)
      ``ssh-ed25519``  an OpenSSH private key; ``<name>.pub`` beside it holds the public key
    """

    name: str
    kind: str


SECRET_KINDS = ("token", "ssh-ed25519")
SHARED_FILES = ("ca.crt",)
MACHINE_FILES = ("tls.crt", "tls.key")

# role -> the secrets its machines need besides ca.crt, tls.crt and tls.key.
ROLE_SECRETS: dict[str, tuple[SecretSpec, ...]] = {
    "gateway": (
        # Issued by Entra ID for the app registration (the lab's stand-in accepts any value).
        SecretSpec("gateway-oidc-client-secret", "token"),
        # Encrypts mod_auth_openidc's session cookies and state.
        SecretSpec("gateway-oidc-crypto-passphrase", "token"),
    ),
    # The mirror pulls the package-requests repository with this key (mirror-allowlist pull); the
    # Git server admits its .pub read-only. Declared by both roles: one name, one shared value.
    "package_mirror": (SecretSpec("package-requests-reader", "ssh-ed25519"),),
    "git_server": (SecretSpec("package-requests-reader", "ssh-ed25519"),),
    "analytics": (),
}


def key_vault_name(file_name: str, machine: Machine | None = None) -> str:
    """The Key Vault secret holding a file: dots become hyphens; per-machine files get the machine's name."""
    name = re.sub(r"[^0-9A-Za-z-]", "-", file_name)
    return f"{machine.name}-{name}" if machine is not None else name


def secret_files(machine: Machine) -> list[tuple[str, str]]:
    """(file name, Key Vault secret name) for every secret file of a machine."""
    files = [(f, key_vault_name(f)) for f in SHARED_FILES]
    files += [(f, key_vault_name(f, machine)) for f in MACHINE_FILES]
    for spec in ROLE_SECRETS.get(machine.role, ()):
        files.append((spec.name, key_vault_name(spec.name)))
        if spec.kind == "ssh-ed25519":
            files.append((f"{spec.name}.pub", key_vault_name(f"{spec.name}.pub")))
    return files
