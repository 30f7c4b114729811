"""The lab's data disks: one block device per machine whose role keeps data on an Azure data disk.

Azure attaches a managed disk at LUN 0 and Debian's udev rules name it /dev/disk/azure/scsi1/lun0;
the role's data-disk step (blueprints/templates/data-disk.sh) formats it when blank, mounts it by
UUID through /etc/fstab and binds the role's directories onto it. The lab gives each such machine
a sparse file on the host, attached as a loop device and bound into the machine at the same path,
so the same step formats, mounts and keeps data exactly as on Azure.

Two things a VM has and a container lacks are done by the lab, outside the machine:
- udev: the device node is bound in at the LUN path (and at its own name, where libblkid looks
  when `mount` resolves UUID=).
- systemd mounts /etc/fstab's UUID= line at every later boot; in a container it skips device
  lines. So before each boot the lab's supervisor mounts the disk on the host and binds it in, but
  only when the machine's own /etc/fstab holds the line for this disk's UUID at the disk root, as
  systemd would read it (`supervisor_environment`). A first boot, or a rebuilt machine's first
  boot, finds no such line: its data-disk step mounts the disk itself.

The disk file lives beside the machine's directory, so `lab apply --replace` gives a machine a new
OS disk and keeps this one, as Azure keeps a data disk attached with deleteOption Detach.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

from blueprints.data_disk import DATA_DISK_LUN, DISK_ROOT, data_disk_settings, device_links
from blueprints.topology import Machine
from lab.layout import LabLayout

GIB = 1024**3


class DataDiskError(Exception):
    """A loop device could not be attached or detached; the message names the machine and file."""


def wanted(machine: Machine, admin_username: str) -> bool:
    """Whether Azure gives this machine a data disk (its role declares a layout and a size)."""
    return data_disk_settings(machine, admin_username) is not None


def attach(layout: LabLayout, machine: Machine) -> str:
    """A blank sparse disk of the machine's size, attached as a loop device; returns the device.

    An existing disk file (a machine rebuilt in this lab) is attached as it is."""
    disk = layout.data_disk_file(machine.name)
    disk.parent.mkdir(parents=True, exist_ok=True)
    disk.parent.chmod(0o700)
    if not disk.exists():
        with disk.open("wb") as handle:
            handle.truncate(int(machine.data_disk_gb or 0) * GIB)
    attached = _attached_to(disk)
    if attached:
        return attached[0]
    result = subprocess.run(["losetup", "--find", "--show", str(disk)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DataDiskError(f"{machine.name}: losetup {disk} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def nspawn_binds(device: str) -> list[str]:
    """systemd-nspawn options that show the disk where Debian's udev rules would name it."""
    return [f"--bind={device}:{device_links(DATA_DISK_LUN)[0]}", f"--bind={device}"]


def supervisor_environment(layout: LabLayout, machine: str, device: str) -> dict[str, str]:
    """What the supervisor (lab/machines.py) needs to mount the disk before a boot, as fstab would."""
    return {"LAB_DATA_DISK": device, "LAB_DATA_DISK_MOUNT": str(layout.data_disk_mount(machine)),
            "LAB_DISK_ROOT": DISK_ROOT, "LAB_MACHINE_ROOT": str(layout.machine_root(machine))}


# Run by the supervisor before each systemd-nspawn; sets $data_disk_bind. systemd-fstab-generator's
# rule, for this one disk: a UUID= line for the disk's file system at the disk root, type ext4.
SUPERVISOR_MOUNT = (
    'data_disk_bind=""; '
    'if [ -n "${LAB_DATA_DISK:-}" ]; then '
    'uuid=$(blkid -p -o value -s UUID "$LAB_DATA_DISK" 2>/dev/null || true); '
    'if [ -n "$uuid" ] && awk -v want="UUID=$uuid" -v root="$LAB_DISK_ROOT" '
    '\'$1 == want && $2 == root && $3 == "ext4" { found = 1 } END { exit !found }\' '
    '"$LAB_MACHINE_ROOT/etc/fstab" 2>/dev/null; then '
    'mkdir -p "$LAB_DATA_DISK_MOUNT"; '
    'mountpoint -q "$LAB_DATA_DISK_MOUNT" || mount "$LAB_DATA_DISK" "$LAB_DATA_DISK_MOUNT" || '
    'echo "[lab] could not mount the data disk $LAB_DATA_DISK"; '
    'mountpoint -q "$LAB_DATA_DISK_MOUNT" && data_disk_bind="--bind=$LAB_DATA_DISK_MOUNT:$LAB_DISK_ROOT"; '
    'fi; fi; '
)


def _attached_to(disk: Path) -> list[str]:
    result = subprocess.run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(disk)],
                            capture_output=True, text=True, check=False)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


@contextlib.contextmanager
def mounted_read_only(layout: LabLayout, machine: str, device: str) -> Any:
    """The disk's file system mounted read-only on the host (for the caches `lab down` keeps);
    yields its root, or None when there is no disk or it holds no file system."""
    if not device:
        yield None
        return
    probe = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", device], capture_output=True, text=True,
                           check=False)
    if probe.stdout.strip() != "ext4":
        yield None
        return
    target = layout.data_disk_mount(machine)
    target.mkdir(parents=True, exist_ok=True)
    already = subprocess.run(["mountpoint", "-q", str(target)], check=False).returncode == 0
    if not already:
        result = subprocess.run(["mount", "-o", "ro", device, str(target)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            yield None
            return
    try:
        yield target
    finally:
        if not already:
            subprocess.run(["umount", str(target)], capture_output=True, check=False)


def detach_all(layout: LabLayout) -> list[str]:
    """Detach every loop device of the lab's disk files (after their mounts are gone); returns them."""
    directory = layout.data_disks_dir
    detached = []
    for disk in sorted(directory.glob("*.img")) if directory.is_dir() else []:
        for device in _attached_to(disk):
            result = subprocess.run(["losetup", "--detach", device], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise DataDiskError(f"losetup --detach {device} ({disk}) failed: {result.stderr.strip()}")
            detached.append(f"{device} ({disk.name})")
    return detached
