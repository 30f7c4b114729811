"""Each machine finds in its own tags, through the metadata stand-in, what the program tags its VM with
(blueprints/vm_tags.py): the Key Vault's name on every machine, and on a Git server whose backups go to
Blob storage the account's name, which git-server-apply reads from there and from nowhere else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from blueprints.git_server.backup_target import uses_blob
from blueprints.vm_tags import STORAGE_ACCOUNT_TAG, platform_tags
from lab.machines import run
from lab.platform_services import LAB_SUBSCRIPTION_ID

pytestmark = pytest.mark.lab

_TAGS = """
import json, urllib.request
request = urllib.request.Request(
    "http://169.254.169.254/metadata/instance/compute/tagsList?api-version=2021-02-01", headers={"Metadata": "true"})
with urllib.request.urlopen(request, timeout=20) as response:
    print(json.dumps({tag["name"]: tag["value"] for tag in json.load(response)}))
"""
# The Git server's own program, as installed, asked for the account it would back up to.
_ACCOUNT = """
import importlib.machinery, importlib.util
loader = importlib.machinery.SourceFileLoader("git_server_program", "/usr/local/sbin/git-server")
spec = importlib.util.spec_from_loader(loader.name, loader)
program = importlib.util.module_from_spec(spec)
import sys; sys.modules[spec.name] = program  # its dataclasses look their module up while it loads
loader.exec_module(program)
print(program._storage_account())
"""


def _tags(machine: str) -> dict[str, str]:
    result = run(None, machine, ["python3", "-c", _TAGS])
    assert result.returncode == 0, f"{machine}: {result.stderr}"
    return json.loads(result.stdout)


def test_each_machine_reads_the_tags_the_program_gives_its_vm(lab: Any) -> None:
    for machine in lab.machines:
        tags = _tags(machine.name)
        ours = {name: value for name, value in tags.items() if name.startswith("trust-blueprints-")}
        assert ours == platform_tags(lab.config, machine, LAB_SUBSCRIPTION_ID), machine.name


def test_the_git_servers_program_finds_the_backup_account_in_its_tag(lab: Any) -> None:
    git = [machine for machine in lab.machines if machine.role == "git_server"]
    if not git:
        pytest.skip("this stack has no git_server machine")
    if not uses_blob(lab.config):
        pytest.skip("this stack's Git server keeps its backups on the VM only")
    result = run(None, git[0].name, ["python3", "-c", _ACCOUNT])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == platform_tags(lab.config, git[0], LAB_SUBSCRIPTION_ID)[STORAGE_ACCOUNT_TAG]
    # The settings file on the VM does not name it: the tag is the only place.
    settings = run(None, git[0].name, ["cat", "/etc/trust-blueprints/git-server.yaml"]).stdout
    assert result.stdout.strip() not in settings and "git-server-backups" in settings
