"""Secrets each role's machines find in /etc/trust-blueprints/secrets/ besides ca.crt, tls.crt and tls.key.

A name is a file name there and, on Azure, the Key Vault secret the machine's identity reads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecretSpec:
    """One file in a machine's secrets directory; kind ``token`` is a random URL-safe string."""

    name: str
    kind: str


# role -> the secrets its machines need besides ca.crt, tls.crt and tls.key.
ROLE_SECRETS: dict[str, tuple[SecretSpec, ...]] = {
    "remote_gateway": (
        # Entra ID issues the real client secret; the lab's identity provider accepts any value.
        SecretSpec("gateway-oidc-client-secret", "token"),
        # Encrypts mod_auth_openidc's session cookies and state.
        SecretSpec("gateway-oidc-crypto-passphrase", "token"),
    ),
    "package_mirror": (),
    "git_server": (),
    "analytics_vm": (),
}
