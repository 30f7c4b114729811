"""The lab's data disks: where a machine sees its disk, and when the supervisor mounts it as fstab would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from blueprints.data_disk import DATA_DISK_LUN, DISK_ROOT, device_links
from blueprints.topology import plan_machines
from lab import data_disks
from lab.layout import LabLayout

MKFS = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"


def test_every_machine_whose_role_keeps_data_gets_a_disk(example_config):
    admin = example_config["admin"]["username"]
    wanted = {m.role for m in plan_machines(example_config) if data_disks.wanted(m, admin)}
    assert wanted == {"analytics", "gateway", "git_server", "package_mirror"}


def test_the_disk_is_where_debians_udev_rules_name_it_and_under_its_own_name():
    binds = data_disks.nspawn_binds("/dev/loop7")
    assert f"--bind=/dev/loop7:{device_links(DATA_DISK_LUN)[0]}" in binds
    assert "--bind=/dev/loop7" in binds


def test_the_disk_file_is_not_inside_the_machine_directory_a_rebuild_replaces():
    layout = LabLayout("example")
    assert layout.machine_dir("git") not in layout.data_disk_file("git").parents


def _supervisor_decision(tmp_path: Path, disk: Path, fstab: str) -> tuple[str, str]:
    """Run the supervisor's mount step with `mount` and `mountpoint` that only record; returns the
    nspawn option it chose and the mount calls."""
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    (tools / "mount").write_text(f'#!/bin/sh\necho "mount $*" >> {calls}\ntouch {tmp_path}/mounted\n')
    (tools / "mountpoint").write_text(f'#!/bin/sh\ntest -e {tmp_path}/mounted\n')
    for tool in tools.iterdir():
        tool.chmod(0o755)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/fstab").write_text(fstab)
    environment = {"PATH": f"{tools}:{os.environ['PATH']}:/usr/sbin:/sbin", "LAB_DATA_DISK": str(disk),
                   "LAB_DATA_DISK_MOUNT": str(tmp_path / "disk.mnt"), "LAB_DISK_ROOT": DISK_ROOT,
                   "LAB_MACHINE_ROOT": str(root)}
    result = subprocess.run(["sh", "-c", data_disks.SUPERVISOR_MOUNT + 'printf %s "$data_disk_bind"'],
                            env=environment, capture_output=True, text=True, check=True)
    return result.stdout, calls.read_text() if calls.exists() else ""


@pytest.fixture
def formatted_disk(tmp_path: Path) -> tuple[Path, str]:
    if not Path(MKFS).exists():
        pytest.fail("mkfs.ext4 is missing: `sudo make host-deps` installs e2fsprogs")
    disk = tmp_path / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(64 * 1024**2)
    subprocess.run([MKFS, "-q", "-F", "-L", "tb-data", str(disk)], check=True)
    uuid = subprocess.run(["blkid", "-p", "-o", "value", "-s", "UUID", str(disk)], capture_output=True, text=True,
                          check=True).stdout.strip()
    return disk, uuid


def test_a_disk_in_the_machines_fstab_is_mounted_and_bound_at_the_disk_root(tmp_path, formatted_disk):
    disk, uuid = formatted_disk
    option, calls = _supervisor_decision(tmp_path, disk, f"UUID={uuid} {DISK_ROOT} ext4 defaults,nofail 0 2\n")
    assert option == f"--bind={tmp_path / 'disk.mnt'}:{DISK_ROOT}"
    assert calls == f"mount {disk} {tmp_path / 'disk.mnt'}\n"


@pytest.mark.parametrize("fstab", [
    "",  # a first boot: the data-disk step mounts it itself
    "UUID=00000000-0000-0000-0000-000000000000 /srv/data-disk ext4 defaults 0 2\n",  # another disk
    "# UUID={uuid} /srv/data-disk ext4 defaults 0 2\n",  # commented out
    "UUID={uuid} /srv/elsewhere ext4 defaults 0 2\n",  # not at the disk root
], ids=["no-line", "other-uuid", "comment", "other-place"])
def test_a_disk_the_machines_fstab_does_not_name_is_left_to_the_machine(tmp_path, formatted_disk, fstab):
    disk, uuid = formatted_disk
    option, calls = _supervisor_decision(tmp_path, disk, fstab.format(uuid=uuid))
    assert (option, calls) == ("", "")


def test_a_blank_disk_is_never_mounted_by_the_host(tmp_path):
    disk = tmp_path / "blank.img"
    with disk.open("wb") as handle:
        handle.truncate(1024**2)
    option, calls = _supervisor_decision(tmp_path, disk, f"UUID= {DISK_ROOT} ext4 defaults 0 2\n")
    assert (option, calls) == ("", "")
