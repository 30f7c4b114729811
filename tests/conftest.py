"""Shared fixtures: the example stack, its recorded plan, and a way to run one component."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modules.naming import Naming
from modules.placement import Placement
from validation.plan_recorder import Plan, PlannedResource, record_plan, record_program
from validation.stack_config import load_stack

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "stacks" / "example.yaml"
STACK_FILES = sorted((REPO / "stacks").glob("*.yaml"))


@pytest.fixture(scope="session")
def example_config() -> dict[str, Any]:
    return load_stack(EXAMPLE)


@pytest.fixture(scope="session")
def example_plan() -> Plan:
    return record_plan(EXAMPLE)


@pytest.fixture
def placement() -> Placement:
    return Placement("rg-test", "uksouth", Naming("tst", "dev", "uksouth", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
                     {"trust": "tst", "environment": "dev", "owner": "a@b.nhs.uk"})


@pytest.fixture
def run_component() -> Callable[[Callable[[], Any]], list[PlannedResource]]:
    """Declare resources under mocks and return every resource they registered."""

    def run(program: Callable[[], Any]) -> list[PlannedResource]:
        resources, _ = record_program(program, "unit")
        return resources

    return run


def only(resources: list[PlannedResource], type_token: str) -> PlannedResource:
    matches = [r for r in resources if r.type == type_token]
    assert len(matches) == 1, f"expected one {type_token}, found {len(matches)}"
    return matches[0]


def all_of(resources: list[PlannedResource], type_token: str) -> list[PlannedResource]:
    return [r for r in resources if r.type == type_token]
