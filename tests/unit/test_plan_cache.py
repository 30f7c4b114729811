"""The plan cache (validation/plan_cache.py): one plan per stack, recorded again only when what it is
computed from changes, and the same output whether it came from the cache or not.

Each test has its own cache directory (BLUEPRINTS_PLAN_CACHE in tmp_path) and, where a hit is
expected, its own code tree (CODE_ROOTS in tmp_path), so edits others make to blueprints/ meanwhile
cannot turn an expected hit into a miss.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cli.main import main
from tests.conftest import EXAMPLE, REPO, STACK_FILES
from validation import plan_cache, plan_recorder
from validation.plan_model import Plan, PlannedResource
from validation.problems import StackFileError
from validation.stack_config import load_stack


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "plans"
    monkeypatch.setenv(plan_cache.ENV, str(directory))
    return directory


@pytest.fixture
def code(tmp_path, monkeypatch) -> Path:
    """A small code tree of our own, standing in for blueprints/, modules/ and validation/."""
    root = tmp_path / "code"
    files = {
        "blueprints/reference_environment.py": "VMS = 5\n",
        "blueprints/templates/base.yaml.j2": "#cloud-config\n",
        "blueprints/package_mirror/files/devpi-requirements.txt": "devpi-server==6\n",
        "modules/linux_vm.py": "SIZE = 'Standard_B2s'\n",
        "validation/plan_recorder.py": "PROJECT = 'trust-blueprints'\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.setattr(plan_cache, "CODE_ROOTS", tuple(root / top for top in ("blueprints", "modules", "validation")))
    return root


class Recorder:
    """Stands in for the Pulumi program: a small plan of the stack's real config; counts its runs."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, stack_file: str | Path) -> Plan:
        self.runs += 1
        path = Path(stack_file)
        config = load_stack(path)  # refuses a bad stack file as the real recorder does
        resource = PlannedResource(
            urn=f"urn:pulumi:{path.stem}::trust-blueprints::azure-native:resources:ResourceGroup::env-rg",
            type="azure-native:resources:ResourceGroup", name="env-rg", azure_name="rg-x", custom=True,
            parent=None, dependencies=[], inputs={"location": config["location"]}, id="/subscriptions/x")
        return Plan(stack=path.stem, source=str(path), config=config, resources=[resource], outputs={"n": 1})


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    fake = Recorder()
    monkeypatch.setattr(plan_recorder, "record_plan", fake)
    return fake


def _stack(tmp_path: Path, allowlists_file: str | None = None) -> Path:
    text = EXAMPLE.read_text()
    if allowlists_file:
        text = text.replace("    mode: curated", f"    allowlists_file: {allowlists_file}\n    mode: curated", 1)
    path = tmp_path / "trust.yaml"
    path.write_text(text)
    return path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _must_not_plan(stack_file):
    raise AssertionError(f"the Pulumi program ran for {stack_file}: the cache should have answered")


# What makes a hit, and what makes a miss


def test_a_hit_does_not_run_the_program(tmp_path, cache, code, recorder, monkeypatch):
    stack = _stack(tmp_path)
    first = plan_cache.recorded_plan(stack)
    assert recorder.runs == 1
    monkeypatch.setattr(plan_recorder, "record_plan", _must_not_plan)
    again = plan_cache.recorded_plan(stack)
    assert again == first and again is not first
    assert len(plan_cache.entries(cache)) == 1


def test_a_stack_edit_plans_again(tmp_path, cache, code, recorder):
    stack = _stack(tmp_path)
    plan_cache.recorded_plan(stack)
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 1
    _edit(stack, "location: uksouth ", "location: ukwest ")
    assert plan_cache.recorded_plan(stack).config["location"] == "ukwest"
    assert recorder.runs == 2
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 2
    assert len(plan_cache.entries(cache)) == 2  # the old one is kept until pruned


@pytest.mark.parametrize("changed", [
    "blueprints/reference_environment.py",  # the program
    "blueprints/templates/base.yaml.j2",  # a template
    "blueprints/package_mirror/files/devpi-requirements.txt",  # a file a template includes
    "modules/linux_vm.py",
    "validation/plan_recorder.py",
])
def test_a_code_edit_plans_again(tmp_path, cache, code, recorder, changed, monkeypatch):
    stack = _stack(tmp_path)
    plan_cache.recorded_plan(stack)
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 1
    (code / changed).write_text((code / changed).read_text() + "# edited\n")
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 2
    # This process loaded the code before the edit: what it plans now is not kept under the new key.
    assert len(plan_cache.entries(cache)) == 1
    monkeypatch.setattr(plan_cache, "_FIRST_SEEN", {})  # the next process loads the edited code
    plan_cache.recorded_plan(stack)
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 3
    assert len(plan_cache.entries(cache)) == 2


def test_a_new_or_removed_code_file_plans_again(tmp_path, cache, code, recorder):
    stack = _stack(tmp_path)
    plan_cache.recorded_plan(stack)
    (code / "blueprints" / "code_server").mkdir()
    (code / "blueprints" / "code_server" / "role.py").write_text("ROLE = None\n")
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 2
    (code / "modules" / "linux_vm.py").unlink()
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 3


def test_bytecode_and_readmes_do_not_count_as_code(tmp_path, cache, code, recorder):
    stack = _stack(tmp_path)
    plan_cache.recorded_plan(stack)
    (code / "blueprints" / "__pycache__").mkdir()
    (code / "blueprints" / "__pycache__" / "reference_environment.cpython-311.pyc").write_bytes(b"\x00")
    (code / "blueprints" / "README.md").write_text("# what each role gives analysts\n")
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 1


def test_an_allowlists_file_edit_plans_again(tmp_path, cache, code, recorder):
    stack = _stack(tmp_path, allowlists_file="extra.yaml")
    extra = tmp_path / "extra.yaml"
    extra.write_text("pypi: [polars]\n")
    plan_cache.recorded_plan(stack)
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 1
    extra.write_text("pypi: [polars, duckdb]\n")
    plan = plan_cache.recorded_plan(stack)
    assert recorder.runs == 2
    assert plan.config["roles"]["package_mirror"]["allowlists"]["pypi"][-2:] == ["polars", "duckdb"]
    extra.unlink()  # a missing file is a bad stack: refused each time, never served from the cache
    for _ in range(2):
        with pytest.raises(StackFileError):
            plan_cache.recorded_plan(stack)
    assert recorder.runs == 4


def test_a_bad_stack_file_is_refused_every_time_and_nothing_is_kept(tmp_path, cache, code, recorder):
    stack = _stack(tmp_path)
    _edit(stack, "environment: dev ", "environment: staging ")
    for _ in range(2):
        with pytest.raises(StackFileError):
            plan_cache.recorded_plan(stack)
    assert recorder.runs == 2
    assert plan_cache.entries(cache) == []


def test_the_same_stack_named_differently_is_planned_for_that_name(tmp_path, cache, code, recorder):
    stack = _stack(tmp_path)
    other = tmp_path / "other.yaml"  # the name is the Pulumi stack's, in every URN
    other.write_bytes(stack.read_bytes())
    assert plan_cache.recorded_plan(stack).stack == "trust"
    assert plan_cache.recorded_plan(other).stack == "other"
    assert recorder.runs == 2


def test_a_hit_names_the_source_as_given(tmp_path, cache, code, recorder, monkeypatch):
    stack = _stack(tmp_path)
    plan_cache.recorded_plan(stack)
    monkeypatch.chdir(tmp_path)
    assert plan_cache.recorded_plan("./trust.yaml").source == "trust.yaml"  # as record_plan names it
    assert recorder.runs == 1


def test_a_change_while_planning_keeps_nothing(tmp_path, cache, code, monkeypatch):
    stack = _stack(tmp_path)
    real = Recorder()

    def edits_the_code_meanwhile(stack_file):
        (code / "modules" / "linux_vm.py").write_text(f"SIZE = 'Standard_B{real.runs}s'\n")
        return real(stack_file)

    monkeypatch.setattr(plan_recorder, "record_plan", edits_the_code_meanwhile)
    plan_cache.recorded_plan(stack)
    assert plan_cache.entries(cache) == []


# Where the cache lives, and when it is off


def test_off_turns_the_cache_off(tmp_path, monkeypatch, code, recorder):
    monkeypatch.setenv(plan_cache.ENV, "off")
    monkeypatch.chdir(tmp_path)
    stack = _stack(tmp_path)
    plan_cache.recorded_plan(stack)
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 2
    assert plan_cache.cache_dir() is None


def test_the_default_is_the_repository_cache_and_off_under_the_test_suite(monkeypatch):
    monkeypatch.delenv(plan_cache.ENV, raising=False)
    assert plan_cache.cache_dir() is None  # tests replace the recorder: they must not fill the real cache
    assert plan_cache.DEFAULT_DIR == REPO / ".cache" / "plans"
    assert ".cache/" in (REPO / ".gitignore").read_text().splitlines()


def test_the_code_version_covers_the_program_templates_and_their_files():
    names = {name for name, _ in plan_cache.code_files()}
    assert {"blueprints/templates/base.yaml.j2", "blueprints/package_mirror/files/devpi-requirements.txt",
            "blueprints/reference_environment.py", "validation/plan_recorder.py",
            "validation/plan_cache.py"} <= names
    assert all(name.split("/")[0] in {"blueprints", "modules", "validation"} for name in names)
    assert not any("__pycache__" in name or name.endswith((".pyc", ".md")) for name in names)


# Damaged entries, races and pruning


@pytest.mark.parametrize("damage", [
    b"",
    b"{not json",
    b'{"format": 1}',
    b"\x00" * 64,
    b'{"format": 1, "key": "0000", "plan": {}}',
    b"[1, 2]",
], ids=["empty", "not-json", "no-key", "zeros", "another-key", "not-a-mapping"])
def test_a_corrupt_entry_is_ignored_and_rewritten(tmp_path, cache, code, recorder, damage):
    stack = _stack(tmp_path)
    expected = plan_cache.recorded_plan(stack)
    [entry] = plan_cache.entries(cache)
    entry.write_bytes(damage)
    assert plan_cache.recorded_plan(stack) == expected
    assert recorder.runs == 2
    assert plan_cache.entries(cache) == [entry]
    assert json.loads(entry.read_bytes())["key"] == plan_cache.plan_key(stack)
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 2


def test_an_unreadable_cache_directory_only_makes_it_slower(tmp_path, monkeypatch, code, recorder):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory\n")
    monkeypatch.setenv(plan_cache.ENV, str(blocked / "plans"))
    stack = _stack(tmp_path)
    assert plan_cache.recorded_plan(stack).stack == "trust"
    assert plan_cache.recorded_plan(stack).stack == "trust"
    assert recorder.runs == 2


def test_old_entries_of_a_stack_are_pruned(tmp_path, cache, code, recorder, monkeypatch):
    monkeypatch.setattr(plan_cache, "KEEP", 2)
    stack = _stack(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_bytes(stack.read_bytes())
    plan_cache.recorded_plan(other)
    for size in (128, 256, 512, 1024):
        _edit(stack, "cache_disk_gb: ", f"cache_disk_gb: {size} #")
        plan_cache.recorded_plan(stack)
    names = [entry.name for entry in plan_cache.entries(cache)]
    assert sum(name.startswith("trust.") for name in names) == 2
    assert sum(name.startswith("other.") for name in names) == 1
    assert plan_cache._entry_path(cache, stack, plan_cache.plan_key(stack)).name in names
    recorder.runs = 0
    plan_cache.recorded_plan(stack)
    assert recorder.runs == 0


def test_threads_writing_and_reading_one_entry_see_a_whole_entry_or_none(tmp_path, cache, code):
    stack = _stack(tmp_path)
    plan = Recorder()(stack)
    key = plan_cache.plan_key(stack)
    entry = plan_cache._entry_path(cache, stack, key)
    seen: list[Plan | None] = []
    failures: list[BaseException] = []

    def write_and_read() -> None:
        try:
            for _ in range(25):
                plan_cache._store(entry, key, plan)
                seen.append(plan_cache._load(entry, key))
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=write_and_read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert seen and all(found == plan for found in seen)
    assert [path.name for path in cache.iterdir()] == [entry.name]  # no temporary file left


_CONCURRENT_RUN = """
import sys
from pathlib import Path
from validation import plan_cache
plan_cache.CODE_ROOTS = tuple(Path(root) for root in sys.argv[3:])
from cli.main import main
sys.exit(main(["plan", sys.argv[1], "--json", "-o", sys.argv[2]]))
"""


def test_two_runs_on_an_empty_cache_both_succeed_and_leave_one_valid_entry(tmp_path, cache, code):
    stack = REPO / "stacks" / "bastion-single-analyst.yaml"
    env = {**os.environ, plan_cache.ENV: str(cache), "PYTHONPATH": str(REPO)}
    roots = [str(root) for root in plan_cache.CODE_ROOTS]
    runs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT_RUN, str(stack), str(tmp_path / f"{n}.json"), *roots],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in (1, 2)]
    results = [(run.wait(timeout=600), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert [code for code, _ in results] == [0, 0], results
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()
    [entry] = plan_cache.entries(cache)
    assert sorted(path.name for path in cache.iterdir()) == [entry.name]
    key = plan_cache.plan_key(stack)
    assert plan_cache._load(entry, key) is not None


# Same output, cached or not


def test_the_plan_reads_back_from_json_exactly(example_plan):
    stored = json.loads(json.dumps({**example_plan.to_json(), "config": example_plan.config}))
    assert Plan.from_json(stored) == example_plan
    assert Plan.from_json(json.loads(json.dumps(example_plan.to_json()))).resources == example_plan.resources


def test_the_canonical_order_does_not_depend_on_the_registration_order(example_plan):
    canonical = plan_cache.in_canonical_order(example_plan.resources)
    assert sorted(r.urn for r in canonical) == sorted(r.urn for r in example_plan.resources)
    for seed in range(5):
        shuffled = list(example_plan.resources)
        random.Random(seed).shuffle(shuffled)  # noqa: S311 (an order, not a secret)
        assert plan_cache.in_canonical_order(shuffled) == canonical
    position = {resource.urn: index for index, resource in enumerate(canonical)}
    for resource in canonical:  # as registration has them: parent and dependencies first
        for need in (resource.parent, *resource.dependencies):
            if need in position:
                assert position[need] < position[resource.urn], (need, resource.urn)


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=[path.stem for path in STACK_FILES])
def test_plan_json_is_byte_identical_with_the_cache_off_cold_and_warm(stack_file, tmp_path, cache, code,
                                                                      monkeypatch, capsys):
    def plan_json(name: str) -> tuple[int, bytes]:
        target = tmp_path / f"{name}.json"
        status = main(["plan", str(stack_file), "--json", "-o", str(target)])
        return status, target.read_bytes()

    monkeypatch.setenv(plan_cache.ENV, "off")
    off = plan_json("off")
    monkeypatch.setenv(plan_cache.ENV, str(cache))
    cold = plan_json("cold")
    assert len(plan_cache.entries(cache)) == 1
    monkeypatch.setattr(plan_recorder, "record_plan", _must_not_plan)
    warm = plan_json("warm")
    assert off == cold == warm
