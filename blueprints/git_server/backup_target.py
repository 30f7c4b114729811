"""Where the Git server's nightly backups go beyond the VM, as the stack file and the plan agree.

`roles.git_server.backup.target` picks it: ``directory`` keeps generations on the VM only;
``auto`` (the default) and ``azure-blob`` also send each generation to a Blob container that the
blueprint creates for the environment. With ``auto`` the VM decides at boot: on Azure it uploads,
elsewhere (the lab) it keeps the directory alone. The names are worked out here once, for the
Pulumi program and for the settings document that git-server-apply reads on the VM.

The storage account's name is globally unique, so it carries a hash of the subscription and the
resource group (modules/naming.py) and cannot be in the settings document, which is rendered
without Azure. The VM carries it as its tag ``STORAGE_ACCOUNT_TAG`` instead (blueprints/vm_tags.py), and
git-server-apply reads that tag from the instance metadata service, as the boot steps read the
Key Vault's name.
"""

from __future__ import annotations

from typing import Any

from blueprints.airlock_egress import git_egress_settings
from blueprints.git_server.server_commands import STORAGE_ACCOUNT_TAG
from modules.naming import Naming

__all__ = ["BACKUP_CONTAINER", "BLOB_TARGETS", "STORAGE_ACCOUNT_TAG", "storage_account_name", "uses_blob",
           "vm_settings"]

BACKUP_CONTAINER = "git-server-backups"
BLOB_TARGETS = ("auto", "azure-blob")


def uses_blob(config: dict[str, Any]) -> bool:
    """Whether the stack's Git server sends backups to a Blob container (so the plan creates one)."""
    git = config["roles"].get("git_server")
    return git is not None and git["backup"].get("target", "auto") in BLOB_TARGETS


def storage_account_name(config: dict[str, Any], subscription_id: str) -> str:
    """The backup storage account of the stack deployed to ``subscription_id``: stable for one stack
    in one subscription, different in another. ValueError when ``subscription_id`` is not a GUID."""
    naming = Naming(config["trust"]["short_name"], config["environment"], config["location"], subscription_id)
    return naming.name("st", "git")


def vm_settings(config: dict[str, Any]) -> dict[str, Any]:
    """roles.git_server as git-server-apply reads it: the stack's settings, plus the Blob container's name
    (the account's name is the VM's tag, see above)."""
    settings = dict(config["roles"]["git_server"])
    if uses_blob(config):
        settings["backup"] = {**settings["backup"], "azure_blob": {"container": BACKUP_CONTAINER}}
    egress = git_egress_settings(config)
    if egress:  # the outputs repository, its limits and the egress container (airlock.egress)
        settings["egress"] = egress
    return settings
