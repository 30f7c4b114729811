"""Every secret a VM reads, created by the program into Key Vault, and each VM's grants to read them.

What each machine reads comes from one place (blueprints/secrets.py, from the role declarations):
``ca.crt``, its own ``tls.crt``/``tls.key`` and its role's secrets. This component creates each of
them that a program can create: the environment's internal CA (an ECDSA P-256 key and a
self-signed certificate), a key and a certificate signed by that CA for every machine (its
internal name, and the public host name on the gateway), random tokens, and OpenSSH key pairs.
Values exist only as Pulumi secrets (encrypted in the state) and Key Vault secrets; they never
appear in custom data. A secret a person must supply (``supplied_by`` in its declaration, such as
the Entra ID client secret) is not created here: ``blueprints secrets`` names it and checks it.

Then every VM gets one read grant per secret it fetches, scoped to that secret alone. Grants
follow the VMs (they need the VM's identity), so a VM's first boot may ask before its grant
exists: the boot step (templates/base.yaml.j2) waits and retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random
import pulumi_tls as tls

from blueprints.secrets import MACHINE_FILES, SHARED_FILES, certificate_names, key_vault_name, stack_secrets
from blueprints.topology import Machine
from modules.key_vault import KeyVault

# Certificates: browsers and most clients refuse server certificates valid for more than 398 days.
CERTIFICATE_HOURS = 397 * 24
# Pulumi replaces a certificate this long before it expires (at the next `pulumi up`).
RENEWAL_HOURS = 30 * 24
CA_HOURS = 10 * 365 * 24
TOKEN_LENGTH = 43  # 256 bits of URL-safe letters and digits


@dataclass
class EnvironmentSecretsArgs:
    config: dict[str, Any]
    machines: list[Machine]
    key_vault: KeyVault


class EnvironmentSecrets(pulumi.ComponentResource):
    """The secrets the program creates; ``created`` maps each Key Vault secret name to its resource."""

    created: dict[str, pulumi.Resource]

    def __init__(self, name: str, args: EnvironmentSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:EnvironmentSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vault = args.key_vault
        config = args.config
        self.created = {}

        def store(secret: str, value: pulumi.Input[str]) -> None:
            self.created[secret] = vault.add_secret(f"{name}-{secret}", secret, value, parent=self)

        label = f"{config['trust']['short_name']}-{config['environment']}"
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject={"common_name": f"{label} internal CA", "organization": config["trust"]["name"]},
            validity_period_hours=CA_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=child,
        )
        (ca_file,) = SHARED_FILES
        store(key_vault_name(ca_file), ca.cert_pem)

        cert_file, key_file = MACHINE_FILES
        for machine in args.machines:
            key = tls.PrivateKey(f"{name}-{machine.name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
            names = certificate_names(config, machine)
            request = tls.CertRequest(
                f"{name}-{machine.name}-csr",
                private_key_pem=key.private_key_pem,
                subject={"common_name": names[0], "organization": config["trust"]["name"]},
                dns_names=names,
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-{machine.name}-cert",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                validity_period_hours=CERTIFICATE_HOURS,
                early_renewal_hours=RENEWAL_HOURS,
                allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
                opts=child,
            )
            store(key_vault_name(cert_file, machine), cert.cert_pem)
            store(key_vault_name(key_file, machine), key.private_key_pem)

        for spec in stack_secrets(args.machines):
            if spec.supplied_by:
                continue  # a person supplies it: blueprints secrets
            if spec.kind == "token":
                token = random.RandomPassword(f"{name}-{spec.name}", length=TOKEN_LENGTH, special=False, opts=child)
                store(key_vault_name(spec.name), token.result)
            else:  # ssh-ed25519
                pair = tls.PrivateKey(f"{name}-{spec.name}", algorithm="ED25519", opts=child)
                store(key_vault_name(spec.name), pair.private_key_openssh)
                store(key_vault_name(f"{spec.name}.pub"), pair.public_key_openssh)
        self.register_outputs({})
