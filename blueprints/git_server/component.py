"""The Git server: SSH hosting with per-team rules, web browsing behind SSO, daily VM backup."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from blueprints.role_host import RoleHostArgs
from modules.backup import Backup
from modules.linux_vm import LinuxVm


@dataclass
class GitServerArgs:
    host: RoleHostArgs
    backup: Backup | None = None


class GitServer(pulumi.ComponentResource):
    vm_id: pulumi.Output[str]

    def __init__(self, name: str, args: GitServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:GitServer", name, None, opts)
        vm = LinuxVm(f"{name}-host", args.host.vm_args("git-server"), pulumi.ResourceOptions(parent=self))
        if args.backup is not None:
            args.backup.protect(f"{name}-backup", vm_name=args.host.placement.naming.name("vm", args.host.machine.name),
                                vm_id=vm.vm_id, parent=self)
        self.vm_id = vm.vm_id
        self.register_outputs({"vm_id": self.vm_id})
