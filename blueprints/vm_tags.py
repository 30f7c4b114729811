"""The names a VM reads from its own tags at boot: one table for the Pulumi program and the lab.

Globally unique names (the Key Vault, the Git server's backup storage account) hash the
subscription id (modules/naming.py), which the rendered cloud-init and the settings document
cannot know: they are made without Azure, and must stay the same bytes in the lab. So the
program sets them as tags of each VM that needs them, and the VM asks the instance metadata
service for its tags (``/metadata/instance/compute/tagsList``). The lab's metadata stand-in
(lab/platform_services.py) serves the same tags, made with the lab's own subscription id.
"""

from __future__ import annotations

from typing import Any

from blueprints.airlock_egress import egress_settings
from blueprints.airlock_settings import AIRLOCK_ACCOUNT_TAG, airlock_account_name, airlock_settings
from blueprints.git_server.backup_target import STORAGE_ACCOUNT_TAG, storage_account_name, uses_blob
from blueprints.roles import role
from blueprints.secrets import VAULT_NAME_TAG, vault_name
from blueprints.topology import Machine

__all__ = ["AIRLOCK_ACCOUNT_TAG", "STORAGE_ACCOUNT_TAG", "VAULT_NAME_TAG", "platform_tags"]


def platform_tags(config: dict[str, Any], machine: Machine, subscription_id: str) -> dict[str, str]:
    """Every machine gets the vault's name (it fetches its secrets at boot); a machine whose role reaches
    Azure Storage gets the environment's storage account too, when the stack creates one, and an
    analytics VM the airlock's account when the stack has an airlock (the Git server too, with egress).

    ValueError when ``subscription_id`` is not a GUID."""
    tags = {VAULT_NAME_TAG: vault_name(config, subscription_id)}
    if uses_blob(config) and role(machine.role).reaches_storage(config):
        tags[STORAGE_ACCOUNT_TAG] = storage_account_name(config, subscription_id)
    # Every analytics VM, not only the readers: a day-two edit of airlock.readers then changes user data
    # and grants alone (the account's name is no secret; the grant decides who reads).
    if airlock_settings(config) and machine.role == "analytics":
        tags[AIRLOCK_ACCOUNT_TAG] = airlock_account_name(config, subscription_id)
    # The Git server publishes approved outputs to the airlock's egress container (airlock.egress).
    if egress_settings(config) and machine.role == "git_server":
        tags[AIRLOCK_ACCOUNT_TAG] = airlock_account_name(config, subscription_id)
    return tags
