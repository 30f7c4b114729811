"""`lab apply` previews an edit against the plan the lab last applied (lab/deployed_plan.py), as
Pulumi previews against its state: not against the stack file, which may have been edited in place,
nor with today's code alone, which may render other custom data than the running VMs were built from."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from lab import apply, deployed_plan
from lab.layout import LabLayout

EXAMPLE = Path(__file__).resolve().parents[3] / "stacks" / "example.yaml"


@pytest.fixture
def running(tmp_path, monkeypatch, plan_cache) -> tuple[LabLayout, Path]:
    """A lab's state folder holding the deployed plan of a copy of the example (the copy is edited later);
    the plans come from the run's plan cache, as the same stack file's plans do in every other test."""
    monkeypatch.setattr("lab.layout.STATE_ROOT", tmp_path / "state")
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    stack_file = stacks / EXAMPLE.name
    shutil.copy(EXAMPLE, stack_file)
    layout = LabLayout(stack_file.stem)
    assert deployed_plan.record(layout, str(stack_file)) == deployed_plan.path(layout)
    assert not deployed_plan.path(layout).with_suffix(".partial").exists()
    return layout, stack_file


def test_an_edit_made_in_place_is_previewed_against_what_was_applied(running):
    layout, stack_file = running
    text = stack_file.read_text(encoding="utf-8")
    assert text.count("git_server:\n    vm_size: Standard_B2s") == 1
    stack_file.write_text(text.replace("git_server:\n    vm_size: Standard_B2s",
                                       "git_server:\n    vm_size: Standard_D2s_v5"), encoding="utf-8")
    # The file against itself sees no change; the applied plan sees Azure's replacement of the VM.
    assert apply.replaced_machines(apply.preview(str(stack_file), str(stack_file))) == {}
    forced = apply.replaced_machines(apply.preview(str(deployed_plan.path(layout)), str(stack_file)))
    assert list(forced) == ["git"] and any("vmSize" in path for path in forced["git"])


def test_custom_data_from_other_code_is_previewed_as_a_replacement(running):
    layout, stack_file = running
    # What an older template rendered for the gateway: its VM was built with other custom data.
    plan = json.loads(deployed_plan.path(layout).read_text(encoding="utf-8"))
    [gateway] = [r for r in plan["resources"]
                 if r["type"] == apply.VM_TYPE and r["inputs"]["osProfile"]["computerName"] == "gateway"]
    older = base64.b64decode(gateway["inputs"]["osProfile"]["customData"]) + b"\n# rendered by older code\n"
    gateway["inputs"]["osProfile"]["customData"] = base64.b64encode(older).decode()
    deployed_plan.path(layout).write_text(json.dumps(plan), encoding="utf-8")
    forced = apply.replaced_machines(apply.preview(str(deployed_plan.path(layout)), str(stack_file)))
    assert forced == {"gateway": ["osProfile.customData"]}


def test_a_plan_that_fails_leaves_no_deployed_plan_and_names_the_command(tmp_path, monkeypatch, plan_cache):
    monkeypatch.setattr("lab.layout.STATE_ROOT", tmp_path / "state")
    broken = tmp_path / "broken.yaml"
    broken.write_text("trust: {}\n", encoding="utf-8")
    layout = LabLayout("broken")
    with pytest.raises(deployed_plan.DeployedPlanError, match=r"blueprints plan .*broken.yaml --json` exited 2"):
        deployed_plan.record(layout, str(broken))
    assert not deployed_plan.path(layout).exists()
    assert not deployed_plan.path(layout).with_suffix(".partial").exists()
