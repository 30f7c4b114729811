"""The package phase of a machine's rendered cloud-init: the Debian packages it installs and the apt
settings they are installed with.

Most of an analytics VM's first boot is this phase (about a thousand Debian packages). Both ways
of doing it ahead of time read it from here, so neither can drift from what the VM would install:
the lab's cached role layers (lab/role_layers.py) and the Azure Compute Gallery image recipe
(blueprints/image_recipe.py). Read from the rendered bytes, not from the templates, so whatever the
template decides (a package only some stacks need) is included exactly when the VM would get it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from blueprints.cloud_init import render_user_data
from blueprints.topology import Machine

__all__ = ["APT_CONF_DIR", "PackagePhase", "package_phase"]

APT_CONF_DIR = "/etc/apt/apt.conf.d/"


@dataclass(frozen=True)
class PackagePhase:
    packages: tuple[str, ...]  # sorted; "name" or "name=version" as cloud-init would ask apt
    apt_settings: tuple[tuple[str, str], ...]  # (path, content) of the cloud-init's apt.conf.d files

    def digest(self) -> str:
        """12 hex characters naming this package phase (an image or layer built from it carries them)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def _package_name(entry: Any) -> str:
    # cloud-init accepts "name" or [name, version]
    return f"{entry[0]}={entry[1]}" if isinstance(entry, list) else str(entry)


def package_phase(config: dict[str, Any], machine: Machine) -> PackagePhase | None:
    """What the machine's cloud-init installs; None when it installs nothing."""
    document = yaml.safe_load(render_user_data(config, machine)) or {}
    packages = tuple(sorted(_package_name(p) for p in document.get("packages") or ()))
    if not packages:
        return None
    apt_settings = tuple(sorted((str(f["path"]), str(f.get("content", ""))) for f in document.get("write_files") or ()
                                if str(f.get("path", "")).startswith(APT_CONF_DIR)))
    return PackagePhase(packages, apt_settings)
