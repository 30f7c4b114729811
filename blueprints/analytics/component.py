"""An analytics VM: R, Python and JupyterHub, no Internet, shut down at night, backed up."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi

from blueprints.analytics.image import gallery_image_version_id
from blueprints.deployment import EnvironmentParts, RoleOutputs
from blueprints.role_host import RoleHostArgs
from blueprints.topology import Machine
from modules.auto_shutdown import AutoShutdown, AutoShutdownArgs
from modules.backup import Backup
from modules.linux_vm import LinuxVm


@dataclass
class AnalyticsVmArgs:
    host: RoleHostArgs
    shutdown_time: str
    shutdown_timezone: str
    backup: Backup | None = None


class AnalyticsVm(pulumi.ComponentResource):
    vm_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]

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
        self.vm_id = vm.vm_id
        self.principal_id = vm.principal_id
        self.register_outputs({"vm_id": self.vm_id})


def deploy(env: EnvironmentParts, machines: list[Machine]) -> RoleOutputs:
    shutdown = env.config["roles"]["analytics"]["auto_shutdown"]
    # A prebuilt image of the role's packages, if the stack names one; the custom data is the same.
    image_id = gallery_image_version_id(env.config)
    identities = {}
    for machine in machines:
        vm = AnalyticsVm(
            f"{env.name}-{machine.name}",
            AnalyticsVmArgs(replace(env.host(machine), image_id=image_id), shutdown["time"], shutdown["timezone"],
                            env.backup),
            env.child,
        )
        identities[machine.name] = vm.principal_id
    return RoleOutputs(identities=identities)
