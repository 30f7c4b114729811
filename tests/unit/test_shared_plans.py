"""The suite's shared plans (tests/conftest.py): a stack file is planned once per test process while
its text and the registered roles stay the same, and again as soon as either changes, so sharing
never hands a test the plan of another file or of another registry."""

import os
from pathlib import Path

import tests.conftest
from blueprints.roles import registered
from tests.conftest import EXAMPLE, planned
from tests.roles.sample_role.role import ROLE as SAMPLE_ROLE
from validation import plan_cache, plan_recorder
from validation.plan_model import Plan


def test_the_example_plan_is_the_shared_one(example_plan):
    assert planned(EXAMPLE) is example_plan


def test_a_stack_file_is_planned_again_only_when_its_text_or_the_roles_change(tmp_path, monkeypatch):
    recorded: list[Path] = []

    def record(path: Path) -> object:
        # Stands in for the recorder: what matters here is when planned() asks for a plan.
        recorded.append(path)
        return object()

    monkeypatch.setattr(tests.conftest, "record_plan", record)
    stack = tmp_path / "example.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "    count: 2\n" in text
    stack.write_text(text, encoding="utf-8")
    first = planned(stack)
    assert planned(stack) is first and recorded == [stack]

    stack.write_text(text.replace("    count: 2\n", "    count: 1\n"), encoding="utf-8")
    edited = planned(stack)
    assert edited is not first and len(recorded) == 2

    with registered(SAMPLE_ROLE):
        assert planned(stack) is not edited and len(recorded) == 3
    assert planned(stack) is edited and len(recorded) == 3


def test_a_plan_is_recorded_once_for_all_the_workers_of_a_run(tmp_path, monkeypatch):
    recorded: list[Path] = []

    def record(path: Path) -> Plan:
        # Stands in for the recorder: a plan that survives the cache's JSON, recorded instantly.
        recorded.append(Path(path))
        return Plan(stack=Path(path).stem, source=str(path), config={"recorded": len(recorded)})

    monkeypatch.setattr(plan_recorder, "record_plan", record)
    monkeypatch.setattr(plan_cache, "_FIRST_SEEN", {})  # the code as it is now, though others edit it
    stack = tmp_path / "example.yaml"
    stack.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    before = os.environ.get(plan_cache.ENV)
    first = tests.conftest._from_shared_cache(stack, tmp_path / "cache")
    # Another worker has nothing in memory: it reads the entry the first one wrote.
    second = tests.conftest._from_shared_cache(stack, tmp_path / "cache")
    assert recorded == [stack] and second == first and second is not first
    assert len(plan_cache.entries(tmp_path / "cache")) == 1
    assert os.environ.get(plan_cache.ENV) == before


def test_planned_goes_through_the_runs_cache_only_for_the_registered_roles_and_recorder(tmp_path, monkeypatch):
    through: list[tuple[Path, Path]] = []
    monkeypatch.setattr(tests.conftest, "_from_shared_cache", lambda path, directory: through.append((path, directory)))
    stack = tmp_path / "example.yaml"
    stack.write_text(EXAMPLE.read_text(encoding="utf-8").replace("    count: 2\n", "    count: 3\n"), encoding="utf-8")
    planned(stack)
    assert through == [(stack, tests.conftest._SHARED_PLANS[0])]

    monkeypatch.setattr(tests.conftest, "record_plan", lambda path: object())
    stack.write_text(stack.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    planned(stack)  # a test's own recorder: never through the cache
    with registered(SAMPLE_ROLE):
        planned(stack)  # a role registered by a test: the cache's key would not see it
    assert len(through) == 1
