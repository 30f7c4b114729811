"""Each message on the troubleshooting page is produced here from a real bad input, and every
trigger's message is on the page: the page and the tools cannot drift apart."""

import re
import shutil

import pytest

from cli.main import main
from tests.conftest import EXAMPLE, REPO

# The commands here plan stack files with the code as it is: one plan per stack for the whole run.
pytestmark = pytest.mark.usefixtures("plan_cache")

PAGE = REPO / "docs" / "troubleshooting.md"


def _stack(tmp_path, old="", new="", name="s.yaml"):
    text = EXAMPLE.read_text()
    if old:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def _validate(path):
    return ["validate", str(path)]


TRIGGERS = {
    "(file): cannot be read: No such file or directory": lambda t: _validate(t / "missing.yaml"),
    "(file): is empty; a stack file is a YAML mapping": lambda t: _validate(_empty(t)),
    "(file): is not valid YAML": lambda t: _validate(_stack(t, "trust:", "trust: [")),
    "location: appears twice (first on line 9)":
        lambda t: _validate(_stack(t, "location: uksouth ", "location: uksouth\nlocation: ukwest ")),
    "roles.analytics.vmsize: is not a known setting":
        lambda t: _validate(_stack(t, "    vm_size: Standard_D4s_v5", "    vmsize: Standard_D4s_v5")),
    "environment: must be one of dev, test, prod (got 'staging')":
        lambda t: _validate(_stack(t, "environment: dev ", "environment: staging ")),
    "trust.short_name: must be 2-8 lowercase letters or digits, starting with a letter (got 'Example')":
        lambda t: _validate(_stack(t, "short_name: exnhs ", "short_name: Example ")),
    "network.subnets.workloads: overlaps subnet services (10.40.2.0/24) (got '10.40.2.128/25')":
        lambda t: _validate(_stack(t, "workloads: 10.40.3.0/24", "workloads: 10.40.2.128/25")),
    "network.allowed_client_ranges[0]: is wider than /8, close to the whole Internet (got '0.0.0.0/0')":
        lambda t: _validate(_stack(t, "- 203.0.113.0/24", "- 0.0.0.0/0")),
    "admin.ssh_public_keys[0]: has a truncated key body":
        lambda t: _validate(_stack(t, "AAAAIPaQRANNGS3AJl+hVDSGny6TDyecqFzA6RndNnIHTNZY", "AAAAIPaQ")),
    "network.subnets.bastion: is required by roles.gateway.kind: bastion (got None)":
        lambda t: _validate(_stack(t, "kind: self-hosted ", "kind: bastion ")),
    "roles.package_mirror: is required by roles.analytics (got None)":
        lambda t: _validate(_without_mirror(t)),
    "no price for VM size Standard_NC24ads_A100_v4 in the price table":
        lambda t: ["cost", str(_stack(t, "vm_size: Standard_D4s_v5", "vm_size: Standard_NC24ads_A100_v4"))],
    "the stack deploys to ukwest but the price table is for uksouth; prices there differ":
        lambda t: ["cost", str(_stack(t, "location: uksouth ", "location: ukwest "))],
    "Graphviz 'dot' was not found: install the Debian package graphviz (make host-deps)":
        lambda t: ["docs", str(EXAMPLE), "-o", str(t / "ref"), "--png-dir", ""],
    "is out of date with stacks/example.yaml or the code": lambda t: _stale_reference(t, "page"),
    "belongs to no stack file: remove it": lambda t: _stale_reference(t, "stack"),
}


def _empty(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    return path


def _without_mirror(tmp_path):
    text = EXAMPLE.read_text()
    start, end = text.index("  package_mirror:"), text.index("  git_server:")
    path = tmp_path / "s.yaml"
    path.write_text(text[:start] + text[end:])
    return path


def _stale_reference(tmp_path, what):
    # The page names the file as the command prints it: run from the repository root.
    reference = tmp_path / "ref"
    assert main(["docs", "stacks/example.yaml", "-o", str(reference), "--png-dir", ""]) == 0
    if what == "page":
        page = reference / "example" / "index.md"
        page.write_text(page.read_text() + "edited\n")
    else:
        (reference / "renamed").mkdir()
    return ["docs", "stacks/example.yaml", "-o", str(reference), "--check"]


def test_every_message_on_the_page_has_a_trigger():
    headings = re.findall(r"^### `(.+)`$", PAGE.read_text(encoding="utf-8"), re.M)
    assert sorted(headings) == sorted(TRIGGERS)


@pytest.mark.parametrize("message", sorted(TRIGGERS))
def test_the_tools_print_the_message(message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    if "Graphviz" in message:
        monkeypatch.setattr(shutil, "which", lambda name: None)
    argv = TRIGGERS[message](tmp_path)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert message in captured.out + captured.err
    assert "Traceback" not in captured.err
    assert code in (0, 1, 2)
