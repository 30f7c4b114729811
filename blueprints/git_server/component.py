"""The Git server: SSH hosting with per-team rules, web browsing behind SSO, daily VM backup, and
(unless the stack keeps backups on the VM only) a Blob container its nightly backups go to.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from blueprints.deployment import EnvironmentParts, RoleOutputs
from blueprints.git_server.backup_target import BACKUP_CONTAINER, storage_account_name, uses_blob
from blueprints.role_host import RoleHostArgs
from blueprints.topology import Machine
from modules.backup import Backup
from modules.blob_storage import BlobStorage, BlobStorageArgs
from modules.linux_vm import LinuxVm
from modules.private_endpoint import EndpointSubnet


@dataclass
class BlobBackupArgs:
    """The container the VM's nightly backups are copied to, written with the VM's managed identity."""

    account_name: str  # blueprints.git_server.backup_target.storage_account_name, also the VM's tag
    container_name: str
    subscription_id: pulumi.Input[str]
    endpoints: EndpointSubnet  # the account is reached only through its private endpoint


@dataclass
class GitServerArgs:
    host: RoleHostArgs
    backup: Backup | None = None
    blob_backup: BlobBackupArgs | None = None


class GitServer(pulumi.ComponentResource):
    vm_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]

    def __init__(self, name: str, args: GitServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:GitServer", name, None, opts)
        vm = LinuxVm(f"{name}-host", args.host.vm_args("git-server"), pulumi.ResourceOptions(parent=self))
        if args.backup is not None:
            args.backup.protect(f"{name}-backup", vm_name=args.host.placement.naming.name("vm", args.host.machine.name),
                                vm_id=vm.vm_id, parent=self)
        if args.blob_backup is not None:
            store = BlobStorage(
                f"{name}-offsite",
                BlobStorageArgs(args.host.placement, args.blob_backup.account_name, args.blob_backup.container_name,
                                component="git-server-backups", endpoints=args.blob_backup.endpoints),
                pulumi.ResourceOptions(parent=self),
            )
            store.grant_blob_write(f"{name}-offsite-writer", vm.principal_id, args.blob_backup.subscription_id,
                                   parent=self)
        self.vm_id = vm.vm_id
        self.principal_id = vm.principal_id
        self.register_outputs({"vm_id": self.vm_id})


def deploy(env: EnvironmentParts, machines: list[Machine]) -> RoleOutputs:
    if uses_blob(env.config) and env.endpoints is None:
        raise TypeError("the Git server's Blob backups need the environment's private endpoint subnet")
    blob_backup = None
    if uses_blob(env.config) and env.endpoints:
        # The same name the VM finds in its tag (blueprints/vm_tags.py): both from the subscription.
        account = storage_account_name(env.config, env.placement.naming.subscription_id)
        blob_backup = BlobBackupArgs(account, BACKUP_CONTAINER, env.subscription_id, env.endpoints)
    identities = {}
    for machine in machines:
        server = GitServer(f"{env.name}-{machine.name}", GitServerArgs(env.host(machine), env.backup, blob_backup),
                           env.child)
        identities[machine.name] = server.principal_id
    return RoleOutputs(identities=identities)
