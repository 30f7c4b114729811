"""The import contract in pyproject.toml ([tool.importlinter], run by `make lint`) can fail.

Each case copies the six packages and pyproject.toml into a temporary folder, adds one import
that breaks the layers (or none, for the baseline) and runs `lint-imports` there on the copies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("cli", "reports", "lab", "validation", "blueprints", "modules")
# The venv's own executable, next to its python (not resolved: the venv's python is a symlink).
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _contract_names() -> dict[str, str]:
    """The contracts' names by type ("layers", "forbidden"), as pyproject.toml declares them."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    names = {contract["type"]: contract["name"] for contract in contracts}
    assert len(names) == len(contracts) == 2, contracts
    return names


def _copy_project(destination: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, destination / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", destination / "pyproject.toml")


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extras (pip install -e '.[test]')")
    # The copies must be what is imported, not the editable install. PYTHONPATH alone is not enough:
    # `reports` is a namespace package, and the editable install's finder (set up by a .pth file)
    # adds the checkout's reports/ as a second portion, whose modules the analysis then reads instead
    # of the copies'. So the venv's python runs the script with -S (no site, hence no .pth files),
    # and finds the copies first, then the venv's own packages (import-linter and its dependencies).
    search_path = os.pathsep.join([str(project), sysconfig.get_paths()["purelib"]])
    env = {**os.environ, "PYTHONPATH": search_path, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-S", str(LINT_IMPORTS), "--no-cache", "--no-logo", str(project / "pyproject.toml")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_hold_on_a_copy_of_the_project(tmp_path: Path) -> None:
    _copy_project(tmp_path)
    result = _lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in _contract_names().values():
        assert f"{name} KEPT" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "back_edge", "broken", "shown"),
    [
        # modules imports nothing of the project
        ("modules/naming.py", "import cli.main  # noqa", {"layers"}, "modules.naming -> cli.main"),
        # blueprints sits below reports
        ("blueprints/topology.py", "import reports.costing  # noqa", {"layers"}, "topology -> reports.costing"),
        # reports and lab are independent siblings
        ("reports/costing.py", "import lab.progress  # noqa", {"layers"}, "reports.costing -> lab.progress"),
        # the lab never imports the command line: both contracts say so
        ("lab/progress.py", "import cli.main  # noqa", {"layers", "forbidden"}, "lab.progress -> cli.main"),
        # the lab may import blueprints, but not Pulumi's resources through it
        ("lab/progress.py", "import blueprints.program  # noqa", {"forbidden"}, "lab.progress -> blueprints.program"),
    ],
    ids=["modules-to-cli", "blueprints-to-reports", "reports-to-lab", "lab-to-cli", "lab-to-pulumi-indirectly"],
)
def test_a_back_edge_breaks_the_contract(
    tmp_path: Path, module: str, back_edge: str, broken: set[str], shown: str
) -> None:
    _copy_project(tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{back_edge}\n", encoding="utf-8")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0, result.stdout + result.stderr
    # A back-edge may break the other contract too, through the lab's imports: only these must break.
    names = _contract_names()
    for kind in broken:
        assert f"{names[kind]} BROKEN" in result.stdout, result.stdout
    assert shown in result.stdout, result.stdout
