"""Azure resource names: Cloud Adoption Framework abbreviation, trust, environment, region.

One function builds every name, so names are predictable and never collide between
instances. Globally unique names (Key Vault, storage account) end in a short hash of the
subscription id and the resource group's id, as Azure's own templates use
``uniqueString(subscription().id, resourceGroup().id)``: stable across runs of one stack, yet not
shared by two trusts or two subscriptions that deploy the same stack file (trust, environment and
region are public, so a hash of them alone would collide, and a deleted vault's name stays
reserved for 90 days). A VM that needs such a name reads it from its own tags at boot, since the
rendered cloud-init cannot know the subscription.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

REGION_CODES = {"uksouth": "uks", "ukwest": "ukw"}

# Azure's rules for the names we build: (max length, allowed pattern).
NAME_RULES: dict[str, tuple[int, str]] = {
    "rg": (90, r"^[A-Za-z0-9._()-]+[^.]$"),
    "vnet": (64, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "snet": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "peer": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "nsg": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "ng": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "pip": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "nic": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "vm": (64, r"^[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]$"),
    "disk": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "kv": (24, r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$"),
    "log": (63, r"^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$"),
    "dcr": (64, r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
    "rsv": (50, r"^[A-Za-z][A-Za-z0-9-]{1,49}$"),
    "bas": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "shutdown": (80, r"^shutdown-computevm-[A-Za-z0-9-]+$"),
    "st": (24, r"^[a-z0-9]{3,24}$"),
    "pep": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "ampls": (255, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "dce": (44, r"^[A-Za-z0-9][A-Za-z0-9-]{1,42}[A-Za-z0-9]$"),
    # DNS security policy and its domain lists (no CAF abbreviation yet; these follow its pattern).
    "dnssp": (80, r"^[A-Za-z0-9][A-Za-z0-9_-]*[A-Za-z0-9]$"),
    "dnsdl": (80, r"^[A-Za-z0-9][A-Za-z0-9_-]*[A-Za-z0-9]$"),
}
GLOBALLY_UNIQUE = {"kv", "st"}
# 10 base-32 characters (50 bits): two deployments of the same stack file in different subscriptions
# get the same name with a chance of 2**-50, and the readable core keeps 14 of the 24 characters.
UNIQUE_LENGTH = 10
SUBSCRIPTION_ID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


@dataclass(frozen=True)
class Naming:
    trust: str  # trust short name
    environment: str
    location: str
    # The subscription the environment is deployed to; only globally unique names need it.
    subscription_id: str = ""

    @property
    def region(self) -> str:
        return REGION_CODES.get(self.location, self.location[:3])

    def name(self, kind: str, part: str = "") -> str:
        """The Azure name of a resource of ``kind`` (a CAF abbreviation) for ``part``."""
        if kind in GLOBALLY_UNIQUE:
            core = f"{kind}-{self.trust}{self.environment}{self.region}{part}"
            if kind == "st":  # storage accounts: lowercase letters and digits only
                core = re.sub(r"[^a-z0-9]", "", core.lower())
            return f"{core[:24 - UNIQUE_LENGTH]}{self.unique_suffix(part)}"
        if kind == "shutdown":
            return f"shutdown-computevm-{self.name('vm', part)}"
        pieces = [kind, self.trust, self.environment, self.region] + ([part] if part else [])
        return "-".join(pieces)

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.name('rg')}"

    def unique_suffix(self, part: str = "") -> str:
        """``UNIQUE_LENGTH`` base-32 characters from the subscription, the resource group and ``part``."""
        if not SUBSCRIPTION_ID.match(self.subscription_id):
            raise ValueError(f"a globally unique name needs the subscription id (a GUID), "
                             f"not {self.subscription_id!r}")
        seed = f"{self.subscription_id.lower()}\n{self.resource_group_id.lower()}\n{part}"
        digest = hashlib.sha256(seed.encode()).digest()
        # Base 32 in lowercase: letters and digits only, as storage account names allow.
        return base64.b32encode(digest).decode("ascii").lower()[:UNIQUE_LENGTH]


def name_problems(kind: str, name: str) -> str | None:
    """Why ``name`` breaks Azure's rules for ``kind``, or None."""
    limit, pattern = NAME_RULES[kind]
    if len(name) > limit:
        return f"{name!r} is {len(name)} characters; Azure allows {limit}"
    if not re.match(pattern, name):
        return f"{name!r} has characters Azure does not allow for this resource"
    return None
