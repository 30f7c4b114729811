"""Day two: no ordinary edit of a stack file changes what an existing VM was created with.

For every stack file and every edit in validation/stack_edits.py ORDINARY_EDITS, each VM that
exists before the edit keeps byte-identical custom data and the same osProfile SSH key list
(Azure changes neither on an existing VM), while the user data of exactly the VMs the edit is
about changes: that is how the edit reaches them, in place.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprints.cloud_init import render_user_data
from blueprints.topology import Machine, plan_machines
from blueprints.vm_settings import bootstrap_ssh_keys, document_files, settings_document
from tests.conftest import STACK_FILES
from validation.stack_config import load_stack, validate_document
from validation.stack_edits import ORDINARY_EDITS, StackEdit

# The roles whose existing VMs' settings an edit changes (when the stack has them).
AFFECTED_ROLES = {
    # The Git server's settings carry the mirror's lists too: they seed the package-requests repository.
    "add-pypi-package": {"package_mirror", "git_server"},
    "add-git-user": {"git_server"},
    "add-git-repository": {"git_server"},
    "change-backup-time": {"git_server"},
    "add-hub-admin": {"analytics"},
    # Each analytics VM gets the source's client file; the NSG is not a VM's.
    "add-data-source": {"analytics"},
    # The gateway publishes the new VM and lets the jump host forward to it.
    "analytics-count-2-to-3": {"gateway"},
    "add-admin-ssh-key": {"analytics", "gateway", "git_server", "package_mirror"},
    # The jump host holds the account, and each analytics VM an account of the same name.
    "add-gateway-user": {"gateway", "analytics"},
    # The gateway applies the account map; each hub checks sign-ins against its accounts.
    "add-sign-in-account": {"gateway", "analytics"},
}
# An edit is about one role's section (or, for the admin key, every machine).
EDITED_ROLE = {"add-pypi-package": "package_mirror", "add-git-user": "git_server", "add-git-repository": "git_server",
               "change-backup-time": "git_server", "add-hub-admin": "analytics", "add-data-source": "analytics",
               "analytics-count-2-to-3": "analytics",
               "add-admin-ssh-key": None, "add-gateway-user": "gateway", "add-sign-in-account": "gateway"}


@cache
def _raw(stack: Path) -> dict[str, Any]:
    return yaml.safe_load(stack.read_text(encoding="utf-8"))


def _applies(stack: Path, edit: StackEdit) -> bool:
    """Whether the stack has what the edit changes (a self-hosted gateway for its users) and the
    edited stack is valid (the edits name the example's teams; another stack may already list
    the package). The example must take every edit: see the guard test below."""
    document = _raw(stack)
    role = EDITED_ROLE[edit.name]
    section = (document.get("roles") or {}).get(role) if role else {}
    if section is None or (role == "gateway" and section.get("kind", "self-hosted") != "self-hosted"):
        return False
    return not validate_document(edit.apply(document))[1]


CASES = [pytest.param(stack, edit, id=f"{stack.stem}-{edit.name}")
         for stack in STACK_FILES for edit in ORDINARY_EDITS if _applies(stack, edit)]


@cache
def _config(stack: Path, edit_name: str | None, workspace: Path) -> dict[str, Any]:
    """The stack's config, or its config after one edit (written as a stack file of its own)."""
    if edit_name is None:
        return load_stack(stack)
    edit = next(e for e in ORDINARY_EDITS if e.name == edit_name)
    edited = workspace / f"{stack.stem}-{edit.name}.yaml"
    edited.write_text(yaml.safe_dump(edit.apply(_raw(stack)), sort_keys=False), encoding="utf-8")
    return load_stack(edited)


def _machines(config: dict[str, Any]) -> dict[str, Machine]:
    return {machine.name: machine for machine in plan_machines(config)}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("edited-stacks")


@pytest.mark.parametrize(("stack", "edit"), CASES)
def test_an_ordinary_edit_reaches_existing_vms_only_through_their_user_data(stack, edit, workspace):
    before = _config(stack, None, workspace)
    after = _config(stack, edit.name, workspace)
    before_machines, after_machines = _machines(before), _machines(after)
    assert set(before_machines) <= set(after_machines), f"{edit.name} removed a VM"
    changed_settings = set()
    for name, machine in before_machines.items():
        assert after_machines[name] == machine, f"{edit.name} moved or resized {name}"
        assert render_user_data(after, machine) == render_user_data(before, machine), \
            f"{edit.name} changed the custom data of {name}: Azure would refuse it on the existing VM"
        if settings_document(after, machine) != settings_document(before, machine):
            changed_settings.add(name)
    assert bootstrap_ssh_keys(after) == bootstrap_ssh_keys(before), \
        f"{edit.name} changed the osProfile key list, which Azure will not change in place"
    expected = {name for name, machine in before_machines.items() if machine.role in AFFECTED_ROLES[edit.name]}
    assert changed_settings == expected


def test_every_ordinary_edit_is_checked_on_the_example():
    checked = {edit.name for stack, edit in (case.values for case in CASES) if stack.name == "example.yaml"}
    assert checked == {edit.name for edit in ORDINARY_EDITS} == set(AFFECTED_ROLES) == set(EDITED_ROLE)


def test_the_vms_key_list_is_the_first_key_and_every_key_reaches_authorized_keys(example_config):
    keys = example_config["admin"]["ssh_public_keys"]
    assert bootstrap_ssh_keys(example_config) == keys[:1]
    for machine in plan_machines(example_config):
        document = yaml.safe_load(render_user_data(example_config, machine))
        admin = next(user for user in document["users"] if user["name"] == example_config["admin"]["username"])
        assert "ssh_authorized_keys" not in admin
        keys_file = f"/home/{admin['name']}/.ssh/authorized_keys"
        assert document_files(settings_document(example_config, machine))[keys_file] == "".join(
            f"{key}\n" for key in keys)
