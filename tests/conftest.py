"""Shared fixtures: the example stack, its recorded plan, and a way to run one component."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from blueprints.roles import role_names
from modules.naming import Naming
from modules.placement import Placement
from validation import plan_cache as plan_cache_module
from validation import plan_recorder
from validation.plan_recorder import Plan, PlannedResource, record_plan, record_program
from validation.stack_config import load_stack

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "stacks" / "example.yaml"
STACK_FILES = sorted((REPO / "stacks").glob("*.yaml"))


# Each guide's commands run as one chain of subprocesses (the adapting guide's, on code it patches, for
# over a minute): started first, under xdist they run beside the rest of the suite instead of after it.
LONGEST_FIRST = "test_every_command_in_the_guide_runs_as_shown"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: getattr(item, "originalname", None) != LONGEST_FIRST)  # stable: else as collected


@pytest.fixture(scope="session")
def example_config() -> dict[str, Any]:
    return load_stack(EXAMPLE)


# The roles the code registers; a test that registers one of its own plans outside the shared cache.
REGISTERED_ROLES = role_names()
# The run's plan cache directory (shared_plan_cache), once the session has set it up.
_SHARED_PLANS: list[Path] = []


@contextlib.contextmanager
def _stack_lock(directory: Path, stack_file: Path) -> Iterator[None]:
    """One process at a time plans a given stack file into the shared cache: the other xdist worker
    waits for that plan and reads it, instead of recording the same plan beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{stack_file.stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _from_shared_cache(path: Path, directory: Path) -> Plan:
    previous = os.environ.get(plan_cache_module.ENV)
    os.environ[plan_cache_module.ENV] = str(directory)
    try:
        with _stack_lock(directory, path):
            return plan_cache_module.recorded_plan(path)
    finally:
        if previous is None:
            del os.environ[plan_cache_module.ENV]
        else:
            os.environ[plan_cache_module.ENV] = previous


@functools.cache
def _plan_of(path: Path, text: str, roles: tuple[str, ...]) -> Plan:
    # Through the run's plan cache only for the code as it is: the cache's key does not see a role a
    # test registered nor a recorder a test replaced.
    if _SHARED_PLANS and roles == REGISTERED_ROLES and plan_recorder.record_plan is record_plan:
        return _from_shared_cache(path, _SHARED_PLANS[0])
    return record_plan(path)


def planned(stack_file: Path) -> Plan:
    """The plan of a stack file as it is on disk, recorded once per run and shared by every test
    that only reads it (as ``example_plan`` always was): planning is most of the suite's time.

    Kept in memory per test process and on disk in the run's plan cache (validation/plan_cache.py,
    keyed by the stack file and the code), so the xdist workers and the commands tests run with the
    ``plan_cache`` fixture share one plan per stack file. Keyed here also by the file's text and the
    registered roles, so an edited copy or a test that registers a role plans afresh. A test that
    edits a plan works on a deep copy; one that patches the code or the recorder calls
    ``record_plan`` itself.
    """
    return _plan_of(stack_file, stack_file.read_text(encoding="utf-8"), role_names())


@pytest.fixture(scope="session")
def example_plan() -> Plan:
    return planned(EXAMPLE)


@pytest.fixture(scope="session")
def shared_plan_cache(tmp_path_factory) -> Path:
    """One on-disk plan cache (validation/plan_cache.py) for the whole run, shared by its xdist workers,
    so each stack is planned once however many commands ask."""
    base = tmp_path_factory.getbasetemp()
    # Each xdist worker's base directory sits inside the run's own; other runs' directories are not shared.
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "plan-cache"


@pytest.fixture(scope="session", autouse=True)
def _plans_shared_by_the_run(shared_plan_cache) -> Iterator[None]:
    """planned() keeps its plans in the run's plan cache (set up before any test asks for a plan)."""
    _SHARED_PLANS.append(shared_plan_cache)
    # The run plans a few dozen edits of the example, each an entry named like it: keep them all,
    # or the example's own entry would be pruned and planned again.
    keep = plan_cache_module.KEEP
    plan_cache_module.KEEP = 1000
    yield
    plan_cache_module.KEEP = keep
    _SHARED_PLANS.clear()


@pytest.fixture
def plan_cache(shared_plan_cache, monkeypatch) -> Path:
    """Turn the plan cache on for one test: for commands run on unedited code and roles (the cache's
    key holds the stack file and the code, not what a test patches in)."""
    monkeypatch.setenv("BLUEPRINTS_PLAN_CACHE", str(shared_plan_cache))
    return shared_plan_cache


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
