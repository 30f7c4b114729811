"""An analytics VM: R, Python and JupyterHub, no Internet, shut down at night, backed up."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from blueprints.deployment import EnvironmentParts
from blueprints.role_host import RoleHostArgs
from blueprints.topology import Machine
from modules.auto_shutdown import AutoShutdown, AutoShutdownArgs
from modules.backup import Backup
from modules.key_vault import KeyVault
from modules.linux_vm import LinuxVm

OIDC_SECRET = "jupyterhub-oidc-client-secret"  # noqa: S105 (a secret's name, not its value)


@dataclass
class AnalyticsVmArgs:
    host: RoleHostArgs
    shutdown_time: str
    shutdown_timezone: str
    backup: Backup | None = None
    key_vault: KeyVault | None = None
    subscription_id: pulumi.Input[str] | None = None


class AnalyticsVm(pulumi.ComponentResource):
    vm_id: pulumi.Output[str]

    def __init__(self, name: str, args: AnalyticsVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:AnalyticsVm", name, None, opts)
        host = args.host
        vm = LinuxVm(f"{name}-host", host.vm_args("analytics-vm"), pulumi.ResourceOptions(parent=self))
        AutoShutdown(
            f"{name}-shutdown",
            AutoShutdownArgs(host.placement, host.machine.name, vm.vm_id, args.shutdown_time, args.shutdown_timezone),
            pulumi.ResourceOptions(parent=self),
        )
        if args.backup is not None:
            args.backup.protect(f"{name}-backup", vm_name=host.placement.naming.name("vm", host.machine.name),
                                vm_id=vm.vm_id, parent=self)
        if args.key_vault is not None and args.subscription_id is not None:
            args.key_vault.grant_secret_read(f"{name}-reads-oidc", OIDC_SECRET, vm.principal_id,
                                             args.subscription_id, parent=self)
        self.vm_id = vm.vm_id
        self.register_outputs({"vm_id": self.vm_id})


def deploy(env: EnvironmentParts, machines: list[Machine]) -> None:
    shutdown = env.config["roles"]["analytics"]["auto_shutdown"]
    for machine in machines:
        AnalyticsVm(
            f"{env.name}-{machine.name}",
            AnalyticsVmArgs(env.host(machine), shutdown["time"], shutdown["timezone"], env.backup,
                            # The JupyterHub sign-in secret exists only behind the self-hosted
                            # gateway's single sign-on; with Bastion there is nothing to read.
                            env.key_vault if env.single_sign_on else None, env.subscription_id),
            env.child,
        )
