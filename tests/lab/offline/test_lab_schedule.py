"""The lab suites' schedule (tests/acceptance/lab_schedule.py) names every lab test module once, and the
collection gives each lab test its group or marks it to run alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.acceptance import lab_schedule

REPO = Path(__file__).resolve().parents[3]
FOLDERS = (REPO / "tests" / "acceptance", REPO / "tests" / "lab" / "machines")


def _modules() -> dict[str, Path]:
    return {path.stem: path for folder in FOLDERS for path in folder.glob("test_*.py")}


def _grouped() -> list[str]:
    return [module for modules, _shares in lab_schedule.GROUPS.values() for module in modules]


def test_every_lab_test_module_is_in_a_group_or_runs_alone():
    placed = set(_grouped()) | {name for name in lab_schedule.ALONE if "::" not in name}
    missing = sorted(set(_modules()) - placed)
    assert not missing, f"place these in tests/acceptance/lab_schedule.py: {missing}"
    unknown = sorted(placed - set(_modules()))
    assert not unknown, f"lab_schedule.py names modules that do not exist: {unknown}"


def test_no_module_is_in_two_groups_nor_both_grouped_and_alone():
    grouped = _grouped()
    assert len(grouped) == len(set(grouped))
    assert not set(grouped) & set(lab_schedule.ALONE)


def test_each_test_named_to_run_alone_or_elsewhere_exists_in_a_grouped_module():
    modules = _modules()
    assert {group for group, _why in lab_schedule.ELSEWHERE.values()} <= set(lab_schedule.GROUPS)
    for name in [name for name in lab_schedule.ALONE if "::" in name] + list(lab_schedule.ELSEWHERE):
        module, test = name.split("::")
        assert module in _grouped(), f"{name}: its module runs alone already, or is in no group"
        tree = ast.parse(modules[module].read_text(encoding="utf-8"))
        assert test in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, name


def _collected(marker: str) -> list[str]:
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             "-m", marker, "tests/lab/machines", "tests/acceptance"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_collection_marks_exactly_the_tests_that_run_alone():
    alone = _collected("lab_alone")
    modules = {Path(node.split("::")[0]).stem for node in alone}
    assert modules == {name.split("::")[0] for name in lab_schedule.ALONE}
    for node in alone:
        module, test = Path(node.split("::")[0]).stem, node.split("::")[1].split("[")[0]
        assert lab_schedule.runs_alone(module, test), node
    rest = _collected("not lab_alone")
    assert rest and not set(rest) & set(alone)
    # Ordered as the workers take them: group by group, in the table's order.
    groups = [lab_schedule.scope_of(node) for node in rest]
    taken = [group for index, group in enumerate(groups) if index == 0 or groups[index - 1] != group]
    assert taken == [group for group in lab_schedule.GROUPS if group in taken], taken


def test_a_worker_takes_a_whole_group_and_an_unnamed_module_alone():
    assert lab_schedule.scope_of("tests/acceptance/test_dns.py::test_x[example.com]") == "mirror"
    assert lab_schedule.scope_of("tests/acceptance/test_own_origins.py::test_y") == "hub"
    assert lab_schedule.scope_of("tests/acceptance/test_analytics.py::test_r_version") == "hub"
    assert lab_schedule.scope_of(
        "tests/acceptance/test_analytics.py::test_r_installs_an_allowlisted_package") == "mirror"
    assert lab_schedule.scope_of("tests/acceptance/test_airlock_egress.py::test_z") == "git"
    assert lab_schedule.scope_of("tests/lab/machines/test_hardening.py::test_w") == "hardening"
    assert lab_schedule.scope_of("tests/acceptance/test_new_role.py::test_v") == "test_new_role"
