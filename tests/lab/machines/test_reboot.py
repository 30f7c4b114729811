"""A machine that reboots comes back like a VM: same services, same rules, cloud-init not re-run."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lab.machines import cloud_init_status, leader_pid, run
from tests.lab.machines.probes import connect_all

pytestmark = pytest.mark.lab

BOOT_LIMIT = 180


def _per_instance_record(machine: str) -> dict[str, str]:
    """Per-instance semaphores with their contents: rewritten only if a module ran again."""
    listing = run(None, machine, ["sh", "-c", "cd /var/lib/cloud/instance/sem && for f in *; do "
                                  "printf '%s %s\\n' \"$f\" \"$(stat -c %Y \"$f\")\"; done"], check=True)
    return dict(line.split(" ", 1) for line in listing.stdout.splitlines())


def _running_services(machine: str) -> set[str]:
    run(None, machine, ["systemctl", "is-system-running", "--wait"], timeout=BOOT_LIMIT)
    listing = run(None, machine, ["systemctl", "list-units", "--type=service", "--state=running", "--plain",
                                  "--no-legend"], check=True)
    return {line.split()[0] for line in listing.stdout.splitlines() if line.strip()}


def test_reboot_brings_the_machine_back_without_rerunning_cloud_init(lab: Any) -> None:
    # The last workload: nothing else depends on it while it reboots.
    machine = next(m for m in reversed(lab.machines) if not m.internet_egress and not m.public_entry)
    host = lab.host(machine.name)
    before_leader = leader_pid(machine.name)
    before = _per_instance_record(machine.name)
    assert "config_package_update_upgrade_install" in before
    services = _running_services(machine.name)
    assert "ssh.service" in services

    run(None, machine.name, ["systemctl", "reboot"])
    deadline = time.monotonic() + BOOT_LIMIT
    while leader_pid(machine.name) in (None, before_leader):
        assert time.monotonic() < deadline, f"{machine.name} did not come back within {BOOT_LIMIT}s"
        time.sleep(1)
    while not cloud_init_status(machine.name).finished:
        assert time.monotonic() < deadline, f"{machine.name}: cloud-init did not finish after the reboot"
        time.sleep(2)

    assert cloud_init_status(machine.name).status == "done"
    assert _per_instance_record(machine.name) == before, "per-instance cloud-init modules ran again"
    missing = services - _running_services(machine.name)
    assert not missing, f"services not running after the reboot: {', '.join(sorted(missing))}"
    assert host.file("/etc/trust-blueprints/role").content_string.strip() == machine.role
    assert host.file("/etc/trust-blueprints/secrets/tls.key").mode == 0o600
    # The host's rules still hold for the rebooted machine.
    mirror = next(m for m in lab.machines if m.role == "package_mirror")
    verdicts = connect_all(machine.name, [(mirror.private_ip, 3142), ("deb.debian.org", 80)])
    assert verdicts[(mirror.private_ip, 3142)] == "reached"
    assert verdicts[("deb.debian.org", 80)] == "dropped"
