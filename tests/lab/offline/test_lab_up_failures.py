"""A machine whose cloud-init fails makes `lab up` say why in its own message, with the end of the
machine's cloud-init output: make lab-test takes the lab down right after, and the logs with it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from blueprints.topology import Machine
from lab import layout as lab_layout
from lab import lifecycle, machines
from lab.progress import Progress


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[lab_layout.LabLayout, Machine]:
    monkeypatch.setattr(lab_layout, "STATE_ROOT", tmp_path)
    monkeypatch.setattr(lifecycle, "write_record", lambda *_: None)
    monkeypatch.setattr(machines, "start", lambda *_: os.getpid())  # a process that exists
    monkeypatch.setattr(machines, "leader_pid", lambda _name: os.getpid())
    monkeypatch.setattr(machines, "cloud_init_status", lambda _name: machines.CloudInitStatus(
        "error", "error - done: ('scripts-user', RuntimeError('Runparts: 1 failures (runcmd)'))"))
    return lab_layout.LabLayout("example"), Machine("mirror", "package_mirror", "services", "10.40.2.4",
                                                    "Standard_B2s", 64, True, False)


def _boot(layout: lab_layout.LabLayout, machine: Machine) -> list[str]:
    record = {"machines": {machine.name: {}}}
    return lifecycle.boot_and_wait(layout, record, [machine], Progress(io.StringIO()), deadline=float("inf"))


def test_a_failed_cloud_init_is_named_with_the_end_of_its_output(mirror) -> None:
    layout, machine = mirror
    output = layout.machine_root(machine.name) / "var/log/cloud-init-output.log"
    output.parent.mkdir(parents=True)
    output.write_text("".join(f"step {n}\n" for n in range(100))
                      + "ERROR: Could not find a version that satisfies the requirement devpi-server\n")
    [failure] = _boot(layout, machine)
    assert failure.startswith("mirror: cloud-init finished with error - done: ('scripts-user'")
    assert str(output) in failure
    lines = failure.splitlines()
    assert lines[-1] == "  | ERROR: Could not find a version that satisfies the requirement devpi-server"
    # The last lines only: the reason is at the end, and a page of output would hide it.
    assert "  | step 71" in lines and "  | step 70" not in lines
    assert f"Its last {lifecycle.OUTPUT_TAIL_LINES} lines of output:" in failure


def test_without_its_output_the_message_still_names_the_machine_and_the_log(mirror) -> None:
    layout, machine = mirror
    [failure] = _boot(layout, machine)
    assert failure == (f"mirror: cloud-init finished with error - done: ('scripts-user', RuntimeError('Runparts: 1 "
                       f"failures (runcmd)')); read `sudo blueprints lab logs mirror` "
                       f"({layout.machine_root('mirror')}/var/log/cloud-init-output.log)")
