"""On-machine commands the role READMEs show, run here where they need neither root nor the machine.

The lab's acceptance suites run these programs on the machines; these forms are not among what
they run, so they run here against files in a temporary directory.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from blueprints.git_server import server_commands
from validation.schema import CRAN_NAME_PATTERN, NPM_NAME_PATTERN, PYPI_NAME_PATTERN

MIRROR_TOOL = Path(server_commands.__file__).resolve().parents[1] / "package_mirror" / "files" / "mirror-allowlist.py"


@pytest.fixture
def backups(tmp_path, monkeypatch):
    settings = tmp_path / "git-server-backup.json"
    directory = tmp_path / "backups"
    directory.mkdir()
    settings.write_text(json.dumps({"directory": str(directory), "generations": 14}))
    monkeypatch.setattr(server_commands, "BACKUP_SETTINGS", settings)
    for name in ("20261124T013000Z", "20261123T013000Z", ".partial-20261125T013000Z", "notes"):
        (directory / name).mkdir()
    return directory


def test_git_server_restore_list_shows_generations_newest_last(backups, capsys):
    assert server_commands.restore(["--list"]) == 0
    # Each line: the generation, then where its copies are.
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["20261123T013000Z", "20261124T013000Z"]
    assert all(str(backups) in line for line in lines)


def test_git_server_restore_refuses_a_generation_it_does_not_have_before_changing_anything(backups, monkeypatch):
    monkeypatch.setattr(server_commands, "REPOSITORIES", backups.parent / "repositories")
    with pytest.raises(server_commands.SettingsError, match=r"'20261124T013001Z' is not in .*generations: "
                                                             r"20261123T013000Z, 20261124T013000Z"):
        server_commands.restore(["--generation", "20261124T013001Z", "--replace", "--all"])
    assert not (backups.parent / "repositories").exists()


def test_mirror_allowlist_show_prints_mode_upstreams_and_lists(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("mirror_allowlist_shown", MIRROR_TOOL)
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    patterns = {"pypi": PYPI_NAME_PATTERN, "npm": NPM_NAME_PATTERN, "cran": CRAN_NAME_PATTERN}
    settings = {"mode": "curated", "name_patterns": patterns, "upstreams": {"pypi": "https://pypi.org/simple/"}}
    monkeypatch.setattr(tool, "SETTINGS", tmp_path / "settings.json")
    monkeypatch.setattr(tool, "CURRENT", tmp_path / "allowlist.yaml")
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    (tmp_path / "allowlist.yaml").write_text("pypi: [numpy, 'pandas>=2,<3']\ncran: [dplyr]\n")
    assert tool.main(["show"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "mode: curated",
        "upstream pypi: https://pypi.org/simple/",
        "allowlist repository: (none: no Git server)",
        "pypi (2): numpy, pandas>=2,<3",
        "npm (0): ",
        "cran (1): dplyr",
    ]
