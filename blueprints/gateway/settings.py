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
    vm_size_field,
)

SETTINGS_SCHEMA: dict[str, Any] = {
    "kind": {"type": "string", "required": True, "allowed": ["self-hosted", "bastion"],
             "meta": {"doc": "self-hosted: SSO proxy + SSH jump host; bastion: Azure Bastion"}},
    "vm_size": vm_size_field("Standard_B2s"),
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
            "client_id": {"type": "string", "regex": GUID_PATTERN, "required": True,
                          "meta": {"doc": "App registration (client) id", "allowed": "a GUID"}},
            "allowed_group": {"type": "string", "regex": GUID_PATTERN, "required": True,
                              "meta": {"doc": "Object id of the group allowed to sign in",
                                       "allowed": "a GUID"}},
            "username_claim": {"type": "string", "regex": CLAIM_NAME_PATTERN,
                               "default": "preferred_username",
                               "meta": {"doc": "Claim whose part before any @ is the local "
                                               "account name sent to tools as X-Remote-User",
                                        "allowed": "a claim name: letters, digits, _"}},
            "groups_claim": {"type": "string", "regex": CLAIM_NAME_PATTERN, "default": "groups",
                             "meta": {"doc": "Claim that lists the user's group object ids",
                                      "allowed": "a claim name: letters, digits, _"}},
        },
    },
}
