"""The stack file schema: every key, its type, range, default and meaning.

Each field's ``meta.doc`` is its description; the reference docs are generated from it. The
``roles`` section is assembled from the registered roles: each role's settings live in its own
folder (``settings_schema`` in blueprints/<role>/role.py).
"""

from __future__ import annotations

from typing import Any

from blueprints.airlock_egress import EGRESS_SCHEMA
from blueprints.airlock_settings import AIRLOCK_SCHEMA
from blueprints.git_server.settings import (
    GIT_ACCOUNT_PATTERN,
    GIT_MEMBER_PATTERN,
    GIT_REPOSITORY_PATTERN,
)
from blueprints.landing_zone import LANDING_ZONE_SCHEMA
from blueprints.package_mirror.settings import (
    CRAN_NAME_PATTERN,
    NPM_NAME_PATTERN,
    PYPI_ALLOWLIST_PATTERN,
    PYPI_NAME_PATTERN,
    URL_PATTERN,
)
from blueprints.roles import all_roles
from blueprints.settings_fields import (
    ABSOLUTE_PATH_PATTERN,
    ACCOUNT_NAME_PATTERN,
    CLAIM_NAME_PATTERN,
    DISPLAY_NAME_PATTERN,
    EMAIL_PATTERN,
    FQDN_PATTERN,
    GUID_PATTERN,
    LOCAL_ACCOUNT_PATTERN,
    SINGLE_LINE_ALLOWED,
    SINGLE_LINE_PATTERN,
    TIME_PATTERN,
    VM_SIZE_PATTERN,
)

# Patterns other modules (and tests) read from here, the schema's home.
__all__ = [
    "ABSOLUTE_PATH_PATTERN", "ACCOUNT_NAME_PATTERN", "CIDR_PATTERN", "CLAIM_NAME_PATTERN", "CRAN_NAME_PATTERN",
    "DISPLAY_NAME_PATTERN", "FQDN_PATTERN", "GIT_ACCOUNT_PATTERN", "GIT_MEMBER_PATTERN", "GIT_REPOSITORY_PATTERN",
    "GUID_PATTERN", "LOCAL_ACCOUNT_PATTERN", "NPM_NAME_PATTERN", "PYPI_ALLOWLIST_PATTERN", "PYPI_NAME_PATTERN",
    "SCHEMA", "SINGLE_LINE_PATTERN", "TIME_PATTERN", "URL_PATTERN", "VM_SIZE_PATTERN", "stack_schema",
]

CIDR_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"
REGIONS = ["uksouth", "ukwest"]
ENVIRONMENTS = ["dev", "test", "prod"]
CLASSIFICATIONS = ["official", "official-sensitive"]


def _cidr(doc: str, required: bool = True) -> dict[str, Any]:
    return {"type": "string", "regex": CIDR_PATTERN, "required": required,
            "nullable": not required, "meta": {"doc": doc, "allowed": "an IPv4 range such as 10.40.1.0/24"}}


_BASE_SCHEMA: dict[str, Any] = {
    "trust": {
        "type": "dict", "required": True, "meta": {"doc": "The trust that owns the environment"},
        "schema": {
            "name": {"type": "string", "required": True, "regex": DISPLAY_NAME_PATTERN,
                     "meta": {"doc": "Full name, shown on the landing page and in documents",
                              "allowed": "3-80 letters, digits, spaces and . , & ( ) ' -"}},
            "short_name": {"type": "string", "required": True, "regex": r"^[a-z][a-z0-9]{1,7}$",
                           "meta": {"doc": "Short name used in every Azure resource name",
                                    "allowed": "2-8 lowercase letters or digits, starting with a letter"}},
            "ods_code": {"type": "string", "regex": r"^[A-Z0-9]{3,5}$", "required": False,
                         "meta": {"doc": "Organisation Data Service code",
                                  "allowed": "3-5 capital letters or digits"}},
        },
    },
    "environment": {"type": "string", "required": True, "allowed": ENVIRONMENTS,
                    "meta": {"doc": "Lifecycle stage; part of every name"}},
    "location": {"type": "string", "required": True, "allowed": REGIONS,
                 "meta": {"doc": "Azure region (UK regions only, for data residency)"}},
    "tags": {
        "type": "dict", "required": True, "meta": {"doc": "Tags put on every taggable resource"},
        "schema": {
            "owner": {"type": "string", "required": True, "regex": EMAIL_PATTERN, "maxlength": 254,
                      "meta": {"doc": "Who answers for the environment", "allowed": "an email address"}},
            "cost_centre": {"type": "string", "required": True, "regex": r"^[A-Za-z0-9 _./-]{1,64}$",
                            "meta": {"doc": "Finance cost centre",
                                     "allowed": "1-64 letters, digits, spaces or _ . / -, not blank"}},
            "data_classification": {"type": "string", "required": True, "allowed": CLASSIFICATIONS,
                                    "meta": {"doc": "Government Security Classification of the data"}},
        },
    },
    "network": {
        "type": "dict", "required": True, "meta": {"doc": "Address plan and who may connect"},
        "schema": {
            "address_space": _cidr("The virtual network's address space"),
            "subnets": {
                "type": "dict", "required": True, "meta": {"doc": "One range per subnet"},
                "schema": {
                    "gateway": _cidr("Self-hosted gateway subnet", required=False),
                    "services": _cidr("Package mirror and Git server subnet", required=False),
                    "workloads": _cidr("Analytics VMs subnet", required=False),
                    "bastion": _cidr("AzureBastionSubnet, /26 or larger", required=False),
                },
            },
            "allowed_client_ranges": {
                "type": "list", "default": [], "maxlength": 200,
                "schema": _cidr("A range analysts connect from"),
                "meta": {"doc": "Public ranges allowed to reach the gateway (e.g. the trust's VPN egress); "
                                "at least one when roles.gateway is set"},
            },
            "private_client_ranges": {
                "type": "list", "default": [], "maxlength": 200,
                "schema": _cidr("A private range of the trust's own network"),
                "meta": {"doc": "Private ranges of the trust's network, joined to this one by VNet peering, VPN "
                                "or ExpressRoute, whose existing machines may use the package mirror and the Git "
                                "server directly (as the environment's own analytics VMs do)"},
            },
            "trust_ranges": {
                "type": "list", "default": [], "maxlength": 200,
                "schema": _cidr("A private range of the trust's own network"),
                "meta": {"doc": "Private ranges of the trust's network, joined by VNet peering, VPN or ExpressRoute, "
                                "where its data sources are (roles.analytics.data_sources must lie inside one); "
                                "declaring a range opens nothing"},
            },
            "allow_clients_from_anywhere": {
                "type": "boolean", "default": False,
                "meta": {"doc": "Unsafe: allow ranges of /8 or wider, up to the whole Internet"},
            },
            "landing_zone": LANDING_ZONE_SCHEMA,
        },
    },
    "admin": {
        "type": "dict", "required": True, "meta": {"doc": "The break-glass administrator account"},
        "schema": {
            "username": {"type": "string", "required": True, "regex": r"^[a-z_][a-z0-9_-]{0,31}$",
                         "meta": {"doc": "Linux user name on every VM",
                                  "allowed": "1-32 lowercase letters, digits, _ or -"}},
            "ssh_public_keys": {"type": "list", "required": True, "minlength": 1, "maxlength": 20,
                                "schema": {"type": "string", "maxlength": 16384, "regex": SINGLE_LINE_PATTERN,
                                           "meta": {"allowed": SINGLE_LINE_ALLOWED}},
                                "meta": {"doc": "OpenSSH public keys (ed25519, ECDSA or RSA 3072+)"}},
        },
    },
    # The airlock's egress side is kept in its own file (blueprints/airlock_egress.py).
    "airlock": {**AIRLOCK_SCHEMA, "schema": {**AIRLOCK_SCHEMA["schema"], "egress": EGRESS_SCHEMA}},
    "roles": {
        "type": "dict", "required": True, "meta": {"doc": "Which roles to deploy, and their settings"},
        "schema": {},  # filled from the registered roles by stack_schema()
    },
}


def stack_schema() -> dict[str, Any]:
    """The whole schema, with one ``roles.<name>`` section per registered role."""
    roles = {
        declared.name: {"type": "dict", "required": False, "meta": {"doc": declared.summary},
                        "schema": declared.settings_schema}
        for declared in all_roles()
    }
    return {**_BASE_SCHEMA, "roles": {**_BASE_SCHEMA["roles"], "schema": roles}}


# The schema for the roles this package ships (stack_schema() follows roles registered later).
SCHEMA: dict[str, Any] = stack_schema()
