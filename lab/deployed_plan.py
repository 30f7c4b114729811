"""The plan the running lab was built or last changed from: the lab's stand-in for Pulumi's state.

`pulumi up` compares an edit with what its state says is deployed, not with a file on disk: the
stack file may have been edited in place since, and the code that rendered each VM's custom data
may be newer. So `lab up` and each `lab apply` keep `blueprints plan --json` of what they applied
(with the code of that moment), and `lab apply` previews the next edit against it: an edit made
in place to the same stack file, or a newer template that changes custom data, is previewed (and
refused or replaced) as Azure would meet it.

The plan is made by the command line in a process of its own, as a pipeline would make it: the
lab never imports Pulumi.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab.layout import LabLayout

REPOSITORY = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 900


class DeployedPlanError(RuntimeError):
    """The plan of what the lab applied could not be made; the message has the command's own words."""


def path(layout: LabLayout) -> Path:
    return layout.root / "deployed-plan.json"


def _partial(layout: LabLayout) -> Path:
    return path(layout).with_suffix(".partial")


def start_recording(layout: LabLayout, stack_file: str) -> subprocess.Popen[str]:
    """Start planning ``stack_file`` into the lab's deployed plan; `finish` waits for it."""
    layout.root.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "cli", "plan", str(Path(stack_file).resolve()), "--json",
                             "--output", str(_partial(layout))], cwd=REPOSITORY, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def finish(layout: LabLayout, planning: subprocess.Popen[str], stack_file: str) -> Path:
    """Wait for the plan started by `start_recording` and put it in place whole."""
    try:
        _, errors = planning.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        planning.kill()
        planning.communicate()
        raise DeployedPlanError(f"`blueprints plan {stack_file} --json` took over {TIMEOUT_SECONDS} s") from None
    partial = _partial(layout)
    if planning.returncode != 0:
        partial.unlink(missing_ok=True)
        raise DeployedPlanError(f"`blueprints plan {stack_file} --json` exited {planning.returncode}: "
                                f"{(errors or '').strip()[-800:]}")
    return partial.replace(path(layout))


def record(layout: LabLayout, stack_file: str) -> Path:
    """Plan ``stack_file`` as the lab's deployed plan and wait for it."""
    return finish(layout, start_recording(layout, stack_file), stack_file)
