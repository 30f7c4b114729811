"""Each role's data-disk step in its rendered cloud-init: the disk Pulumi attaches, the paths, the order."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from blueprints.cloud_init import render_user_data, runcmd_steps, written_files
from blueprints.data_disk import (
    DATA_DISK_LUN,
    DATA_DISK_SCRIPT,
    FILESYSTEM_LABEL,
    PATH_PATTERN,
    data_disk_layout,
    device_links,
)
from blueprints.roles import all_roles
from blueprints.topology import plan_machines
from modules.linux_vm import LinuxVm
from tests.unit.test_linux_vm import _args

STEP = "/usr/local/sbin/trust-blueprints-data-disk"
CONF = "/etc/trust-blueprints/data-disk.conf"
ROLES_WITH_DISKS = ["package_mirror", "git_server", "analytics", "gateway"]


def _document(config: dict[str, Any], role: str) -> dict[str, Any]:
    machine = next(m for m in plan_machines(config) if m.role == role)
    return yaml.safe_load(render_user_data(config, machine))


def _files(document: dict[str, Any]) -> dict[str, str]:
    return written_files(document)


def _conf(document: dict[str, Any]) -> dict[str, str]:
    text = _files(document)[CONF]
    values = subprocess.run(["sh", "-c", '. /dev/stdin; printf "%s\\n" "$lun" "$device_links" "$disk_root" '
                             '"$label" "$device_timeout" "$directories" "$stop_services" "$fstab" "$refresh_files" '
                             '"$disk_platform"'],
                            input=text, capture_output=True, text=True, check=True).stdout.split("\n")
    keys = ["lun", "device_links", "disk_root", "label", "device_timeout", "directories", "stop_services", "fstab",
            "refresh_files", "disk_platform"]
    return dict(zip(keys, values, strict=False))


def _runcmd_text(document: dict[str, Any]) -> str:
    return "\n".join(runcmd_steps(document))


def test_the_step_looks_at_the_lun_pulumi_attaches(run_component, placement):
    vm = next(r for r in run_component(lambda: LinuxVm("box", _args(placement, data_disk_gb=64)))
              if r.type == "azure-native:compute:VirtualMachine")
    assert [disk["lun"] for disk in vm.inputs["storageProfile"]["dataDisks"]] == [DATA_DISK_LUN]
    assert device_links(DATA_DISK_LUN) == ("/dev/disk/azure/scsi1/lun0", "/dev/disk/azure/data/by-lun/0")


@pytest.mark.parametrize("role", ROLES_WITH_DISKS)
def test_every_role_with_a_disk_installs_the_step_and_its_settings(example_config, role):
    document = _document(example_config, role)
    files = _files(document)
    assert files[STEP] == DATA_DISK_SCRIPT.read_text(encoding="utf-8")
    conf = _conf(document)
    assert conf["lun"] == str(DATA_DISK_LUN)
    assert conf["device_links"].split() == list(device_links(DATA_DISK_LUN))
    assert conf["directories"].split() == list(data_disk_layout(role).directories)
    assert conf["label"] == FILESYSTEM_LABEL and conf["fstab"] == "/etc/fstab"


def test_each_role_keeps_its_own_data_on_the_disk(example_config):
    # Homes and the hub's state (its database and cookie secret) come back on a rebuilt VM.
    assert _conf(_document(example_config, "analytics"))["directories"] == "/home /var/lib/jupyterhub"
    assert _conf(_document(example_config, "analytics"))["stop_services"] == "jupyterhub"
    assert _conf(_document(example_config, "git_server"))["directories"] == "/srv/git"
    mirror = _conf(_document(example_config, "package_mirror"))["directories"].split()
    assert mirror == ["/var/cache/apt-cacher-ng", "/var/lib/devpi", "/var/lib/verdaccio", "/var/cache/nginx"]


def test_a_missing_disk_is_an_error_on_azure_only(example_config):
    for role in ROLES_WITH_DISKS:
        assert _conf(_document(example_config, role))["disk_platform"] == "azure"


def test_the_stacks_admin_keys_win_over_a_kept_home_disk(example_config):
    admin = example_config["admin"]["username"]
    conf = _conf(_document(example_config, "analytics"))
    assert conf["refresh_files"] == f"/home/{admin}/.ssh/authorized_keys"
    assert _conf(_document(example_config, "git_server"))["refresh_files"] == ""


def test_the_gateway_keeps_its_totp_enrolments_on_its_data_disk(example_config):
    document = _document(example_config, "gateway")
    assert STEP in _files(document)
    assert _conf(document)["directories"] == "/var/lib/trust-blueprints/totp"
    runcmd = runcmd_steps(document)
    made = next(i for i, step in enumerate(runcmd) if "/var/lib/trust-blueprints/totp" in step)
    moved = next(i for i, step in enumerate(runcmd) if "trust-blueprints-data-disk" in step)
    assert made < moved, "the directory must exist (mode 0700) before the step moves it onto the disk"


@pytest.mark.parametrize("role", ROLES_WITH_DISKS)
def test_services_do_not_start_without_their_data(example_config, role):
    files = _files(_document(example_config, role))
    layout = data_disk_layout(role)
    for service in layout.services:
        dropin = files[f"/etc/systemd/system/{service}.service.d/50-trust-blueprints-data-disk.conf"]
        assert dropin == "[Unit]\nRequiresMountsFor=" + " ".join(layout.directories) + "\n"


def test_layout_paths_are_plain_absolute_paths():
    for layout in (r.data_disk for r in all_roles() if r.data_disk):
        for directory in layout.directories:
            assert PATH_PATTERN.match(directory), directory
        assert set(layout.stop_services) <= set(layout.services)


def test_the_step_is_valid_shell():
    assert subprocess.run(["sh", "-n", str(DATA_DISK_SCRIPT)], check=False).returncode == 0


def test_analytics_moves_home_before_jupyterhub_starts(example_config):
    runcmd = _runcmd_text(_document(example_config, "analytics"))
    assert runcmd.index(f"{STEP} || exit 1") < runcmd.index("systemctl restart jupyterhub.service")


def test_git_moves_its_home_before_gitolite_is_set_up(example_config):
    runcmd = _runcmd_text(_document(example_config, "git_server"))
    assert runcmd.index(f"{STEP} || exit 1") < runcmd.index("/usr/local/sbin/git-server-apply")


def test_mirror_moves_caches_after_its_accounts_exist_and_before_services_fill_them(example_config):
    runcmd = _runcmd_text(_document(example_config, "package_mirror"))
    step = runcmd.index(STEP)
    assert runcmd.index("useradd --system --home-dir /var/lib/verdaccio") < step
    assert step < runcmd.index("install -d -m 0700 -o devpi -g devpi /var/lib/devpi")
    assert step < runcmd.index("systemctl restart apt-cacher-ng")
    assert step < runcmd.index("devpi-init")
    # The mirror's role install is one `set -eu` block: a failing step stops it there.
    document = _document(example_config, "package_mirror")
    assert next(c for c in document["runcmd"] if isinstance(c, str) and STEP in c).lstrip().startswith("set -eu")


def test_no_cloud_init_disk_modules(example_config):
    # disk_setup/fs_setup/mounts warn (cloud-init status: degraded) when the device is absent,
    # as in the lab; the step handles the disk instead.
    for role in ROLES_WITH_DISKS:
        document = _document(example_config, role)
        assert not {"disk_setup", "fs_setup", "mounts"} & set(document), role
