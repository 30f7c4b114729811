"""roles.gateway in a stack file: every setting, its type, default and meaning (cerberus).

Read through the role's declaration (role.py) by validation/schema.py and the docs.
"""

from __future__ import annotations

from typing import Any

from blueprints.settings_fields import (
    CLAIM_NAME_PATTERN,
    FQDN_PATTERN,
    GUID_PATTERN,
    LOCAL_ACCOUNT_PATTERN,
    SINGLE_LINE_ALLOWED,
    SINGLE_LINE_PATTERN,
    disk_field,
    vm_size_field,
)
from blueprints.sign_in_names import MAPPED_ACCOUNT_ALLOWED, MAPPED_ACCOUNT_PATTERN, UPN_ALLOWED, UPN_PATTERN

# The client secret a registration made by the program gets: six months by default, as short as a
# week for a trial, and never beyond the two years Entra ID itself allows.
REGISTRATION_SECRET_DAYS = (7, 730)
REGISTRATION_SECRET_DAYS_DEFAULT = 180

SETTINGS_SCHEMA: dict[str, Any] = {
    "kind": {"type": "string", "required": True, "allowed": ["self-hosted", "bastion"],
             "meta": {"doc": "self-hosted: SSO proxy + SSH jump host; bastion: Azure Bastion"}},
    "vm_size": vm_size_field("Standard_B2s"),
    "data_disk_gb": disk_field("TOTP enrolment disk size in GB (self-hosted: kept when the VM is replaced)", 32),
    "hostname": {"type": "string", "regex": FQDN_PATTERN, "required": False,
                 "meta": {"doc": "Public DNS name of the gateway",
                          "allowed": "a lowercase DNS name such as analytics.example.nhs.uk"}},
    "certificate": {"type": "string", "allowed": ["key-vault", "lets-encrypt"],
                    "default": "key-vault",
                    "meta": {"doc": "Where the gateway's TLS certificate comes from"}},
    "ssh_users": {
        "type": "list", "default": [], "maxlength": 500,
        "meta": {"doc": "Jump-host accounts (no shell on the gateway; key and TOTP code)"},
        "schema": {
            "type": "dict",
            "schema": {
                "name": {"type": "string", "required": True, "regex": LOCAL_ACCOUNT_PATTERN,
                         "meta": {"doc": "Account name, the same as on the analytics VMs",
                                  "allowed": "1-32 lowercase letters, digits, _ or -, "
                                             "starting with a letter"}},
                "ssh_public_key": {"type": "string", "required": True, "maxlength": 16384,
                                   "regex": SINGLE_LINE_PATTERN,
                                   "meta": {"doc": "The user's OpenSSH public key line",
                                            "allowed": SINGLE_LINE_ALLOWED}},
            },
        },
    },
    "bastion_sku": {"type": "string", "allowed": ["Basic", "Standard"], "default": "Basic",
                    "meta": {"doc": "Azure Bastion tier (bastion kind only)"}},
    "identity": {
        "type": "dict", "required": False,
        "meta": {"doc": "Entra ID app registration for single sign-on"},
        "schema": {
            "tenant_id": {"type": "string", "regex": GUID_PATTERN, "required": True,
                          "meta": {"doc": "Entra tenant id", "allowed": "a GUID"}},
            # Required unless registration is given (validation/semantic_checks.py): then Entra ID
            # chooses the id when the program creates the registration.
            "client_id": {"type": "string", "regex": GUID_PATTERN, "required": False,
                          "meta": {"doc": "App registration (client) id (required unless registration is given)",
                                   "allowed": "a GUID"}},
            "registration": {
                "type": "dict", "required": False,
                "meta": {"doc": "Present: the program creates the Entra ID app registration, its redirect URI, "
                                "groups claim and client secret (into Key Vault); leave it out where another "
                                "team manages the directory (blueprints/gateway/README.md)"},
                "schema": {
                    "client_secret_days": {
                        "type": "integer", "min": REGISTRATION_SECRET_DAYS[0], "max": REGISTRATION_SECRET_DAYS[1],
                        "default": REGISTRATION_SECRET_DAYS_DEFAULT,
                        "meta": {"doc": "Days until the client secret the program creates expires (a new "
                                        "one is made when this changes)",
                                 "allowed": f"a whole number of days, {REGISTRATION_SECRET_DAYS[0]} to "
                                            f"{REGISTRATION_SECRET_DAYS[1]}"}},
                },
            },
            "allowed_group": {"type": "string", "regex": GUID_PATTERN, "required": True,
                              "meta": {"doc": "Object id of the group allowed to sign in",
                                       "allowed": "a GUID"}},
            "username_claim": {"type": "string", "regex": CLAIM_NAME_PATTERN,
                               "default": "preferred_username",
                               "meta": {"doc": "Claim holding the sign-in name (the UPN), kept whole and "
                                               "looked up in accounts",
                                        "allowed": "a claim name: letters, digits, _"}},
            "accounts": {
                # One Apache line each in the gateway's user data (about 170 bytes in base64): 300
                # stay well inside Azure's 64 KB with the rest of the gateway's settings.
                "type": "list", "default": [], "maxlength": 300,
                "meta": {"doc": "Who signs in as which local account: nobody else gets one, whatever "
                                "name the directory sends (docs/architecture.md, Who is who)"},
                "schema": {
                    "type": "dict",
                    "schema": {
                        "upn": {"type": "string", "required": True, "regex": UPN_PATTERN,
                                "meta": {"doc": "The person's sign-in name as the claim carries it "
                                                "(compared in ASCII lower case)",
                                         "allowed": UPN_ALLOWED}},
                        "account": {"type": "string", "required": True, "regex": MAPPED_ACCOUNT_PATTERN,
                                    "meta": {"doc": "Their local account on the VMs and the Git server",
                                             "allowed": MAPPED_ACCOUNT_ALLOWED}},
                    },
                },
            },
            "groups_claim": {"type": "string", "regex": CLAIM_NAME_PATTERN, "default": "groups",
                             "meta": {"doc": "Claim that lists the user's group object ids",
                                      "allowed": "a claim name: letters, digits, _"}},
        },
    },
}
