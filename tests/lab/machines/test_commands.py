"""The lab's commands against the running lab: a second `lab up` is refused, the others report it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.machines import leader_pid

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[3]


def _blueprints(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_second_lab_up_is_refused_and_changes_nothing(lab: Any) -> None:
    before = (lab.state_dir / "lab.json").read_text()
    result = _blueprints("lab", "up")
    assert result.returncode == 2
    assert "already running" in result.stderr and "lab down" in result.stderr
    assert (lab.state_dir / "lab.json").read_text() == before
    assert lab.host(lab.machines[0].name).run("true").rc == 0


def test_status_lists_every_machine_running(lab: Any) -> None:
    result = _blueprints("lab", "status")
    assert result.returncode == 0, result.stderr
    for machine in lab.machines:
        line = next(line for line in result.stdout.splitlines() if line.startswith(machine.name + " "))
        assert machine.private_ip in line and "running" in line and " done " in line


def test_ssh_runs_a_command_inside_the_machine(lab: Any) -> None:
    machine = lab.machines[0]
    result = _blueprints("lab", "ssh", machine.name, "hostname")
    assert result.returncode == 0 and result.stdout.strip() == machine.name


def test_logs_show_cloud_init_output(lab: Any) -> None:
    machine = lab.machines[-1]
    result = _blueprints("lab", "logs", machine.name, "--lines", "1000")
    assert result.returncode == 0, result.stderr
    assert "/var/log/cloud-init-output.log" in result.stdout
    # The tail of a long run (an analytics VM writes thousands of lines) still ends with cloud-init's last word.
    assert "Cloud-init v." in result.stdout and " finished at " in result.stdout


def test_reboot_of_an_unknown_machine_is_refused_and_names_the_machines(lab: Any) -> None:
    leaders = {machine.name: leader_pid(machine.name) for machine in lab.machines}
    result = _blueprints("lab", "reboot", "mirror-typo")
    assert result.returncode == 2
    assert "no machine 'mirror-typo' in this lab" in result.stderr
    assert all(machine.name in result.stderr for machine in lab.machines)
    assert {name: leader_pid(name) for name in leaders} == leaders, "a machine was rebooted"
