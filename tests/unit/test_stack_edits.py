"""The catalogue of day-two edits: each is a valid stack edit that changes only what it says."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from validation.plan_model import Plan, PlannedResource
from validation.stack_config import validate_document
from validation.stack_edits import DESTRUCTIVE_EDITS, NEXT_IMAGE, ORDINARY_EDITS, VM_TYPE, by_name

EXAMPLE = Path(__file__).resolve().parents[2] / "stacks" / "example.yaml"
ALL_EDITS = ORDINARY_EDITS + DESTRUCTIVE_EDITS


@pytest.fixture(scope="module")
def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_names_are_unique_and_found_by_name() -> None:
    names = [edit.name for edit in ALL_EDITS]
    assert len(names) == len(set(names))
    assert all(by_name(name).name == name for name in names)


def test_ordinary_and_destructive_edits_are_kept_apart() -> None:
    assert not any(edit.destructive for edit in ORDINARY_EDITS)
    assert all(edit.destructive for edit in DESTRUCTIVE_EDITS)
    assert {"size-family-change", "image-change"} == {edit.name for edit in DESTRUCTIVE_EDITS}


@pytest.mark.parametrize("edit", ALL_EDITS, ids=lambda edit: edit.name)
def test_each_edit_leaves_a_valid_stack_and_its_input_untouched(edit, example) -> None:
    before = copy.deepcopy(example)
    edited = edit.apply(example)
    assert example == before
    _, problems = validate_document(edited)
    assert problems == []


@pytest.mark.parametrize("edit", [e for e in ALL_EDITS if e.plan_edit is None], ids=lambda edit: edit.name)
def test_each_stack_edit_changes_the_document(edit, example) -> None:
    assert edit.apply(example) != example


def test_the_image_change_is_made_in_code_and_changes_every_vm_of_a_plan(example) -> None:
    edit = by_name("image-change")
    assert edit.apply(example) == example
    vm = PlannedResource(urn="urn:pulumi:s::p::t::vm", type=VM_TYPE, name="vm", azure_name="vm", custom=True,
                         parent=None, dependencies=[],
                         inputs={"storageProfile": {"imageReference": {"offer": "debian-13"}}})
    plan = Plan(stack="s", source="x", config={}, resources=[vm])
    edit.plan_edit(plan)
    assert vm.inputs["storageProfile"]["imageReference"] == NEXT_IMAGE
