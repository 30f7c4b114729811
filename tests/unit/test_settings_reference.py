"""The generated settings reference and the site navigation that `blueprints docs` writes."""

import copy
import re
import shutil

import pytest
import yaml

from cli.main import main
from reports.settings_reference import render_settings_page, setting_keys
from reports.site_navigation import BEGIN, END
from tests.conftest import EXAMPLE, REPO
from validation.schema import stack_schema

# The commands here plan stack files with the code as it is: one plan per stack for the whole run.
pytestmark = pytest.mark.usefixtures("plan_cache")


def _page_keys(text: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", text, re.M)


def test_every_key_of_the_schema_has_one_row_in_schema_order():
    keys = setting_keys()
    sections = {"roles", *(f"roles.{name}" for name in stack_schema()["roles"]["schema"])}
    assert _page_keys(render_settings_page()) == [key for key in keys if key not in sections]
    for key in ("roles.gateway.bastion_sku", "roles.gateway.kind", "roles.gateway.certificate",
                "roles.gateway.hostname", "roles.gateway.identity.client_id", "roles.gateway.ssh_users[].name"):
        assert key in keys


def test_every_gateway_setting_is_on_the_page_with_its_default_and_allowed_values():
    text = render_settings_page()
    gateway = stack_schema()["roles"]["schema"]["gateway"]["schema"]
    for name in gateway:
        assert f"| `roles.gateway.{name}` |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `roles.gateway.bastion_sku` |"))
    assert "| `Basic` | one of `Basic`, `Standard` | Azure Bastion tier (bastion kind only) |" in row


def test_a_new_setting_appears_with_its_rules():
    schema = copy.deepcopy(stack_schema())  # the roles' schemas are shared objects: never edit them in place
    schema["roles"]["schema"]["analytics"]["schema"]["os_disk_gb"] = {
        "type": "integer", "min": 32, "max": 4095, "default": 32, "meta": {"doc": "System disk <size> in GB"}}
    row = next(line for line in render_settings_page(schema).splitlines() if "os_disk_gb" in line)
    assert row == ("| `roles.analytics.os_disk_gb` | whole number | `32` | from 32 to 4095 | "
                   "System disk &lt;size&gt; in GB |")


@pytest.fixture
def site(tmp_path):
    """A site of its own: the repository's mkdocs.yml and an empty reference directory."""
    (tmp_path / "docs" / "reference").mkdir(parents=True)
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    return tmp_path


def _reference_nav(config_file):
    nav = yaml.safe_load(config_file.read_text(encoding="utf-8"))["nav"]
    return [page for item in nav if "Reference" in item for entry in item["Reference"] for page in entry.items()]


def test_a_new_stack_file_gets_its_pages_and_navigation_in_one_command(site, capsys):
    stack = site / "research.yaml"
    shutil.copy(EXAMPLE, stack)
    reference = site / "docs" / "reference"
    assert main(["docs", str(stack), "-o", str(reference), "--png-dir", ""]) == 0
    assert _reference_nav(site / "mkdocs.yml") == [
        ("Stack research", "reference/research/index.md"),
        ("Stack research, request pack", "reference/research/request-pack.md"),
        ("checkov checks skipped or not run", "reference/checkov-skips.md"),
        ("Settings of a stack file", "reference/settings.md"),
    ]
    # The hand-written part of the navigation is untouched.
    ours = (site / "mkdocs.yml").read_text(encoding="utf-8")
    theirs = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    assert ours.split(BEGIN)[0] == theirs.split(BEGIN)[0]
    assert main(["docs", str(stack), "-o", str(reference), "--check"]) == 0
    capsys.readouterr()

    # A page the navigation does not list is drift, like a stale page.
    (site / "mkdocs.yml").write_text(ours.replace('      - "Settings of a stack file": reference/settings.md\n', ""))
    assert main(["docs", str(stack), "-o", str(reference), "--check"]) == 1
    assert "the Reference navigation does not list the pages under" in capsys.readouterr().err


def test_a_site_config_without_the_markers_is_a_usage_error(site, capsys):
    config = site / "mkdocs.yml"
    config.write_text(config.read_text(encoding="utf-8").replace(BEGIN + "\n", "").replace(END + "\n", ""))
    assert main(["docs", str(EXAMPLE), "-o", str(site / "docs" / "reference"), "--png-dir", ""]) == 2
    err = capsys.readouterr().err
    assert "the navigation has no lines between" in err
    assert "Traceback" not in err


def test_a_scratch_directory_outside_any_site_leaves_the_navigation_alone(tmp_path):
    before = (REPO / "mkdocs.yml").read_bytes()
    assert main(["docs", str(EXAMPLE), "-o", str(tmp_path / "reference"), "--png-dir", ""]) == 0
    assert (tmp_path / "reference" / "settings.md").exists()
    assert (REPO / "mkdocs.yml").read_bytes() == before
