"""Where the lab keeps things on the host, and the names it gives host objects.

Everything the lab creates on the host is named ``tb-*`` (links, namespaces) or lives in the
nftables table ``trust_blueprints_lab``, so `lab down` can find and remove it all.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_ROOT = Path("/var/cache/trust-blueprints/lab")
STATE_ROOT = Path("/var/lib/trust-blueprints/lab")
NFT_TABLE = "trust_blueprints_lab"
PREFIX = "tb-"
# Linux limits interface names to 15 characters.
IFNAME_MAX = 15


def bridge_name(subnet: str) -> str:
    return _ifname(f"{PREFIX}sn-{subnet}")


def machine_link_name(machine: str) -> str:
    """The host end of a machine's network cable."""
    return _ifname(f"{PREFIX}{machine}")


def machine_netns(machine: str) -> str:
    return f"{PREFIX}{machine}"


CLIENT_NETNS = f"{PREFIX}client"
CLIENT_LINK = f"{PREFIX}client"
IDENTITY_NETNS = f"{PREFIX}entra"
IDENTITY_LINK = f"{PREFIX}entra"
INTERNET_BRIDGE = f"{PREFIX}internet"
# Azure Bastion's instance (lab/bastion.py), cabled to the stack's Bastion subnet.
BASTION_NETNS = f"{PREFIX}bastion"
BASTION_LINK = f"{PREFIX}bastion"
PLATFORM_LINK = f"{PREFIX}platform"
# A landing zone hub's firewall (lab/hub_firewall.py): the mirror's only way to the Internet.
HUB_FIREWALL_NETNS = f"{PREFIX}hubfw"
HUB_FIREWALL_LINK = f"{PREFIX}hubfw"


def _ifname(name: str) -> str:
    if len(name) > IFNAME_MAX:
        raise ValueError(f"interface name {name!r} is longer than {IFNAME_MAX} characters")
    return name


@dataclass(frozen=True)
class LabLayout:
    """The state directory of the lab of one stack."""

    stack: str  # stack name: the stack file's stem

    @property
    def root(self) -> Path:
        return STATE_ROOT / self.stack

    @property
    def record(self) -> Path:
        """lab.json: what `lab up` created, read by status, ssh, down and the tests."""
        return self.root / "lab.json"

    def machine_dir(self, machine: str) -> Path:
        return self.root / "machines" / machine

    def machine_root(self, machine: str) -> Path:
        return self.machine_dir(machine) / "root"

    def console_log(self, machine: str) -> Path:
        return self.machine_dir(machine) / "console.log"

    def cloud_init_output(self, machine: str) -> Path:
        """cloud-init's output log inside the machine, read from the host (`lab logs`, a failed `lab up`)."""
        return self.machine_root(machine) / "var/log/cloud-init-output.log"

    @property
    def data_disks_dir(self) -> Path:
        """The machines' data disks (lab/data_disks.py): beside their machine directories, not in them, so
        a rebuilt machine gets a new OS disk and keeps its data disk."""
        return self.root / "data-disks"

    def data_disk_file(self, machine: str) -> Path:
        return self.data_disks_dir / f"{machine}.img"

    def data_disk_mount(self, machine: str) -> Path:
        """Where the host mounts the data disk's file system when the machine boots with it in fstab."""
        return self.data_disks_dir / f"{machine}.mnt"

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "ca.crt"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def platform_dir(self) -> Path:
        """The metadata and Key Vault stand-in's state (identities, grants, secret values): root only."""
        return self.root / "platform"

    @property
    def dns_dir(self) -> Path:
        return self.root / "dns"

    @property
    def hub_firewall_dir(self) -> Path:
        """A landing zone hub firewall stand-in's rules and decision log (lab/hub_firewall.py)."""
        return self.root / "hub-firewall"

    @property
    def nft_file(self) -> Path:
        return self.root / "nftables.nft"


def read_record(layout: LabLayout) -> dict[str, Any]:
    return json.loads(layout.record.read_text())


def write_record(layout: LabLayout, record: dict[str, Any]) -> None:
    layout.root.mkdir(parents=True, exist_ok=True)
    tmp = layout.record.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(layout.record)


def running_labs() -> list[LabLayout]:
    """Every lab with a record on this host (at most one, since `lab up` refuses a second)."""
    if not STATE_ROOT.is_dir():
        return []
    return sorted((LabLayout(d.name) for d in STATE_ROOT.iterdir() if (d / "lab.json").is_file()),
                  key=lambda layout: layout.stack)


class LabBusyError(Exception):
    """Another `lab up` or `lab down` is running on this host."""


@contextmanager
def host_lock() -> Iterator[None]:
    """Only one `lab up` or `lab down` at a time on a host (they share names and addresses)."""
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    with (STATE_ROOT / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabBusyError("another `blueprints lab up` or `lab down` is running on this host; "
                               "wait for it to finish") from None
        yield
