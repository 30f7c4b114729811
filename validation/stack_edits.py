"""The edits a trust makes to a stack file after the first deployment, as data.

``ORDINARY_EDITS`` are the day-two changes an administrator makes every week: each must reach
the running VMs in place (none may rebuild a VM). ``DESTRUCTIVE_EDITS`` are kept apart: Azure
cannot apply them to an existing VM, so the VM is replaced and only its data disk survives.

Each edit works on the stack document as read from YAML (before defaults are filled in), on a
deep copy, so an edited document can be written out as a stack file of its own. The render
tests, ``blueprints plan --diff`` tests and the change matrix in docs/administrators.md all read
these, so what the matrix says is what the tests prove.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from validation.plan_model import Plan

VM_TYPE = "azure-native:compute:VirtualMachine"
Document = dict[str, Any]

# Keys made for these edits only (ssh-keygen -t ed25519); nobody holds the private halves.
NEW_GIT_USER_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM0NYRe2Ua+xL9n67ZCvvqyPq6TMnClRd1e0BKhfa3Qa "
                    "sam.jones@example.nhs.uk")
NEW_ADMIN_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAF9MmI9Yok1TcULrhXkMStM52MVwKbGkskehOQIwIyK "
                 "on-call@example.nhs.uk")
NEW_GATEWAY_USER_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII79rolQENlIiSNfvSeYlaEvaZy+CoB8WRObFdbopiF4 "
                        "jbloggs@example.nhs.uk")


@dataclass(frozen=True)
class StackEdit:
    name: str  # short identifier, used in test ids and file names
    description: str  # what the administrator changes, in a sentence
    edit: Callable[[Document], None]  # changes the document it is given (a copy)
    analyst_notices: str
    vm_does: str
    takes: str  # how long the change takes to reach the VMs, and on what that rests
    destructive: bool = False
    # For a change made in the blueprints' code rather than the stack file: how it changes a
    # recorded plan (the diff of two plans is then what `plan --diff` would show).
    plan_edit: Callable[[Plan], None] | None = None

    def apply(self, config: Document) -> Document:
        """The stack document with this edit made; ``config`` itself is left as it was."""
        edited = copy.deepcopy(config)
        self.edit(edited)
        return edited


def _role(document: Document, role: str) -> Document:
    return document.setdefault("roles", {}).setdefault(role, {})


def _add_pypi_package(document: Document) -> None:
    allowlists = _role(document, "package_mirror").setdefault("allowlists", {})
    allowlists.setdefault("pypi", []).append("statsmodels")


def _add_git_user(document: Document) -> None:
    _role(document, "git_server").setdefault("users", []).append(
        {"name": "sam.jones", "ssh_public_key": NEW_GIT_USER_KEY, "teams": ["analysts"]})


def _add_git_repository(document: Document) -> None:
    _role(document, "git_server").setdefault("repositories", []).append(
        {"name": "outpatients", "owner_team": "analysts", "description": "Outpatient activity reports",
         "writers": ["@analysts"]})


def _change_backup_time(document: Document) -> None:
    _role(document, "git_server").setdefault("backup", {})["time"] = "02:45"


def _add_hub_admin(document: Document) -> None:
    _role(document, "analytics").setdefault("admin_users", []).append("asmith")


def _add_data_source(document: Document) -> None:
    network = document.setdefault("network", {})
    if "10.20.0.0/16" not in network.setdefault("trust_ranges", []):
        network["trust_ranges"].append("10.20.0.0/16")
    _role(document, "analytics").setdefault("data_sources", []).append(
        {"name": "theatres", "kind": "postgres", "range": "10.20.4.20/32", "port": 5432, "database": "theatres"})


def _three_analytics_vms(document: Document) -> None:
    _role(document, "analytics")["count"] = 3


def _add_admin_key(document: Document) -> None:
    document.setdefault("admin", {}).setdefault("ssh_public_keys", []).append(NEW_ADMIN_KEY)


def _add_gateway_user(document: Document) -> None:
    _role(document, "gateway").setdefault("ssh_users", []).append(
        {"name": "jbloggs", "ssh_public_key": NEW_GATEWAY_USER_KEY})


def _add_sign_in_account(document: Document) -> None:
    identity = _role(document, "gateway").setdefault("identity", {})
    identity.setdefault("accounts", []).append({"upn": "asmith@example.nhs.uk", "account": "asmith"})


def _change_size_family(document: Document) -> None:
    # B-series sizes have a local temporary disk and Dsv5 sizes none: Azure will not resize
    # across that line (modules/immutable-properties.yaml), so the VM is rebuilt.
    _role(document, "git_server")["vm_size"] = "Standard_D2s_v5"


def _same_document(document: Document) -> None:
    """An edit made in code, not in the stack file (see ``StackEdit.plan_edit``)."""


# The image is the blueprints' own choice (modules/linux_vm.py DEBIAN_13_IMAGE), not a stack
# setting: it changes when a release of the blueprints moves to the next Debian.
NEXT_IMAGE = {"publisher": "Debian", "offer": "debian-14", "sku": "14-gen2", "version": "latest"}


def _next_debian_image(plan: Plan) -> None:
    for vm in plan.of_type(VM_TYPE):
        vm.inputs["storageProfile"]["imageReference"] = dict(NEXT_IMAGE)


ORDINARY_EDITS: tuple[StackEdit, ...] = (
    StackEdit(
        name="add-pypi-package",
        description="Add statsmodels to roles.package_mirror.allowlists.pypi",
        edit=_add_pypi_package,
        analyst_notices="pip install statsmodels works through the mirror",
        vm_does="the mirror's apply program rewrites the PyPI allowlist and reloads devpi's index",
        takes="seconds after the VM reads its new settings; the package downloads on first install",
    ),
    StackEdit(
        name="add-git-user",
        description="Add sam.jones (team analysts, with an SSH key) to roles.git_server.users",
        edit=_add_git_user,
        analyst_notices="sam.jones can clone and push over SSH and sign in to the web view",
        vm_does="the Git server's apply program adds the key to gitolite and pushes its admin repository",
        takes="seconds after the VM reads its new settings",
    ),
    StackEdit(
        name="add-git-repository",
        description="Add the repository outpatients (owner team analysts) to roles.git_server.repositories",
        edit=_add_git_repository,
        analyst_notices="cloning outpatients works; existing repositories are untouched",
        vm_does="the Git server's apply program writes the gitolite rules and creates the empty repository",
        takes="seconds after the VM reads its new settings",
    ),
    StackEdit(
        name="change-backup-time",
        description="Move roles.git_server.backup.time from 01:30 to 02:45",
        edit=_change_backup_time,
        analyst_notices="nothing",
        vm_does="the Git server's apply program rewrites the backup timer; the next backup runs at 02:45",
        takes="seconds after the VM reads its new settings",
    ),
    StackEdit(
        name="add-hub-admin",
        description="Add asmith to roles.analytics.admin_users",
        edit=_add_hub_admin,
        analyst_notices="asmith sees JupyterHub's admin page; running notebooks carry on",
        vm_does="each analytics VM's apply program rewrites the hub's admin list and restarts the hub "
                "(single-user servers keep running)",
        takes="seconds after the VM reads its new settings, plus the hub's restart",
    ),
    StackEdit(
        name="add-data-source",
        description="Add the trust's theatres PostgreSQL server (10.20.4.20, port 5432) to "
                    "roles.analytics.data_sources",
        edit=_add_data_source,
        analyst_notices="psql service=theatres reaches the server; nothing else on the trust's network opens",
        vm_does="Azure adds one outbound rule to the analytics subnet's NSG; each analytics VM's settings "
                "program rewrites its libpq service file (nothing restarts)",
        takes="seconds after the VM reads its new settings; the NSG rule as soon as Azure applies it",
    ),
    StackEdit(
        name="analytics-count-2-to-3",
        description="Raise roles.analytics.count from 2 to 3",
        edit=_three_analytics_vms,
        analyst_notices="a third analytics VM (analytics-3) behind the gateway; the first two are untouched",
        vm_does="Azure creates analytics-3 and its disks; the gateway's apply program publishes it",
        takes="the new VM's first boot and role install; the gateway's change takes seconds",
    ),
    StackEdit(
        name="add-admin-ssh-key",
        description="Add a second key to admin.ssh_public_keys",
        edit=_add_admin_key,
        analyst_notices="nothing",
        vm_does="every VM's apply program rewrites the administrator's authorized_keys",
        takes="seconds after each VM reads its new settings",
    ),
    StackEdit(
        name="add-gateway-user",
        description="Add jbloggs (with an SSH key) to roles.gateway.ssh_users",
        edit=_add_gateway_user,
        analyst_notices="jbloggs can use the SSH jump host after enrolling a TOTP code, and reaches a shell "
                        "of their own on each analytics VM with the same key",
        vm_does="the gateway's apply program creates the account (no shell) and installs its key; "
                "other users' TOTP enrolments are kept; each analytics VM creates the account (no sudo) "
                "and lets it in with that key from the gateway only",
        takes="seconds after the VM reads its new settings",
    ),
    StackEdit(
        name="add-sign-in-account",
        description="Map asmith@example.nhs.uk to the account asmith in roles.gateway.identity.accounts",
        edit=_add_sign_in_account,
        analyst_notices="asmith signs in to JupyterHub as asmith (before, the hub refused them); nobody else "
                        "changes",
        vm_does="the gateway's apply program rewrites its account map and reloads Apache; each analytics VM's "
                "hub reads its new list of accounts at the next sign-in",
        takes="seconds after the VMs read their new settings",
    ),
)

DESTRUCTIVE_EDITS: tuple[StackEdit, ...] = (
    StackEdit(
        name="size-family-change",
        description="Move roles.git_server.vm_size from Standard_B2s to Standard_D2s_v5 "
                    "(a size with a local temporary disk to one without)",
        edit=_change_size_family,
        analyst_notices="Git is unavailable while the server is rebuilt; repositories are on its data disk, "
                        "which Azure keeps",
        vm_does="Azure cannot resize across the temporary-disk line, so the VM and its OS disk are replaced; "
                "the new VM installs the role from first boot and mounts the kept data disk",
        takes="a first boot and role install (minutes)",
        destructive=True,
    ),
    StackEdit(
        name="image-change",
        description="A release of the blueprints moves every VM from Debian 13 to Debian 14's image",
        edit=_same_document,
        analyst_notices="each tool is unavailable while its VM is rebuilt; what a role keeps on a data disk "
                        "is kept, what is only on an OS disk (the preview's 'lost' lines) is not",
        vm_does="an OS image is fixed when a VM is created, so every VM and its OS disk are replaced; "
                "each new VM installs its role from first boot and mounts its kept data disk",
        takes="a first boot and role install per VM (minutes)",
        destructive=True,
        plan_edit=_next_debian_image,
    ),
)


def by_name(name: str) -> StackEdit:
    for edit in ORDINARY_EDITS + DESTRUCTIVE_EDITS:
        if edit.name == name:
            return edit
    raise KeyError(name)
