"""Where the Git server's nightly backups go beyond the VM, as the stack file and the plan agree.

`roles.git_server.backup.target` picks it: ``directory`` keeps generations on the VM only;
``auto`` (the default) and ``azure-blob`` also send each generation to a Blob container that the
blueprint creates for the environment. With ``auto`` the VM decides at boot: on Azure it uploads,
elsewhere (the lab) it keeps the directory alone. The names are worked out here once, for the
Pulumi program and for the settings document that git-server-apply reads on the VM.
"""

from __future__ import annotations

from typing import Any

from modules.naming import Naming

BACKUP_CONTAINER = "git-server-backups"
BLOB_TARGETS = ("auto", "azure-blob")


def uses_blob(config: dict[str, Any]) -> bool:
    """Whether the stack's Git server sends backups to a Blob container (so the plan creates one)."""
    git = config["roles"].get("git_server")
    return git is not None and git["backup"].get("target", "auto") in BLOB_TARGETS


def storage_account_name(config: dict[str, Any]) -> str:
    return Naming(config["trust"]["short_name"], config["environment"], config["location"]).name("st", "git")


def vm_settings(config: dict[str, Any]) -> dict[str, Any]:
    """roles.git_server as git-server-apply reads it: the stack's settings, plus the Blob container's names."""
    settings = dict(config["roles"]["git_server"])
    if uses_blob(config):
        settings["backup"] = {**settings["backup"], "azure_blob": {
            "account": storage_account_name(config), "container": BACKUP_CONTAINER}}
    return settings
