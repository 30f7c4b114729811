"""How a machine finds its Azure data disk and what goes on it (each role declares its layout).

modules/linux_vm.py attaches one managed data disk at ``DATA_DISK_LUN`` to every VM whose role
declares a layout (``data_disk`` in blueprints/<role>/role.py). At first boot the role's
cloud-init runs ``trust-blueprints-data-disk`` (templates/data-disk.sh), which finds the disk by
the LUN's stable path, formats it only when it holds nothing at all, mounts it at ``DISK_ROOT``
and bind-mounts one directory of it over each of the role's data directories, through /etc/fstab
(``nofail``, with a device timeout). A disk that already holds this project's file system is
mounted as it is, so a replaced VM keeps its data.

The lab's machines have no data disk: the same step logs that the OS disk is used and carries on.

Why bind mounts from one disk root: the mirror keeps four caches in four places that its
packages and services expect; binding keeps every service's configuration unchanged, and the
disk's lost+found stays out of the services' directories.
"""

from __future__ import annotations

import re
from pathlib import Path

from blueprints.role import DataDiskLayout
from blueprints.roles import role
from blueprints.topology import Machine

__all__ = ["DATA_DISK_LUN", "DISK_ROOT", "DataDiskLayout", "data_disk_layout", "data_disk_settings", "device_links"]

# The LUN modules/linux_vm.py gives the data disk; the only one a VM has.
DATA_DISK_LUN = 0
# Where the disk's file system is mounted; each data directory is a bind mount from below it.
DISK_ROOT = "/srv/data-disk"
# ext4 labels are at most 16 bytes. The label marks a disk this step formatted.
FILESYSTEM_LABEL = "tb-data"
# How long systemd waits at boot for the disk before giving up on it (nofail: boot goes on).
DEVICE_TIMEOUT = "60s"

# The step itself: POSIX sh, installed as /usr/local/sbin/trust-blueprints-data-disk.
DATA_DISK_SCRIPT = Path(__file__).parent / "templates" / "data-disk.sh"
# Directories are written into fstab and a space-separated list: plain absolute paths only.
PATH_PATTERN = re.compile(r"^(/[a-z0-9][a-z0-9._-]*)+$")


def device_links(lun: int) -> tuple[str, ...]:
    """The stable paths Debian 13's udev rules give the data disk at ``lun``, in the order tried.

    waagent (in Debian's Azure image) ships 66-azure-storage.rules: /dev/disk/azure/scsi1/lun<N>.
    azure-vm-utils ships 80-azure-disk.rules: /dev/disk/azure/data/by-lun/<N>, which also names
    data disks on NVMe-only VM sizes.
    """
    return (f"/dev/disk/azure/scsi1/lun{lun}", f"/dev/disk/azure/data/by-lun/{lun}")


# Where a missing disk is an error: Azure attaches one to every VM that has a layout here.
DISK_PLATFORM = "azure"


def data_disk_settings(machine: Machine, admin_username: str) -> dict[str, object] | None:
    """The template values for a machine's data-disk step; None when it has no data disk."""
    layout = data_disk_layout(machine.role)
    if layout is None or not machine.data_disk_gb:
        return None
    return {
        "lun": DATA_DISK_LUN,
        "device_links": list(device_links(DATA_DISK_LUN)),
        "disk_root": DISK_ROOT,
        "label": FILESYSTEM_LABEL,
        "device_timeout": DEVICE_TIMEOUT,
        "directories": list(layout.directories),
        "services": list(layout.services),
        "stop_services": list(layout.stop_services),
        "refresh_files": [path.format(admin=admin_username) for path in layout.refresh_files],
        "disk_platform": DISK_PLATFORM,
    }


def data_disk_layout(role_name: str) -> DataDiskLayout | None:
    """What a role keeps on its data disk (``data_disk`` in blueprints/<role>/role.py); None: no disk."""
    return role(role_name).data_disk
