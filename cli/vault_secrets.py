"""`blueprints secrets`: every Key Vault secret a stack's VMs read, who creates it, and which are missing.

The program creates almost every secret (blueprints/environment_secrets.py). The few it cannot
(a client secret that Entra ID issues, say) must be put in the vault by a person before the VMs
that read them can finish their first boot: this command names them with the command that sets
each, and with ``--check`` asks the vault (through the Azure CLI) which secrets are still missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass

from blueprints.gateway.registration import secret_supplied_by_person
from blueprints.secrets import VAULT_NAME_TAG, key_vault_name, role_secrets, secret_files, vault_name
from blueprints.topology import plan_machines
from validation.usage import DEFAULT_STACK, EXIT_FAILED, EXIT_OK, UsageError


@dataclass(frozen=True)
class VaultSecret:
    name: str  # the Key Vault secret
    readers: tuple[str, ...]  # machines that fetch it at boot
    supplied_by: str | None  # None: the program creates it


def vault_secrets(config: dict) -> list[VaultSecret]:
    """Every secret the stack's machines read, in the order they are first read."""
    readers: dict[str, list[str]] = {}
    supplied: dict[str, str | None] = {}
    for machine in plan_machines(config):
        # A client secret is the program's own when it makes the gateway's registration (registration.py).
        manual = {key_vault_name(spec.name): spec.supplied_by for spec in role_secrets(machine.role)
                  if secret_supplied_by_person(config, key_vault_name(spec.name))}
        for _file, secret in secret_files(machine):
            readers.setdefault(secret, []).append(machine.name)
            supplied.setdefault(secret, manual.get(secret))
    return [VaultSecret(name, tuple(names), supplied[name]) for name, names in readers.items()]


def _present(vault: str, secret: str) -> bool:
    result = subprocess.run(["az", "keyvault", "secret", "show", "--vault-name", vault, "--name", secret,
                             "--query", "id", "--output", "tsv"], capture_output=True, text=True, check=False)
    return result.returncode == 0 and bool(result.stdout.strip())


def _vault(config: dict, subscription_id: str | None) -> str:
    """The vault's name, which depends on the subscription; a placeholder naming the option without one."""
    if subscription_id is None:
        return "<vault>"
    try:
        return vault_name(config, subscription_id)
    except ValueError:
        raise UsageError(f"--subscription-id: {subscription_id!r} is not a subscription id; give the GUID that "
                         "`az account show --query id --output tsv` prints") from None


def _cmd_secrets(args: argparse.Namespace) -> int:
    from validation.stack_config import load_stack

    config = load_stack(args.stack_file)
    vault = _vault(config, args.subscription_id)
    if args.check and args.subscription_id is None:
        raise UsageError("--check needs --subscription-id: the vault's name depends on the subscription "
                         "(`az account show --query id --output tsv` prints it)")
    secrets = vault_secrets(config)
    manual = [secret for secret in secrets if secret.supplied_by]
    print(f"Key Vault {vault}: {len(secrets)} secrets read by the VMs; the program creates "
          f"{len(secrets) - len(manual)}, a person supplies {len(manual)}.")
    if args.subscription_id is None:
        print(f"  (the vault's name depends on the subscription: pass --subscription-id, or read the "
              f"{VAULT_NAME_TAG} tag of any of the environment's VMs)")
    for secret in secrets:
        source = f"supplied by {secret.supplied_by}" if secret.supplied_by else "created by the program"
        print(f"  {secret.name:<40} read by {', '.join(secret.readers)}; {source}")
    if manual:
        print("Set each secret a person supplies (from a file, so it stays out of shell history):")
        for secret in manual:
            print(f"  az keyvault secret set --vault-name {vault} --name {secret.name} --file {secret.name}.txt")
    if not args.check:
        return EXIT_OK
    if shutil.which("az") is None:
        raise UsageError("--check asks the vault through the Azure CLI, which is not installed here "
                         "(the list above needs no Azure)")
    missing = [secret.name for secret in secrets if not _present(vault, secret.name)]
    for name in missing:
        print(f"MISSING {name}", file=sys.stderr)
    if missing:
        print(f"blueprints secrets: {len(missing)} of {len(secrets)} secrets missing from {vault}; the VMs "
              "that read them wait at first boot", file=sys.stderr)
        return EXIT_FAILED
    print(f"All {len(secrets)} secrets are in {vault}.")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    secrets = commands.add_parser("secrets", help="the Key Vault secrets the VMs read, and which a person supplies",
                                  description="List every Key Vault secret the stack's VMs read, who creates it, "
                                              "and how to set those a person supplies; --check asks the vault "
                                              "(Azure CLI) which are missing (exit 1 if any).")
    secrets.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                         help=f"stack file to read (default: {DEFAULT_STACK})")
    secrets.add_argument("--check", action="store_true", help="ask the vault which secrets are missing (needs az)")
    secrets.add_argument("--subscription-id", metavar="GUID",
                         help="the subscription the stack is deployed to; the vault's name depends on it")
    secrets.set_defaults(handler=_cmd_secrets)
