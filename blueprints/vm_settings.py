"""Each VM's changeable settings, as the Azure user data that its settings program applies.

Bootstrap once, configure many times. A VM's custom data (blueprints/cloud_init.py) is processed
once, at provisioning, and Azure refuses to change it on an existing VM. So it carries only what
never changes for an ordinary edit of a stack file: packages, fixed configuration, the role's
programs and the settings program. Everything an edit can change (the administrator's keys,
Git users, teams, repositories and backup time, the mirror's allowlists, hub admins, the
gateway's users and publications) is in this document instead, which goes to the VM's
``userData`` property: Azure updates it in place and the VM reads it from the instance metadata
service. On the VM, ``trust-blueprints-settings`` (templates/trust-blueprints-settings.py) writes
the files that changed and runs the role's idempotent apply programs that read them.

The document is JSON: ``format``, ``version``, ``machine``, ``role``, ``hooks`` (the apply
programs to run, in order, named from the program's own table) and ``files`` (path, mode, owner,
group, content, and the hooks each file feeds). Every machine gets the administrator's
``authorized_keys``; a role adds its own files in ``blueprints/<role>/vm-settings.yaml.j2``.
Any local process can read user data: no secret ever goes here.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from functools import cache
from types import ModuleType
from typing import Any

import jinja2
import yaml

from blueprints.cloud_init import (
    SETTINGS_PROGRAM,
    RenderError,
    render_template,
    render_user_data,
    template_context,
    written_files,
)
from blueprints.roles import role
from blueprints.topology import Machine

__all__ = ["AZURE_USER_DATA_LIMIT", "SETTINGS_PROGRAM", "SETTINGS_TEMPLATE", "bootstrap_ssh_keys",
           "document_files", "machine_files", "settings_document", "settings_program"]

# A role's own settings files, beside its cloud-init template (optional).
SETTINGS_TEMPLATE = "vm-settings.yaml.j2"
# Azure documents user data as "up to 64 KB" without saying whether before or after base64; the
# base64 text is measured, the stricter reading (Compute REST API, VirtualMachine properties.userData;
# checked 2026-12-02).
AZURE_USER_DATA_LIMIT = 65535
TEMPLATE_FILE_KEYS = {"path", "mode", "content", "hooks", "owner", "group"}


@cache
def settings_program() -> ModuleType:
    """The VM program itself, so the document is checked here by the rule the VM applies."""
    spec = importlib.util.spec_from_file_location("trust_blueprints_settings_program", SETTINGS_PROGRAM)
    if spec is None or spec.loader is None:
        raise RenderError(f"{SETTINGS_PROGRAM}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bootstrap_ssh_keys(config: dict[str, Any]) -> list[str]:
    """The administrator keys a VM is created with (osProfile): the stack's first key only.

    Azure will not change osProfile's key list on an existing VM, so the list must not follow the
    stack; the full, current list reaches every VM as its ``authorized_keys`` in user data.
    """
    return list(config["admin"]["ssh_public_keys"][:1])


def _admin_files(config: dict[str, Any]) -> list[dict[str, Any]]:
    admin = config["admin"]
    return [{
        "path": f"/home/{admin['username']}/.ssh/authorized_keys",
        "mode": "0600",
        "owner": admin["username"],
        "group": admin["username"],
        "content": "".join(f"{key}\n" for key in admin["ssh_public_keys"]),
        "hooks": [],
    }]


def _role_files(config: dict[str, Any], machine: Machine) -> list[dict[str, Any]]:
    if not (role(machine.role).folder / SETTINGS_TEMPLATE).is_file():
        return []
    name = f"{machine.role}/{SETTINGS_TEMPLATE}"
    try:
        text = render_template(name, template_context(config, machine))
    except jinja2.UndefinedError as error:
        raise RenderError(f"{name}: {error.message}") from None
    try:
        rendered = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RenderError(f"{name}: rendered YAML does not parse: {error}") from None
    if not isinstance(rendered, dict) or set(rendered) != {"files"} or not isinstance(rendered["files"], list):
        raise RenderError(f"{name}: must render a mapping with one key, files (a list)")
    files = []
    for index, entry in enumerate(rendered["files"]):
        if not isinstance(entry, dict) or not {"path", "mode", "content"} <= set(entry) <= TEMPLATE_FILE_KEYS:
            raise RenderError(f"{name}: files[{index}] needs path, mode and content "
                              f"(and may have hooks, owner, group)")
        files.append({"owner": "root", "group": "root", "hooks": [], **entry})
    return files


def settings_document(config: dict[str, Any], machine: Machine) -> bytes:
    """The raw user data of one VM: what its settings program applies (base64 it for Azure)."""
    files = _admin_files(config) + _role_files(config, machine)
    hooks: list[str] = []
    for entry in files:
        hooks += [hook for hook in entry["hooks"] if hook not in hooks]
    document = {
        "format": settings_program().FORMAT,
        "version": 1,
        "machine": machine.name,
        "role": machine.role,
        "hooks": hooks,
        "files": files,
    }
    data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")
    try:
        settings_program().check_document(data)
    except settings_program().DocumentError as error:
        raise RenderError(f"settings of {machine.name}: {error}") from None
    encoded = len(base64.b64encode(data))
    if encoded > AZURE_USER_DATA_LIMIT:
        raise RenderError(f"settings of {machine.name}: {encoded} bytes of user data (base64); "
                          f"Azure allows {AZURE_USER_DATA_LIMIT}. Shorten the lists in the stack file "
                          f"(users, keys, allowlists, repositories).")
    return data


def document_files(data: bytes) -> dict[str, str]:
    """path -> content of a settings document (for tests and tools that read one)."""
    return {entry["path"]: entry["content"] for entry in json.loads(data)["files"]}


def machine_files(config: dict[str, Any], machine: Machine) -> dict[str, str]:
    """path -> content of every file a VM is given: its custom data's, then its settings'."""
    files = written_files(yaml.safe_load(render_user_data(config, machine)))
    return files | document_files(settings_document(config, machine))
