"""The data-disk step, as rendered into cloud-init, run against a real block device.

A loop device backed by a sparse file stands in for the Azure data disk; a symlink in the test's
own directory stands in for the udev path of its LUN (/dev/disk/azure/scsi1/lun0 on Azure), and
the step's settings point every path (disk root, data directories, fstab) into that directory,
so nothing on the host is touched. Formatting and mounting need root: those tests are skipped
for other users (CI runs as root). The missing-disk test needs no privilege and always runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprints.cloud_init import render_user_data, written_files
from blueprints.data_disk import FILESYSTEM_LABEL
from blueprints.topology import plan_machines

STEP = "/usr/local/sbin/trust-blueprints-data-disk"
DISK_MIB = 64

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/dev/loop-control").exists() or shutil.which("losetup") is None,
    reason="attaching a loop device, formatting and mounting it need root and /dev/loop-control",
)


@dataclass
class Machine:
    """One imagined VM: its config file, its data directories and its fstab, all under tmp_path."""

    root: Path
    script: Path
    link: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def service_dir(self) -> Path:
        return self.root / "var" / "lib" / "svc"

    @property
    def fstab(self) -> Path:
        return self.root / "etc" / "fstab"

    @property
    def disk_root(self) -> Path:
        return self.root / "srv" / "data-disk"

    def run(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        config = self.root / "data-disk.conf"
        config.write_text(
            "lun=0\n"
            f"device_links='{self.link} {self.root}/dev/disk/azure/data/by-lun/0'\n"
            f"disk_root={self.disk_root}\n"
            f"label={FILESYSTEM_LABEL}\n"
            "device_timeout=60s\n"
            f"directories='{self.home} {self.service_dir}'\n"
            "stop_services=''\n"
            f"refresh_files='{self.home}/trustadmin/.ssh/authorized_keys {self.home}/newadmin/.ssh/authorized_keys'\n"
            "disk_platform=azure\n"
            f"fstab={self.fstab}\n", encoding="utf-8")
        return subprocess.run(["sh", str(self.script), str(config)], capture_output=True, text=True,
                              check=False, timeout=120, env={**os.environ, **(env or {})})


def _rendered_step(config: dict[str, Any]) -> str:
    machine = next(m for m in plan_machines(config) if m.role == "analytics")
    document = yaml.safe_load(render_user_data(config, machine))
    return written_files(document)[STEP]


def _mounts_under(path: Path) -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == str(path) or point.startswith(f"{path}/"):
                points.append(point)
    return points


def _unmount_all(path: Path) -> None:
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", point], check=False)
    for point in _mounts_under(path):  # anything still busy goes lazily
        subprocess.run(["umount", "-l", point], check=False)


def _blkid(device: str, tag: str) -> str:
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", tag, device], capture_output=True, text=True,
                          check=False).stdout.strip()


@pytest.fixture
def machine(example_config, tmp_path: Path) -> Machine:
    root = tmp_path / "vm"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "fstab").write_text("# the OS disk's own lines\nUUID=abc / ext4 defaults 0 1\n", encoding="utf-8")
    script = tmp_path / "trust-blueprints-data-disk"
    script.write_text(_rendered_step(example_config), encoding="utf-8")
    return Machine(root=root, script=script, link=root / "dev" / "disk" / "azure" / "scsi1" / "lun0")


@pytest.fixture
def loop_disk(machine: Machine, tmp_path: Path) -> Iterator[str]:
    """A blank disk at the LUN's path; detached, with every mount under tmp_path undone, even on failure."""
    backing = tmp_path / "disk.img"
    with open(backing, "wb") as image:
        image.truncate(DISK_MIB * 1024 * 1024)
    device = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        machine.link.parent.mkdir(parents=True)
        machine.link.symlink_to(device)
        yield device
    finally:
        _unmount_all(tmp_path)
        subprocess.run(["losetup", "--detach", device], check=False)


def _os_disk_contents(machine: Machine, service_owner: int, admin_key: str = "ssh-ed25519 AAAA test\n",
                     admins: tuple[str, ...] = ("trustadmin",)) -> None:
    """What packages and cloud-init put on the OS disk before the step runs."""
    for admin in admins:
        (machine.home / admin / ".ssh").mkdir(parents=True)
        (machine.home / admin / ".ssh" / "authorized_keys").write_text(admin_key)
        os.chown(machine.home / admin, 1000, 1000)
    machine.service_dir.mkdir(parents=True, exist_ok=True)
    (machine.service_dir / "state").write_text("from the package\n")
    for path in (machine.service_dir, machine.service_dir / "state"):
        os.chown(path, service_owner, service_owner)
    machine.service_dir.chmod(0o700)


def _simulate_new_vm(machine: Machine, tmp_path: Path, service_owner: int, **contents: Any) -> None:
    """The VM is replaced and the disk kept: mounts gone, a fresh fstab, fresh OS-disk directories."""
    _unmount_all(tmp_path)
    machine.fstab.write_text("UUID=abc / ext4 defaults 0 1\n", encoding="utf-8")
    shutil.rmtree(machine.home)
    shutil.rmtree(machine.service_dir)
    _os_disk_contents(machine, service_owner, **contents)


@needs_root
def test_first_run_formats_the_blank_disk_copies_and_mounts(machine: Machine, loop_disk: str):
    _os_disk_contents(machine, service_owner=4321)
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert f"trust-blueprints: data disk: formatting blank {loop_disk} (LUN 0) as ext4, label tb-data" in result.stdout
    assert _blkid(loop_disk, "TYPE") == "ext4" and _blkid(loop_disk, "LABEL") == FILESYSTEM_LABEL
    uuid = _blkid(loop_disk, "UUID")

    # Every directory is now the disk's, through fstab lines that survive a boot without the disk.
    for directory in (machine.home, machine.service_dir):
        source = subprocess.run(["findmnt", "--noheadings", "--output", "SOURCE", "--mountpoint", str(directory)],
                                capture_output=True, text=True, check=False).stdout.strip()
        # A bind mount shows as the device and the directory's path inside the disk's file system.
        assert source == f"{loop_disk}[{directory}]"
    lines = machine.fstab.read_text(encoding="utf-8").splitlines()
    assert "UUID=abc / ext4 defaults 0 1" in lines  # the OS disk's own lines stay
    assert f"UUID={uuid} {machine.disk_root} ext4 defaults,nofail,x-systemd.device-timeout=60s 0 2" in lines
    assert (f"{machine.disk_root}{machine.home} {machine.home} none "
            f"bind,nofail,x-systemd.requires-mounts-for={machine.disk_root} 0 0") in lines

    # What was there before is there now, with its owners and modes.
    keys = machine.home / "trustadmin" / ".ssh" / "authorized_keys"
    assert keys.read_text() == "ssh-ed25519 AAAA test\n"
    assert (machine.home / "trustadmin").stat().st_uid == 1000
    assert machine.service_dir.stat().st_uid == 4321 and machine.service_dir.stat().st_mode & 0o777 == 0o700
    assert (machine.service_dir / "state").read_text() == "from the package\n"
    assert "lost+found" not in os.listdir(machine.home)


@needs_root
def test_a_kept_disk_is_never_formatted_again(machine: Machine, loop_disk: str, tmp_path: Path):
    _os_disk_contents(machine, service_owner=4321)
    assert machine.run().returncode == 0
    uuid = _blkid(loop_disk, "UUID")
    (machine.home / "alice").mkdir()
    (machine.home / "alice" / "analysis.R").write_text("x <- 42\n")
    (machine.service_dir / "cache-entry").write_text("cached\n")

    # Redeploy: a new VM whose service account got another number, with the stack's new admin
    # key and a second admin account, the same disk.
    _simulate_new_vm(machine, tmp_path, service_owner=5555, admin_key="ssh-ed25519 BBBB rotated\n",
                     admins=("trustadmin", "newadmin"))
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert "formatting" not in result.stdout
    assert f"{loop_disk} (LUN 0) already holds this role's file system; keeping its data" in result.stdout
    assert _blkid(loop_disk, "UUID") == uuid
    assert (machine.home / "alice" / "analysis.R").read_text() == "x <- 42\n"
    assert (machine.service_dir / "cache-entry").read_text() == "cached\n"
    # The kept data now belongs to this machine's account, everywhere below the directory.
    assert machine.service_dir.stat().st_uid == 5555
    assert (machine.service_dir / "cache-entry").stat().st_uid == 5555
    # The admins' keys are this VM's (the stack's), not the kept disk's.
    for admin in ("trustadmin", "newadmin"):
        assert (machine.home / admin / ".ssh" / "authorized_keys").read_text() == "ssh-ed25519 BBBB rotated\n"
        assert (machine.home / admin).stat().st_uid == 1000

    # Run again on the running machine: nothing changes, fstab lines are not repeated.
    before = machine.fstab.read_text(encoding="utf-8")
    again = machine.run()
    assert again.returncode == 0, again.stderr
    assert f"{machine.home} is already mounted" in again.stdout
    assert machine.fstab.read_text(encoding="utf-8") == before
    assert before.count(f" {machine.disk_root} ext4 ") == 1


@needs_root
def test_a_disk_holding_something_else_is_left_alone(machine: Machine, loop_disk: str):
    subprocess.run(["mkfs.ext4", "-q", "-L", "someone-else", loop_disk], check=True)
    uuid = _blkid(loop_disk, "UUID")
    fstab = machine.fstab.read_text(encoding="utf-8")
    result = machine.run()
    assert result.returncode == 1
    assert "trust-blueprints: ERROR: data disk:" in result.stderr
    assert "LABEL=someone-else" in result.stderr and "not touching it" in result.stderr
    assert _blkid(loop_disk, "UUID") == uuid and _blkid(loop_disk, "LABEL") == "someone-else"
    assert machine.fstab.read_text(encoding="utf-8") == fstab
    assert _mounts_under(machine.root) == []


def test_without_a_disk_the_os_disk_is_used_and_the_step_succeeds(machine: Machine):
    machine.home.mkdir(parents=True)
    fstab = machine.fstab.read_text(encoding="utf-8")
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"trust-blueprints: data disk: no data disk at LUN 0 (none of {machine.link} "
        f"{machine.root}/dev/disk/azure/data/by-lun/0); using the OS disk for {machine.home} {machine.service_dir}"]
    assert machine.fstab.read_text(encoding="utf-8") == fstab
    assert not machine.disk_root.exists()


FSTAB_GENERATOR = next((path for path in ("/usr/lib/systemd/system-generators/systemd-fstab-generator",
                                          "/lib/systemd/system-generators/systemd-fstab-generator")
                        if Path(path).exists()), None)


@needs_root
@pytest.mark.skipif(FSTAB_GENERATOR is None, reason="systemd's fstab generator is not installed on this host")
def test_systemd_reads_the_lines_as_mounts_that_never_hold_the_boot(machine: Machine, loop_disk: str,
                                                                     tmp_path: Path):
    # What the next boot does with the step's fstab lines: systemd's own generator turns them into units.
    _os_disk_contents(machine, service_owner=4321)
    assert machine.run().returncode == 0
    uuid = _blkid(loop_disk, "UUID")
    units = tmp_path / "units"
    units.mkdir()
    subprocess.run([FSTAB_GENERATOR, str(units), str(units), str(units)], check=True,
                   env={**os.environ, "SYSTEMD_FSTAB": str(machine.fstab), "SYSTEMD_LOG_LEVEL": "warning"})

    def name(path: str, suffix: str) -> str:
        return subprocess.run(["systemd-escape", "--path", f"--suffix={suffix}", path], capture_output=True,
                              text=True, check=True).stdout.strip()

    def unit(where: Path) -> str:
        return (units / name(str(where), "mount")).read_text(encoding="utf-8")

    root = unit(machine.disk_root)
    assert f"What=/dev/disk/by-uuid/{uuid}" in root and "Before=local-fs.target" not in root
    home = unit(machine.home)
    assert f"RequiresMountsFor={machine.disk_root}" in home and "Before=local-fs.target" not in home
    # nofail: wanted by local-fs.target, never required, so a missing disk cannot stop the boot.
    wanted = {p.name for p in (units / "local-fs.target.wants").iterdir()}
    mounts = {name(str(p), "mount") for p in (machine.disk_root, machine.home, machine.service_dir)}
    assert mounts <= wanted
    required = {p.name for p in (units / "local-fs.target.requires").iterdir()}
    assert required == {"-.mount"}  # only the OS disk's own line
    device = name(f"/dev/disk/by-uuid/{uuid}", "device")
    assert "JobRunningTimeoutSec=60s" in (units / f"{device}.d" / "50-device-timeout.conf").read_text(encoding="utf-8")


def test_on_azure_a_missing_disk_is_an_error_not_a_quiet_fallback(machine: Machine, tmp_path: Path):
    # Azure attaches the disk to every VM that has this step; if it is not found (say, a VM size
    # whose disks no udev rule names), data must not silently land on the OS disk.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "cloud-init").write_text('#!/bin/sh\n[ "$*" = "query platform" ] && echo azure\n')
    (fake_bin / "cloud-init").chmod(0o755)
    result = machine.run(env={"PATH": f"{fake_bin}:{os.environ['PATH']}"})
    assert result.returncode == 1
    assert result.stderr.startswith("trust-blueprints: ERROR: data disk: azure attaches a data disk at LUN 0")
    assert "not putting" in result.stderr and result.stdout == ""
