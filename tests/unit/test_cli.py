import argparse
import json
import subprocess
import sys

import pytest

from cli.main import build_parser, main
from tests.conftest import EXAMPLE, REPO

# The commands here plan stack files with the code as it is: one plan per stack for the whole run.
pytestmark = pytest.mark.usefixtures("plan_cache")


def test_validate_reports_a_valid_file(capsys, plan_cache):
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_bad_file_exits_2_with_the_field_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("environment: dev", "environment: staging"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "environment: must be one of dev, test, prod (got 'staging')" in err
    assert "Traceback" not in err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_plan_prints_tree_and_summary(capsys):
    assert main(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "VirtualMachine vm-exnhs-dev-uks-gateway" in out
    summary = out.splitlines()[-2:]
    assert "Azure resources in" in summary[0]
    assert "made by the program, kept only in Pulumi's state" in summary[1]


def test_plan_json_is_complete(tmp_path):
    target = tmp_path / "plan.json"
    assert main(["plan", str(EXAMPLE), "--json", "-o", str(target)]) == 0
    plan = json.loads(target.read_text())
    types = {r["type"] for r in plan["resources"]}
    assert "azure-native:compute:VirtualMachine" in types
    assert all("parent" in r and "dependencies" in r and "inputs" in r for r in plan["resources"])


def test_module_entry_point_and_help():
    result = subprocess.run([sys.executable, "-m", "cli", "plan", "--help"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "under mocks" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "cli", "plan", "--format", "xml"], cwd=REPO,
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "invalid choice: 'xml'" in bad.stderr


def _command_paths(parser, prefix=()):
    """Every subcommand path of the parser, nested groups included (e.g. ("lab", "up"))."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield (*prefix, name)
                yield from _command_paths(subparser, (*prefix, name))


def test_the_walk_finds_the_subcommands(capsys):
    paths = set(_command_paths(build_parser()))
    assert {("validate",), ("plan",)} <= paths
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert all(f"    {name}" in out for name in ("validate", "plan"))


@pytest.mark.parametrize("path", sorted(_command_paths(build_parser())), ids=" ".join)
def test_every_subcommand_has_help(path, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: blueprints {' '.join(path)}")
    assert "-h, --help" in out
    description = out.split("\n\n")[1].strip()
    assert description and not description.startswith(("positional arguments", "options")), \
        f"blueprints {' '.join(path)} --help has no description"
