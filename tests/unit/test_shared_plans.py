"""The suite's shared plans (tests/conftest.py): a stack file is planned once per test process while
its text and the registered roles stay the same, and again as soon as either changes, so sharing
never hands a test the plan of another file or of another registry."""

from pathlib import Path

import tests.conftest
from blueprints.roles import registered
from tests.conftest import EXAMPLE, planned
from tests.roles.sample_role.role import ROLE as SAMPLE_ROLE


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
