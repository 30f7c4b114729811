"""roles.package_mirror.allowlists_file: allowlist entries from a file beside the stack file."""

from __future__ import annotations

from pathlib import Path

import pytest

from validation.problems import StackFileError
from validation.stack_config import load_stack

EXAMPLE = Path(__file__).resolve().parents[2] / "stacks" / "example.yaml"


def _stack(tmp_path: Path, allowlist_text: str | None, name: str = "mirror-allowlist.yaml") -> Path:
    text = EXAMPLE.read_text().replace("    mode: curated", f"    allowlists_file: {name}\n    mode: curated", 1)
    stack = tmp_path / "trust.yaml"
    stack.write_text(text)
    if allowlist_text is not None:
        (tmp_path / name).write_text(allowlist_text)
    return stack


def test_file_entries_are_added_to_the_inline_ones(tmp_path):
    config = load_stack(_stack(tmp_path, "pypi: [polars, 'pyarrow>=15,<16']\ncran: [glue]\n"))
    allowlists = config["roles"]["package_mirror"]["allowlists"]
    assert allowlists["pypi"][-2:] == ["polars", "pyarrow>=15,<16"]
    assert "numpy" in allowlists["pypi"]
    assert allowlists["cran"][-1] == "glue"


def test_a_project_already_inline_under_another_spelling_is_refused(tmp_path):
    # The mirror's program keys PyPI entries by their PEP 503 name and refuses a repeat.
    with pytest.raises(StackFileError) as error:
        load_stack(_stack(tmp_path, "pypi: ['Pandas>=2,<3']\n"))
    assert "allowlists_file (mirror-allowlist.yaml) pypi: repeats 'pandas'" in str(error.value)


def test_an_entry_already_inline_is_not_repeated(tmp_path):
    config = load_stack(_stack(tmp_path, "npm: [left-pad]\n"))
    assert config["roles"]["package_mirror"]["allowlists"]["npm"].count("left-pad") == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("npm: ['Bad Name']\n", "allowlists_file (mirror-allowlist.yaml) npm[0]: must be an npm package name"),
    ("pypi: ['numpy>=']\n", "allowlists_file (mirror-allowlist.yaml) pypi[0]: must be a PyPI project name"),
    ("gems: [rails]\n", "allowlists_file (mirror-allowlist.yaml) gems: is not a known setting"),
    ("pypi: numpy\n", "allowlists_file (mirror-allowlist.yaml) pypi: must be a list"),
    ("- numpy\n", "must be a YAML mapping"),
    (None, "cannot be read"),
])
def test_a_bad_file_is_reported_against_the_stack_setting(tmp_path, text, expected):
    with pytest.raises(StackFileError) as error:
        load_stack(_stack(tmp_path, text))
    assert expected in error.value.report()


def test_the_file_name_must_be_a_plain_yaml_name_in_the_stack_folder(tmp_path):
    with pytest.raises(StackFileError) as error:
        load_stack(_stack(tmp_path, None, name="../elsewhere.yaml"))
    report = error.value.report()
    assert "roles.package_mirror.allowlists_file: must be a .yaml file name in the stack's folder" in report
