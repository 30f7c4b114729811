"""What a role is: the one declaration each role folder makes of itself.

Every role folder (``blueprints/<name>/``) holds a ``role.py`` whose ``ROLE`` is a :class:`Role`.
Topology, cloud-init, secrets, data disks, the stack schema, the semantic checks, the policies,
the reference environment, the docs and the lab all read these declarations (through
``blueprints.roles``); nothing else lists roles.

Every field must be given: a declaration that forgets one fails at import with Python's own
"missing required argument" error, and :meth:`Role.__post_init__` refuses contradictions, so a
role can never be half-registered and skipped in silence somewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The subnets a role's machines may sit in, in the order machines are listed (and addressed).
# The bastion subnet holds Azure's managed service only, never a role's VM.
MACHINE_SUBNETS = ("gateway", "services", "workloads")
ROLE_NAME = re.compile(r"^[a-z][a-z_]*[a-z]$")
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}$")
SECRET_NAME = re.compile(r"^[a-z][a-z0-9-]{0,126}$")
SECRET_KINDS = ("token", "ssh-ed25519")


@dataclass(frozen=True)
class SecretSpec:
    """One file in a machine's secrets directory, and its Key Vault secret.

    kind:
      ``token``        a random URL-safe string (256 bits)
      ``ssh-ed25519``  an OpenSSH private key; ``<name>.pub`` beside it holds the public key
    A name means one value for the whole environment, so roles declaring the same name share it.
    Key Vault names allow only letters, digits and hyphens.

    supplied_by: None when the program creates the value (blueprints/environment_secrets.py);
    otherwise who must put it in Key Vault, and from where (``blueprints secrets`` lists these).
    """

    name: str
    kind: str
    supplied_by: str | None = None

    def __post_init__(self) -> None:
        if not SECRET_NAME.match(self.name):
            raise ValueError(f"secret {self.name!r}: use lowercase letters, digits and hyphens (Key Vault names)")
        if self.kind not in SECRET_KINDS:
            raise ValueError(f"secret {self.name!r}: kind {self.kind!r} is not one of {', '.join(SECRET_KINDS)}")


@dataclass(frozen=True)
class DataDiskLayout:
    """A role's use of its data disk (see blueprints/data_disk.py for how the disk is found).

    directories:   kept on the disk; each is bind-mounted from the disk root + its own path.
    services:      systemd services that must not start while their directory is missing
                   (each gets RequiresMountsFor= on the directories).
    stop_services: running while the step moves data onto a new disk (started by their
                   packages earlier in the boot); stopped for the move and started again.
    refresh_files: files under a directory that this VM writes from the stack before the step
                   (``{admin}`` is the admin account); on a kept disk this VM's copy wins.
    """

    directories: tuple[str, ...]
    services: tuple[str, ...]
    stop_services: tuple[str, ...] = ()
    refresh_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.directories:
            raise ValueError("a data-disk layout needs at least one directory")


@dataclass(frozen=True)
class Publication:
    """A web tool the self-hosted gateway publishes behind its single sign-on.

    location:    the Apache configuration for it, a template in the role's folder rendered once
                 per machine with ``vm`` (the machine), ``dns_zone`` and ``public_host``.
    path:        the public path; ``{machine}`` stands for the machine's name.
    link:        the landing page's link text, and ``description`` what follows it (``{machine}`` too).
    site:        optional: a template in the role's folder for Apache virtual hosts of the machine's
                 own (outside the gateway's host), rendered like ``location`` with ``own_origins`` too.
    """

    location: str
    path: str
    link: str
    description: str
    site: str | None = None


def always(settings: dict[str, Any]) -> bool:
    """Every stack that names the role gets its machines."""
    return True


def never(config: dict[str, Any]) -> bool:
    """For a predicate on the stack (such as ``reaches_storage``) that never holds for the role."""
    return False


def stack_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The role's section of the stack file, as its templates get it by default."""
    return dict(config["roles"][name])


@dataclass(frozen=True)
class Role:
    """One role, as the rest of the project sees it. No field has a default: name them all."""

    name: str  # the key under ``roles:`` in stack files, the folder's name, the role everywhere
    summary: str  # one line for people: what the role gives the trust
    component: str  # the ``component`` tag of its resources and the blueprint tag of its VMs
    settings_schema: dict[str, Any]  # cerberus schema of ``roles.<name>`` (each field's meta.doc)
    subnet: str  # where its machines sit (one of MACHINE_SUBNETS)
    first_host: int  # its first machine's address: the subnet's first usable host + this
    host_name: str  # its machine's host name, or the prefix of numbered machines
    numbered: bool  # one machine per ``count`` in its settings, named <host_name>-1, -2, ...
    has_machines: Callable[[dict[str, Any]], bool]  # settings -> whether it deploys VMs at all
    data_disk_setting: str | None  # the settings key with its data disk's size in GB
    data_disk: DataDiskLayout | None  # what its data disk holds
    internet_egress: bool  # fetches from the Internet (through the NAT gateway)
    public_entry: bool  # has a public IP address
    secrets: tuple[SecretSpec, ...]  # read from Key Vault at boot, besides ca.crt and its TLS pair
    nightly_shutdown: bool  # policy: its VMs must have an enabled nightly shutdown schedule
    backed_up: bool  # its VMs are protected by the environment's Recovery Services vault
    requires: tuple[tuple[str, str], ...]  # (other role, why) that a stack naming it must also name
    publication: Publication | None  # what the self-hosted gateway publishes for it
    template_settings: Callable[[dict[str, Any], str], dict[str, Any]]  # (config, name) -> role_settings
    reaches_storage: Callable[[dict[str, Any]], bool]  # config -> its subnet needs Azure Storage's endpoint
    deploy: str  # "module:function" that declares its Azure resources (blueprints/deployment.py)
    folder: Path  # its templates: cloud-init.yaml.j2 and whatever that includes

    def __post_init__(self) -> None:
        problems = []
        if not ROLE_NAME.match(self.name):
            problems.append("name must be lowercase letters and _")
        if self.subnet not in MACHINE_SUBNETS:
            problems.append(f"subnet {self.subnet!r} is not one of {', '.join(MACHINE_SUBNETS)}")
        if not HOST_NAME.match(self.host_name):
            problems.append(f"host_name {self.host_name!r} is not a short DNS label")
        if self.first_host < 0:
            problems.append("first_host must be 0 or more")
        if (self.data_disk_setting is None) != (self.data_disk is None):
            problems.append("data_disk_setting and data_disk go together (both set, or both None)")
        if self.data_disk_setting and self.data_disk_setting not in self.settings_schema:
            problems.append(f"data_disk_setting {self.data_disk_setting!r} is not a key of settings_schema")
        if self.numbered and "count" not in self.settings_schema:
            problems.append("a numbered role needs a 'count' key in settings_schema")
        if "vm_size" not in self.settings_schema:
            problems.append("settings_schema needs a 'vm_size' key")
        if ":" not in self.deploy:
            problems.append(f"deploy {self.deploy!r} must be 'module:function'")
        if not (self.folder / "cloud-init.yaml.j2").is_file():
            problems.append(f"{self.folder}/cloud-init.yaml.j2 is missing")
        if self.publication and not (self.folder / self.publication.location).is_file():
            problems.append(f"{self.folder}/{self.publication.location} is missing")
        if problems:
            raise ValueError(f"role {self.name!r}: " + "; ".join(problems))

    def machine_names(self, settings: dict[str, Any]) -> list[str]:
        """The host names of its machines for these settings (none when it deploys no VM)."""
        if not self.has_machines(settings):
            return []
        if self.numbered:
            return [f"{self.host_name}-{index + 1}" for index in range(settings["count"])]
        return [self.host_name]
