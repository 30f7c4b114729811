"""Azure resource names: Cloud Adoption Framework abbreviation, trust, environment, region.

One function builds every name, so names are predictable and never collide between
instances. Globally unique names (Key Vault, storage) get a short deterministic hash.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

REGION_CODES = {"uksouth": "uks", "ukwest": "ukw"}

# Azure's rules for the names we build: (max length, allowed pattern).
NAME_RULES: dict[str, tuple[int, str]] = {
    "rg": (90, r"^[A-Za-z0-9._()-]+[^.]$"),
    "vnet": (64, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
    "snet": (80, r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9_]$"),
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
}
GLOBALLY_UNIQUE = {"kv", "st"}


@dataclass(frozen=True)
class Naming:
    trust: str  # trust short name
    environment: str
    location: str

    @property
    def region(self) -> str:
        return REGION_CODES.get(self.location, self.location[:3])

    def name(self, kind: str, part: str = "") -> str:
        """The Azure name of a resource of ``kind`` (a CAF abbreviation) for ``part``."""
        if kind in GLOBALLY_UNIQUE:
            # Hyphen-free core plus a hash of the identifying inputs keeps Key Vault names
            # inside 24 characters and unique across tenants.
            digest = hashlib.sha256(f"{self.trust}/{self.environment}/{self.location}/{part}".encode())
            if kind == "st":  # storage accounts: lowercase letters and digits only
                core = re.sub(r"[^a-z0-9]", "", f"st{self.trust}{self.environment}{self.region}{part}")[:18]
                return f"{core}{digest.hexdigest()[:6]}"
            core = f"{kind}-{self.trust}{self.environment}{self.region}{part}"[:17]
            return f"{core}{digest.hexdigest()[:6]}"
        if kind == "shutdown":
            return f"shutdown-computevm-{self.name('vm', part)}"
        pieces = [kind, self.trust, self.environment, self.region] + ([part] if part else [])
        return "-".join(pieces)


def name_problems(kind: str, name: str) -> str | None:
    """Why ``name`` breaks Azure's rules for ``kind``, or None."""
    limit, pattern = NAME_RULES[kind]
    if len(name) > limit:
        return f"{name!r} is {len(name)} characters; Azure allows {limit}"
    if not re.match(pattern, name):
        return f"{name!r} has characters Azure does not allow for this resource"
    return None
