"""Faults an IT team will meet, caused on purpose in the lab, and what the environment does about them.

- The package mirror stops: an analyst's installs fail with a message naming the mirror, and work
  again once its services are back, with nothing repaired by hand.
- cloud-init runs again on a machine (`cloud-init clean --logs`, then a reboot): the same end
  state, with no duplicate users, SSH keys, apt sources, units, timers, cron or fstab lines.
- Every machine reboots at once (as `blueprints lab reboot` does it): each comes back with its
  services and without re-running cloud-init. `make lab-test` then runs the acceptance suites again, which is
  the proof that every role works after the reboot.
- Git repository loss is covered by the Git server's suite:
  tests/acceptance/test_git_server.py::test_backup_delete_restore_keeps_every_ref (back up,
  delete the repository, restore it, every ref identical, gitolite's rules still enforced).

These tests disturb the machines, so they run only when asked (BLUEPRINTS_LAB_FAULTS=1), after
the acceptance suites, in the order written here; each leaves every service running and every
machine booted when it ends, whether it passed or not. Recovery times are recorded as test
properties (benchmarks/lab_faults.py prints them); nothing here asserts a time.
"""

from __future__ import annotations

import difflib
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from blueprints.topology import private_dns_zone
from lab.machines import cloud_init_status, reboot, run
from tests.acceptance.conftest import listing_test_packages
from tests.acceptance.machine_commands import NPM_ALLOWED, PYPI_ALLOWED, check

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("BLUEPRINTS_LAB_FAULTS") != "1",
                       reason="stops services, re-runs cloud-init and reboots every machine: set "
                              "BLUEPRINTS_LAB_FAULTS=1 (make lab-test does, after the acceptance suites)"),
]

# Everything the mirror serves clients with: HTTPS (PyPI, npm, CRAN) and the apt proxy.
MIRROR_SERVICES = ["nginx", "apt-cacher-ng", "devpi", "verdaccio"]
# The mirror suites' own test packages (added to the allowlists by the test_allowlists fixture).
PYPI_PROJECT, NPM_PACKAGE, DEBIAN_PACKAGE = PYPI_ALLOWED, NPM_ALLOWED, "hello"
PULL_SERVICE = "mirror-allowlist-pull.service"
RECOVERY_LIMIT = 180
BOOT_LIMIT = 600.0
# Machines whose cloud-init is run again (analytics VMs take minutes; these show the same).
RERUN_ROLES = ["package_mirror", "gateway"]


@pytest.fixture
def test_allowlists(mirror_host: Any) -> Iterator[dict[str, list[str]]]:
    """The test packages listed for one test only: it holds the mirror's allowlist pull, whose timer
    the re-run tests below compare before and after cloud-init runs again."""
    with listing_test_packages(mirror_host) as wanted:
        yield wanted


def _machine(lab: Any, role: str) -> Any:
    for machine in lab.machines:
        if machine.role == role:
            return machine
    pytest.skip(f"this stack has no {role} machine")


# --- The mirror stops ---------------------------------------------------------------------------

def _installs(workdir: str) -> dict[str, str]:
    """What an analyst (and IT, for apt) types, with the machine's own client configuration."""
    return {
        "pip": f"rm -rf {workdir}/venv && python3 -m venv {workdir}/venv && "
               f"{workdir}/venv/bin/pip install --no-cache-dir --disable-pip-version-check {PYPI_PROJECT}",
        "npm": f"rm -rf {workdir}/npm && mkdir -p {workdir}/npm && cd {workdir}/npm && "
               f"npm install --cache {workdir}/npm/.cache --no-audit --no-fund {NPM_PACKAGE}",
        "apt": f"rm -rf {workdir}/apt && mkdir -p {workdir}/apt && cd {workdir}/apt && "
               f"apt-get download {DEBIAN_PACKAGE}",
    }


def _installed(ecosystem: str, result: Any) -> bool:
    output = result.stdout + result.stderr
    if ecosystem == "pip":
        return result.rc == 0 and f"Successfully installed {PYPI_PROJECT}" in output
    if ecosystem == "npm":
        return result.rc == 0 and "added 1 package" in output
    return result.rc == 0


def test_mirror_stopped_installs_fail_naming_it_then_work_again_unaided(lab: Any, mirror_host: Any,
                                                                        analytics_host: Any, test_allowlists: Any,
                                                                        record_property: Any) -> None:
    mirror_name = f"{_machine(lab, 'package_mirror').name}.{private_dns_zone(lab.config)}"
    workdir = check(analytics_host, "mktemp -d /tmp/tb-fault-mirror-XXXXXX").strip()
    installs = _installs(workdir)
    try:
        # Working before the fault, or the fault proves nothing.
        for ecosystem, command in installs.items():
            result = analytics_host.run(command)
            assert _installed(ecosystem, result), f"{ecosystem} fails before the fault:\n{result.stdout}{result.stderr}"

        check(mirror_host, f"systemctl stop {' '.join(MIRROR_SERVICES)}")
        try:
            for service in MIRROR_SERVICES:
                assert not mirror_host.service(service).is_running, f"{service} still running"
            for ecosystem, command in installs.items():
                result = analytics_host.run(command)
                output = result.stdout + result.stderr
                assert result.rc != 0, f"{ecosystem} install succeeded with the mirror stopped:\n{output}"
                # The analyst learns which machine to ask about, not just that something failed.
                assert mirror_name in output, f"{ecosystem}'s failure does not name {mirror_name}:\n{output}"
        finally:
            restarted = time.monotonic()
            mirror_host.run(f"systemctl start {' '.join(MIRROR_SERVICES)}")

        # Nothing repaired by hand: the analyst simply tries again until the mirror answers.
        pending = dict(installs)
        last: dict[str, str] = {}
        while pending and time.monotonic() - restarted < RECOVERY_LIMIT:
            for ecosystem, command in list(pending.items()):
                result = analytics_host.run(command)
                if _installed(ecosystem, result):
                    record_property(f"recovery_seconds_{ecosystem}", round(time.monotonic() - restarted, 1))
                    del pending[ecosystem]
                else:
                    last[ecosystem] = result.stdout + result.stderr
            if pending:
                time.sleep(2)
        assert not pending, "still failing after the mirror came back:\n" + "\n".join(
            f"--- {ecosystem}\n{last[ecosystem][-1500:]}" for ecosystem in pending)
    finally:
        mirror_host.run(f"systemctl start {' '.join(MIRROR_SERVICES)}")
        analytics_host.run(f"rm -rf {workdir}")
    for service in MIRROR_SERVICES:
        assert mirror_host.service(service).is_running, f"{service} not running after the test"


# --- cloud-init runs again ----------------------------------------------------------------------

# What must not change when cloud-init runs a second time, one shell command per section.
# SSH host keys are left out on purpose: cloud-init deletes and regenerates them on what it sees
# as a first boot (ssh_deletekeys), the guard against images that carry keys baked in.
INVENTORY = {
    "users": "getent passwd | sort",
    "groups": "getent group | sort",
    "sudoers": "for f in /etc/sudoers /etc/sudoers.d/*; do echo \"== $f\"; cat \"$f\"; done",
    "authorized keys": "getent passwd | cut -d: -f6 | sort -u | while read -r home; do "
                       "for f in \"$home/.ssh/authorized_keys\" \"$home/.ssh/authorized_keys2\"; do "
                       "[ -f \"$f\" ] && { echo \"== $f\"; cat \"$f\"; }; done; done; true",
    "sshd settings": "sshd -T | sort",
    "apt sources": "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do "
                   "[ -f \"$f\" ] && { echo \"== $f\"; cat \"$f\"; }; done; true",
    "apt settings": "apt-config dump | sort",
    # Transient units (systemd-run) live in /run and end with the boot: not part of the end state.
    "unit files": "systemctl list-unit-files --no-legend --plain | awk '$2 != \"transient\" {print $1, $2}' | sort",
    "enabled services running": "for u in $(systemctl list-unit-files --type=service --state=enabled "
                                "--no-legend --plain | awk '{print $1}'); do "
                                "systemctl is-active --quiet \"$u\" && echo \"$u\"; done | sort",
    "timers": "systemctl list-units --type=timer --all --no-legend --plain | awk '{print $1, $3}' | sort",
    "cron": "for f in /etc/crontab /etc/cron.d/* /var/spool/cron/crontabs/*; do "
            "[ -f \"$f\" ] && { echo \"== $f\"; cat \"$f\"; }; done; true",
    "fstab": "cat /etc/fstab",
    "packages": "dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' | sort",
    "trust-blueprints files": "find /etc/trust-blueprints -type f ! -name allowlist.yaml -print0 | sort -z | "
                              "xargs -0 sha256sum; stat -c '%n %a %U' $(find /etc/trust-blueprints | sort)",
    "package allowlist": "cat /etc/trust-blueprints/mirror/allowlist.yaml 2>/dev/null; true",
}
# Sections whose lines must each appear once.
NO_DUPLICATES = ["users", "groups", "authorized keys", "apt sources", "cron", "fstab", "unit files", "timers"]


def _inventory(machine: str) -> dict[str, str]:
    inventory = {}
    for section, command in INVENTORY.items():
        result = run(None, machine, ["sh", "-c", command], timeout=120)
        assert result.returncode == 0, f"{machine}: inventory of {section} failed: {result.stderr}"
        inventory[section] = result.stdout
    # The allowlist is compared by what it lists: a re-run may write the same lists in another layout.
    inventory["package allowlist"] = repr(yaml.safe_load(inventory["package allowlist"] or "null"))
    return inventory


def _settle(machine: str) -> None:
    """Put the mirror's allowlist where provisioning leaves it: main's list in package-requests.

    A (re)provisioned mirror writes the stack's lists and then its pull applies main's list again,
    so lists applied by hand (the test packages) do not survive a re-run, by design. Pulling main
    now, before each inventory, compares like with like.
    """
    result = run(None, machine, ["sh", "-c", f"! systemctl cat {PULL_SERVICE} >/dev/null 2>&1 || "
                                             "/usr/local/sbin/mirror-allowlist pull --again"], timeout=300)
    assert result.returncode == 0, f"{machine}: mirror-allowlist pull failed: {result.stderr}"


def _duplicates(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("#", "== "))]
    return [line for line, count in Counter(lines).items() if count > 1]


def _runcmd_semaphore_time(machine: str) -> float:
    result = run(None, machine, ["stat", "-c", "%Y", "/var/lib/cloud/instance/sem/config_runcmd"])
    return float(result.stdout) if result.returncode == 0 else 0.0


@pytest.mark.parametrize("role", RERUN_ROLES)
def test_cloud_init_run_again_reaches_the_same_end_state(lab: Any, role: str, record_property: Any) -> None:
    machine = _machine(lab, role).name
    status = cloud_init_status(machine)
    assert status.status == "done", f"{machine}: cloud-init is {status.detail} before the test"
    _settle(machine)
    before = _inventory(machine)
    first_run = _runcmd_semaphore_time(machine)

    cleaned = run(None, machine, ["cloud-init", "clean", "--logs"], timeout=120)
    assert cleaned.returncode == 0, cleaned.stderr
    [outcome] = reboot([machine], timeout=BOOT_LIMIT)
    record_property("rerun_seconds", outcome.seconds)

    assert outcome.cloud_init.status == "done", f"{machine}: cloud-init re-run ended {outcome.cloud_init.detail}"
    assert "degraded" not in outcome.cloud_init.detail, outcome.cloud_init.detail
    assert outcome.healthy, f"{machine}: system {outcome.system_state}, failed units: {outcome.failed_units}"
    # It really ran again: every per-instance module, runcmd included, has a fresh semaphore.
    assert _runcmd_semaphore_time(machine) > first_run, f"{machine}: runcmd did not run again"

    _settle(machine)
    after = _inventory(machine)
    duplicated = {section: _duplicates(after[section]) for section in NO_DUPLICATES}
    assert not any(duplicated.values()), f"{machine}: duplicated after the re-run: " + "; ".join(
        f"{section}: {lines}" for section, lines in duplicated.items() if lines)
    changed = {section for section in INVENTORY if before[section] != after[section]}
    assert not changed, f"{machine}: not the same after cloud-init ran again:\n" + "\n".join(
        "".join(difflib.unified_diff(before[s].splitlines(True), after[s].splitlines(True), f"{s} (before)",
                                     f"{s} (after)")) for s in sorted(changed))


# --- Every machine reboots ----------------------------------------------------------------------

def _instance_semaphores(machine: str) -> str:
    return run(None, machine, ["sh", "-c", "cd /var/lib/cloud/instance/sem && stat -c '%n %Y' *"],
               check=True).stdout


def test_every_machine_reboots_and_comes_back_with_its_services(lab: Any, record_property: Any) -> None:
    names = [machine.name for machine in lab.machines]
    enabled_running = INVENTORY["enabled services running"]
    services = {name: run(None, name, ["sh", "-c", enabled_running], check=True).stdout.split() for name in names}
    semaphores = {name: _instance_semaphores(name) for name in names}

    # What `blueprints lab reboot` does (its refusals are tested in test_commands.py).
    outcomes = reboot(names, timeout=BOOT_LIMIT)
    for outcome in outcomes:
        record_property(f"reboot_seconds_{outcome.machine}", outcome.seconds)

    for outcome in outcomes:
        name = outcome.machine
        assert outcome.cloud_init.status == "done", f"{name}: cloud-init {outcome.cloud_init.detail}"
        assert outcome.system_state == "running", f"{name}: {outcome.system_state}, failed: {outcome.failed_units}"
        after = set(run(None, name, ["sh", "-c", enabled_running], check=True).stdout.split())
        missing = set(services[name]) - after
        assert not missing, f"{name}: not running after the reboot: {', '.join(sorted(missing))}"
        assert _instance_semaphores(name) == semaphores[name], f"{name}: cloud-init's per-instance modules ran again"
